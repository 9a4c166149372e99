"""The trained ranker of a run directory as a target policy over the log's candidate actions.

The ranker is loaded the way serving loads it (``Ranker.load(run_dir)``, reco.rank.artifact)
and scores each logged row the way a serving request is scored: ``(user id, candidate item ids,
context)``. The mapping from the log to the ranker's feature fields (:func:`map_fields`):

- the candidates are every action of the log; action a is scored as the ranker's item id
  ``items[a]`` (the action label, or the ``ope.logs.columns.item`` column), and its item-side
  features come from the ranker's item catalogue, as in serving;
- the user is the log's ``ope.logs.columns.user``; user-side features come from the ranker's
  user catalogue;
- each context-side field of the ranker reads the log column ``ope.target.ranker.fields``
  names, else the log column of the same name.

A ranker field with no source in the log is an error naming it, unless
``ope.target.ranker.allow_unknown`` scores it as unknown, which is what serving does for a
request that omits it. A ranker without user and item catalogues (one trained on a data set
with no user or item ids) cannot score candidate actions, and an action no catalogue item
matches is scored with the unknown-item bucket and counted in the report. The calibrated
probabilities become a distribution in reco.policy.ope.target_policies.scores_to_dist.

The policy domain may import reco.rank (reco.rank does not import reco.policy), but only the
ranker target does, so the rest of off-policy evaluation loads no torch.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from reco.errors import ConfigError, DataError
from reco.policy.ope.config import RankerTargetConfig
from reco.policy.ope.logged_feedback import FeedbackLog
from reco.policy.ope.target_policies import scores_to_dist
from reco.rank.artifact import Ranker

log = logging.getLogger(__name__)
_BATCH_ROWS = 256  # logged rows per forward pass (each brings every candidate action)


@dataclass(frozen=True)
class RankerMapping:
    """Where each of the ranker's fields comes from when it scores a logged row."""

    run_dir: str
    task: str
    user_field: str  # the ranker's user id field, from the log's user column (or unknown)
    user_column: str | None
    item_field: str  # the ranker's item id field, from each candidate action's item id
    context: dict[str, str]  # ranker context field -> log column
    unknown: tuple[str, ...]  # fields scored as unknown (allow_unknown)
    catalogue: tuple[str, ...]  # user- and item-side fields the catalogues fill in

    def log_columns(self) -> list[str]:
        return list(dict.fromkeys(self.context.values()))


def load_ranker(run_dir: str) -> Ranker:
    return Ranker.load(run_dir)


def map_fields(
    ranker: Ranker, cfg: RankerTargetConfig, header: list[str], user_column: str | None, source: str
) -> RankerMapping:
    """Check that the log can feed the ranker and say which column feeds which field."""
    run = cfg.run_dir or "?"
    spec = ranker.pipeline.spec
    if spec.user_key is None or spec.item_key is None or ranker.catalog.users is None or ranker.catalog.items is None:
        raise DataError(
            f"the ranker of {run} (trained on {ranker.meta.get('data', '?')}) has no user and item catalogue: "
            "it cannot score a log's candidate actions by item id"
        )
    sides = {f.name: f.side for f in spec.fields}
    for name in cfg.fields:
        if name not in sides:
            raise ConfigError(
                f"ope.target.ranker.fields.{name}: not a field of the ranker of {run}; its fields are {list(sides)}"
            )
        if sides[name] != "context":
            key = spec.user_key if sides[name] == "user" else spec.item_key
            raise ConfigError(
                f"ope.target.ranker.fields.{name}: a {sides[name]}-side field; the ranker takes it from its "
                f"catalogue by {key!r}"
            )
    for name, col in cfg.fields.items():
        if col not in header:
            raise DataError(f"{source}: missing column {col!r} (ope.target.ranker.fields.{name})")
    context, unknown = {}, []
    for f in spec.fields:
        if f.side != "context":
            continue
        col = cfg.fields.get(f.name, f.name if f.name in header else None)
        if col is None:
            unknown.append(f.name)
        else:
            context[f.name] = col
    if user_column is None:
        unknown.insert(0, spec.user_key)
    if unknown and not cfg.allow_unknown:
        what = [u for u in unknown if u != spec.user_key]
        parts = []
        if user_column is None:
            parts.append(f"declare ope.logs.columns.user (the ranker looks users up by {spec.user_key!r})")
        if what:
            parts.append(f"map the ranker's context field(s) {what} in ope.target.ranker.fields")
        raise DataError(
            f"{source}: no log column for the ranker's field(s) {unknown}: {' and '.join(parts)}, "
            "or set ope.target.ranker.allow_unknown to score them as unknown"
        )
    task = cfg.task or ranker.tasks[0]
    if task not in ranker.tasks:
        raise ConfigError(f"ope.target.ranker.task: {task!r} is not a task of the ranker of {run} ({ranker.tasks})")
    catalogue = tuple(
        f.name for f in spec.fields if f.side != "context" and f.name not in (spec.user_key, spec.item_key)
    )
    return RankerMapping(run, task, spec.user_key, user_column, spec.item_key, context, tuple(unknown), catalogue)


def known_items(ranker: Ranker, fb: FeedbackLog) -> np.ndarray:
    """(n_actions,) whether the ranker's item catalogue holds each action's item id."""
    ids = set(ranker.catalog.items.ids)
    return np.array([i in ids for i in fb.items])


def check_items(ranker: Ranker, mapping: RankerMapping, fb: FeedbackLog) -> int:
    """How many actions the ranker knows; an error if it knows none."""
    known = known_items(ranker, fb)
    if not known.any():
        sample = list(ranker.catalog.items.ids[:3])
        raise DataError(
            f"{fb.log.source}: none of the {len(fb.items)} actions (e.g. {fb.items[0]!r}) is an item of the ranker "
            f"of {mapping.run_dir} (e.g. {sample}): the action column, or ope.logs.columns.item, must hold the "
            "ranker's item ids"
        )
    if not known.all():
        log.warning(
            "%d of %d actions are not in the ranker's catalogue; they are scored as unknown items",
            int((~known).sum()),
            known.size,
        )
    return int(known.sum())


def ranker_scores(ranker: Ranker, mapping: RankerMapping, fb: FeedbackLog) -> np.ndarray:
    """(n, n_actions) calibrated probabilities of every candidate action at every logged row."""
    items = list(fb.items)
    users = fb.users if mapping.user_column is not None and fb.users is not None else np.full(fb.n, "")
    ctx = fb.extra[list(mapping.context.values())].set_axis(list(mapping.context), axis=1) if mapping.context else None
    records = ctx.to_dict("records") if ctx is not None else [None] * fb.n
    out = np.empty((fb.n, len(items)))
    for start in range(0, fb.n, _BATCH_ROWS):
        stop = min(start + _BATCH_ROWS, fb.n)
        requests = [(str(users[i]), items, records[i]) for i in range(start, stop)]
        out[start:stop] = np.stack(ranker.score_batch(requests, task=mapping.task))
    return out


def ranker_action_dist(
    ranker: Ranker, mapping: RankerMapping, fb: FeedbackLog, cfg: RankerTargetConfig, seed: Any = None
) -> np.ndarray:
    """(n, n_actions): the ranker's scores over the candidate actions as a distribution per row."""
    scores = ranker_scores(ranker, mapping, fb)
    return scores_to_dist(
        scores,
        fb.log.position,
        cfg.mode,
        cfg.temperature,
        cfg.epsilon,
        cfg.samples,
        cfg.seed if seed is None else seed,
    )


def describe(ranker: Ranker, mapping: RankerMapping, cfg: RankerTargetConfig, items_known: int, n_actions: int) -> dict:
    """The target's settings for the report."""
    how = (
        f"softmax of the calibrated probabilities, temperature {cfg.temperature}"
        if cfg.mode == "softmax"
        else "greedy: the best-scored action"
    )
    return {
        "kind": "ranker",
        "run_dir": mapping.run_dir,
        "model": ranker.model_cfg.name,
        "trained_on": ranker.meta.get("data", "?"),
        "task": mapping.task,
        "mode": cfg.mode,
        "temperature": cfg.temperature if cfg.mode == "softmax" else None,
        "epsilon": cfg.epsilon,
        "distribution": how + (f", mixed with epsilon {cfg.epsilon} uniform" if cfg.epsilon else ""),
        "user": f"{mapping.user_column} -> {mapping.user_field}" if mapping.user_column else "unknown (allow_unknown)",
        "item": f"each action's item id -> {mapping.item_field}",
        "context": dict(mapping.context),
        "unknown_fields": list(mapping.unknown),
        "catalogue_fields": list(mapping.catalogue),
        "items_known": f"{items_known} of {n_actions}",
    }
