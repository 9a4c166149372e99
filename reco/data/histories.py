"""Per-user histories: grouping interactions by user and splitting them for evaluation.

A history row is one user: the topics they engaged with in time order (the *input*) and the
interactions held out from it (the *targets*). Users have a role:

- ``train``: in the training data; their targets are the validation interactions (the latest
  ``holdout_per_user``, or random ones), never trained on.
- ``test``: held out entirely (``ingest.test_users``); their input is embedded by the trained
  model without retraining and their targets scored, as StarSpace's Last.fm protocol does.

Everything here is vectorised numpy over one shard (all interactions of a set of users), so
grouping a million users costs a sort, not a million Python calls.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from reco.vocab import Vocabulary

HISTORY_SCHEMA = pa.schema(
    [
        ("user_id", pa.int64()),
        ("role", pa.string()),
        ("topics", pa.list_(pa.int64())),
        ("weights", pa.list_(pa.float32())),
        ("ts", pa.list_(pa.int64())),
        ("targets", pa.list_(pa.int64())),
        ("target_weights", pa.list_(pa.float32())),
        ("target_ts", pa.list_(pa.int64())),
    ]
)

INTERACTION_SCHEMA = pa.schema(
    [
        ("user_id", pa.int64()),
        ("topic_id", pa.int64()),
        ("weight", pa.float32()),
        ("ts", pa.int64()),
        ("split", pa.string()),
    ]
)

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def mix_hash(*keys: np.ndarray | int) -> np.ndarray:
    """A deterministic 64-bit hash (splitmix64) of integer arrays, independent of batching."""
    h = np.zeros(np.broadcast(*[np.asarray(k) for k in keys]).shape, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for k in keys:
            h = h ^ (
                np.asarray(k).astype(np.uint64)
                + np.uint64(0x9E3779B97F4A7C15)
                + (h << np.uint64(6))
                + (h >> np.uint64(2))
            )
            h = (h ^ (h >> np.uint64(30))) * _M1
            h = (h ^ (h >> np.uint64(27))) * _M2
            h = h ^ (h >> np.uint64(31))
    return h


def shard_of(user_ids: np.ndarray, num_shards: int) -> np.ndarray:
    return (mix_hash(user_ids, 0x5EED) % np.uint64(num_shards)).astype(np.int64)


def encode_batch(batch: pa.Table, users: Vocabulary, topics: Vocabulary, num_shards: int) -> pa.Table:
    """Raw-schema batch -> dense ids plus the user's shard."""
    uid = users.encode(batch.column("user"))
    tid = topics.encode(batch.column("topic"))
    if (uid < 0).any() or (tid < 0).any():
        raise ValueError("ids missing from the vocabulary (the input changed while ingesting?)")
    return pa.table(
        {
            "user_id": uid,
            "topic_id": tid,
            "weight": batch.column("weight"),
            "ts": batch.column("ts"),
            "shard": shard_of(uid, num_shards),
        }
    )


def pick_test_users(n_users: int, test_users: float, seed: int) -> np.ndarray:
    """Dense ids of users held out entirely: a count if >= 1, else a fraction; by hash."""
    n = int(test_users) if test_users >= 1 else int(round(test_users * n_users))
    if n <= 0:
        return np.empty(0, np.int64)
    if n >= n_users:
        raise ValueError(f"ingest.test_users={test_users} leaves no training users out of {n_users}")
    order = np.argsort(mix_hash(np.arange(n_users), seed, 0x7E57), kind="stable")
    return np.sort(order[:n]).astype(np.int64)


def _segments(sorted_keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(start, length) of runs of equal values in a sorted array."""
    if len(sorted_keys) == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
    return starts, np.diff(np.r_[starts, len(sorted_keys)])


def _list_array(offsets: np.ndarray, values: np.ndarray, typ: pa.DataType) -> pa.ListArray:
    return pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), pa.array(values, typ))


def build_histories(
    shard: pa.Table,
    holdout_per_user: int,
    holdout: str,
    test_user_ids: np.ndarray,
    seed: int,
) -> pa.Table:
    """Group one shard of dense interactions into history rows (see the module docstring).

    Repeated (user, topic) pairs fold into one interaction (weights add, the latest ts stays),
    so a held-out target never also sits in the input.
    """
    if shard.num_rows == 0:
        return HISTORY_SCHEMA.empty_table()
    user = shard.column("user_id").to_numpy()
    topic = shard.column("topic_id").to_numpy()
    weight = shard.column("weight").to_numpy().astype(np.float32)
    ts = shard.column("ts").to_numpy()
    # Fold duplicates.
    order = np.lexsort((ts, topic, user))
    user, topic, weight, ts = user[order], topic[order], weight[order], ts[order]
    pair_start, _ = _pair_segments(user, topic)
    weight = np.add.reduceat(weight, pair_start).astype(np.float32)
    ts = np.maximum.reduceat(ts, pair_start)
    user, topic = user[pair_start], topic[pair_start]
    # Choose targets: the latest per user, or random ones (by a hash, independent of sharding).
    prio = mix_hash(user, topic, seed)
    order = np.lexsort((prio, ts, user)) if holdout == "latest" else np.lexsort((prio, user))
    user, topic, weight, ts, prio = user[order], topic[order], weight[order], ts[order], prio[order]
    starts, counts = _segments(user)
    pos = np.arange(len(user)) - np.repeat(starts, counts)
    from_end = np.repeat(counts, counts) - 1 - pos
    eligible = np.repeat(counts > holdout_per_user, counts)
    is_target = eligible & (from_end < holdout_per_user)
    # Input and targets each in time order.
    order = np.lexsort((prio, ts, is_target, user))
    user, topic, weight, ts, is_target = user[order], topic[order], weight[order], ts[order], is_target[order]
    users = user[starts]
    n_target = np.add.reduceat(is_target.astype(np.int64), starts) if len(starts) else np.empty(0, np.int64)
    n_input = counts - n_target
    inp, tgt = ~is_target, is_target
    in_off = np.r_[0, np.cumsum(n_input)]
    tg_off = np.r_[0, np.cumsum(n_target)]
    role = np.where(np.isin(users, test_user_ids), "test", "train")
    return pa.Table.from_arrays(
        [
            pa.array(users, pa.int64()),
            pa.array(role, pa.string()),
            _list_array(in_off, topic[inp], pa.int64()),
            _list_array(in_off, weight[inp], pa.float32()),
            _list_array(in_off, ts[inp], pa.int64()),
            _list_array(tg_off, topic[tgt], pa.int64()),
            _list_array(tg_off, weight[tgt], pa.float32()),
            _list_array(tg_off, ts[tgt], pa.int64()),
        ],
        schema=HISTORY_SCHEMA,
    )


def _pair_segments(user: np.ndarray, topic: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    change = np.r_[True, (user[1:] != user[:-1]) | (topic[1:] != topic[:-1])]
    starts = np.flatnonzero(change)
    return starts, np.diff(np.r_[starts, len(user)])


def explode(histories: pa.Table) -> pa.Table:
    """History rows -> one row per interaction, with its split (train / validation / test_*)."""
    parts = []
    role = histories.column("role")
    for prefix, names in (("", ("train", "test_input")), ("target_", ("validation", "test_target"))):
        lists = histories.column("topics" if not prefix else "targets").combine_chunks()
        lengths = pc.list_value_length(lists).to_numpy(zero_copy_only=False)
        rep = np.repeat(np.arange(histories.num_rows), lengths)
        is_test = np.asarray(role.to_numpy(zero_copy_only=False) == "test")[rep]
        parts.append(
            pa.table(
                {
                    "user_id": histories.column("user_id").to_numpy()[rep],
                    "topic_id": pc.list_flatten(lists),
                    "weight": pc.list_flatten(
                        histories.column(f"{prefix}weights" if prefix else "weights").combine_chunks()
                    ),
                    "ts": pc.list_flatten(histories.column(f"{prefix}ts" if prefix else "ts").combine_chunks()),
                    "split": pa.array(np.where(is_test, names[1], names[0]), pa.string()),
                },
                schema=INTERACTION_SCHEMA,
            )
        )
    return pa.concat_tables(parts)


def select_role(histories: pa.Table, role: str, min_input: int = 0, need_targets: bool = False) -> pa.Table:
    """History rows of one role, optionally with at least ``min_input`` input topics / a target."""
    mask = pc.equal(histories.column("role"), role)
    if min_input:
        mask = pc.and_(mask, pc.greater_equal(pc.list_value_length(histories.column("topics")), min_input))
    if need_targets:
        mask = pc.and_(mask, pc.greater(pc.list_value_length(histories.column("targets")), 0))
    return histories.filter(mask)


def topic_counts(histories: pa.Table, n_topics: int) -> pa.Table:
    """Input-topic counts of train users in a batch (one row, summed across batches later)."""
    train = select_role(histories, "train")
    flat = pc.list_flatten(train.column("topics")).to_numpy(zero_copy_only=False)
    return pa.table({"counts": [np.bincount(flat, minlength=n_topics).astype(np.int64)]})


def flat_lists(col: pa.ChunkedArray | pa.ListArray) -> tuple[np.ndarray, np.ndarray]:
    """(values, lengths) of a list column, for vectorised work on ragged histories."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    lengths = pc.list_value_length(col).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    values = pc.list_flatten(col).to_numpy(zero_copy_only=False)
    return values, lengths
