"""Spectral analysis of weight updates: ranks, energy, subspace similarity φ, amplification."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from lesson_lib.analysis_core import (
    amplification_factor,
    effective_rank,
    energy_at_k,
    energy_curve,
    projection_norms,
    rank_at_energy,
    singular_values,
    subspace_similarity,
    subspace_similarity_grid,
    truncate_rank,
)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def low_rank(out: int, inp: int, r: int, seed: int = 0) -> torch.Tensor:
    """A LoRA-shaped update B @ A: (out, r) @ (r, inp), rank r."""
    g = gen(seed)
    return torch.randn(out, r, generator=g) @ torch.randn(r, inp, generator=g)


@pytest.mark.parametrize("r", [1, 4, 8])
def test_rank_r_product_has_exactly_r_singular_values(r):
    s = singular_values(low_rank(384, 384, r))
    assert s.shape == (384,) and np.all(np.diff(s) <= 0)  # descending
    assert int((s > 1e-6 * s[0]).sum()) == r


def test_energy_is_monotone_and_ends_at_one():
    s = singular_values(torch.randn(64, 32, generator=gen()))
    curve = energy_curve(s)
    assert curve.shape == (32,) and np.all(np.diff(curve) >= 0) and curve[-1] == 1.0
    assert energy_at_k(s, 0) == 0.0 and energy_at_k(s, 32) == 1.0
    assert energy_at_k(low_rank(50, 40, 3), 3) == pytest.approx(1.0)
    assert energy_curve(np.eye(4)).tolist() == [0.25, 0.5, 0.75, 1.0]
    assert rank_at_energy(np.eye(10), 0.9) == 9 and rank_at_energy(np.eye(10), 1.0) == 10
    assert rank_at_energy(low_rank(50, 40, 3), 0.999) <= 3


def test_effective_rank():
    assert effective_rank(np.eye(7)) == pytest.approx(7.0)
    assert effective_rank(torch.eye(384)) == pytest.approx(384.0)
    assert effective_rank(np.array([5.0, 0.0, 0.0])) == pytest.approx(1.0)
    assert 1.0 < effective_rank(low_rank(100, 80, 5)) <= 5.0 + 1e-9


def test_fp16_and_bf16_inputs_are_upcast():
    w32 = torch.randn(96, 64, generator=gen()) / 10
    for half in (torch.float16, torch.bfloat16):
        w_half = w32.to(half)
        # Upcasting loses nothing: the half-precision numbers give what the same numbers in fp32 give.
        assert np.allclose(singular_values(w_half), singular_values(w_half.float()), rtol=1e-6, atol=1e-9)
        # And they stay close to the fp32 originals (bf16 keeps ~3 significant digits, fp16 ~4).
        assert np.allclose(singular_values(w_half), singular_values(w32), rtol=1e-2, atol=1e-3)
        assert effective_rank(w_half) == pytest.approx(effective_rank(w32), rel=1e-2)
        assert energy_at_k(w_half, 8) == pytest.approx(energy_at_k(w32, 8), rel=1e-2)
    w_np16 = w32.numpy().astype(np.float16)
    assert np.allclose(singular_values(w_np16), singular_values(w32), rtol=1e-2, atol=1e-3)
    # Rounding to fp16 adds small noise in every direction: a rank-6 update shows 6 large singular
    # values and a floor about a thousand times lower, no longer exact zeros.
    s = singular_values(low_rank(96, 64, 6).half())
    assert s[5] / s[0] > 1e-2 and s[6] / s[0] < 1e-2


def test_truncate_rank():
    w = torch.randn(40, 30, generator=gen())
    assert torch.allclose(truncate_rank(w, 30), w, atol=1e-5)                 # full rank: the matrix back
    assert truncate_rank(w, 30).dtype == torch.float32
    w16 = w.half()
    assert truncate_rank(w16, 30).dtype == torch.float16 and torch.equal(truncate_rank(w16, 30), w16)
    approx = truncate_rank(w, 5)
    assert int((singular_values(approx) > 1e-6 * singular_values(approx)[0]).sum()) == 5
    kept = torch.linalg.matrix_norm(approx) ** 2 / torch.linalg.matrix_norm(w) ** 2
    assert float(kept) == pytest.approx(energy_at_k(w, 5))                     # Eckart–Young
    assert isinstance(truncate_rank(w.numpy(), 3), np.ndarray)
    with pytest.raises(ValueError, match="between 0 and 30"):
        truncate_rank(w, 31)


@pytest.mark.parametrize("i", [1, 3, 8])
def test_subspace_with_itself_is_one(i):
    a = torch.randn(8, 256, generator=gen())
    assert subspace_similarity(a, a, i, i) == pytest.approx(1.0)
    assert subspace_similarity(a, 3 * a, i, i) == pytest.approx(1.0)   # scaling changes no direction


def test_subspace_contained_in_a_larger_one():
    a64 = torch.randn(64, 256, generator=gen())
    _, _, vh = torch.linalg.svd(a64, full_matrices=False)
    a8 = vh[:8] * torch.arange(8, 0, -1).unsqueeze(1)   # the top-8 directions of a64, in the same order
    grid = subspace_similarity_grid(a8, a64)
    assert grid.shape == (8, 64)
    assert np.allclose(np.diag(grid[:, :8]), 1.0) and np.allclose(grid[:, 8:], 1.0)


def test_random_subspaces_overlap_by_max_i_j_over_d():
    # U1 (d × i) and U2 (d × j) span independent uniformly random subspaces. Each of the i unit columns
    # of U1 keeps, on average, a share j/d of its squared length inside the j-dim span of U2, so
    # E‖U1ᵀU2‖_F² = i·j/d and E[φ] = i·j / (d·min(i, j)) = max(i, j) / d. Averaging 60 draws keeps the
    # sampling error a few percent of the mean; 15% leaves a wide margin.
    d, i, j, trials = 256, 4, 16, 60
    g = gen(1)
    phis = [subspace_similarity(torch.randn(i, d, generator=g), torch.randn(j, d, generator=g), i, j)
            for _ in range(trials)]
    assert np.mean(phis) == pytest.approx(max(i, j) / d, rel=0.15)


def test_grid_equals_pointwise_similarity():
    a1, a2 = torch.randn(4, 50, generator=gen(2)), torch.randn(6, 50, generator=gen(3))
    grid = subspace_similarity_grid(a1, a2)
    for i in range(1, 5):
        for j in range(1, 7):
            assert grid[i - 1, j - 1] == pytest.approx(subspace_similarity(a1, a2, i, j))
    assert np.all((grid >= 0) & (grid <= 1 + 1e-12))


def test_subspace_similarity_validates_its_input():
    a, b = torch.randn(4, 50, generator=gen()), torch.randn(6, 50, generator=gen(1))
    with pytest.raises(ValueError, match="1 ≤ i ≤ 4"):
        subspace_similarity(a, b, 5, 2)
    with pytest.raises(ValueError, match="same input width"):
        subspace_similarity(a, torch.randn(4, 40), 1, 1)
    with pytest.raises(ValueError, match="numerical rank 1"):
        subspace_similarity(torch.ones(3, 50), b, 1, 1)


def test_amplification_factor_on_a_constructed_example():
    w = 2.0 * torch.eye(6)
    w[0, 1] = 0.5                    # W has only 0.5 along the pair of directions ΔW uses
    delta = torch.zeros(6, 6)
    delta[0, 1] = 3.0                # ΔW = 3 · e0 e1ᵀ: U = e0, V = e1, ‖ΔW‖_F = 3
    assert amplification_factor(delta, w, r=1) == pytest.approx(3.0 / 0.5)
    norms = projection_norms(delta, w, r=1)
    assert norms["delta_w"] == pytest.approx(0.5) and norms["norm_delta_w"] == pytest.approx(3.0)
    assert norms["w"] > norms["delta_w"]   # W's own top direction holds more of W
    assert amplification_factor(delta, torch.eye(6), r=1) == float("inf")
    with pytest.raises(ValueError, match="numerical rank 1"):
        amplification_factor(delta, w, r=2)   # ΔW has one direction only; a second one is arbitrary


def test_amplification_of_an_update_along_weak_directions_of_w():
    # W = Q diag(s) Pᵀ with a steep spectrum; ΔW = 2 · q_k p_kᵀ boosts a direction W holds with s_k.
    g = gen(4)
    q, _ = torch.linalg.qr(torch.randn(20, 20, generator=g, dtype=torch.float64))
    p, _ = torch.linalg.qr(torch.randn(20, 20, generator=g, dtype=torch.float64))
    spectrum = torch.logspace(1, -2, 20, dtype=torch.float64)
    w = q @ torch.diag(spectrum) @ p.T
    for k in (0, 10, 19):
        delta = 2.0 * torch.outer(q[:, k], p[:, k])
        assert amplification_factor(delta, w, r=1) == pytest.approx(2.0 / float(spectrum[k]))


def test_zero_update_gets_a_helpful_error():
    with pytest.raises(ValueError, match="B = 0"):
        energy_curve(torch.zeros(8, 8))


def test_twelve_minilm_matrices_analysed_in_well_under_a_second():
    updates = [low_rank(384, 384, 8, seed=k) + 1e-3 * torch.randn(384, 384, generator=gen(k)) for k in range(12)]

    def analyse() -> float:
        start = time.perf_counter()
        for dw in updates:
            s = singular_values(dw)
            energy_at_k(s, 8), effective_rank(s), rank_at_energy(s)
        return time.perf_counter() - start

    assert min(analyse() for _ in range(3)) < 1.0  # best of three: a shared CI machine can stall once
