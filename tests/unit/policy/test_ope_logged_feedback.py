"""Your own logs: CSV and Parquet read through declared columns, and one-line errors naming file and column."""

import numpy as np
import pandas as pd
import pytest

from reco.config import load_config
from reco.errors import ConfigError, DataError
from reco.policy.ope.config import LogsConfig
from reco.policy.ope.logged_feedback import log_columns, read_feedback, write_feedback
from tests.unit.policy.ope_logs_helpers import logs_config, synthetic_log


@pytest.fixture(scope="module")
def syn():
    return synthetic_log(400, seed=3)


@pytest.fixture
def csv_log(syn, tmp_path):
    path = tmp_path / "logs" / "log.csv"
    write_feedback(syn.frame, str(path))
    return path, syn.frame.copy()


def test_csv_and_parquet_give_the_same_log(syn, tmp_path):
    f = syn.frame
    a = read_feedback(logs_config(write_feedback(f, str(tmp_path / "log.csv"))))
    b = read_feedback(logs_config(write_feedback(f, str(tmp_path / "log.parquet"))))
    # a folder of Parquet parts (what Spark or Ray Data write) reads as one log
    write_feedback(f.iloc[:150], str(tmp_path / "parts" / "part-0.parquet"))
    write_feedback(f.iloc[150:], str(tmp_path / "parts" / "part-1.parquet"))
    c = read_feedback(logs_config(tmp_path / "parts"))
    d = read_feedback(logs_config(f"file://{tmp_path / 'log.csv'}"))
    e = read_feedback(logs_config(write_feedback(f, str(tmp_path / "log.csv.gz"))))
    for other in (b, c, d, e):
        np.testing.assert_array_equal(other.log.action, a.log.action)
        np.testing.assert_allclose(other.log.context, a.log.context)
        np.testing.assert_allclose(other.log.propensity, a.log.propensity)
    assert b.description["format"] == "parquet" and a.description["format"] == "csv"
    assert a.actions == tuple(f"a{i}" for i in range(6)) and a.log.n_actions == 6
    labels = np.array(a.actions)[a.log.action]
    assert (labels == f["action"].to_numpy()).all()  # index a stands for label actions[a]
    np.testing.assert_allclose(a.log.reward, f["reward"])
    np.testing.assert_allclose(a.log.context, f[["x0", "x1", "x2"]].to_numpy())  # "x*" expands in file order
    assert a.context_columns == ("x0", "x1", "x2") and a.log.timestamp is not None
    assert a.users is not None and a.users[0] == f["user_id"].iloc[0]
    assert (a.log.position == 0).all() and a.description["binary_reward"]
    assert a.time_order().tolist() == list(range(400))


def test_positions_slices_items_and_declared_actions(csv_log):
    path, f = csv_log
    f["slot"] = 1 + np.arange(len(f)) % 2
    f["campaign"] = np.where(np.arange(len(f)) < 100, "men", "women")
    f["sku"] = f["action"].str.replace("a", "sku-")
    write_feedback(f, str(path))
    cfg = LogsConfig(
        path=str(path),
        columns={"position": "slot", "item": "sku", "context": ["x0"]},
        position_base=1,
        where={"campaign": "men"},
        actions=[f"a{i}" for i in range(8)],  # two actions the logging policy never took
    )
    fb = read_feedback(cfg)
    assert fb.n == 100 and fb.description["rows_in_file"] == 400 and fb.description["slice"] == "campaign == 'men'"
    assert fb.log.n_actions == 8 and fb.log.n_positions == 2 and set(fb.log.position) == {0, 1}
    assert fb.items[:6] == tuple(f"sku-{i}" for i in range(6)) and fb.items[6:] == ("a6", "a7")
    assert "campaign == 'men'" in fb.log.source


def test_the_header_is_read_without_the_rows(csv_log):
    path, f = csv_log
    assert log_columns(logs_config(path)) == list(f.columns)


def test_missing_column_names_the_file_the_column_and_the_key(csv_log):
    path, f = csv_log
    f.drop(columns=["propensity"]).to_csv(path, index=False)
    with pytest.raises(DataError, match=r"log\.csv: missing column 'propensity' \(ope\.logs\.columns\.propensity\)"):
        read_feedback(logs_config(path))


@pytest.mark.parametrize("value", [0.0, 1.5, -0.1])
def test_propensity_outside_the_unit_interval(csv_log, value):
    path, f = csv_log
    f.loc[7, "propensity"] = value
    f.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"outside \(0, 1\]") as err:
        read_feedback(logs_config(path))
    msg = str(err.value)
    assert "log.csv" in msg and "'propensity'" in msg and "row 7" in msg and "\n" not in msg


def test_reward_that_is_not_numeric(csv_log):
    path, f = csv_log
    f["reward"] = f["reward"].astype(object)
    f.loc[5, "reward"] = "yes"
    f.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"log\.csv: column 'reward' \(reward\) is not numeric \(row 5: 'yes'\)"):
        read_feedback(logs_config(path))


def test_empty_values_and_non_numeric_context(csv_log):
    path, f = csv_log
    f.loc[3, "x1"] = np.nan
    f.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"column 'x1' \(context\) has 1 empty or non-finite values \(first at row 3\)"):
        read_feedback(logs_config(path))
    f["x1"] = "blue"
    f.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"column 'x1' \(context\) is not numeric"):
        read_feedback(logs_config(path))


def test_empty_header_only_and_missing_files(csv_log, tmp_path):
    path, f = csv_log
    path.write_text("")
    with pytest.raises(DataError, match="logged feedback file is empty: .*log.csv"):
        read_feedback(logs_config(path))
    f.head(0).to_csv(path, index=False)
    with pytest.raises(DataError, match=r"log\.csv: header only, no logged rounds"):
        read_feedback(logs_config(path))
    with pytest.raises(DataError, match="logged feedback not found: .*nowhere.parquet"):
        read_feedback(logs_config(tmp_path / "nowhere.parquet"))
    with pytest.raises(DataError, match="cannot tell the format"):
        read_feedback(logs_config(tmp_path / "log.json"))


def test_bad_declarations_are_named(csv_log):
    path, _ = csv_log
    with pytest.raises(DataError, match=r"no column matches context pattern 'z\*'"):
        read_feedback(logs_config(path, context=["z*"]))
    with pytest.raises(DataError, match=r"context column 'reward' is the reward column"):
        read_feedback(logs_config(path, context=["x0", "reward"]))
    with pytest.raises(DataError, match=r"no rows where user_id == 'nobody' \(ope\.logs\.where\)"):
        read_feedback(LogsConfig(path=str(path), columns={"context": []}, where={"user_id": "nobody"}))
    with pytest.raises(DataError, match=r"holds action 'a5' \(row \d+\), which is not among ope\.logs\.actions"):
        read_feedback(LogsConfig(path=str(path), actions=["a0", "a1", "a2", "a3", "a4"]))
    with pytest.raises(DataError, match=r"column 'user_id' \(position\) is not numeric"):
        read_feedback(logs_config(path, position="user_id"))


def test_config_keys_are_checked(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("ope:\n  source: logs\n  logs:\n    path: log.csv\n    columns:\n      acton: a\n")
    with pytest.raises(ConfigError, match=r"ope\.logs\.columns\.acton: unknown key"):
        load_config(p)
    p.write_text("ope:\n  source: logs\n  logs:\n    path: log.csv\n  target:\n    kind: bandit\n")
    cfg = load_config(p)
    assert cfg.ope.logs.path == str(tmp_path / "log.csv")  # relative to the config file, like every input
    with pytest.raises(ConfigError, match="ope.target.kind obd .* needs ope.source: obd"):
        load_config(p, ["ope.target.kind=obd"])
    with pytest.raises(ConfigError, match="unknown bandit policy 'ucb'; expected one of"):
        load_config(p, ["ope.target.bandit.policy=ucb"])
    with pytest.raises(ConfigError, match="ope.target.kind bandit reads ope.logs: set ope.source: logs"):
        load_config(p, ["ope.source=obd"])
    with pytest.raises(ConfigError, match="ope.target.ranker.run_dir is required"):
        load_config(p, ["ope.target.kind=ranker"])
    with pytest.raises(ConfigError, match=r"ope\.target\.bandit\.fit_share"):
        load_config(p, ["ope.target.bandit.fit_share=1"])


def test_shipped_configs_validate():
    logs = load_config("configs/ope-logs.yaml").ope
    assert logs.source == "logs" and logs.target.kind == "bandit" and logs.studies == []
    assert logs.logs.path.endswith("shared/data/obd/random/all/all.csv") and logs.logs.position_base == 1
    obd = load_config("configs/ope.yaml").ope
    assert obd.source == "obd" and obd.target.kind == "obd" and obd.studies == ["synthetic", "bandits", "pacing"]


def test_the_obd_csv_reads_as_a_generic_log(shared_data):
    fb = read_feedback(load_config("configs/ope-logs.yaml").ope.logs)
    raw = pd.read_csv(shared_data / "obd" / "random" / "all" / "all.csv", index_col=0)
    assert fb.n == 10_000 and fb.log.n_actions == 80 and fb.log.n_positions == 3 and fb.log.context.shape[1] == 80
    assert fb.log.reward.sum() == raw.click.sum() == 38
    np.testing.assert_array_equal(fb.log.position, raw.position.to_numpy() - 1)
    np.testing.assert_array_equal(np.array(fb.actions, dtype=int)[fb.log.action], raw.item_id.to_numpy())
    assert fb.actions[:3] == ("0", "1", "2")  # numeric labels sort as numbers
