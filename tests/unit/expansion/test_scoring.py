"""Many lists at once: batch scoring + merge agrees exactly with the single-process scorer."""

import numpy as np
import pyarrow as pa
import pytest

from reco.expansion.config import ExpansionConfig
from reco.expansion.list_models import ListModels, VectorLookup, fit_list_models
from reco.expansion.region_density import Hyperplanes, region_counts
from reco.expansion.scoring import ListScorer, audiences_from_candidates, score_all_users
from reco.expansion.seed_lists import SeedList


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((3, 16))
    x = centres[rng.integers(0, 3, 900)] + 0.7 * rng.standard_normal((900, 16))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    ids = rng.permutation(5000)[:900].astype(np.int64)  # dense ids need not be 0..n-1
    cfg = ExpansionConfig()
    cfg.classifier.hidden = 8
    cfg.blend.density_share.small = 0.7
    lsh = Hyperplanes.for_users(16, 900, cfg.density, x.mean(axis=0))
    users = region_counts(lsh.codes(x), lsh.n_regions)
    lists = [
        SeedList(f"l{i}", np.sort(rng.choice(ids, size=n, replace=False)), n, 0, 0) for i, n in enumerate((12, 60, 250))
    ]
    models = fit_list_models(lists, VectorLookup.of(ids, x), ids, lsh, users, cfg)
    return models, ids, x


def test_bundle_round_trips(fitted):
    models, ids, x = fitted
    back = ListModels.from_bytes(models.to_bytes())
    assert back.list_ids == models.list_ids and np.array_equal(back.dense_tables(), models.dense_tables())
    assert score_all_users(back, ids, x, 40).equals(score_all_users(models, ids, x, 40))


@pytest.mark.parametrize("batch", [7, 50, 333, 900])
def test_batches_merged_equal_the_single_process_scorer(fitted, batch):
    models, ids, x = fitted
    reference = score_all_users(models, ids, x, 40)
    scorer = ListScorer(models)
    cand = pa.concat_tables([scorer.candidates(ids[s : s + batch], x[s : s + batch], 40) for s in range(0, 900, batch)])
    assert audiences_from_candidates(cand, models.shares, 40).equals(reference)


def test_audiences_never_hold_seeds_and_have_k_ranked_users(fitted):
    models, ids, x = fitted
    out = score_all_users(models, ids, x, 40).to_pandas()
    for pos, seeds in enumerate(np.split(models.seed_user, np.cumsum(models.n_seeds)[:-1])):
        aud = out[out.list_pos == pos]
        assert len(aud) == 40 and aud["rank"].tolist() == list(range(1, 41))
        assert not set(aud.user_id) & set(seeds.tolist())
        assert set(aud.source) <= {"both", "density", "classifier"}
        assert (aud.source == "both").sum() > 0


def test_the_blend_share_is_set_by_list_size(fitted):
    models, _, _ = fitted
    assert models.shares.tolist() == [0.7, 0.3, 0.3]
