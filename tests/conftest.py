import os

os.environ.setdefault("LESSON_FAST", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# unit tests build CPU tensors by hand; the GPU-marked tests ask for "cuda" explicitly
os.environ.setdefault("LESSON_DEVICE", "cpu")

import pytest  # noqa: E402
import torch  # noqa: E402

import lesson_lib as ll  # noqa: E402
from lesson_lib.tiny import tiny_batch  # noqa: E402


@pytest.fixture
def tiny():
    """A fresh tiny random BERT and its tokenizer."""
    return ll.load_base(tiny=True)


@pytest.fixture
def batch():
    return tiny_batch()


@pytest.fixture(scope="session")
def minilm_task():
    return ll.load_task("tweets")


def snapshot(model):
    """Everything that must survive a failed call: module types, weights, requires_grad, num_labels."""
    return (
        [(n, type(m).__name__) for n, m in model.named_modules()],
        {k: v.clone() for k, v in model.state_dict().items()},
        {n: p.requires_grad for n, p in model.named_parameters()},
        model.config.num_labels,
    )


def same_snapshot(a, b) -> bool:
    return a[0] == b[0] and a[2] == b[2] and a[3] == b[3] and a[1].keys() == b[1].keys() and all(
        torch.equal(a[1][k], b[1][k]) for k in a[1])
