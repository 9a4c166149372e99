from pathlib import Path

import pytest

from reco.config import Config, load_config
from reco.errors import ConfigError
from reco.schema import given_input_paths

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))


def test_local_config_is_valid_and_typed():
    cfg = load_config("configs/local.yaml")
    assert cfg.data.format == "synthetic"
    assert cfg.data.synthetic.n_users == 20_000
    assert isinstance(cfg.embedding.epochs, int)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_shipped_config_validates_and_finds_its_inputs_from_any_directory(path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = load_config(path)
    assert isinstance(cfg, Config)
    for key, value in given_input_paths(cfg).items():
        assert value.startswith("s3://") or Path(value).exists(), (key, value)


def test_relative_input_paths_resolve_against_the_config_file_and_set_ones_against_the_cwd(tmp_path, monkeypatch):
    folder = tmp_path / "project" / "configs"
    folder.mkdir(parents=True)
    (folder / "c.yaml").write_text(
        "data: {format: generic, path: ../data/clicks.csv, columns: {user: u, topic: t}}\n"
        "expansion: {seed_lists: s3://bucket/lists.parquet}\n"
    )
    monkeypatch.chdir(tmp_path)
    cfg = load_config(folder / "c.yaml")
    assert cfg.data.path == str(tmp_path / "project" / "data" / "clicks.csv")
    assert cfg.expansion.seed_lists == "s3://bucket/lists.parquet"  # a URI is left as written
    cfg = load_config(folder / "c.yaml", ["data.path=mine.csv"])
    assert cfg.data.path == "mine.csv"  # --set is relative to where the command runs
    assert given_input_paths(cfg) == {"data.path": "mine.csv", "expansion.seed_lists": "s3://bucket/lists.parquet"}


def test_defaults_are_not_given_input_paths():
    assert given_input_paths(load_config("configs/tiny.yaml")) == {}


def test_unknown_key_is_named(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("embedding:\n  dimm: 3\n")
    with pytest.raises(ConfigError, match=r"embedding\.dimm: unknown key"):
        load_config(p)


def test_wrong_type_is_named(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("embedding:\n  epochs: many\n")
    with pytest.raises(ConfigError, match=r"embedding\.epochs"):
        load_config(p)


def test_overrides_are_parsed_as_yaml():
    cfg = load_config(
        "configs/tiny.yaml", ["embedding.epochs=7", "ingest.exclude_topics=['a', 'b']", "index.kind=hnsw"]
    )
    assert cfg.embedding.epochs == 7
    assert cfg.ingest.exclude_topics == ["a", "b"]
    assert cfg.index.kind == "hnsw"


def test_override_of_unknown_section_fails():
    with pytest.raises(ConfigError, match="nosuch: unknown key"):
        load_config("configs/tiny.yaml", ["nosuch.key=1"])


def test_override_without_equals_fails():
    with pytest.raises(ConfigError, match="expected key=value"):
        load_config("configs/tiny.yaml", ["embedding.epochs"])


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_config(listy)


def test_real_format_needs_a_path():
    with pytest.raises(ConfigError, match="data.path is required"):
        load_config(None, ["data.format=movielens"])


def test_out_of_range_value():
    with pytest.raises(ConfigError, match=r"embedding\.dim"):
        load_config(None, ["embedding.dim=0"])


def test_remote_errors_are_recovered_from_ray_wrappers():
    from reco.errors import DataError, find_reco_error

    class Wrapper(Exception):
        pass

    direct = DataError("x.csv: bad")
    assert find_reco_error(direct) is direct
    wrapped = Wrapper("ray::MapBatches()\n  File 'f.py'\nreco.errors.DataError: x.csv: column 'w' is not numeric\n")
    found = find_reco_error(wrapped)
    assert isinstance(found, DataError) and str(found) == "x.csv: column 'w' is not numeric"
    assert find_reco_error(Wrapper("something else")) is None
