"""The expand job's ensemble path: several representations fused per list on a Ray Data actor pool.

Run on a copy of the tiny pipeline's run (histories, StarSpace vectors, the planted lists): the
job fits the ALS vectors it lacks, expands every list by the ensemble, and gives each list the
audience an in-process ``AudienceExpander`` gives the same seeds on the batch budget.
"""

import numpy as np
import pytest

from ray_jobs import expand
from ray_jobs.ensemble_audiences import batch_budget, uses_ensemble
from reco import artifacts
from reco.config import load_config
from reco.errors import ConfigError
from reco.expansion.expander import AudienceExpander
from reco.run_dir import RunDir

pytestmark = pytest.mark.ray

COMPONENTS = "{'starspace:centroid': 1, 'als:density': 0.5, 'coengagement': 1}"


def ensemble_config(run_dir, buckets=("small", "medium", "large")):
    sets = [
        f"run_dir={run_dir}",
        "expansion.representations=[starspace,als,coengagement]",
        "expansion.als.factors=8",
        "expansion.als.iterations=4",
        "expansion.job.actors=1",
    ]
    sets += [f"expansion.ensemble.weights.{b}={COMPONENTS}" for b in buckets]
    return load_config("configs/tiny.yaml", sets)


@pytest.fixture(scope="module")
def ensembled(copy_run):
    path = copy_run("ensemble")
    cfg = ensemble_config(path)
    run = RunDir(str(path))
    summary = expand.run(cfg, run)
    return cfg, run, summary


def test_auto_picks_the_ensemble_only_with_several_representations_and_weights(tmp_path):
    assert uses_ensemble(ensemble_config(tmp_path).expansion)
    assert not uses_ensemble(load_config("configs/tiny.yaml", [f"run_dir={tmp_path}"]).expansion)
    blend = ensemble_config(tmp_path).expansion.model_copy(deep=True)
    blend.job.method = "blend"
    assert not uses_ensemble(blend)


def test_the_job_fits_als_and_writes_ensemble_audiences(ensembled):
    cfg, run, summary = ensembled
    assert run.has(artifacts.ALS_USER_VECTORS)
    metrics = run.read_json(artifacts.metrics("expand"))
    assert metrics["method"] == "ensemble"
    assert metrics["representations"] == ["starspace", "als", "coengagement"]
    audiences = run.read_table(artifacts.AUDIENCES).to_pandas()
    assert set(audiences.source) == {"ensemble"}
    assert summary["lists"] == audiences.seed_list_id.nunique() >= 3
    k = cfg.expansion.audience_size
    assert (audiences.groupby("seed_list_id").size() == k).all()
    seeds = run.read_table(artifacts.SEED_LISTS).to_pandas()
    for name, group in audiences.groupby("seed_list_id"):
        assert not set(group.user_id) & set(seeds[seeds.seed_list_id == name].user_id)
        assert list(group["rank"]) == list(range(1, k + 1))


def test_each_audience_is_what_the_in_process_expander_gives(ensembled):
    cfg, run, _ = ensembled
    expander = AudienceExpander(run.uri, batch_budget(cfg.expansion))
    audiences = run.read_table(artifacts.AUDIENCES).to_pandas()
    seeds = run.read_table(artifacts.SEED_LISTS).to_pandas()
    for name, group in audiences.groupby("seed_list_id"):
        got = expander.expand(list(seeds[seeds.seed_list_id == name].user_id), k=len(group), method="ensemble")
        assert got.user_ids == list(group.user_id)
        np.testing.assert_allclose(got.scores, group.score.to_numpy())


def test_a_bucket_without_weights_fails_before_writing_audiences(copy_run):
    path = copy_run("ensemble-missing")
    run = RunDir(str(path))
    cfg = ensemble_config(path, buckets=("large",))
    before = {name: run.entry(name) for name in (artifacts.SEED_LISTS, artifacts.AUDIENCES)}
    with pytest.raises(ConfigError, match=r"expansion.ensemble.weights has none for the .*small"):
        expand.run(cfg, run)
    assert {name: RunDir(str(path)).entry(name) for name in before} == before


def test_an_unknown_representation_is_a_one_line_error_even_without_weights(copy_run):
    path = copy_run("ensemble-unknown")
    cfg = load_config("configs/tiny.yaml", [f"run_dir={path}", "expansion.representations=[nope,starspace]"])
    with pytest.raises(ConfigError, match="expansion.representations: unknown representation 'nope'"):
        expand.run(cfg, RunDir(str(path)))
