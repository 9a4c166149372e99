import numpy as np
import pyarrow as pa
import torch

from reco.embedding.config import EmbeddingConfig
from reco.embedding.export import embed_histories, load_model, save_model
from reco.embedding.fit import train_step, validation_ranks
from reco.embedding.starspace import NegativeSampler, StarSpace, hinge_loss, make_examples, make_optimizer, softmax_loss
from reco.fit_state import FitState


def test_examples_leave_the_target_out():
    flat = np.array([10, 11, 12, 20, 30, 31], np.int64)
    lengths = np.array([3, 1, 2])
    ex = make_examples(flat, lengths, None, samples_per_user=5, max_history=10, rng=np.random.default_rng(0))
    assert len(ex) == 10  # user with one topic yields nothing
    bags = np.split(ex.input_ids.numpy(), ex.offsets.numpy()[1:])
    for bag, tgt in zip(bags, ex.targets.numpy()):
        assert tgt not in bag
        group = {10, 11, 12} if tgt in (10, 11, 12) else {30, 31}
        assert set(bag) | {int(tgt)} == group


def test_examples_cap_history():
    flat = np.arange(100, dtype=np.int64)
    ex = make_examples(flat, np.array([100]), None, 3, max_history=7, rng=np.random.default_rng(1))
    sizes = np.diff(np.r_[ex.offsets.numpy(), len(ex.input_ids)])
    assert sizes.tolist() == [7, 7, 7]


def test_weighted_pooling_weights_sum_to_one():
    ex = make_examples(
        np.array([1, 2, 3], np.int64), np.array([3]), np.array([1.0, 10.0, 100.0]), 4, 10, np.random.default_rng(0)
    )
    w = ex.input_weights.numpy()
    sums = np.add.reduceat(w, ex.offsets.numpy())
    assert np.allclose(sums, 1.0)


def test_model_shapes_and_cosines():
    m = StarSpace(50, 8)
    ex = make_examples(np.arange(20, dtype=np.int64), np.array([10, 10]), None, 2, 50, np.random.default_rng(0))
    pos, neg = m(ex, torch.tensor([1, 2, 3]))
    assert pos.shape == (4,) and neg.shape == (4, 3)
    assert pos.abs().max() <= 1 + 1e-5 and neg.abs().max() <= 1 + 1e-5


def test_losses_mask_accidental_positives():
    pos = torch.tensor([0.5, 0.5])
    neg = torch.tensor([[0.5, 0.0], [0.5, 0.0]])
    targets = torch.tensor([7, 8])
    negs = torch.tensor([7, 9])  # negative 7 is example 0's own target
    h = hinge_loss(pos, neg, targets, negs, margin=0.2)
    # example 0: only negative 9 counts: relu(0.2-0.5+0)=0; example 1: relu(0.2)=0.2 + 0
    assert torch.isclose(h, torch.tensor(0.1))
    s = softmax_loss(pos, neg, targets, negs, temperature=1.0)
    assert torch.isfinite(s)


def test_sampler_modes():
    counts = np.array([1000, 0, 0, 0])
    pop = NegativeSampler(counts, "popularity", power=1.0, seed=0).sample(2000).numpy()
    uni = NegativeSampler(counts, "uniform", seed=0).sample(2000).numpy()
    assert (pop == 0).mean() > 0.9
    assert 0.15 < (uni == 0).mean() < 0.35


def _histories(n_users=200, n_topics=40, seed=0):
    """Two planted groups: users 0..99 like topics 0..19, the rest 20..39."""
    rng = np.random.default_rng(seed)
    topics, targets = [], []
    for u in range(n_users):
        base = 0 if u < n_users // 2 else n_topics // 2
        items = rng.choice(np.arange(base, base + n_topics // 2), size=8, replace=False)
        topics.append(items[:7].tolist())
        targets.append(items[7:].tolist())
    return pa.table(
        {
            "user_id": np.arange(n_users),
            "role": ["train"] * n_users,
            "topics": topics,
            "weights": [[1.0] * 7] * n_users,
            "targets": targets,
        }
    )


def test_training_lowers_loss_and_learns_planted_groups():
    cfg = EmbeddingConfig(dim=16, batch_size=50, lr=0.1, negatives=20, samples_per_user=4)
    hist = _histories()
    torch.manual_seed(0)
    model = StarSpace(40, 16)
    opt = make_optimizer(model.parameters(), cfg.optimizer, cfg.lr)
    sampler, rng = NegativeSampler(np.ones(40), "uniform"), np.random.default_rng(0)
    before = validation_ranks(model, hist, False)
    losses = []
    for _ in range(15):
        for s in range(0, hist.num_rows, cfg.batch_size):
            losses.append(train_step(model, opt, hist.slice(s, cfg.batch_size), sampler, cfg, rng)[0])
    after = validation_ranks(model, hist, False)
    assert np.mean(losses[-4:]) < 0.7 * np.mean(losses[:4])
    # A target is one of the 13 topics of its group not in the input, among 33 candidates: a
    # model that learned the groups ranks every target above all 20 topics of the other group.
    assert (after < 13).mean() > 0.95
    assert (before < 13).mean() < 0.6


def test_save_load_round_trip_gives_the_same_vectors():
    model = StarSpace(40, 8)
    hist = _histories()
    again, meta = load_model(save_model(model, {"weighted_pooling": False, "x": 1}))
    assert meta["x"] == 1
    assert np.allclose(embed_histories(model, hist, False), embed_histories(again, hist, False))


def test_fit_state_early_stopping():
    s = FitState()
    assert s.update({"m": 0.1}, "m", patience=2)
    assert s.update({"m": 0.2}, "m", patience=2)
    assert not s.update({"m": 0.15}, "m", patience=2) and not s.stopped
    assert not s.update({"m": 0.2}, "m", patience=2) and s.stopped
    assert (s.epoch, s.best_epoch, s.best_metric) == (4, 2, 0.2)
    assert FitState.from_json(s.to_json()) == s
