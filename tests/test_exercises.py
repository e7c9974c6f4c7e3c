"""The exercises: checkers for counting and verdicts, predict-then-run, and the student's own layer trained inside
the real MiniLM beside the library's (quick mode: a few steps; the comparison is the same in every mode)."""

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from lesson_lib import checks, exercises, metrics

# --- counting and verdicts ------------------------------------------------------------------------------


def test_lora_count_checker_passes_the_formula_and_names_each_typical_mistake():
    assert checks.check_lora_count(lambda d, r, n_layers, n: 2 * d * r * n_layers * n).passed
    mistakes = {"half the answer": lambda d, r, n_layers, n: d * r * n_layers * n,
                "one layer": lambda d, r, n_layers, n: 2 * d * r * n,
                "full matrices": lambda d, r, n_layers, n: d * d * n_layers * n}
    for words, fn in mistakes.items():
        result = checks.check_lora_count(fn)
        assert result.status == "fail" and words in result.message


def test_verdict_checker_passes_the_library_and_catches_argmax_and_single_seeds():
    assert checks.check_verdict(metrics.seed_verdict).passed

    def argmax(a, b):  # the typical mistake: the larger mean wins, however small the gap
        return "a" if sum(a) / len(a) > sum(b) / len(b) else "b"

    def no_single_seed_rule(a, b):
        gap = sum(a) / len(a) - sum(b) / len(b)
        spread = max(max(a) - min(a), max(b) - min(b))
        return "tie" if abs(gap) <= spread else ("a" if gap > 0 else "b")

    assert "tie" in checks.check_verdict(argmax).message
    assert "one seed each" in checks.check_verdict(no_single_seed_rule).message


def test_seed_verdict_and_summary():
    assert metrics.seed_summary([0.8, 0.9])["spread"] == pytest.approx(0.1)
    assert metrics.seed_verdict([0.9, 0.91, 0.9], [0.8, 0.81, 0.8]) == "a"
    assert metrics.seed_verdict([0.9], [0.5]) == "tie"
    with pytest.raises(ValueError):
        metrics.seed_summary([])


@pytest.mark.parametrize("guess, answer, verdict", [(None, 770, "no guess"), (800, 770, "right"),
                                                    (10_000, 770, "too high"), (10, 770, "too low"),
                                                    ("B", "b", "right"), ("a", "b", "wrong")])
def test_reveal_compares_the_guess_with_the_measurement(guess, answer, verdict, capsys):
    assert checks.reveal(guess, answer, "x") == verdict
    assert str(f"{answer:,}" if isinstance(answer, int) else answer) in capsys.readouterr().out


# --- your layer inside MiniLM ------------------------------------------------------------------------------


class StudentLoRA(nn.Module):
    def __init__(self, base, r, alpha, two_d_only=False, bias_trains=False):
        super().__init__()
        self.base, self.scaling, self.two_d_only = base, alpha / r, two_d_only
        base.weight.requires_grad_(False)
        base.bias.requires_grad_(bias_trains)
        self.lora_A = nn.Parameter(torch.randn(r, base.in_features) * 0.01)
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r))

    def forward(self, x):
        if self.two_d_only:  # works on the checker's (batch, features) tensors, not on (batch, tokens, features)
            return self.base(x) + self.scaling * torch.mm(torch.mm(x, self.lora_A.T), self.lora_B.T)
        return self.base(x) + self.scaling * (x @ self.lora_A.T @ self.lora_B.T)


class StudentAdapter(nn.Module):
    def __init__(self, d, m, extra=False):
        super().__init__()
        self.down, self.up = nn.Linear(d, m), nn.Linear(m, d)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)
        if extra:  # a trainable parameter the method does not have
            self.scale = nn.Parameter(torch.ones(d))

    def forward(self, h):
        return h + self.up(F.gelu(self.down(h)))


def test_your_lora_in_minilm_matches_the_library_and_the_library_itself_passes(monkeypatch, capsys):
    monkeypatch.setenv("LESSON_FAST", "1")
    result = exercises.your_lora(StudentLoRA)
    assert result.passed, result.message
    assert "yours" in result.message and "library" in result.message


def test_your_lora_in_minilm_catches_what_random_tensors_do_not(monkeypatch):
    monkeypatch.setenv("LESSON_FAST", "1")
    two_d = exercises.your_lora(lambda base, r, alpha: StudentLoRA(base, r, alpha, two_d_only=True))
    assert two_d.status == "fail" and "raised" in two_d.message
    bias = exercises.your_lora(lambda base, r, alpha: StudentLoRA(base, r, alpha, bias_trains=True))
    assert bias.status == "fail" and "parameters" in bias.message


def test_your_adapter_in_minilm(monkeypatch):
    monkeypatch.setenv("LESSON_FAST", "1")
    assert exercises.your_adapter(StudentAdapter).passed
    extra = exercises.your_adapter(lambda d, m: StudentAdapter(d, m, extra=True))
    assert extra.status == "fail" and "parameters" in extra.message


def test_your_prefix_attention_in_minilm(monkeypatch):
    monkeypatch.setenv("LESSON_FAST", "1")
    assert exercises.your_prefix_attention(checks.reference_prefix_attention).passed

    def prefix_last(q, k, v, prefix_k, prefix_v, mask):  # prefix after the tokens, mask not extended to match
        b = q.shape[0]
        k = torch.cat([k, prefix_k.expand(b, -1, -1, -1)], dim=2)
        v = torch.cat([v, prefix_v.expand(b, -1, -1, -1)], dim=2)
        keep = torch.cat([mask.new_ones(b, prefix_k.shape[1]), mask], dim=1)
        scores = q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5
        return scores.masked_fill(keep[:, None, None, :] == 0, float("-inf")).softmax(-1) @ v

    wrong = exercises.your_prefix_attention(prefix_last)
    assert wrong.status == "fail"


def test_bradley_terry_checker_passes_the_library_and_names_the_typical_mistakes():
    import torch.nn.functional as F

    from lesson_lib import instruct

    assert checks.check_bradley_terry(instruct.bradley_terry_loss).passed
    mistakes = {
        "sign is flipped": lambda c, r: -F.logsigmoid(r - c).mean(),
        "summed": lambda c, r: -F.logsigmoid(c - r).sum(),
        "probability of the wrong order": lambda c, r: (1 - torch.sigmoid(c - r)).mean(),
        "one number": lambda c, r: -F.logsigmoid(c - r),
        "compares the two": lambda c, r: -torch.log(torch.sigmoid(c)).mean() - torch.log(1 - torch.sigmoid(r)).mean(),
        "return a tensor": lambda c, r: float(-F.logsigmoid(c - r).mean()),
    }
    for words, fn in mistakes.items():
        result = checks.check_bradley_terry(fn)
        assert not result.passed and words in result.message, (words, result.message)


def test_hide_held_out_checker_passes_a_filter_and_catches_leaks():
    def right(texts, labels, names, held):
        hidden = {names.index(h) for h in held}
        kept = [(t, y) for t, y in zip(texts, labels) if y not in hidden]
        return [t for t, _ in kept], [y for _, y in kept]

    def keeps_everything(texts, labels, names, held):
        return texts, labels

    def drops_too_much(texts, labels, names, held):  # drops the first class as well
        hidden = {names.index(h) for h in held} | {0}
        kept = [(t, y) for t, y in zip(texts, labels) if y not in hidden]
        return [t for t, _ in kept], [y for _, y in kept]

    def loses_the_pairing(texts, labels, names, held):
        t, y = right(texts, labels, names, held)
        return t, sorted(y)

    assert checks.check_hide_held_out(right).passed
    assert "still there" in checks.check_hide_held_out(keeps_everything).message
    assert "drop only the held-out ones" in checks.check_hide_held_out(drops_too_much).message
    assert "no longer match" in checks.check_hide_held_out(loses_the_pairing).message
