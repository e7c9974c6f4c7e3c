"""Tiny random models and batches for tests and exercise checkers (no files, no network, < 0.1 s).

The tiny BERT has hidden size 32, 2 layers, 4 heads; its tokenizer is a WordPiece tokenizer whose
vocabulary is built right here (special tokens, a few words, letters and digits), so any lowercase
text can be tokenised.
"""

from __future__ import annotations

import string

import torch

TINY_WORDS = (
    "the a an is was good bad great awful love hate movie film news sport money vote game not very "
    "happy sad fine ok terrible wonderful boring fun i you we it this that and or but"
).split()


def tiny_config(num_labels: int = 2):
    """A BertConfig small enough to build in milliseconds."""
    from transformers import BertConfig

    return BertConfig(
        vocab_size=len(tiny_vocab()), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=64, max_position_embeddings=128, num_labels=num_labels,
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
    )


def tiny_vocab() -> list[str]:
    chars = list(string.ascii_lowercase + string.digits + string.punctuation)
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    return specials + TINY_WORDS + chars + ["##" + c for c in string.ascii_lowercase + string.digits]


def tiny_tokenizer():
    """A BERT-style fast tokenizer over ``tiny_vocab()``, built in code."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate(tiny_vocab())}
    tk = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tk.normalizer = normalizers.BertNormalizer(lowercase=True)
    tk.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tk.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tk, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
        sep_token="[SEP]", mask_token="[MASK]", model_max_length=128,
    )


def tiny_model_and_tokenizer(num_labels: int = 2, seed: int = 0):
    """A random tiny ``BertForSequenceClassification`` (seeded) and its tokenizer."""
    from transformers import BertForSequenceClassification

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = BertForSequenceClassification(tiny_config(num_labels))
    return model, tiny_tokenizer()


def tiny_batch(batch_size: int = 4, seq_len: int = 12, seed: int = 0, pad_last: int = 3) -> dict:
    """Random token ids with an attention mask; the last example is padded by ``pad_last`` tokens."""
    g = torch.Generator().manual_seed(seed)
    vocab = len(tiny_vocab())
    ids = torch.randint(5, vocab, (batch_size, seq_len), generator=g)
    ids[:, 0] = 2  # [CLS]
    mask = torch.ones(batch_size, seq_len, dtype=torch.long)
    if pad_last:
        mask[-1, -pad_last:] = 0
        ids[-1, -pad_last:] = 0
    return {"input_ids": ids, "attention_mask": mask}


def tiny_task(n: int = 96, num_labels: int = 2, seed: int = 0):
    """A small learnable task in the tiny vocabulary: sentiment words decide the label.

    With ``num_labels=3`` a third class uses neutral words. For tests of "the loss goes down".
    """
    import random

    from .data import Split, Task

    words = {0: ["bad", "awful", "hate", "terrible", "boring", "sad"], 1: ["good", "great", "love", "wonderful",
             "fun", "happy"], 2: ["news", "sport", "money", "vote", "game", "film"]}
    filler = ["the", "movie", "was", "very", "it", "this", "i", "a"]
    rng = random.Random(seed)

    def make(count: int) -> Split:
        texts, labels = [], []
        for i in range(count):
            label = i % num_labels
            toks = rng.sample(filler, 3) + [rng.choice(words[label])] + rng.sample(filler, 2)
            texts.append(" ".join(toks))
            labels.append(label)
        return Split(texts, labels)

    names = ["negative", "positive", "topic"][:num_labels]
    return Task("tiny", make(n), make(max(n // 4, 2 * num_labels)), make(max(n // 4, 2 * num_labels)), names, 16)
