"""Sequence tower: training windows never leak a target into the input, the tower is causal,
shapes hold, and one gradient step lowers the loss."""

import numpy as np
import torch

from reco.retrieval.config import SequenceConfig
from reco.retrieval.data import UserSequences
from reco.retrieval.sampled_softmax import item_distribution
from reco.retrieval.sequence_fit import make_model, make_optimizer, train_step
from reco.retrieval.sequence_windows import gap_buckets, inference_windows, training_windows

N_TOPICS = 400


def sequences(n_users=40, seed=0) -> UserSequences:
    """Users with distinct topics each (so a topic's position is unambiguous), increasing times."""
    rng = np.random.default_rng(seed)
    users, topics, ts = [], [], []
    for u in range(n_users):
        n = int(rng.integers(2, 90))
        users += [u] * n
        topics += rng.choice(N_TOPICS, n, replace=False).tolist()
        ts += np.cumsum(rng.integers(1, 5000, n)).tolist()
    # from_interactions orders by time; distinct cumulative times keep the drawn order
    return UserSequences.from_interactions(np.array(users), np.array(topics), np.array(ts), np.ones(len(users)))


def assert_no_leak(seqs: UserSequences, w, window: int, objective: str):
    assert len(w.positives) > 0
    for a in range(len(w.positives)):
        i, col = w.anchor_window[a], w.anchor_col[a]
        seen = w.tokens[i, : col + 1]  # everything the anchor's output may attend to
        anchor_pos = w.positions[i, col]
        assert anchor_pos >= 0
        assert w.positives[a] not in seen, "a target is inside the anchor's input"
        assert np.all(w.positions[i, : col + 1] < w.positive_pos[a]), "the input reaches the target's position"
        assert w.positive_pos[a] > anchor_pos
        if objective == "next_item":
            assert w.positive_pos[a] == anchor_pos + 1
        else:
            assert w.positive_pos[a] - anchor_pos <= window
        topics, _, _ = seqs.row(w.rows[i])
        assert topics[w.positive_pos[a]] == w.positives[a]
        assert np.array_equal(w.tokens[i, w.positions[i] >= 0], topics[w.positions[i][w.positions[i] >= 0]])


def test_training_windows_never_leak_a_target_into_the_input():
    seqs = sequences()
    rng = np.random.default_rng(3)
    for objective in ("all_action", "next_item"):
        for _ in range(5):
            w = training_windows(
                seqs,
                np.arange(len(seqs)),
                max_len=20,
                objective=objective,
                window=7,
                anchors=6,
                pad_id=N_TOPICS,
                rng=rng,
            )
            assert_no_leak(seqs, w, 7, objective)


def test_time_window_cuts_the_horizon():
    seqs = UserSequences.from_interactions(
        np.zeros(6, np.int64), np.arange(6), np.array([0, 10, 20, 1000, 1010, 5000]), np.ones(6)
    )
    w = training_windows(
        seqs,
        np.array([0]),
        10,
        "all_action",
        window=5,
        anchors=10,
        pad_id=6,
        rng=np.random.default_rng(0),
        window_seconds=100,
    )
    for pos, anchor in zip(w.positive_pos, w.positions[0, w.anchor_col]):
        assert pos == anchor + 1 or seqs.ts[pos] <= seqs.ts[anchor] + 100


def test_inference_windows_are_the_latest_engagements_right_aligned():
    seqs = sequences(5)
    w = inference_windows(seqs, 8, N_TOPICS)
    for i in range(len(seqs)):
        topics, _, _ = seqs.row(i)
        n = min(8, len(topics))
        assert w.tokens[i, -n:].tolist() == topics[-n:].tolist()
        assert np.all(w.tokens[i, : 8 - n] == N_TOPICS) and np.all(w.positions[i, : 8 - n] == -1)


def test_gap_buckets_restart_per_user():
    seqs = UserSequences.from_interactions(
        np.array([0, 0, 1, 1]), np.array([1, 2, 3, 4]), np.array([0, 7, 100, 101]), np.ones(4)
    )
    assert gap_buckets(seqs).tolist() == [0, 3, 0, 1]


def small_cfg(**kw) -> SequenceConfig:
    return SequenceConfig(max_len=16, dim=16, layers=1, heads=2, dropout=0.0, negatives=32, batch_size=16, **kw)


def test_tower_is_causal_and_has_the_documented_shapes():
    model = make_model(N_TOPICS, small_cfg()).eval()
    w = inference_windows(sequences(6), 16, N_TOPICS)
    tokens, gaps = torch.from_numpy(w.tokens), torch.from_numpy(w.gaps)
    out = model.encode(tokens, gaps)
    assert out.shape == (6, 16, 16)
    assert torch.allclose(out.norm(dim=-1), torch.ones(6, 16), atol=1e-5)
    changed = tokens.clone()
    changed[:, 10:] = (changed[:, 10:] + 1) % N_TOPICS
    out2 = model.encode(changed, gaps)
    assert torch.allclose(out[:, :10], out2[:, :10], atol=1e-5)  # the future does not reach the past
    assert not torch.allclose(out[:, 10:], out2[:, 10:])
    vecs = model.user_vectors(sequences(6))
    assert vecs.shape == (6, 16) and np.allclose(vecs, out[:, -1].detach().numpy(), atol=1e-5)
    assert model.item_vectors().shape == (N_TOPICS, 16)


def test_one_gradient_step_lowers_the_loss():
    seqs = sequences()
    for objective in ("all_action", "next_item"):
        cfg = small_cfg(objective=objective, lr=1e-2)
        model = make_model(N_TOPICS, cfg)
        opt = make_optimizer(model, cfg)
        probs = item_distribution(np.bincount(seqs.topics, minlength=N_TOPICS))
        rows = np.arange(16)
        losses = []
        for _ in range(2):  # the same windows and negatives twice: the second loss is after one step
            loss, n = train_step(
                model, opt, seqs, rows, cfg, N_TOPICS, probs, np.random.default_rng(0), torch.Generator().manual_seed(0)
            )
            losses.append(loss)
        assert n > 0 and losses[1] < losses[0]
