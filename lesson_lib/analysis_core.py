"""What does a learned update ΔW look like? Singular values, rank and subspaces (LoRA paper, §7).

Every function takes a torch tensor (any device, any float dtype) or a numpy array. Inputs are
copied to the CPU in float64 before the SVD: fp16/bf16 keep only ~3 significant digits, and a
float32 SVD of a 384 × 384 rank-8 matrix leaves its "zero" singular values near 4e-7·s_max, too close
to the usual 1e-6 cut for counting a rank. Results are numpy arrays or python floats, ready for a
plot or an assert; ``truncate_rank`` alone returns a matrix again.

Vocabulary, for a matrix M = U diag(s) Vᵀ (its SVD, s sorted from largest to smallest):
    energy      ‖M‖_F² = Σ s_k²; the top-k singular values hold the share Σ_{k'≤k} s_k'² / Σ s².
    rank        the number of non-zero s_k; LoRA's ΔW = B @ A has rank ≤ r by construction.
"""

from __future__ import annotations

import numpy as np
import torch

from .devices import threads

__all__ = [
    "Matrix", "amplification_factor", "effective_rank", "energy_at_k", "energy_curve", "projection_norms",
    "rank_at_energy", "singular_values", "subspace_similarity", "subspace_similarity_grid", "truncate_rank",
]

Matrix = torch.Tensor | np.ndarray
SMALL = 1024 * 1024  # matrices up to this many entries are decomposed on one thread


def _one_thread_if_small(t: torch.Tensor):
    """Run a small SVD on one thread: it is faster there, and it does not stall when other programs
    keep the CPU busy (several threads waiting on each other can make a 0.2 s job take 10 s)."""
    return threads(1 if t.numel() <= SMALL else None)


def _svd(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Thin SVD t = U diag(s) Vh: U (m, p), s (p,), Vh (p, n), p = min(m, n)."""
    with _one_thread_if_small(t):
        return torch.linalg.svd(t, full_matrices=False)


def _svdvals(t: torch.Tensor) -> torch.Tensor:
    with _one_thread_if_small(t):
        return torch.linalg.svdvals(t)


def _float64(m: Matrix) -> torch.Tensor:
    """A detached CPU float64 copy of a 2-D matrix (fp16/bf16/fp32 are upcast, never truncated)."""
    t = m.detach() if isinstance(m, torch.Tensor) else torch.as_tensor(np.asarray(m))
    if t.ndim != 2:
        raise ValueError(f"expected a 2-D matrix, got shape {tuple(t.shape)}.")
    return t.to(device="cpu", dtype=torch.float64)


def singular_values(delta_w: Matrix) -> np.ndarray:
    """The singular values of a matrix, largest first, shape (min(out, in),)."""
    return _svdvals(_float64(delta_w)).numpy()


def _spectrum(s_or_delta_w: Matrix) -> np.ndarray:
    """Accept either singular values (1-D) or a matrix (2-D); return non-zero-energy singular values."""
    x = s_or_delta_w.detach().cpu().double().numpy() if isinstance(s_or_delta_w, torch.Tensor) else s_or_delta_w
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1 and np.any(x < 0):
        raise ValueError("singular values are never negative; pass the matrix itself or singular_values(matrix).")
    s = np.sort(x)[::-1] if x.ndim == 1 else singular_values(x)
    if not np.any(s > 0):
        raise ValueError("the matrix is all zeros, so its energy is undefined. A fresh LoRA layer has B = 0 "
                         "and therefore ΔW = 0: train a few steps before analysing ΔW.")
    return s


def energy_curve(s_or_delta_w: Matrix) -> np.ndarray:
    """Cumulative energy share: element k-1 is the share held by the top-k singular values (ends at 1)."""
    s2 = _spectrum(s_or_delta_w) ** 2
    curve = np.cumsum(s2) / s2.sum()
    curve[-1] = 1.0  # exact, whatever the rounding of the sum
    return curve


def energy_at_k(s_or_delta_w: Matrix, k: int) -> float:
    """Share of ‖ΔW‖_F² captured by the best rank-k approximation: Σ_{i≤k} s_i² / Σ_i s_i² (Eckart–Young)."""
    curve = energy_curve(s_or_delta_w)
    if not 0 <= k <= len(curve):
        raise ValueError(f"k must be between 0 and {len(curve)} (the number of singular values), got {k}.")
    return 0.0 if k == 0 else float(curve[k - 1])


def rank_at_energy(s_or_delta_w: Matrix, share: float = 0.9) -> int:
    """The smallest k whose top-k singular values hold at least ``share`` of the energy."""
    if not 0.0 < share <= 1.0:
        raise ValueError(f"share must be in (0, 1], got {share}.")
    curve = energy_curve(s_or_delta_w)
    k = int(np.searchsorted(curve, share - 1e-12)) + 1  # first index with curve >= share (rounding-tolerant)
    return min(k, len(curve))


def effective_rank(s_or_delta_w: Matrix) -> float:
    """Roy & Vetterli (2007) effective rank: exp of the entropy of the normalised singular values.

    p_k = s_k / Σ s (note: s, not s²), erank = exp(-Σ p_k log p_k). It is a smooth count of the
    directions in use: n equal singular values give exactly n; one dominant value gives close to 1.
    So the identity(n) has effective rank n, and a rank-r matrix has effective rank ≤ r.
    """
    s = _spectrum(s_or_delta_w)
    p = s[s > 0] / s.sum()
    return float(np.exp(-(p * np.log(p)).sum()))


def truncate_rank(delta_w: Matrix, k: int) -> Matrix:
    """The best rank-k approximation U_k diag(s_k) V_kᵀ (Eckart–Young), same kind/dtype/device as the input."""
    t = _float64(delta_w)
    if not 0 <= k <= min(t.shape):
        raise ValueError(f"k must be between 0 and {min(t.shape)} for a {tuple(t.shape)} matrix, got {k}.")
    u, s, vh = _svd(t)                                            # (out, p), (p,), (p, in)
    approx = (u[:, :k] * s[:k]) @ vh[:k]                          # (out, k) · (k, in) → (out, in)
    if isinstance(delta_w, torch.Tensor):  # an integer matrix gets a float64 approximation back
        return approx.to(delta_w.device, delta_w.dtype if delta_w.is_floating_point() else torch.float64)
    dtype = np.asarray(delta_w).dtype
    return approx.numpy().astype(dtype if np.issubdtype(dtype, np.floating) else np.float64, copy=False)


def _check_rank(s: torch.Tensor, shape: tuple[int, ...], needed: int, name: str) -> None:
    """Singular directions beyond the numerical rank are arbitrary (any orthonormal completion): refuse them."""
    rank = int((s > s.max() * max(shape) * torch.finfo(torch.float64).eps).sum())
    if needed > rank:
        raise ValueError(f"{name} has shape {tuple(shape)} but numerical rank {rank}: its singular directions "
                         f"beyond {rank} are arbitrary, so {needed} of them are not defined.")


def _right_singular_vectors(a: torch.Tensor, name: str) -> torch.Tensor:
    """Columns = right singular vectors of an r × d matrix, top first: U_A of the paper, shape (d, r)."""
    _, s, vh = _svd(a)                                            # vh: (r, d) when r ≤ d
    _check_rank(s, a.shape, len(s), name)
    return vh.T


def _overlap_squared(a1: Matrix, a2: Matrix) -> torch.Tensor:
    """(U_A1ᵀ U_A2)², elementwise, shape (r1, r2); entry [a, b] = cos² between direction a and b."""
    t1, t2 = _float64(a1), _float64(a2)
    if t1.shape[1] != t2.shape[1]:
        raise ValueError(f"A1 and A2 must act on the same input width d (r × d matrices, like LoRA's A); "
                         f"got shapes {tuple(t1.shape)} and {tuple(t2.shape)}.")
    u1, u2 = _right_singular_vectors(t1, "A1"), _right_singular_vectors(t2, "A2")  # (d, r1), (d, r2)
    return (u1.T @ u2) ** 2                                                        # (r1, r2)


def subspace_similarity(a1: Matrix, a2: Matrix, i: int, j: int) -> float:
    """φ(A1, A2, i, j) = ‖U_A1^{i}ᵀ U_A2^{j}‖_F² / min(i, j), in [0, 1] (LoRA paper, §7.2, eq. 4).

    A1 (r1 × d) and A2 (r2 × d) are LoRA ``A`` matrices, e.g. A_{r=8} and A_{r=64} of the same layer.
    U_A holds the RIGHT singular vectors of A (vectors in the d-dimensional input space, the rows of
    Vᵀ in A = U Σ Vᵀ): the input directions A reads. U_A^{i} keeps the top-i of them. (Appendix G
    speaks of the left singular vectors of a d × r matrix, i.e. of Aᵀ: the very same vectors.)
    φ = 1: the top-i directions of one lie inside the top-j of the other; φ = 0: orthogonal subspaces.
    Requires 1 ≤ i ≤ rank(A1) and 1 ≤ j ≤ rank(A2).
    """
    overlap = _overlap_squared(a1, a2)
    r1, r2 = overlap.shape
    if not (1 <= i <= r1 and 1 <= j <= r2):
        raise ValueError(f"need 1 ≤ i ≤ {r1} and 1 ≤ j ≤ {r2} (the ranks of A1 and A2), got i={i}, j={j}.")
    return float(overlap[:i, :j].sum() / min(i, j))


def subspace_similarity_grid(a1: Matrix, a2: Matrix) -> np.ndarray:
    """φ(A1, A2, i, j) for every i = 1..r1 and j = 1..r2 at once, shape (r1, r2): the paper's Figure 3.

    ‖U_A1^{i}ᵀ U_A2^{j}‖_F² is the sum of the top-left i × j block of (U_A1ᵀ U_A2)², so two cumulative
    sums give all blocks from one pair of SVDs. Row i-1, column j-1 holds φ(·, ·, i, j).
    """
    overlap = _overlap_squared(a1, a2).numpy()
    blocks = overlap.cumsum(axis=0).cumsum(axis=1)               # blocks[i-1, j-1] = Σ_{a<i, b<j}
    r1, r2 = overlap.shape
    return blocks / np.minimum.outer(np.arange(1, r1 + 1), np.arange(1, r2 + 1))


def _projected_norm(w: torch.Tensor, u: torch.Tensor, vh: torch.Tensor) -> float:
    """‖Uᵀ W Vᵀ‖_F: how much of W lives in the r left directions U (out, r) and right directions V (r, in)."""
    return float(torch.linalg.matrix_norm(u.T @ w @ vh.T))       # (r, out)(out, in)(in, r) → (r, r)


def _validated_pair(delta_w: Matrix, w: Matrix, r: int) -> tuple[torch.Tensor, torch.Tensor]:
    """ΔW and W in float64, after checking shapes and 1 ≤ r ≤ rank(ΔW)."""
    dw, wt = _float64(delta_w), _float64(w)
    if dw.shape != wt.shape:
        raise ValueError(f"ΔW and W must have the same shape, got {tuple(dw.shape)} and {tuple(wt.shape)}.")
    if not 1 <= r <= min(dw.shape):
        raise ValueError(f"r must be between 1 and {min(dw.shape)}, got {r}.")
    _check_rank(_svdvals(dw), dw.shape, r, "ΔW")
    return dw, wt


def amplification_factor(delta_w: Matrix, w: Matrix, r: int) -> float:
    """LoRA paper §7.3: ‖ΔW‖_F / ‖Uᵀ W Vᵀ‖_F, with U, V the top-r left/right singular vectors of ΔW.

    ΔW = U Σ V with U (out × r) holding left singular vectors as columns and V (r × in) right ones as
    rows (the paper's notation), so Uᵀ W Vᵀ (r × r) is W seen only through the r directions ΔW uses.
    A large factor means ΔW strongly amplifies directions that W barely uses (the paper: 6.91 / 0.32
    ≈ 21.5 for W_q of GPT-3's layer 48 at r = 4). r may not exceed the rank of ΔW; the result is inf
    if W has no component at all in that subspace.
    """
    dw, wt = _validated_pair(delta_w, w, r)
    u, _, vh = _svd(dw)
    projected = _projected_norm(wt, u[:, :r], vh[:r])
    return float("inf") if projected == 0 else float(torch.linalg.matrix_norm(dw)) / projected


def projection_norms(delta_w: Matrix, w: Matrix, r: int, seed: int = 0) -> dict[str, float]:
    """The LoRA paper's Table 7 for one matrix: ‖Uᵀ W Vᵀ‖_F with U, V the top-r singular vectors of
    ΔW, of W itself, or of a random Gaussian matrix; plus ‖W‖_F and ‖ΔW‖_F for comparison."""
    dw, wt = _validated_pair(delta_w, w, r)
    noise = torch.randn(wt.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    norms = {}
    for name, m in (("delta_w", dw), ("w", wt), ("random", noise)):
        u, _, vh = _svd(m)
        norms[name] = _projected_norm(wt, u[:, :r], vh[:r])
    norms["norm_w"], norms["norm_delta_w"] = float(torch.linalg.matrix_norm(wt)), float(torch.linalg.matrix_norm(dw))
    return norms
