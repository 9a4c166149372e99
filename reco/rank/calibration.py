"""Calibration fitted on validation predictions: temperature scaling, Platt scaling and
isotonic regression (scikit-learn), with ECE, Brier score and a reliability diagram.

A :class:`Calibrator` maps logits to probabilities and serialises to a few numbers (isotonic:
its thresholds), so serving applies it with numpy alone. ``method="auto"`` fits each method on
one half of the validation rows, scores its ECE on the other half, and refits the winner on all
of them: choosing by in-sample ECE would always pick isotonic, which can overfit small sets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import expit
from sklearn.calibration import calibration_curve
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss

from reco.plots import figure_png, plt

METHODS = ("temperature", "platt", "isotonic")


@dataclass
class Calibrator:
    method: str = "none"
    params: dict[str, Any] = field(default_factory=dict)

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        z = np.asarray(logits, np.float64)
        if self.method == "temperature":
            return expit(z / self.params["t"])
        if self.method == "platt":
            return expit(self.params["a"] * z + self.params["b"])
        if self.method == "isotonic":
            return np.interp(expit(z), self.params["x"], self.params["y"])
        return expit(z)

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "params": self.params}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Calibrator:
        return cls(d["method"], dict(d["params"]))


def _nll(z: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.logaddexp(0, z) - y * z))


def fit_calibrator(method: str, logits: np.ndarray, labels: np.ndarray) -> Calibrator:
    """Fit one method on (validation) logits and 0/1 labels."""
    z, y = np.asarray(logits, np.float64), np.asarray(labels, np.float64)
    if method == "none" or len(np.unique(y)) < 2:
        return Calibrator("none")
    if method == "temperature":
        res = minimize_scalar(lambda log_t: _nll(z / np.exp(log_t), y), bounds=(-4, 4), method="bounded")
        return Calibrator("temperature", {"t": float(np.exp(res.x))})
    if method == "platt":
        lr = LogisticRegression(C=1e6, max_iter=1000).fit(z[:, None], y)
        return Calibrator("platt", {"a": float(lr.coef_[0, 0]), "b": float(lr.intercept_[0])})
    if method == "isotonic":
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(expit(z), y)
        return Calibrator("isotonic", {"x": iso.X_thresholds_.tolist(), "y": iso.y_thresholds_.tolist()})
    raise ValueError(f"unknown calibration method {method!r}")


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """ECE with equal-width bins: sum over bins of |mean label - mean probability| x bin share."""
    p, y = np.asarray(probs, np.float64), np.asarray(labels, np.float64)
    if len(p) == 0:
        return float("nan")
    idx = np.minimum((p * bins).astype(np.int64), bins - 1)
    count = np.bincount(idx, minlength=bins)
    gap = np.abs(np.bincount(idx, weights=y, minlength=bins) - np.bincount(idx, weights=p, minlength=bins))
    return float(gap.sum() / count.sum())


def brier(probs: np.ndarray, labels: np.ndarray) -> float:
    return float(brier_score_loss(labels, np.clip(probs, 0, 1)))


def choose_and_fit(
    method: str, logits: np.ndarray, labels: np.ndarray, bins: int = 15, seed: int = 0
) -> tuple[Calibrator, dict[str, float]]:
    """The configured calibrator; for ``auto`` the method with the lowest held-out ECE (see module doc).

    Returns the fitted calibrator and, for ``auto``, each method's cross-fitted ECE."""
    if method != "auto":
        return fit_calibrator(method, logits, labels), {}
    z, y = np.asarray(logits), np.asarray(labels)
    half = np.random.default_rng(seed).permutation(len(z)) < len(z) // 2
    scores = {"none": 0.0, **{m: 0.0 for m in METHODS}}
    for fit_rows, eval_rows in ((half, ~half), (~half, half)):
        for m in scores:
            cal = fit_calibrator(m, z[fit_rows], y[fit_rows])
            scores[m] += expected_calibration_error(cal.probabilities(z[eval_rows]), y[eval_rows], bins) / 2
    best = min(scores, key=scores.get)
    return fit_calibrator(best, z, y), scores


def calibration_report(cal: Calibrator, logits: np.ndarray, labels: np.ndarray, bins: int = 15) -> dict[str, float]:
    """ECE and Brier before (plain sigmoid) and after calibration on some (test) rows."""
    before, after = expit(np.asarray(logits, np.float64)), cal.probabilities(logits)
    return {
        "method": cal.method,
        "ece_before": expected_calibration_error(before, labels, bins),
        "ece_after": expected_calibration_error(after, labels, bins),
        "brier_before": brier(before, labels),
        "brier_after": brier(after, labels),
    }


def reliability_png(
    curves: dict[str, tuple[np.ndarray, np.ndarray]], bins: int = 15, title: str = "Reliability"
) -> bytes:
    """Observed positive rate against mean predicted probability per bin, one line per curve."""
    fig, ax = plt.subplots(figsize=(4.8, 4.4), dpi=110)
    ax.plot([0, 1], [0, 1], ":", color="grey", label="perfect")
    for name, (probs, labels) in curves.items():
        frac, mean = calibration_curve(labels, np.clip(probs, 0, 1), n_bins=bins, strategy="uniform")
        ece = expected_calibration_error(probs, labels, bins)
        ax.plot(mean, frac, "o-", ms=3, label=f"{name} (ECE {ece:.3f})")
    ax.set_xlabel("mean predicted probability")
    ax.set_ylabel("observed positive rate")
    ax.set_title(title)
    ax.legend(fontsize=7)
    return figure_png(fig)
