"""The ope job on your own logs, through its entry point and a config alone: a bandit target (CSV on
disk, Parquet on S3), a ranker target, and the one-line errors. Every study but the estimate is off."""

import json

import pytest

from ray_jobs import ope
from reco import artifacts
from reco.policy.ope.logged_feedback import write_feedback
from reco.run_dir import RunDir
from tests.unit.policy.ope_logs_helpers import synthetic_log, toy_ranker, write_ranker_run

pytestmark = pytest.mark.ray

COLUMNS = (
    "{action: action, reward: reward, propensity: propensity, user: user_id, timestamp: timestamp, context: ['x*']}"
)
SMALL = [
    "ope.bootstrap.draws=200",
    "ope.bootstrap.refit_draws=4",
    "ope.bootstrap.tasks=2",
    "ope.reward_model.cs=[1.0]",
    "ope.target.bandit.samples=50",
]


@pytest.fixture(scope="module")
def logs(tmp_path_factory, s3):
    tmp = tmp_path_factory.mktemp("ope-logs")
    syn = synthetic_log(800, seed=11)
    revenue = syn.frame.assign(reward=syn.frame["reward"] * 2.5)  # not a click: no reward model
    return {
        "csv": write_feedback(syn.frame, str(tmp / "log.csv")),
        "revenue": write_feedback(revenue, str(tmp / "revenue.csv.gz")),
        "s3": write_feedback(syn.frame, s3.uri("ope-logs/log.parquet")),
        "ranker": write_ranker_run(toy_ranker(syn.frame), tmp / "ranker-run"),
    }


def _main(run_dir, path, *overrides) -> int:
    sets = [f"run_dir={run_dir}", f"ope.logs.path={path}", f"ope.logs.columns={COLUMNS}", "ope.logs.position_base=0"]
    argv = ["--config", "configs/ope-logs.yaml"]
    for s in [*sets, *SMALL, *overrides]:
        argv += ["--set", s]
    return ope.main(argv)


def _estimators_are_sane(logs_result: dict) -> None:
    assert set(logs_result["estimators"]) == {"ipw", "snipw", "dm", "dr", "switch_dr"}
    for e in logs_result["estimators"].values():
        assert 0 <= e["estimate"] <= 1.2 and e["ci"][0] <= e["ci"][1]


def test_bandit_target_on_a_csv(ray_session, logs, tmp_path, capsys):
    assert _main(tmp_path, logs["csv"]) == 0
    run = RunDir(str(tmp_path))
    summary = run.read_json(artifacts.metrics("ope"))
    assert set(summary) == {"logs", "wait_seconds"}  # studies: [] runs the estimate alone
    result = summary["logs"]
    assert result["data"]["rounds"] == 800 and result["data"]["evaluated_rounds"] == 400
    assert result["data"]["path"] == logs["csv"] and result["data"]["actions"] == 6
    target = result["target"]
    assert (
        target["policy"] == "epsilon_greedy"
        and target["fit_rows"] == 400
        and target["distribution"].startswith("exact")
    )
    _estimators_are_sane(result)
    page = run.read_bytes(artifacts.report("ope.md")).decode()
    assert f"| path | {logs['csv']} |" in page and "| rounds | 800, 400 evaluated |" in page
    assert "bandit epsilon_greedy (epsilon 0.1, ridge 1)" in page
    assert run.read_bytes(artifacts.report("ope_logs.png"))[:4] == b"\x89PNG"
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["headline"]["logs"]["target"] == "epsilon_greedy bandit"


def test_thompson_target_on_parquet_in_s3(ray_session, logs, tmp_path):
    assert _main(tmp_path, logs["s3"], "ope.target.bandit.policy=thompson") == 0
    result = RunDir(str(tmp_path)).read_json(artifacts.metrics("ope"))["logs"]
    assert result["data"]["format"] == "parquet" and result["data"]["path"].startswith("s3://")
    assert result["target"]["policy"] == "thompson" and result["target"]["samples"] == 50
    _estimators_are_sane(result)


def test_rewards_that_are_not_clicks_get_the_weighting_estimators_only(ray_session, logs, tmp_path):
    assert _main(tmp_path, logs["revenue"], "ope.target.bandit.policy=random") == 0
    run = RunDir(str(tmp_path))
    result = run.read_json(artifacts.metrics("ope"))["logs"]
    assert set(result["estimators"]) == {"ipw", "snipw"} and "skipped" in result["reward_model"]
    assert result["target"]["distribution"] == "exact: uniform"
    page = run.read_bytes(artifacts.report("ope.md")).decode()
    assert "DM, DR and switch-DR: not computed (rewards are not all 0 or 1" in page and ", not 0/1 |" in page


def test_ranker_target(ray_session, logs, tmp_path):
    rc = _main(
        tmp_path,
        logs["csv"],
        "ope.target.kind=ranker",
        f"ope.target.ranker.run_dir={logs['ranker']}",
        "ope.target.ranker.fields={hour: hour_of_day}",
        "ope.target.ranker.temperature=0.5",
    )
    assert rc == 0
    run = RunDir(str(tmp_path))
    result = run.read_json(artifacts.metrics("ope"))["logs"]
    assert result["data"]["evaluated_rounds"] == 800  # a fixed policy: every row is evaluated
    t = result["target"]
    assert (
        t["kind"] == "ranker" and t["items_known"] == "6 of 6" and t["context"] == {"x0": "x0", "hour": "hour_of_day"}
    )
    _estimators_are_sane(result)
    page = run.read_bytes(artifacts.report("ope.md")).decode()
    assert f"ranker of {logs['ranker']} (deepfm" in page and "temperature 0.5" in page


def test_errors_are_one_line(ray_session, logs, tmp_path, capsys):
    assert _main(tmp_path, logs["csv"], "ope.target.kind=obd") == 2
    assert "ope.target.kind obd (the BTS policy of the OBD bts logs) needs ope.source: obd" in capsys.readouterr().err
    assert _main(tmp_path, logs["csv"], "ope.logs.columns.propensity=p_log") == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: ") and "log.csv: missing column 'p_log' (ope.logs.columns.propensity)" in err
    assert _main(tmp_path, logs["csv"], "ope.target.kind=ranker", f"ope.target.ranker.run_dir={logs['ranker']}") == 2
    assert "no log column for the ranker's field(s) ['hour']" in capsys.readouterr().err
