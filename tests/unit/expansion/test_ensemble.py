"""The ensemble across representations (reco.expansion.ensemble) and the protocol with several of them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from reco.errors import ConfigError
from reco.expansion.config import EnsembleConfig, ExpansionConfig
from reco.expansion.ensemble import RankSample, choose, fuse, fuse_tops, ranks
from reco.expansion.list_models import list_seed
from reco.expansion.protocol import EvalList, Representations, UserSpace, evaluate_split, split_list
from reco.expansion.user_vectors import check_representations


def test_fuse_sums_weighted_reciprocal_ranks():
    r = {"a": np.array([0, 1, 2]), "b": np.array([2, 1, 0])}
    s = fuse(r, {"a": 1.0, "b": 1.0}, offset=1.0, seeds=1)
    assert np.allclose(s, [1 / 1 + 1 / 3, 2 / 2, 1 / 3 + 1 / 1])
    assert np.argmax(fuse(r, {"a": 1.0, "b": 0.0}, 1.0, 1)) == 0
    with pytest.raises(ConfigError, match="expansion.ensemble.weights"):
        fuse(r, {"c": 1.0}, 1.0, 1)


def test_ranks_break_ties_by_the_given_order():
    assert ranks(np.array([1.0, 2.0, 1.0]), np.array([2, 0, 1])).tolist() == [2, 0, 1]


def test_rank_sample_round_trips_through_bytes():
    rng = np.random.default_rng(0)
    cr = {"x:logreg": rng.permutation(50), "coengagement": rng.permutation(50)}
    s = RankSample.collect("l", 2, "validation", "small", cr, np.array([3, 4]), np.array([0, 1]), rng.permutation(50))
    back = RankSample.from_bytes(s.to_bytes())
    assert (back.list_id, back.split, back.stage, back.bucket, back.seeds, back.held_out) == (
        "l",
        2,
        "validation",
        "small",
        2,
        2,
    )
    assert back.components == s.components and np.array_equal(back.ranks, s.ranks)
    assert not np.isin([0, 1], back.users).any()  # seeds are never candidates


def two_spaces(n=1500, size=100, seed=3):
    """Representations a and b of the same users, built so that validation and test disagree.

    In a, the list's validation seeds and its validation held-out users share a direction and
    the test held-out users are noise; in b, the validation seeds and the *test* held-out users
    share one and the validation held-out users are noise. On the validation stage a finds the
    held-out users and b finds only test seeds (misses); on the test stage the seeds are the
    validation seeds plus the validation held-out, whose centroid in b points at the test
    held-out users, while in a nothing of the list is left near the seeds.
    """
    cfg = ExpansionConfig(
        representations=["a", "b"],
        protocol={"splits": 1, "methods": ["centroid"], "stage": "validation"},
        ensemble={"grid": [0.0, 0.5, 1.0], "candidates": 2},
    )
    rng = np.random.default_rng(seed)
    members = np.sort(rng.choice(n, size, replace=False))
    lst = EvalList("list:x", members, "medium")
    r = np.random.default_rng([cfg.protocol.seed, list_seed(lst.list_id), 0])
    test_held, train = split_list(members, cfg.protocol.holdout_share, r)
    val_held, val_seeds = split_list(train, cfg.protocol.holdout_share, r)
    dim = 16
    a = rng.standard_normal((n, dim)).astype(np.float32)
    b = rng.standard_normal((n, dim)).astype(np.float32)
    a[np.r_[val_seeds, val_held]] = 4.0 * np.eye(dim)[0] + 0.5 * rng.standard_normal((len(train), dim))
    b[np.r_[val_seeds, test_held]] = 4.0 * np.eye(dim)[1] + 0.5 * rng.standard_normal(
        (len(val_seeds) + len(test_held), dim)
    )
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    b /= np.linalg.norm(b, axis=1, keepdims=True)
    activity = np.ones(n)
    reps = Representations({"a": UserSpace.build(a, activity, cfg), "b": UserSpace.build(b, activity, cfg)})
    return reps, lst, cfg


def recall(rows: list[dict]) -> dict[str, float]:
    df = pd.DataFrame(rows)
    return df[df.metric == "recall@holdout"].set_index("method")["value"].to_dict()


def test_the_chooser_reads_validation_seeds_only_where_test_would_choose_differently():
    reps, lst, cfg = two_spaces()
    samples: list[RankSample] = []
    val = recall(evaluate_split(reps, lst, 0, cfg, samples))
    test_cfg = cfg.model_copy(update={"protocol": cfg.protocol.model_copy(update={"stage": "test"})})
    test_samples: list[RankSample] = []
    test = recall(evaluate_split(reps, lst, 0, test_cfg, test_samples))
    assert val["a:centroid"] > val["b:centroid"]  # validation prefers a ...
    assert test["b:centroid"] > test["a:centroid"]  # ... test would prefer b
    chosen = choose(samples, cfg.ensemble)["medium"]
    assert chosen.weights.get("a:centroid", 0) > chosen.weights.get("b:centroid", 0)  # led by a, as validation says
    assert chosen.recall == pytest.approx(val["a:centroid"]) and chosen.best_single == "a:centroid"
    with pytest.raises(ConfigError, match="validation stage only"):
        choose(test_samples, cfg.ensemble)


def test_the_test_stage_applies_the_chosen_weights():
    reps, lst, cfg = two_spaces()
    test_cfg = cfg.model_copy(
        update={
            "protocol": cfg.protocol.model_copy(update={"stage": "test"}),
            "ensemble": EnsembleConfig(weights={"medium": {"a:centroid": 1.0}}),
        }
    )
    got = recall(evaluate_split(reps, lst, 0, test_cfg))
    assert got["ensemble"] == pytest.approx(got["a:centroid"])


def test_a_fusion_is_chosen_when_it_beats_every_component_alone():
    rng = np.random.default_rng(0)
    samples = []
    for i in range(6):  # a and b each find half of the held-out users (and decoys); together they find all
        n = 200
        held = np.arange(10, 20)
        sa, sb = rng.random(n), rng.random(n)
        sa[held[:5]], sb[held[5:]] = 10.0, 10.0
        sa[20:25], sb[25:30] = 5.0, 5.0
        cr = {"x:a": ranks(sa, np.arange(n)), "x:b": ranks(sb, np.arange(n))}
        samples.append(RankSample.collect(f"l{i}", 0, "validation", "large", cr, held, np.arange(10), np.arange(n)))
    c = choose(samples, EnsembleConfig())["large"]
    assert set(c.weights) == {"x:a", "x:b"} and c.recall > max(c.singles.values())


def test_config_errors_name_the_key():
    with pytest.raises(ValidationError, match=r"ensemble\.weights\.small\.als:logrge"):
        ExpansionConfig(representations=["starspace", "als"], ensemble={"weights": {"small": {"als:logrge": 1}}})
    with pytest.raises(ValidationError, match="representations"):
        ExpansionConfig(representations=["als", "als"])
    with pytest.raises(ValidationError, match="representations"):
        ExpansionConfig(representations=["coengagement"])
    with pytest.raises(ConfigError, match=r"expansion\.representations: unknown representation 'alss'"):
        check_representations(["starspace", "alss"])


def test_fusing_top_lists_equals_fusing_full_ranks_and_is_close_with_shorter_lists():
    rng = np.random.default_rng(4)
    n, tie = 300, np.arange(300)
    sa, sb = rng.random(n), rng.random(n)
    ra, rb = ranks(sa, tie), ranks(sb, tie)
    w = {"r:a": 1.0, "coengagement": 0.5}
    full = fuse({"r:a": ra, "coengagement": rb}, w, offset=1.0, seeds=10)
    expected = np.lexsort((tie, -full))[:20]
    tops = {"r:a": np.argsort(ra), "coengagement": np.argsort(rb)}
    got, _ = fuse_tops(tops, w, offset=1.0, seeds=10, k=20)
    assert got.tolist() == expected.tolist()
    short, _ = fuse_tops({c: t[:60] for c, t in tops.items()}, w, offset=1.0, seeds=10, k=20)
    assert len(set(short) & set(expected)) >= 18


def test_of_options_within_a_standard_error_the_chooser_hedges_across_representations():
    rng = np.random.default_rng(5)
    samples = []
    for i in range(12):  # x:a finds the held-out users slightly more often than y:b; fused they do as well as x:a
        n = 300
        held = np.arange(10, 20)
        sa, sb = rng.random(n), rng.random(n)
        sa[held[: 6 if i % 2 else 5]] += 2.0
        sb[held[:5]] += 2.0
        cr = {"x:a": ranks(sa, np.arange(n)), "y:b": ranks(sb, np.arange(n))}
        samples.append(RankSample.collect(f"l{i}", 0, "validation", "small", cr, held, np.arange(10), np.arange(n)))
    c = choose(samples, EnsembleConfig())["small"]
    assert set(c.weights) == {"x:a", "y:b"} and c.weights["x:a"] == c.weights["y:b"]
    assert c.best_recall - c.recall < 0.05
    best = choose(samples, EnsembleConfig(rule="best"))["small"]
    assert best.recall == best.best_recall == c.best_recall


def test_the_offsets_tried_come_from_the_config():
    rng = np.random.default_rng(6)
    n, held = 200, np.arange(10, 20)
    sa, sb = rng.random(n), rng.random(n)
    sa[held[:5]], sb[held[5:]] = 10.0, 10.0
    cr = {"x:a": ranks(sa, np.arange(n)), "y:b": ranks(sb, np.arange(n))}
    samples = [RankSample.collect("l", 0, "validation", "large", cr, held, np.arange(10), np.arange(n))]
    c = choose(samples, EnsembleConfig(offset_grid=[3.0]))["large"]
    assert c.offset == 3.0 and len(c.weights) == 2
    with pytest.raises(ValidationError, match="offset_grid"):
        EnsembleConfig(offset_grid=[0.0, 1.0])
