"""Reading OBD logs: the real sample's layout, and bad logs rejected with a message naming the problem."""

import shutil

import numpy as np
import pandas as pd
import pytest

from reco.errors import DataError
from reco.policy.ope.logged_data import read_obd, read_obd_frame


def test_obd_sample_layout(shared_data):
    log, cats = read_obd(str(shared_data / "obd"), "random", "all")
    assert log.n == 10_000 and log.n_actions == 80 and log.n_positions == 3
    assert set(np.unique(log.position)) == {0, 1, 2}  # OBD's 1-based positions, made 0-based
    np.testing.assert_allclose(log.propensity, 1 / 80)  # uniform random over 80 items
    assert log.context.shape[0] == 10_000 and np.all(log.context.sum(axis=1) == 4)  # four one-hot user features
    assert log.pair_features.shape == (10_000, 80) and log.action_features.shape[0] == 80
    bts, _ = read_obd(str(shared_data / "obd"), "bts", "all", categories=cats)
    assert bts.context.shape[1] == log.context.shape[1]  # encoded with the random log's categories
    assert bts.reward.sum() == 42 and log.reward.sum() == 38


@pytest.fixture
def obd_copy(shared_data, tmp_path):
    """A writable copy of the random log's folder, to break in each test."""
    dst = tmp_path / "obd" / "random" / "all"
    dst.mkdir(parents=True)
    shutil.copy(shared_data / "obd" / "random" / "all" / "item_context.csv", dst)
    frame = pd.read_csv(shared_data / "obd" / "random" / "all" / "all.csv", index_col=0).head(50)
    return tmp_path / "obd", dst / "all.csv", frame


def test_missing_propensity_column(obd_copy):
    root, path, frame = obd_copy
    frame.drop(columns=["propensity_score"]).to_csv(path)
    with pytest.raises(DataError, match=r"all\.csv: missing column\(s\) \['propensity_score'\]"):
        read_obd(str(root), "random", "all")


@pytest.mark.parametrize(
    "value, message",
    [
        (0.0, r"outside \(0, 1\]"),
        (1.2, r"outside \(0, 1\]"),
        (-0.1, r"outside \(0, 1\]"),
        (np.nan, "missing or non-finite"),
    ],
)
def test_propensities_outside_the_unit_interval(obd_copy, value, message):
    root, path, frame = obd_copy
    frame.loc[frame.index[7], "propensity_score"] = value
    frame.to_csv(path)
    with pytest.raises(DataError, match=message) as err:
        read_obd(str(root), "random", "all")
    assert "all.csv" in str(err.value) and "row 7" in str(err.value)


def test_empty_and_header_only_and_missing_files(obd_copy):
    root, path, frame = obd_copy
    path.write_text("")
    with pytest.raises(DataError, match="file is empty"):
        read_obd_frame(str(path))
    frame.head(0).to_csv(path)
    with pytest.raises(DataError, match="header only, no logged rounds"):
        read_obd_frame(str(path))
    with pytest.raises(DataError, match="not found"):
        read_obd(str(root), "bts", "all")


def test_item_id_outside_the_catalogue(obd_copy):
    root, path, frame = obd_copy
    frame.loc[frame.index[3], "item_id"] = 80
    frame.to_csv(path)
    with pytest.raises(DataError, match="item_id outside the 80 items"):
        read_obd(str(root), "random", "all")
