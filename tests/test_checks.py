"""Exercise checkers pass the reference solutions and catch the typical mistakes with the intended message."""

import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from lesson_lib import checks

# --- LoRA -------------------------------------------------------------------------------------------


class GoodLoRA(nn.Module):
    def __init__(self, base, r, alpha, b_init=0.0, scale=None, freeze=True):
        super().__init__()
        self.base = base
        if freeze:
            base.weight.requires_grad_(False)
        self.lora_A = nn.Parameter(torch.empty(r, base.in_features))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.lora_B = nn.Parameter(torch.full((base.out_features, r), b_init))
        self.scaling = alpha / r if scale is None else scale(alpha, r)

    def forward(self, x):
        return self.base(x) + self.scaling * x @ self.lora_A.T @ self.lora_B.T


class TodoLoRA(nn.Module):
    def __init__(self, base, r, alpha):
        raise NotImplementedError


def test_lora_checker_passes_the_reference_and_the_library():
    from lesson_lib.lora import LoRALinear

    assert checks.check_lora_layer(GoodLoRA).passed
    assert checks.check_lora_layer(lambda base, r, alpha: _frozen(LoRALinear(base, r, alpha))).passed


def _frozen(layer):
    layer.base.weight.requires_grad_(False)
    return layer


@pytest.mark.parametrize("make, words", [
    (lambda base, r, alpha: GoodLoRA(base, r, alpha, b_init=0.1), "B must start at zero"),
    (lambda base, r, alpha: GoodLoRA(base, r, alpha, scale=lambda al, rr: al), "scaled by α; LoRA scales it by α / r"),
    (lambda base, r, alpha: GoodLoRA(base, r, alpha, scale=lambda al, rr: 1.0), "not scaled"),
    (lambda base, r, alpha: GoodLoRA(base, r, alpha, freeze=False), "must be frozen"),
])
def test_lora_checker_catches_typical_mistakes(make, words, capsys):
    res = checks.check_lora_layer(make)
    assert res.status == "fail" and words in res.message
    assert "❌" in capsys.readouterr().out


def test_unfinished_exercise_says_not_implemented_and_strict_mode_raises(capsys):
    res = checks.check_lora_layer(TodoLoRA)
    assert res.status == "todo" and "⏳" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="not implemented"):
        checks.check_lora_layer(TodoLoRA, strict=True)


def test_merge_checker():
    assert checks.check_merge(lambda W, A, B, alpha, r: W + alpha / r * B @ A).passed
    assert "scaled by α" in checks.check_merge(lambda W, A, B, alpha, r: W + alpha * B @ A).message
    assert "in place" in checks.check_merge(lambda W, A, B, alpha, r: W.add_(alpha / r * B @ A)).message


# --- adapters ---------------------------------------------------------------------------------------


class GoodAdapter(nn.Module):
    def __init__(self, d, m, residual=True, act=True):
        super().__init__()
        self.down, self.up = nn.Linear(d, m), nn.Linear(m, d)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)
        self.residual, self.act = residual, act

    def forward(self, h):
        z = self.down(h)
        out = self.up(F.gelu(z) if self.act else z)
        return h + out if self.residual else out


def test_adapter_checker():
    from lesson_lib.adapter import Adapter

    assert checks.check_adapter(GoodAdapter).passed
    assert checks.check_adapter(Adapter).passed
    assert "residual is missing" in checks.check_adapter(lambda d, m: GoodAdapter(d, m, residual=False)).message
    assert "no nonlinearity" in checks.check_adapter(lambda d, m: GoodAdapter(d, m, act=False)).message


def test_adapter_count_checker():
    good = lambda d, m, n, p: n * (2 if p == "houlsby" else 1) * (2 * d * m + d + m)  # noqa: E731
    assert checks.check_adapter_count(good).passed
    no_bias = lambda d, m, n, p: n * (2 if p == "houlsby" else 1) * 2 * d * m  # noqa: E731
    assert "biases" in checks.check_adapter_count(no_bias).message
    assert "TWO adapters" in checks.check_adapter_count(lambda d, m, n, p: n * (2 * d * m + d + m)).message


# --- prefix -----------------------------------------------------------------------------------------


def test_prefix_checker_passes_reference_and_catches_mistakes():
    ref = checks.reference_prefix_attention
    assert checks.check_prefix_attention(ref).passed

    def as_tokens(q, k, v, pk, pv, mask):  # the prefix becomes P extra query positions: shifts positions
        b = q.shape[0]
        q2 = torch.cat([pk.expand(b, -1, -1, -1), q], dim=2)
        return torch.cat([pk.expand(b, -1, -1, -1), ref(q, k, v, pk, pv, mask)], dim=2) if q2 is not None else None

    assert "shift" in checks.check_prefix_attention(as_tokens).message

    def hidden_prefix(q, k, v, pk, pv, mask):  # mask extended with 0s: the prefix is invisible
        b, p = q.shape[0], pk.shape[1]
        k2, v2 = torch.cat([pk.expand(b, -1, -1, -1), k], 2), torch.cat([pv.expand(b, -1, -1, -1), v], 2)
        keep = torch.cat([mask.new_zeros(b, p), mask], 1)
        s = (q @ k2.transpose(-1, -2) / q.shape[-1] ** 0.5).masked_fill(keep[:, None, None] == 0, float("-inf"))
        return s.softmax(-1) @ v2

    assert "extend the mask with 1s" in checks.check_prefix_attention(hidden_prefix).message

    def mask_not_extended(q, k, v, pk, pv, mask):  # the T-wide mask cannot cover P + T keys
        b = q.shape[0]
        k2 = torch.cat([pk.expand(b, -1, -1, -1), k], 2)
        s = (q @ k2.transpose(-1, -2)).masked_fill(mask[:, None, None] == 0, float("-inf"))
        return s.softmax(-1) @ torch.cat([pv.expand(b, -1, -1, -1), v], 2)

    res = checks.check_prefix_attention(mask_not_extended)
    assert res.status == "fail" and "raised" in res.message


def test_extend_mask_checker():
    assert checks.check_extend_mask(lambda m, p: torch.cat([m.new_ones(m.shape[0], p), m], 1)).passed
    assert "not extended" in checks.check_extend_mask(lambda m, p: m).message
    assert "must be 1" in checks.check_extend_mask(lambda m, p: torch.cat([m.new_zeros(m.shape[0], p), m], 1)).message
    assert "FRONT" in checks.check_extend_mask(lambda m, p: torch.cat([m, m.new_ones(m.shape[0], p)], 1)).message
