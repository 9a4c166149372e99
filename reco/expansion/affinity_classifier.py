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
from functools import cached_property

import numpy as np

from reco.expansion.config import ClassifierConfig
from reco.expansion.fixed_point import USER_BITS, WEIGHT_BITS, check_exact, column_exponents, on_grid


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


def balanced_weights(n_pos: int, n_neg: int) -> np.ndarray:
    """Each class counts half: 0.5 / n_pos per positive, 0.5 / n_neg per negative."""
    return np.r_[np.full(n_pos, 0.5 / max(n_pos, 1)), np.full(n_neg, 0.5 / max(n_neg, 1))]


def balanced_loss(logits: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> float:
    """Weighted logistic loss (softplus(z) - y z, summed with the balancing weights)."""
    return float(weights @ (np.logaddexp(0.0, logits) - labels * logits))


def fit_classifier(seeds: np.ndarray, background: np.ndarray, cfg: ClassifierConfig, seed: int = 0) -> MLPWeights:
    """Fit one list's MLP on seed vectors (positives) against background vectors (negatives).

    Plain numpy, forward and backward written out: a step is a few small products, and torch's
    per-step autograd and optimizer dispatch costs about ten times the step itself, most of a
    served expansion (docs/expansion.md).
    """
    rng = np.random.default_rng([cfg.seed, seed, 0xC1A])
    p_tr, p_va = _split(len(seeds), cfg.validation_share, rng)
    n_tr, n_va = _split(len(background), cfg.validation_share, rng)
    init_seed = int(rng.integers(2**31))
    train = _data(seeds[p_tr], background[n_tr])
    if len(p_va) and len(n_va):
        steps, best_step, val, params = _train(
            _init(seeds.shape[1], cfg.hidden, init_seed),
            train,
            cfg,
            cfg.max_epochs,
            _data(seeds[p_va], background[n_va]),
        )
    else:  # a list too small to hold any seed out: the fixed step budget
        steps, best_step, val, params = _train(_init(seeds.shape[1], cfg.hidden, init_seed), train, cfg, cfg.max_epochs)
    if cfg.refit and len(p_va):
        # The held-out seeds chose how long to train; now train that long on the whole list.
        _, _, _, params = _train(
            _init(seeds.shape[1], cfg.hidden, init_seed), _data(seeds, background), cfg, max(best_step, 1)
        )
    w1, b1, w2, b2 = params
    return MLPWeights(
        w1.astype(np.float32), b1.astype(np.float32), w2.astype(np.float32), float(b2[0]), steps, best_step, val
    )


Params = list[np.ndarray]  # float32: w1 (dim, hidden), b1 (hidden,), w2 (hidden,), b2 (1,)
Data = tuple[np.ndarray, np.ndarray, np.ndarray]  # inputs, labels, balancing weights


def _data(pos: np.ndarray, neg: np.ndarray) -> Data:
    x = np.concatenate([pos, neg]).astype(np.float32)
    y = np.r_[np.ones(len(pos)), np.zeros(len(neg))].astype(np.float32)
    return x, y, balanced_weights(len(pos), len(neg)).astype(np.float32)


def _init(dim: int, hidden: int, seed: int) -> Params:
    """He-scaled first layer, 1/sqrt(hidden) output layer, zero biases."""
    g = np.random.default_rng(seed)
    params = [
        g.standard_normal((dim, hidden)) * (2.0 / dim) ** 0.5,
        np.zeros(hidden),
        g.standard_normal(hidden) * (1.0 / hidden) ** 0.5,
        np.zeros(1),
    ]
    return [p.astype(np.float32) for p in params]


def _logits(params: Params, x: np.ndarray) -> np.ndarray:
    w1, b1, w2, b2 = params
    return np.maximum(x @ w1 + b1, 0.0) @ w2 + b2[0]


def _gradients(params: Params, data: Data) -> Params:
    """Gradients of the balanced loss with respect to (w1, b1, w2, b2)."""
    w1, b1, w2, b2 = params
    x, y, w = data
    pre = x @ w1 + b1
    h = np.maximum(pre, 0.0)
    z = h @ w2 + b2[0]
    dz = w * (
        np.float32(0.5) * (np.float32(1.0) + np.tanh(np.float32(0.5) * z)) - y
    )  # d loss / d logit; tanh form of the sigmoid never overflows
    dpre = np.outer(dz, w2) * (pre > 0.0)
    return [x.T @ dpre, dpre.sum(axis=0), h.T @ dz, np.array([dz.sum()])]


def _train(
    params: Params, data: Data, cfg: ClassifierConfig, steps: int, val_data: Data | None = None
) -> tuple[int, int, float, Params]:
    """Full-batch Adam with L2 weight decay (torch.optim.Adam's rule); with validation data,
    stop after ``patience`` steps without a better held-out loss. Returns (steps run, best
    step, best loss, best weights)."""
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    shapes = [p.shape for p in params]
    flat = np.concatenate(
        [p.ravel() for p in params]
    )  # one buffer: Adam is a few array ops a step, not a few per layer
    params = _views(flat, shapes)
    m = np.zeros_like(flat)
    v = np.zeros_like(flat)
    best = (float("inf"), 0, flat.copy())
    step = 0
    for step in range(1, steps + 1):
        g = np.concatenate([x.ravel() for x in _gradients(params, data)])
        scale = cfg.lr * (1.0 - beta2**step) ** 0.5 / (1.0 - beta1**step)
        g += cfg.weight_decay * flat
        m *= beta1
        m += (1.0 - beta1) * g
        v *= beta2
        v += (1.0 - beta2) * g * g
        flat -= scale * m / (np.sqrt(v) + eps * (1.0 - beta2**step) ** 0.5)
        if val_data is None:
            continue
        val = balanced_loss(_logits(params, val_data[0]), val_data[1], val_data[2])
        if val < best[0] - 1e-6:
            best = (val, step, flat.copy())
        elif step - best[1] >= cfg.patience:
            break
    if val_data is None:
        return step, step, float("nan"), params
    return step, best[1], best[0], _views(best[2], shapes)


def _views(flat: np.ndarray, shapes: list[tuple[int, ...]]) -> Params:
    """The parameters as views into one flat buffer (updating the buffer updates them)."""
    out, start = [], 0
    for shape in shapes:
        size = int(np.prod(shape))
        out.append(flat[start : start + size].reshape(shape))
        start += size
    return out


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
    def from_weights(cls, weights: list[MLPWeights]) -> StackedClassifiers:
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
        """(L, B) logits of B users on the user grid (fixed_point.user_grid).

        The grid exponents are folded into the weights once (:meth:`scaled`): scaling by a power
        of two is exact, so ``x @ (w * 2^s)`` has the same bits as ``ldexp(x @ w, s)``. Layer 1 is
        one product of the (L * h, d + 1) stacked weights (the bias as a last column) with the
        users, list-major, so each list's hidden units are a contiguous (h, B) block and layer 2 is
        one stacked product; every sum is exact, so any order gives the same bits.
        """
        w1t, w2, b2 = self.scaled
        n_lists, hidden = self.w2.shape
        xa = np.empty((x_int.shape[1] + 1, len(x_int)))
        xa[:-1] = x_int.T
        xa[-1] = 1.0
        h = w1t @ xa  # (L * h, B): pre-activations on the hidden grid
        np.maximum(h, 0.0, out=h)
        np.rint(h, out=h)
        out = np.matmul(w2, h.reshape(n_lists, hidden, len(x_int)))[:, 0, :]
        out += b2[:, None]
        return out

    @cached_property
    def scaled(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(w1t (L * h, d + 1) with the bias column, w2 (L, 1, h), b2 (L,)), grid exponents folded in."""
        check_exact(float((np.abs(self.w1).sum(axis=0) * 2.0**USER_BITS + np.abs(self.b1)).max(initial=0.0)))
        scale1 = np.ldexp(1.0, self.shift1.astype(np.int64))[:, None]
        w1t = np.ascontiguousarray(np.concatenate([self.w1.T, self.b1[:, None]], axis=1) * scale1)
        scale2 = np.ldexp(1.0, self.out_exp.astype(np.int64))
        return w1t, np.ascontiguousarray((self.w2 * scale2[:, None])[:, None, :]), self.b2 * scale2

    def reference_logits(self, x_int: np.ndarray) -> np.ndarray:
        """:meth:`logits` written plainly, list by list, with the grid exponents applied by ``ldexp``."""
        n_lists, hidden = self.w2.shape
        out = np.empty((n_lists, len(x_int)))
        for lst in range(n_lists):
            cols = slice(lst * hidden, (lst + 1) * hidden)
            pre = x_int @ self.w1[:, cols] + self.b1[cols]
            h = np.rint(np.ldexp(np.maximum(pre, 0.0), self.shift1[cols]))
            out[lst] = np.ldexp(h @ self.w2[lst] + self.b2[lst], self.out_exp[lst])
        return out

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {f"clf_{k}": getattr(self, k) for k in ("w1", "b1", "shift1", "w2", "b2", "out_exp")}

    @classmethod
    def from_arrays(cls, a: dict[str, np.ndarray]) -> StackedClassifiers:
        return cls(*(np.asarray(a[f"clf_{k}"]) for k in ("w1", "b1", "shift1", "w2", "b2", "out_exp")))
