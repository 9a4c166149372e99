"""LSH region density and voting on hand-made cases: the paper's formula, region by region."""

import numpy as np
import pytest

from reco.expansion.config import DensityConfig
from reco.expansion.region_density import (
    Hyperplanes,
    dense_from_sparse,
    density_table,
    planes_for,
    region_counts,
    repetition_major,
    score_flat,
    score_lists,
    score_users,
    smoothing,
    sparse_table,
    voting_table,
)

# Two repetitions of one plane each: repetition 0 splits on x > 0, repetition 1 on y > 0.
PLANES = Hyperplanes(normals=np.array([[1.0, 0.0], [0.0, 1.0]]), offsets=np.zeros(2), n_planes=1, repetitions=2)
USERS = np.array(
    [
        [0.6, 0.8],  # x+ y+
        [0.8, 0.6],  # x+ y+
        [0.6, -0.8],  # x+ y-
        [-0.6, 0.8],  # x- y+
        [-0.8, -0.6],  # x- y-
        [-0.6, -0.8],  # x- y-
    ],
    dtype=np.float32,
)


def test_codes_and_region_counts_by_hand():
    codes = PLANES.codes(USERS)
    assert codes.tolist() == [[1, 1], [1, 1], [1, 0], [0, 1], [0, 0], [0, 0]]
    assert region_counts(codes, 2).tolist() == [[3, 3], [3, 3]]


def test_density_formula_mean_over_repetitions():
    codes = PLANES.codes(USERS)
    seeds = codes[[0, 1]]  # both seeds in x+ and in y+
    table = density_table(seeds, region_counts(codes, 2), alpha=1.0, beta=2.0, min_users=1)
    # (seeds_r + alpha) / (users_r + beta): the seeded regions (2 + 1) / (3 + 2), the others (0 + 1) / (3 + 2)
    assert table.tolist() == [[1 / 5, 3 / 5], [1 / 5, 3 / 5]]
    scores = score_users(codes, table)
    assert scores == pytest.approx([3 / 5, 3 / 5, 2 / 5, 2 / 5, 1 / 5, 1 / 5])


def test_small_regions_are_dropped_to_the_prior():
    codes = PLANES.codes(USERS[:4])  # repetition 1: y- holds one user
    users = region_counts(codes, 2)
    assert users[1].tolist() == [1, 3]
    table = density_table(codes[[2]], users, alpha=0.5, beta=2.0, min_users=2)
    assert table[1, 0] == 0.5 / 2.0  # the 1-user region scores alpha / beta despite holding the seed
    assert table[0, 1] == pytest.approx((1 + 0.5) / (3 + 2.0))


def test_voting_counts_seeds_without_normalising():
    codes = PLANES.codes(USERS)
    table = voting_table(codes[[0, 1, 2]], region_counts(codes, 2), min_users=1)
    assert table.tolist() == [[0, 3], [1, 2]]
    assert score_users(codes, table).tolist() == [2.5, 2.5, 2.0, 1.0, 0.5, 0.5]


def test_density_and_voting_disagree_where_regions_differ_in_size():
    # A big region with 2 seeds of 10 users against a small one with 1 seed of 2 users.
    codes = np.array([[0]] * 10 + [[1]] * 2)
    users = region_counts(codes, 2)
    seeds = codes[[0, 1, 10]]
    dens = density_table(seeds, users, 0.0, 1.0, 1)
    vote = voting_table(seeds, users, 1)
    assert dens[0, 1] > dens[0, 0]  # 1/3 > 2/11: density prefers the small dense region
    assert vote[0, 0] > vote[0, 1]  # voting prefers the region with more seeds


def test_default_alpha_makes_the_prior_the_seed_share():
    alpha, beta = smoothing(DensityConfig(beta=10.0), n_seeds=50, n_users=1000)
    assert beta == 10.0 and alpha / beta == pytest.approx(0.05)
    assert smoothing(DensityConfig(alpha=2.0, beta=4.0), 50, 1000) == (2.0, 4.0)


def test_sparse_table_holds_only_seeded_regions_and_densifies_back():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((500, 8)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    lsh = Hyperplanes.draw(8, 4, 5, seed=1, center=x.mean(axis=0))
    codes = lsh.codes(x)
    users = region_counts(codes, lsh.n_regions)
    seeds = codes[:12]
    t = sparse_table(seeds, users, 0.3, 5.0, 3)
    assert len(t.region) <= 12 * 5 and (t.seeds > 0).all()
    assert np.array_equal(dense_from_sparse(t, users, 3), density_table(seeds, users, 0.3, 5.0, 3))


def test_many_lists_score_like_one_at_a_time():
    rng = np.random.default_rng(1)
    codes = rng.integers(0, 8, size=(50, 3))
    tables = rng.random((4, 3, 8))
    together = score_lists(codes, tables)
    assert np.array_equal(together, np.stack([score_users(codes, t) for t in tables]))


def test_repetition_major_scoring_is_score_users_bit_for_bit():
    rng = np.random.default_rng(3)
    codes = rng.integers(0, 16, size=(500, 7))
    table = rng.random((7, 16))
    got = score_flat(repetition_major(codes, 16), table)
    assert np.array_equal(got, score_users(codes, table))
    np.testing.assert_allclose(got, table.ravel()[codes + np.arange(7) * 16].mean(axis=1), rtol=1e-12)
    assert len(np.unique(got)) > 100


def test_codes_do_not_depend_on_the_batch():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3000, 64)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    lsh = Hyperplanes.draw(64, 8, 16, seed=0, center=x.mean(axis=0))
    whole = lsh.codes(x)
    parts = np.concatenate([lsh.codes(x[s : s + 77]) for s in range(0, 3000, 77)])
    assert np.array_equal(whole, parts)
    assert np.array_equal(lsh.codes(x[5:6]), whole[5:6])


def test_centering_balances_regions_of_off_centre_users():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4000, 16)) * 0.2 + 1.0  # every user on one side of most planes through 0
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    plain = region_counts(Hyperplanes.draw(16, 6, 4, seed=0).codes(x), 64)
    centred = region_counts(Hyperplanes.draw(16, 6, 4, seed=0, center=x.mean(axis=0)).codes(x), 64)
    assert (centred > 0).sum() > 2 * (plain > 0).sum()


def test_planes_default_from_the_number_of_users():
    assert planes_for(20_000, DensityConfig(planes=0, region_users=64)) == 8
    assert planes_for(943, DensityConfig(planes=0, region_users=64)) == 4
    assert planes_for(10**9, DensityConfig(planes=0)) == 14
    assert planes_for(20_000, DensityConfig(planes=5)) == 5
