"""The benchmark's protocols and metrics: the per-user temporal split, validation carved from
the inputs only, recall@K (all-action and next-item) and the by-diversity breakdown."""

import numpy as np
import pyarrow as pa

from reco.data.histories import build_histories
from reco.retrieval.data import Queries, UserSequences, ragged_offsets
from reco.retrieval.protocol import by_diversity, holdout_protocol, movielens_protocol, recall_scores, temporal_split


def ratings() -> UserSequences:
    """User 0: 10 ratings, two tied in time (ties by id); user 1: 20 ratings; user 2: 2 ratings."""
    users = [0] * 10 + [1] * 20 + [2] * 2
    topics = [9, 3, 4, 5, 6, 7, 8, 0, 1, 2] + list(range(100, 120)) + [50, 51]
    ts = [5, 5, 6, 7, 8, 9, 10, 11, 12, 13] + list(range(20)) + [1, 2]
    return UserSequences.from_interactions(np.array(users), np.array(topics), np.array(ts), np.ones(len(users)))


def test_temporal_split_is_per_user_and_ties_break_by_topic_id():
    q = temporal_split(ratings(), 0.8)
    targets = q.target_lists()
    assert q.inputs.row(0)[0].tolist() == [3, 9, 4, 5, 6, 7, 8, 0]  # (ts 5, id 3) before (ts 5, id 9)
    assert targets[0].tolist() == [1, 2]
    assert len(q.inputs.row(1)[0]) == 16 and targets[1].tolist() == [116, 117, 118, 119]
    assert q.inputs.row(2)[0].tolist() == [50] and targets[2].tolist() == [51]


def test_movielens_protocol_carves_validation_from_the_inputs_only():
    p = movielens_protocol(ratings(), n_topics=200, n_users=3)
    assert p.refit and p.fit_test.validation is None
    assert len(p.test) == 2  # user 2 has fewer than 3 ratings
    for i in range(len(p.test)):
        test_inputs = set(p.test.inputs.row(i)[0].tolist())
        test_targets = set(p.test.target_lists()[i].tolist())
        val_inputs = set(p.val.inputs.row(i)[0].tolist())
        val_targets = set(p.val.target_lists()[i].tolist())
        assert val_inputs | val_targets == test_inputs  # validation never sees a test target
        assert not (val_inputs | val_targets) & test_targets
        assert set(p.fit_val.sequences.row(i)[0].tolist()) == val_inputs
    assert p.val.target_lists()[1].tolist() == [114, 115]  # the last 10% of user 1's 16 inputs


def test_holdout_protocol_validates_on_train_users_and_tests_on_held_out_users():
    t = pa.table(
        {
            "user_id": np.repeat(np.arange(4), 5),
            "topic_id": np.tile(np.arange(5), 4),
            "weight": np.ones(20, np.float32),
            "ts": np.arange(20),
        }
    )
    p = holdout_protocol("x", build_histories(t, 1, "latest", np.array([3]), 0), 5, 4)
    assert not p.refit and p.fit_val is p.fit_test
    assert sorted(p.fit_val.sequences.user_ids.tolist()) == [0, 1, 2]
    assert p.test.inputs.user_ids.tolist() == [3] and p.test.targets.tolist() == [4]
    assert p.val.targets.tolist() == [4, 4, 4]


def test_recall_all_action_and_next_item_by_hand():
    inputs = UserSequences(np.array([0, 1]), np.array([0, 1, 2]), np.array([9, 9]), np.zeros(2), np.ones(2))
    q = Queries(inputs, ragged_offsets(np.array([4, 1])), np.array([1, 2, 3, 4, 7]))
    cands = np.array([[2, 1, 8, 4], [8, 9, 6, 5]])
    s = recall_scores(cands, q, ks=(1, 2, 4))
    assert s.summary["recall@1"] == (1 / 4 + 0) / 2  # target 2 is first
    assert s.summary["recall@2"] == (2 / 4 + 0) / 2
    assert s.summary["recall@4"] == (3 / 4 + 0) / 2
    assert s.summary["next_item_recall@2"] == (1 + 0) / 2  # user 0's first target (1) is second
    assert s.summary["next_item_recall@1"] == 0
    assert s.summary["users"] == 2 and s.summary["targets"] == 5


def test_by_diversity_buckets():
    out = by_diversity(np.array([1.0, 0.0, 0.5, 0.25]), np.array([10, 11, 12, 13]), {10: 1, 11: 2, 12: 3, 13: 5})
    assert out["1"] == {"value": 1.0, "users": 1} and out["2"]["value"] == 0.0
    assert out["3+"] == {"value": 0.375, "users": 2}
