"""The ope job on the shared local Ray instance, with every study shrunk to seconds."""

import json

import pytest

from ray_jobs import ope
from reco import artifacts
from reco.config import load_config
from reco.run_dir import RunDir

pytestmark = pytest.mark.ray

SMALL = [
    "ope.bootstrap.draws=200",
    "ope.bootstrap.refit_draws=4",
    "ope.bootstrap.tasks=2",
    "ope.synthetic.replicates=4",
    "ope.synthetic.n_rounds=300",
    "ope.synthetic.tasks=2",
    "ope.synthetic.truth_contexts=20000",
    "ope.synthetic.bootstrap_draws=20",
    "ope.bandits.horizon=200",
    "ope.bandits.seeds=2",
    "ope.bandits.replay_seeds=1",
    "ope.bandits.replay_rows=400",
    "ope.pacing.periods=12",
    "ope.pacing.seeds=2",
    "ope.pacing.auctions_per_period=60",
]


def test_ope_job_writes_the_report(ray_session, shared_data, tmp_path):
    cfg = load_config(
        "configs/ope.yaml", [f"run_dir={tmp_path / 'run'}", f"ope.obd.path={shared_data / 'obd'}", *SMALL]
    )
    run = RunDir(cfg.run_dir)
    summary = ope.run(cfg, run)
    head = summary["headline"]
    assert head["obd"]["truth"] == pytest.approx(0.0042)  # 42 clicks in the 10,000 bts rows
    for name in ("ipw", "snipw", "dm", "dr", "switch_dr"):
        e = head["obd"][name]
        assert e["ci"][0] <= e["estimate"] <= e["ci"][1] or name in (
            "dm",
            "dr",
            "switch_dr",
        )  # refit CIs need not bracket
        assert e["rel_error"] == pytest.approx(abs(e["estimate"] - 0.0042) / 0.0042)
    assert set(head["pacing"]) == {"paced", "unpaced", "throttle"}
    assert set(head["bandit_regret"]) == {"thompson", "epsilon_greedy", "random"}
    manifest = run.manifest()["artifacts"]
    for rel in (
        artifacts.metrics("ope"),
        artifacts.metrics("ope_headline"),
        artifacts.report("ope.md"),
        artifacts.report("ope_obd.png"),
        artifacts.report("ope_synthetic.png"),
        artifacts.report("bandit_regret.png"),
        artifacts.report("pacing_spend.png"),
    ):
        assert rel in manifest, rel
    assert run.read_bytes(artifacts.report("pacing_spend.png"))[:4] == b"\x89PNG"
    full = run.read_json(artifacts.metrics("ope"))
    assert full["synthetic"]["replicates"] == 4
    assert full["replay"]["thompson"]["seeds"] == 1
    assert full["pacing"]["days"] == 2 and full["obd"]["reward_model"]["refit_draws"] == 4
    assert json.loads(json.dumps(run.read_json(artifacts.metrics("ope_headline")))) == json.loads(json.dumps(head))
    # the page names the data it read: the campaign configured, the files, rounds and actions
    assert full["obd"]["data"]["campaign"] == "all" and full["obd"]["data"]["rounds"] == 10_000
    page = run.read_bytes(artifacts.report("ope.md")).decode()
    for needle in (
        "| campaign | all |",
        f"| path | {shared_data / 'obd' / 'random' / 'all' / 'all.csv'} |",
        "| actions | 80 items, 3 positions |",
        "| target policy | OBD bts policy: empirical action frequency per position in 7 time slice(s)",
    ):
        assert needle in page, needle


def test_ope_job_names_a_missing_log(ray_session, tmp_path, capsys):
    rc = ope.main(
        [
            "--config",
            "configs/ope.yaml",
            "--set",
            f"run_dir={tmp_path}",
            "--set",
            f"ope.obd.path={tmp_path / 'nowhere'}",
        ]
    )
    assert rc == 2
    assert "logged bandit feedback not found" in capsys.readouterr().err
