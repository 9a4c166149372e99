"""Fixed-point products in float64: scores that do not depend on how users are batched.

BLAS matrix products round differently for different batch shapes (blocking and kernel choice
change the order of the additions), so a user scored in a batch of 8,192 by Ray Data and in a
batch of 20,000 by a single process would get scores a few ulps apart, and near-ties could swap
in a top-K. Here both factors are put on integer grids first (user vectors: 2^-15; weights: 20
significant bits per column), so every product and every partial sum is an integer below 2^53:
float64 holds them exactly, and any summation order gives the same bits. Only the factors are
rounded (by about 3e-5 of a unit-vector coordinate), never the result of a sum.
"""

from __future__ import annotations

import numpy as np

from reco.errors import DataError

USER_BITS = 15  # unit-vector coordinates on a 2^-15 grid
WEIGHT_BITS = 20  # significant bits kept per weight column
_EXACT_LIMIT = 2.0**52


def user_grid(vectors: np.ndarray) -> np.ndarray:
    """Unit user vectors as integers (float64) on the 2^-15 grid."""
    x = np.asarray(vectors, dtype=np.float64)
    if x.size and np.abs(x).max() > 1.001:
        raise DataError(f"user embeddings must be unit vectors (a coordinate is {np.abs(x).max():.3f}); re-export them")
    return np.rint(np.clip(x, -1.0, 1.0) * 2.0**USER_BITS)


def column_exponents(weights: np.ndarray, bits: int = WEIGHT_BITS) -> np.ndarray:
    """Per-column e such that max |w| * 2^e <= 2^bits (0 for all-zero columns)."""
    w = np.asarray(weights, dtype=np.float64)
    peak = np.abs(w).max(axis=0) if w.ndim > 1 else np.abs(w)
    e = np.zeros(peak.shape, dtype=np.int64)
    nz = peak > 0
    e[nz] = bits - np.ceil(np.log2(peak[nz])).astype(np.int64)
    return e


def on_grid(values: np.ndarray, exponents: np.ndarray) -> np.ndarray:
    """rint(values * 2^exponents) as float64 integers."""
    return np.rint(np.ldexp(np.asarray(values, dtype=np.float64), np.asarray(exponents, dtype=np.int64)))


def check_exact(*bounds: float) -> None:
    """Fail loudly if a product could leave the exact range (weights far too large)."""
    worst = max(bounds) if bounds else 0.0
    if worst >= _EXACT_LIMIT:
        raise DataError(
            f"fixed-point scoring would overflow (bound {worst:.3g} >= 2^52); the model weights are out of range"
        )


def exact_matmul(x_int: np.ndarray, w_int: np.ndarray) -> np.ndarray:
    """x_int @ w_int with both integer-valued float64: exact, so independent of batching."""
    bound = float(np.abs(w_int).sum(axis=0).max()) * 2.0**USER_BITS if w_int.size else 0.0
    check_exact(bound)
    return x_int @ w_int
