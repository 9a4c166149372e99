"""The report names the data it read and the target it evaluated; sections of studies that did not run are left out."""

from reco.policy.ope.logs_evaluation import assemble_logs_result
from reco.policy.ope.obd_target import assemble_result
from reco.policy.ope.plots import logs_estimates_png
from reco.policy.report import data_table, headline, obd_table, report_md

WEIGHTS = {"max": 72.1, "mean": 1.02, "ess": 78.0, "rows": 5000}


def _obd(campaign: str) -> dict:
    truth = {"value": 0.004, "ci": [0.003, 0.005], "clicks": 40, "rows": 10_000}
    out = assemble_result(truth, {"ipw": 0.005}, {"ipw": (0.003, 0.007)}, None, WEIGHTS)
    out["data"] = {
        "source": "obd",
        "path": f"/data/obd/random/{campaign}/{campaign}.csv",
        "campaign": campaign,
        "logging_policy": "random",
        "rounds": 10_000,
        "actions": 34,
        "positions": 3,
        "target_log": f"/data/obd/bts/{campaign}/{campaign}.csv",
        "target_rounds": 9_000,
    }
    out["target"] = {"kind": "obd", "label": "bts", "policy": "bts", "time_blocks": 7, "distribution": "per day"}
    return out


def _logs(target: dict) -> dict:
    data = {
        "source": "logs",
        "format": "parquet",
        "path": "s3://bucket/logs/",
        "slice": "campaign == 'men'",
        "rows_in_file": 9_000,
        "rounds": 3_000,
        "evaluated_rounds": 1_500,
        "actions": 12,
        "positions": 1,
        "context_columns": 4,
        "mean_reward": 0.05,
        "binary_reward": True,
    }
    baseline = {"value": 0.05, "ci": [0.04, 0.06], "rows": 1_500}
    return assemble_logs_result(
        {"ipw": 0.06, "dr": 0.055}, {"ipw": (0.05, 0.07), "dr": (0.05, 0.06)}, None, WEIGHTS, baseline, data, target
    )


BANDIT = {
    "kind": "bandit",
    "label": "thompson bandit",
    "policy": "thompson",
    "settings": {"ridge": 1.0, "posterior_scale": 0.5},
    "fit_share": 0.5,
    "fit_rows": 1_500,
    "evaluated_rows": 1_500,
    "ordered_by": "ts",
    "features": "intercept + 4 context column(s)",
    "distribution": "estimated: Gaussian score draws from the posterior per row",
    "samples": 200,
}


def test_the_obd_table_names_the_configured_campaign():
    text = "\n".join(obd_table(_obd("men")))
    assert "OBD (men campaign)" in text and "all campaign" not in text
    assert "| campaign | men |" in text and "/data/obd/random/men/men.csv" in text and "34 items" in text


def test_the_logs_section_names_source_path_slice_rounds_actions_and_target():
    page = report_md({"logs": _logs(BANDIT), "wait_seconds": {}})
    for needle in (
        "## Your logs: the value of thompson bandit",
        "| path | s3://bucket/logs/ |",
        "| slice | campaign == 'men' |",
        "| rounds | 3,000, 1,500 evaluated (of 9,000 rows in the file) |",
        "| actions | 12, 1 position(s) |",
        "bandit thompson (ridge 1, posterior_scale 0.5)",
        "earliest 1,500 rows (50%, by ts)",
        "200 draws",
        "| ipw | 0.06000 | 0.05000..0.07000 | rows | +0.01000 |",
    ):
        assert needle in page, needle
    assert "Open Bandit Dataset" not in page and "Budget pacing" not in page  # studies that did not run
    head = headline({"logs": _logs(BANDIT)})
    assert head == {
        "logs": {
            "target": "thompson bandit",
            "rounds": 1_500,
            "logging_policy": 0.05,
            "ipw": {"estimate": 0.06, "ci": [0.05, 0.07]},
            "dr": {"estimate": 0.055, "ci": [0.05, 0.06]},
        }
    }
    assert logs_estimates_png(_logs(BANDIT))[:4] == b"\x89PNG"


def test_the_ranker_target_names_its_run_and_field_mapping():
    ranker = {
        "kind": "ranker",
        "label": "ranker (deepfm, softmax)",
        "run_dir": "runs/local",
        "model": "deepfm",
        "trained_on": "run_dir",
        "task": "click",
        "distribution": "softmax of the calibrated probabilities, temperature 0.5",
        "user": "uid -> user_id",
        "item": "each action's item id -> item_id",
        "items_known": "11 of 12",
        "context": {"hour": "hour_of_day"},
        "unknown_fields": ["weekday"],
    }
    text = "\n".join(data_table(_logs(ranker)["data"], ranker))
    for needle in ("ranker of runs/local (deepfm", "temperature 0.5", "uid -> user_id", "11 of 12", "hour hour_of_day"):
        assert needle in text, needle
    assert "| scored as unknown | weekday |" in text
