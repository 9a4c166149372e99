"""The one training loop of every ranking model, free of Ray: steps, epochs, validation, early stopping.

ray_jobs/train_ranker.py runs these inside Ray Train workers over streamed dataset shards;
:func:`fit` runs the same steps in one process (tests, notebooks). Progress and early stopping
use :class:`reco.fit_state.FitState`, the state every trained model checkpoints.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import numpy as np
import torch
from torch import nn

from reco.fit_state import FitState
from reco.rank import metrics
from reco.rank.catalog import SideTable
from reco.rank.config import RankTrainConfig
from reco.rank.features import FeatureLayout, Rows
from reco.rank.layers import first_slot
from reco.rank.losses import make_loss

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
MONITOR_KEY = "val_monitor"


def make_optimizer(params: Iterable[nn.Parameter], cfg: RankTrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "adagrad":
        return torch.optim.Adagrad(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def tensors(rows: Rows) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return torch.from_numpy(rows.cat), torch.from_numpy(rows.dense), torch.from_numpy(rows.labels)


def seen_pairs(layout: FeatureLayout, rows: Rows) -> np.ndarray:
    """Sorted keys of the (user id, item id) pairs in encoded rows, for :class:`NegativeSampler`."""
    stride = int(layout.sizes[layout.item_field])
    return np.unique(
        rows.cat[:, first_slot(layout, layout.user_field)] * stride + rows.cat[:, first_slot(layout, layout.item_field)]
    )


class NegativeSampler:
    """Implicit feedback: for each positive row, ``k`` rows with a uniformly drawn catalogue item
    the user did not interact with in training (rejection; a rare clash survives three redraws)."""

    def __init__(self, layout: FeatureLayout, items: SideTable, seen: np.ndarray, k: int):
        self.k, self.items, self.seen = k, items, seen
        self.user_col = first_slot(layout, layout.user_field)
        item_col = first_slot(layout, layout.item_field)
        self.item_ids = items.cat[:-1, list(items.slot_cols).index(item_col)]  # encoded id of each catalogue item
        self.stride = int(layout.sizes[layout.item_field])

    def _seen(self, keys: np.ndarray) -> np.ndarray:
        if len(self.seen) == 0:
            return np.zeros(len(keys), bool)
        return self.seen[np.minimum(np.searchsorted(self.seen, keys), len(self.seen) - 1)] == keys

    def _draw(self, users: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        rows = rng.integers(0, len(self.item_ids), len(users))
        for _ in range(3):
            clash = self._seen(users * self.stride + self.item_ids[rows])
            if not clash.any():
                break
            rows[clash] = rng.integers(0, len(self.item_ids), int(clash.sum()))
        return rows

    def augment(self, rows: Rows, rng: np.random.Generator) -> Rows:
        """The batch plus k sampled negatives per row (label 0)."""
        neg = rows.take(np.repeat(np.arange(len(rows)), self.k))
        neg.labels = np.zeros_like(neg.labels)  # take() copied the rows
        picked = self._draw(neg.cat[:, self.user_col], rng)
        neg.cat[:, self.items.slot_cols] = self.items.cat[picked]
        neg.dense[:, self.items.dense_cols] = self.items.dense[picked]
        return Rows.concat([rows, neg])


def train_step(model: nn.Module, opt: torch.optim.Optimizer, loss_fn: LossFn, rows: Rows) -> float:
    cat, dense, labels = tensors(rows)
    loss = loss_fn(model(cat, dense), labels)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return float(loss.detach())


def train_epoch(
    model: nn.Module,
    opt: torch.optim.Optimizer,
    loss_fn: LossFn,
    batches: Iterable[Rows],
    sampler: NegativeSampler | None = None,
    rng: np.random.Generator | None = None,
) -> dict[str, float]:
    """One pass; returns the mean loss, the examples trained on (negatives included) and seconds."""
    model.train()
    t0, loss_sum, examples = time.perf_counter(), 0.0, 0
    for rows in batches:
        if sampler is not None:
            rows = sampler.augment(rows, rng or np.random.default_rng())
        loss_sum += train_step(model, opt, loss_fn, rows) * len(rows)
        examples += len(rows)
    return {"loss": loss_sum / max(examples, 1), "examples": examples, "seconds": time.perf_counter() - t0}


@torch.inference_mode()
def predict_logits(model: nn.Module, cat: np.ndarray, dense: np.ndarray, batch_size: int = 8192) -> np.ndarray:
    """(N, tasks) logits, in eval mode, batch by batch."""
    if model.training:  # eval() walks every submodule: once, not on every serving call
        model.eval()
    out = [
        model(torch.from_numpy(cat[s : s + batch_size]), torch.from_numpy(dense[s : s + batch_size])).numpy()
        for s in range(0, len(cat), batch_size)
    ]
    return np.concatenate(out) if out else np.zeros((0, 1), np.float32)


def validation_metrics(
    logits: np.ndarray, labels: np.ndarray, groups: np.ndarray, monitor: str, tasks: list[str]
) -> dict[str, float]:
    """Per-task AUC / logloss (and HR@10 / NDCG@10 over leave-one-out lists), plus the monitored value."""
    out: dict[str, float] = {}
    probs = 1 / (1 + np.exp(-logits.astype(np.float64)))
    for t, name in enumerate(tasks):
        out[f"val_auc_{name}"] = metrics.auc(labels[:, t], logits[:, t])
        out[f"val_logloss_{name}"] = metrics.logloss(labels[:, t], probs[:, t])
    aucs = [v for k, v in out.items() if k.startswith("val_auc_") and not np.isnan(v)]
    out["val_auc"] = float(np.mean(aucs)) if aucs else float("nan")
    out["val_logloss"] = float(np.mean([out[f"val_logloss_{n}"] for n in tasks]))
    if monitor == "hr@10":
        out.update(
            {
                f"val_{k}": v
                for k, v in metrics.sampled_hr_ndcg(
                    metrics.leave_one_out_lists(groups, labels[:, 0], logits[:, 0])
                ).items()
            }
        )
    value = {"auc": out["val_auc"], "logloss": -out["val_logloss"]}.get(monitor, out.get("val_hr@10"))
    out[MONITOR_KEY] = float(value) if value is not None and not np.isnan(value) else float("-inf")
    return out


def fit(
    model: nn.Module,
    train: Rows,
    validation: Rows,
    cfg: RankTrainConfig,
    tasks: list[str],
    sampler: NegativeSampler | None = None,
) -> tuple[FitState, dict[str, torch.Tensor]]:
    """The whole loop in one process: epochs, validation, early stopping; returns the best weights."""
    torch.manual_seed(cfg.seed)
    opt, loss_fn, state = make_optimizer(model.parameters(), cfg), make_loss(cfg), FitState()
    best = {k: v.detach().clone() for k, v in model.state_dict().items()}
    while state.epoch < cfg.epochs and not state.stopped:
        rng = np.random.default_rng([cfg.seed, state.epoch + 1])
        stats = train_epoch(model, opt, loss_fn, train.batches(cfg.batch_size, rng), sampler, rng)
        logits = predict_logits(model, validation.cat, validation.dense)
        m = {
            "epoch": state.epoch + 1,
            **stats,
            **validation_metrics(logits, validation.labels, validation.groups, cfg.monitor, tasks),
        }
        if state.update(m, MONITOR_KEY, cfg.patience):
            best = {k: v.detach().clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best)
    return state, best
