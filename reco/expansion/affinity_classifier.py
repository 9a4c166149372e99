"""The per-list affinity classifier: a small MLP telling a list's seeds from background users.

Trained on the user embeddings (one hidden ReLU layer) with full-batch Adam on a class-balanced
logistic loss: the seeds are weighted up to the background's total, so a 20-seed list and a
2,000-seed list train alike. Part of the list (and of the background) is held out; training
stops when the held-out balanced loss has not improved for ``patience`` steps, and the model is
then retrained on the whole list for the best step count (``refit``: small lists cannot spare
a fifth of their seeds). The fitted weights are a few thousand floats, cheap to ship to every
Ray Data actor; :class:`StackedClassifiers` scores many lists at once with exact fixed-point
products, so a user's logit does not depend on its batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from reco.expansion.config import ClassifierConfig
from reco.expansion.fixed_point import USER_BITS, WEIGHT_BITS, check_exact, column_exponents, exact_matmul, on_grid


@dataclass(frozen=True)
class MLPWeights:
    w1: np.ndarray  # (dim, hidden) float32
    b1: np.ndarray  # (hidden,)
    w2: np.ndarray  # (hidden,)
    b2: float
    steps: int  # steps run
    best_step: int
    val_loss: float


def background_size(n_seeds: int, cfg: ClassifierConfig) -> int:
    return int(min(cfg.max_background, max(cfg.min_background, round(cfg.background_ratio * n_seeds))))


def sample_background(pool: np.ndarray, exclude: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Up to ``size`` distinct ids from ``pool`` outside ``exclude`` (the list's seeds)."""
    candidates = pool[~np.isin(pool, exclude)]
    if len(candidates) <= size:
        return candidates
    return candidates[np.sort(rng.choice(len(candidates), size=size, replace=False))]


def _split(n: int, share: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) positions; at least one of each when n >= 2."""
    order = rng.permutation(n)
    n_val = int(round(n * share))
    n_val = min(max(n_val, 1 if n >= 2 else 0), n - 1) if n >= 2 else 0
    return order[n_val:], order[:n_val]


def _balanced_loss(logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Mean logistic loss of the positives plus that of the negatives (each class counts half):
    ``weights`` are 0.5 / n_pos for positives and 0.5 / n_neg for negatives (one fused call)."""
    return torch.nn.functional.binary_cross_entropy_with_logits(logits, labels, weight=weights, reduction="sum")


def fit_classifier(seeds: np.ndarray, background: np.ndarray, cfg: ClassifierConfig, seed: int = 0) -> MLPWeights:
    """Fit one list's MLP on seed vectors (positives) against background vectors (negatives).

    Runs on one torch thread: the steps are tiny, and handing them to a thread pool cost 6x
    more than it saved on a busy 2-core machine.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _fit(seeds, background, cfg, seed)
    finally:
        torch.set_num_threads(threads)


def _init(dim: int, hidden: int, gen: torch.Generator) -> list[torch.Tensor]:
    return [
        (torch.randn(dim, hidden, generator=gen) * (2.0 / dim) ** 0.5).requires_grad_(),
        torch.zeros(hidden, requires_grad=True),
        (torch.randn(hidden, generator=gen) * (1.0 / hidden) ** 0.5).requires_grad_(),
        torch.zeros((), requires_grad=True),
    ]


def _forward(params: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    return torch.addmv(params[3], torch.relu(torch.addmm(params[1], x, params[0])), params[2])


Data = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # inputs, labels, balancing weights


def _train(params: list[torch.Tensor], data: Data, cfg: ClassifierConfig, steps: int,
           val_data: Data | None = None) -> tuple[int, int, float, list[torch.Tensor]]:
    """Full-batch Adam; with validation data, stop after ``patience`` steps without a better
    held-out loss. Returns (steps run, best step, best loss, best weights)."""
    opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, foreach=True)
    best = (float("inf"), 0, [p.detach().clone() for p in params])
    step = 0
    x, y, w = data
    for step in range(1, steps + 1):
        opt.zero_grad(set_to_none=True)
        _balanced_loss(_forward(params, x), y, w).backward()
        opt.step()
        if val_data is None:
            continue
        with torch.no_grad():
            val = float(_balanced_loss(_forward(params, val_data[0]), val_data[1], val_data[2]))
        if val < best[0] - 1e-6:
            best = (val, step, [p.detach().clone() for p in params])
        elif step - best[1] >= cfg.patience:
            break
    if val_data is None:
        return step, step, float("nan"), [p.detach().clone() for p in params]
    return step, best[1], best[0], best[2]


def _tensors(pos: np.ndarray, neg: np.ndarray) -> Data:
    x = torch.from_numpy(np.concatenate([pos, neg]).astype(np.float32))
    y = torch.cat([torch.ones(len(pos)), torch.zeros(len(neg))])
    w = torch.cat([torch.full((len(pos),), 0.5 / max(len(pos), 1)), torch.full((len(neg),), 0.5 / max(len(neg), 1))])
    return x, y, w


def _fit(seeds: np.ndarray, background: np.ndarray, cfg: ClassifierConfig, seed: int) -> MLPWeights:
    rng = np.random.default_rng([cfg.seed, seed, 0xC1A])
    p_tr, p_va = _split(len(seeds), cfg.validation_share, rng)
    n_tr, n_va = _split(len(background), cfg.validation_share, rng)
    train = _tensors(seeds[p_tr], background[n_tr])
    gen_seed = int(rng.integers(2**31))
    dim = seeds.shape[1]
    params = _init(dim, cfg.hidden, torch.Generator().manual_seed(gen_seed))
    if len(p_va) and len(n_va):
        steps, best_step, val, weights = _train(params, train, cfg, cfg.max_epochs, _tensors(seeds[p_va], background[n_va]))
    else:  # a list too small to hold any seed out: the fixed step budget
        steps, best_step, val, weights = _train(params, train, cfg, cfg.max_epochs)
    if cfg.refit and len(p_va):
        # The held-out seeds chose how long to train; now train that long on the whole list.
        params = _init(dim, cfg.hidden, torch.Generator().manual_seed(gen_seed))
        _, _, _, weights = _train(params, _tensors(seeds, background), cfg, max(best_step, 1))
    w1, b1, w2, b2 = (p.numpy() for p in weights)
    return MLPWeights(w1.astype(np.float32), b1.astype(np.float32), w2.astype(np.float32), float(b2), steps, best_step, val)


def mlp_scores(w: MLPWeights, vectors: np.ndarray) -> np.ndarray:
    """(B,) logits in float32 (in-process scoring: the expander and the evaluation)."""
    h = np.maximum(np.asarray(vectors, np.float32) @ w.w1 + w.b1, 0.0)
    return h @ w.w2 + np.float32(w.b2)


@dataclass(frozen=True)
class StackedClassifiers:
    """L lists' MLPs on the fixed-point grid, scored together: (B, dim) -> (L, B) logits.

    Layer 1 is one exact product against the (dim, L * hidden) stacked weights; each list's
    hidden units are then rounded onto a grid of 20 significant bits (a deterministic function
    of exact values), so layer 2 is exact too.
    """

    w1: np.ndarray  # (dim, L * h) integers
    b1: np.ndarray  # (L * h,) integers on the layer-1 product grid
    shift1: np.ndarray  # (L * h,) exponent from the product grid to the hidden grid
    w2: np.ndarray  # (L, h) integers
    b2: np.ndarray  # (L,) integers on the layer-2 product grid
    out_exp: np.ndarray  # (L,) exponent from the layer-2 grid to logits

    @classmethod
    def from_weights(cls, weights: list[MLPWeights]) -> "StackedClassifiers":
        n_lists, hidden = len(weights), len(weights[0].b1)
        w1 = np.concatenate([w.w1 for w in weights], axis=1).astype(np.float64)
        b1 = np.concatenate([w.b1 for w in weights]).astype(np.float64)
        e1 = column_exponents(w1)
        w1_int = on_grid(w1, e1)
        b1_int = on_grid(b1, USER_BITS + e1)
        # Largest |hidden pre-activation| per list, for the hidden grid.
        col_bound = np.ldexp(np.abs(w1_int).sum(axis=0) * 2.0**USER_BITS + np.abs(b1_int), -(USER_BITS + e1))
        list_bound = col_bound.reshape(n_lists, hidden).max(axis=1)
        e_h = column_exponents(list_bound[None, :])
        shift1 = np.repeat(e_h, hidden) - USER_BITS - e1
        w2 = np.stack([w.w2 for w in weights]).astype(np.float64)
        e2 = column_exponents(w2.T)
        w2_int = on_grid(w2, e2[:, None])
        b2_int = on_grid(np.array([w.b2 for w in weights]), e_h + e2)
        check_exact(hidden * 2.0 ** (2 * WEIGHT_BITS) + float(np.abs(b2_int).max(initial=0)))
        return cls(w1_int, b1_int, shift1, w2_int, b2_int, -(e_h + e2))

    def logits(self, x_int: np.ndarray) -> np.ndarray:
        n_lists, hidden = self.w2.shape
        pre = exact_matmul(x_int, self.w1) + self.b1
        h = np.rint(np.ldexp(np.maximum(pre, 0.0), self.shift1))
        out = np.einsum("blh,lh->lb", h.reshape(len(x_int), n_lists, hidden), self.w2) + self.b2[:, None]
        return np.ldexp(out, self.out_exp[:, None])

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {f"clf_{k}": getattr(self, k) for k in ("w1", "b1", "shift1", "w2", "b2", "out_exp")}

    @classmethod
    def from_arrays(cls, a: dict[str, np.ndarray]) -> "StackedClassifiers":
        return cls(*(np.asarray(a[f"clf_{k}"]) for k in ("w1", "b1", "shift1", "w2", "b2", "out_exp")))
