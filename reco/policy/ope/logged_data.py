"""Logged bandit feedback: what a deployed policy showed, what happened, and how likely it was.

Every off-policy estimator needs, per logged round, the context, the action taken, the reward
and the logging policy's probability of that action (its propensity). :class:`LoggedFeedback`
holds them as numpy arrays and refuses logs an estimator cannot use: a propensity that is
missing, zero, negative or above one makes every importance weight meaningless, so it is an
error here, not a NaN later.

:func:`read_obd` reads the Open Bandit Dataset's layout (``<policy>/<campaign>/<campaign>.csv``
plus ``item_context.csv``): one row per impression with ``item_id``, ``position`` (1-based),
``click``, ``propensity_score``, four hashed user features and one user-item affinity column
per item. User features become one-hot context columns, item features the action features, and
the affinities a per-(row, item) feature.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from reco.errors import DataError
from reco.storage import Location, locate

OBD_REQUIRED = ("item_id", "position", "click", "propensity_score")


@dataclass(frozen=True)
class LoggedFeedback:
    """n logged rounds. ``position`` is 0-based; a single-slot log has position 0 everywhere."""

    action: np.ndarray  # (n,) int64 in [0, n_actions)
    reward: np.ndarray  # (n,) float64
    propensity: np.ndarray  # (n,) float64 in (0, 1]: logging policy's probability of `action`
    position: np.ndarray  # (n,) int64
    context: np.ndarray  # (n, d) float64 features of the round
    n_actions: int
    action_features: np.ndarray | None = None  # (n_actions, d_a)
    pair_features: np.ndarray | None = None  # (n, n_actions): one feature per (round, action)
    timestamp: np.ndarray | None = None  # (n,) seconds since the epoch, when known
    source: str = "log"

    def __post_init__(self) -> None:
        validate_feedback(self)

    @property
    def n(self) -> int:
        return int(self.action.shape[0])

    @property
    def n_positions(self) -> int:
        return int(self.position.max()) + 1

    def subset(self, rows: np.ndarray) -> LoggedFeedback:
        pair = None if self.pair_features is None else self.pair_features[rows]
        ts = None if self.timestamp is None else self.timestamp[rows]
        return replace(
            self,
            action=self.action[rows],
            reward=self.reward[rows],
            propensity=self.propensity[rows],
            position=self.position[rows],
            context=self.context[rows],
            pair_features=pair,
            timestamp=ts,
        )


def check_propensities(p: np.ndarray, source: str) -> None:
    """Raise DataError unless every propensity is a number in (0, 1]."""
    p = np.asarray(p, dtype=np.float64)
    bad = ~np.isfinite(p)
    if bad.any():
        raise DataError(
            f"{source}: {int(bad.sum())} missing or non-finite propensities (first at row {int(np.argmax(bad))})"
        )
    bad = (p <= 0) | (p > 1)
    if bad.any():
        i = int(np.argmax(bad))
        raise DataError(
            f"{source}: {int(bad.sum())} propensities outside (0, 1] (row {i}: {p[i]!r}); "
            "a zero propensity means the logging policy could not have taken that action"
        )


def validate_feedback(log: LoggedFeedback) -> None:
    n = log.action.shape[0]
    if n == 0:
        raise DataError(f"{log.source}: no logged rounds")
    for name in ("reward", "propensity", "position"):
        if getattr(log, name).shape != (n,):
            raise DataError(f"{log.source}: {name} has shape {getattr(log, name).shape}, expected ({n},)")
    if log.context.ndim != 2 or log.context.shape[0] != n:
        raise DataError(f"{log.source}: context has shape {log.context.shape}, expected ({n}, d)")
    if log.action.min() < 0 or log.action.max() >= log.n_actions:
        raise DataError(
            f"{log.source}: actions must lie in [0, {log.n_actions}), found {log.action.min()}..{log.action.max()}"
        )
    if log.position.min() < 0:
        raise DataError(f"{log.source}: negative position {log.position.min()}")
    if not np.isfinite(log.reward).all():
        raise DataError(f"{log.source}: rewards contain missing or non-finite values")
    check_propensities(log.propensity, log.source)
    if log.pair_features is not None and log.pair_features.shape != (n, log.n_actions):
        raise DataError(
            f"{log.source}: pair_features has shape {log.pair_features.shape}, expected ({n}, {log.n_actions})"
        )
    if log.timestamp is not None and log.timestamp.shape != (n,):
        raise DataError(f"{log.source}: timestamp has shape {log.timestamp.shape}, expected ({n},)")
    if log.action_features is not None and log.action_features.shape[0] != log.n_actions:
        raise DataError(
            f"{log.source}: action_features has {log.action_features.shape[0]} rows for {log.n_actions} actions"
        )


# -- the Open Bandit Dataset ------------------------------------------------------------------


def obd_paths(root: str, policy: str, campaign: str) -> tuple[Location, Location]:
    folder = locate(root).child(policy).child(campaign)
    return folder.child(f"{campaign}.csv"), folder.child("item_context.csv")


def read_csv_frame(loc: Location, what: str, **kwargs) -> pd.DataFrame:
    """A CSV file (local or a URI; gzip when its name ends in .gz) as a DataFrame; DataError names the file."""
    loc.require_file(what)
    try:
        with loc.open() as f:
            if loc.name.lower().endswith(".gz"):
                with gzip.GzipFile(fileobj=f) as g:
                    return pd.read_csv(g, **kwargs)
            return pd.read_csv(f, **kwargs)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, gzip.BadGzipFile, EOFError) as e:
        raise DataError(f"{loc}: not a readable CSV ({str(e).splitlines()[0]})") from None


def read_obd_frame(path: str | Location) -> pd.DataFrame:
    """The raw OBD log with its required columns checked; DataError names the file."""
    path = path if isinstance(path, Location) else locate(path)
    frame = read_csv_frame(path, "logged bandit feedback", index_col=0)
    missing = [c for c in OBD_REQUIRED if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}; OBD logs need {list(OBD_REQUIRED)}")
    if frame.empty:
        raise DataError(f"{path}: header only, no logged rounds")
    for col in ("item_id", "position", "click"):
        if frame[col].isna().any() or not pd.api.types.is_numeric_dtype(frame[col]):
            raise DataError(f"{path}: column {col!r} must be numeric with no empty values")
    if not pd.api.types.is_numeric_dtype(frame["propensity_score"]):
        raise DataError(f"{path}: column 'propensity_score' is not numeric")
    check_propensities(frame["propensity_score"].to_numpy(), path)
    if frame["position"].min() < 1:
        raise DataError(f"{path}: positions are 1-based in OBD, found {frame['position'].min()}")
    return frame


def read_item_context(path: Location) -> pd.DataFrame:
    frame = read_csv_frame(path, "item context", index_col=0)
    if "item_id" not in frame.columns or frame.empty:
        raise DataError(f"{path}: expected an item_id column and one row per item")
    return frame.sort_values("item_id").reset_index(drop=True)


def one_hot(
    frame: pd.DataFrame, columns: list[str], categories: dict[str, list] | None = None
) -> tuple[np.ndarray, dict[str, list]]:
    """One-hot columns with fixed categories (learned here unless given), so two logs share a layout."""
    cats = categories or {c: sorted(frame[c].astype(str).unique()) for c in columns}
    blocks = [
        (frame[c].astype(str).to_numpy()[:, None] == np.asarray(cats[c])[None, :]).astype(np.float64) for c in columns
    ]
    return (np.hstack(blocks) if blocks else np.zeros((len(frame), 0))), cats


def item_features(items: pd.DataFrame) -> np.ndarray:
    """Numeric item features as they are, categorical (hashed) ones one-hot."""
    cols = [c for c in items.columns if c.startswith("item_feature")]
    numeric = [c for c in cols if pd.api.types.is_numeric_dtype(items[c])]
    categorical = [c for c in cols if c not in numeric]
    dense = items[numeric].to_numpy(dtype=np.float64)
    onehot, _ = one_hot(items, categorical)
    return np.hstack([dense, onehot])


def read_obd(
    root: str, policy: str, campaign: str = "all", categories: dict[str, list] | None = None
) -> tuple[LoggedFeedback, dict[str, list]]:
    """One policy's OBD log as LoggedFeedback, and the user-feature categories it was encoded with."""
    log_path, item_path = obd_paths(root, policy, campaign)
    frame = read_obd_frame(log_path)
    items = read_item_context(item_path)
    n_actions = len(items)
    if frame["item_id"].min() < 0 or frame["item_id"].max() >= n_actions:
        raise DataError(f"{log_path}: item_id outside the {n_actions} items of {item_path}")
    user_cols = sorted(c for c in frame.columns if c.startswith("user_feature"))
    context, cats = one_hot(frame, user_cols, categories)
    aff_cols = [f"user-item_affinity_{i}" for i in range(n_actions)]
    pair = frame[aff_cols].to_numpy(dtype=np.float64) if all(c in frame.columns for c in aff_cols) else None
    ts = None
    if "timestamp" in frame.columns:
        parsed = pd.to_datetime(frame["timestamp"], utc=True, errors="coerce")
        if parsed.isna().any():
            raise DataError(
                f"{log_path}: {int(parsed.isna().sum())} unreadable timestamps (first at row "
                f"{int(np.argmax(parsed.isna()))})"
            )
        ts = (parsed - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy()
    log = LoggedFeedback(
        action=frame["item_id"].to_numpy(dtype=np.int64),
        reward=frame["click"].to_numpy(dtype=np.float64),
        propensity=frame["propensity_score"].to_numpy(dtype=np.float64),
        position=frame["position"].to_numpy(dtype=np.int64) - 1,
        context=context,
        n_actions=n_actions,
        action_features=item_features(items),
        pair_features=pair,
        timestamp=ts,
        source=log_path.uri,
    )
    return log, cats
