"""ranking.source=tabular: reading CSV / TSV / Parquet by config, the splits, the one-line errors, training on it."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from reco.config import load_config
from reco.errors import ConfigError, DataError
from reco.rank import metrics
from reco.rank.catalog import Catalog
from reco.rank.config import RankingConfig, RankModelConfig, RankTrainConfig
from reco.rank.datasets import load_ranking_data
from reco.rank.features import FeaturePipeline
from reco.rank.gbdt import feature_matrix, fit_lightgbm
from reco.rank.models import build_model
from reco.rank.training import fit, predict_logits

TABULAR = {
    "labels": ["click"],
    "user_key": "user",
    "item_key": "item",
    "categorical": ["zip", "device"],
    "numeric": ["price"],
    "multi_valued": {"tags": ";"},
    "user_features": ["zip"],
    "item_features": ["price", "tags"],
}


def impressions(n: int = 600, seed: int = 0) -> pd.DataFrame:
    """A log with a learnable click: tag 'a' and a cheap price raise it, device 'tv' lowers it."""
    rng = np.random.default_rng(seed)
    item = rng.integers(0, 20, n)
    tags = np.where(item % 2 == 0, "a;b", np.where(item % 3 == 0, "c", "b;c"))
    price = np.round(rng.lognormal(2.0, 1.0, n), 2)
    device = rng.choice(["phone", "desktop", "tv"], n)
    logit = 2.0 * (item % 2 == 0) - 0.6 * np.log1p(price) - 1.5 * (device == "tv") + rng.normal(0, 0.5, n)
    return pd.DataFrame(
        {
            "user": [f"u{u}" for u in rng.integers(0, 40, n)],
            "item": [f"i{i}" for i in item],
            "zip": rng.choice(["02134", "10001", "94103"], n),
            "device": device,
            "tags": tags,
            "price": price,
            "ts": np.arange(n) * 60 + 1_700_000_000,
            "click": (logit > np.median(logit)).astype(int),
        }
    )


def config(split_seed: int = 0, **tabular) -> RankingConfig:
    return RankingConfig(source="tabular", split_seed=split_seed, tabular={**TABULAR, **tabular})


def test_csv_columns_arrive_with_their_declared_types_and_fields(tmp_path):
    df = impressions(50)
    df.loc[3, "price"] = np.nan
    df.loc[4, "device"] = None
    df.to_csv(tmp_path / "log.csv", index=False)
    data = load_ranking_data(config(path=str(tmp_path / "log.csv")))
    frame = pd.concat([data.train, data.validation, data.test])
    assert len(frame) == 50 and data.protocol == "ctr" and data.labels == ["click"]
    assert set(frame["zip"]) == {"02134", "10001", "94103"}  # ids stay text: the leading zero survives
    assert frame["click"].dtype == np.float32 and frame["price"].dtype == np.float64
    assert frame["price"].isna().sum() == 1 and frame["device"].isna().sum() == 1
    kinds = {f.name: (f.kind, f.side, f.transform, f.separator) for f in data.spec.fields}
    assert kinds == {
        "user": ("cat", "user", "none", "|"),
        "item": ("cat", "item", "none", "|"),
        "zip": ("cat", "user", "none", "|"),
        "device": ("cat", "context", "none", "|"),
        "price": ("dense", "item", "none", "|"),
        "tags": ("multi", "item", "none", ";"),
    }
    assert data.spec.user_key == "user" and data.spec.group_column() == "user"
    # one row of side features per known id, for the serving catalogue
    assert list(data.users.columns) == ["user", "zip"] and data.users["user"].is_unique
    assert list(data.items.columns) == ["item", "price", "tags"]
    pipe = FeaturePipeline.fit(data.train, data.spec, RankingConfig().features)
    catalog = Catalog.build(pipe, data.users, data.items)
    assert len(catalog.items.ids) == data.items["item"].nunique()


def test_missing_values_become_the_mean_and_an_empty_token(tmp_path):
    df = impressions(40)
    df["price"] = 10.0
    df.loc[df.index % 4 == 0, "price"] = np.nan
    df.loc[df.index % 5 == 0, "device"] = None
    df.to_csv(tmp_path / "log.csv", index=False)
    data = load_ranking_data(config(path=str(tmp_path / "log.csv")))
    pipe = FeaturePipeline.fit(data.train, data.spec, RankingConfig().features)
    device = next(f for f in pipe.fields if f.spec.name == "device")
    assert "" in device.vocab  # missing is one more category, learnt like the others
    rows = pipe.rows(data.train, ["click"])
    assert np.isfinite(rows.dense).all() and (rows.dense[data.train["price"].isna().to_numpy(), 0] == 0).all()


def test_parquet_file_and_folder_read_like_csv(tmp_path):
    df = impressions(60).assign(click=lambda d: d["click"].astype(bool), item=lambda d: d["item"].str[1:].astype(int))
    pq.write_table(pa.Table.from_pandas(df), tmp_path / "log.parquet")
    folder = tmp_path / "parts"
    folder.mkdir()
    pq.write_table(pa.Table.from_pandas(df.iloc[:30]), folder / "part-0.parquet")
    pq.write_table(pa.Table.from_pandas(df.iloc[30:]), folder / "part-1.parquet")
    (folder / "_SUCCESS").write_text("")
    one = load_ranking_data(config(path=str(tmp_path / "log.parquet")))
    many = load_ranking_data(config(path=str(folder)))
    for a, b in zip((one.train, one.validation, one.test), (many.train, many.validation, many.test)):
        pd.testing.assert_frame_equal(a, b)
    assert set(one.train["click"]) == {0.0, 1.0} and one.train["item"].map(type).eq(str).all()  # int ids -> text


def test_tsv_without_header_uses_the_given_column_names(tmp_path):
    df = impressions(40)[["click", "price", "device", "user", "item", "zip", "tags"]]
    df.to_csv(tmp_path / "log.tsv", sep="\t", header=False, index=False)
    data = load_ranking_data(config(path=str(tmp_path / "log.tsv"), header=False, columns=list(df.columns)))
    frame = pd.concat([data.train, data.validation, data.test]).sort_values(["user", "item", "price"])
    assert frame["price"].tolist() == df.sort_values(["user", "item", "price"])["price"].tolist()
    with pytest.raises(DataError, match=r"log.tsv: the first line has 7 columns .* names 6"):
        load_ranking_data(config(path=str(tmp_path / "log.tsv"), header=False, columns=list(df.columns)[:6]))


def test_time_split_puts_the_latest_rows_in_test_and_ties_on_the_later_side(tmp_path):
    df = impressions(200).sample(frac=1.0, random_state=1)  # file order is not time order
    df.loc[df["ts"] >= df["ts"].quantile(0.79), "ts"] = df["ts"].max()  # a block of tied times at the test boundary
    df.to_csv(tmp_path / "log.csv", index=False)
    data = load_ranking_data(config(path=str(tmp_path / "log.csv"), split="time", time_column="ts"))
    assert data.train["ts"].max() < data.validation["ts"].min() <= data.validation["ts"].max() < data.test["ts"].min()
    assert len(data.test) >= 40 and data.test["ts"].nunique() == 1  # every tied row went to test
    assert len(data.train) + len(data.validation) + len(data.test) == 200
    # dates work as well as numbers
    df.assign(ts=pd.to_datetime(df["ts"], unit="s").dt.strftime("%Y-%m-%d %H:%M:%S")).to_csv(
        tmp_path / "dated.csv", index=False
    )
    dated = load_ranking_data(config(path=str(tmp_path / "dated.csv"), split="time", time_column="ts"))
    assert len(dated.test) == len(data.test) and dated.test["ts"].nunique() == 1


def test_random_split_is_fixed_by_the_seed(tmp_path):
    impressions(300).to_csv(tmp_path / "log.csv", index=False)
    path = str(tmp_path / "log.csv")
    a, b = load_ranking_data(config(path=path)), load_ranking_data(config(path=path))
    other = load_ranking_data(config(path=path, split_seed=1))
    assert a.test.equals(b.test) and a.validation.equals(b.validation) and a.train.equals(b.train)
    assert not a.test.equals(other.test)
    assert 0.7 < len(a.train) / 300 < 0.9


def test_given_split_files_carve_validation_from_train_when_absent(tmp_path):
    df = impressions(200)
    df.iloc[:150].to_csv(tmp_path / "train.csv", index=False)
    df.iloc[150:].to_csv(tmp_path / "test.csv", index=False)
    data = load_ranking_data(config(train=str(tmp_path / "train.csv"), test=str(tmp_path / "test.csv")))
    assert len(data.test) == 50 and len(data.train) + len(data.validation) == 150 and len(data.validation) > 0
    df.iloc[140:150].to_csv(tmp_path / "val.csv", index=False)
    given = load_ranking_data(
        config(train=str(tmp_path / "train.csv"), validation=str(tmp_path / "val.csv"), test=str(tmp_path / "test.csv"))
    )
    assert len(given.train) == 150 and len(given.validation) == 10


def test_multi_valued_columns_split_on_their_own_separator(tmp_path):
    impressions(80).to_csv(tmp_path / "log.csv", index=False)
    data = load_ranking_data(config(path=str(tmp_path / "log.csv")))
    pipe = FeaturePipeline.fit(data.train, data.spec, RankingConfig().features)
    tags = next(f for f in pipe.fields if f.spec.name == "tags")
    assert tags.vocab == ["a", "b", "c"]
    restored = FeaturePipeline.from_dict(pipe.to_dict())  # the separator travels with the artifact
    frame = data.test.head(5)
    assert np.array_equal(restored.transform(frame)[0], pipe.transform(frame)[0])
    row = pipe.rows(pd.DataFrame([{"tags": "a;c"}]).reindex(columns=list(data.train.columns)), ["click"])
    s = sum(f.slots for f in pipe.id_fields[: [f.spec.name for f in pipe.id_fields].index("tags")])
    assert sorted(row.cat[0, s : s + tags.slots][:2].tolist()) == [1, 3]


def test_log1p_applies_before_standardising_and_is_kept_for_serving(tmp_path):
    impressions(100).to_csv(tmp_path / "log.csv", index=False)
    data = load_ranking_data(config(path=str(tmp_path / "log.csv"), log1p=True))
    assert next(f for f in data.spec.fields if f.name == "price").transform == "log1p"
    pipe = FeaturePipeline.fit(data.train, data.spec, RankingConfig().features)
    price = next(f for f in pipe.fields if f.spec.name == "price")
    assert price.mean == pytest.approx(np.log1p(data.train["price"]).mean())
    restored = FeaturePipeline.from_dict(pipe.to_dict())
    assert np.allclose(restored.transform(data.test)[1], pipe.transform(data.test)[1])
    with pytest.raises(Exception, match="log1p"):
        config(path="x.csv", log1p=["device"])


def test_bad_files_and_columns_are_one_line_errors_naming_them(tmp_path):
    df = impressions(30)
    with pytest.raises(DataError, match=r"ranking\.tabular\.path not found: .*nope\.csv"):
        load_ranking_data(config(path=str(tmp_path / "nope.csv")))
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError, match=r"empty.*empty\.csv"):
        load_ranking_data(config(path=str(tmp_path / "empty.csv")))
    df.iloc[:0].to_csv(tmp_path / "header_only.csv", index=False)
    with pytest.raises(DataError, match=r"no data rows: .*header_only\.csv"):
        load_ranking_data(config(path=str(tmp_path / "header_only.csv")))
    df.drop(columns="device").to_csv(tmp_path / "no_device.csv", index=False)
    with pytest.raises(DataError, match=r"no_device\.csv: column 'device' \(ranking\.tabular\.categorical\) not found"):
        load_ranking_data(config(path=str(tmp_path / "no_device.csv")))
    pq.write_table(pa.Table.from_pandas(df.drop(columns="click")), tmp_path / "nolabel.parquet")
    with pytest.raises(DataError, match=r"nolabel\.parquet: column 'click' \(ranking\.tabular\.labels\) not found"):
        load_ranking_data(config(path=str(tmp_path / "nolabel.parquet")))
    df.assign(click=np.where(df.index == 7, 2, df["click"])).to_csv(tmp_path / "ratings.csv", index=False)
    with pytest.raises(DataError, match=r"ratings\.csv: label column 'click' must be 0/1, found '2' \(data row 8\)"):
        load_ranking_data(config(path=str(tmp_path / "ratings.csv")))
    df.assign(price=df["price"].astype(object).where(df.index != 2, "n/a?")).to_csv(tmp_path / "text.csv", index=False)
    with pytest.raises(DataError, match=r"text\.csv: numeric column 'price' has a non-numeric value 'n/a\?'"):
        load_ranking_data(config(path=str(tmp_path / "text.csv")))
    with pytest.raises(DataError) as e:
        load_ranking_data(config(path=str(tmp_path / "no_device.csv")))
    assert "\n" not in str(e.value)


def test_config_typos_and_contradictions_are_errors_naming_the_key(tmp_path):
    cfg = tmp_path / "rank.yaml"
    cfg.write_text("ranking:\n  source: tabular\n  tabular:\n    path: log.csv\n    lables: [click]\n")
    with pytest.raises(ConfigError, match=r"ranking\.tabular\.lables: unknown key"):
        load_config(cfg)
    cfg.write_text("ranking:\n  source: tabular\n  tabular:\n    path: data/log.csv\n    labels: [click]\n")
    with pytest.raises(ConfigError, match="at least one feature"):
        load_config(cfg)
    cfg.write_text(
        "ranking:\n  source: tabular\n  tabular:\n    path: data/log.csv\n    labels: [click]\n    numeric: [x]\n"
    )
    assert load_config(cfg).ranking.tabular.path == str(tmp_path / "data" / "log.csv")  # relative to the config
    with pytest.raises(ConfigError, match="needs a ranking.tabular section"):
        load_config(None, ["ranking.source=tabular"])
    with pytest.raises(Exception, match="declared twice"):
        config(path="x.csv", numeric=["price", "device"])
    with pytest.raises(Exception, match="either path"):
        config(path="x.csv", train="t.csv", test="u.csv")
    with pytest.raises(Exception, match="time_column"):
        config(path="x.csv", split="time")


def test_a_tiny_table_trains_through_the_jobs_training_loop(tmp_path):
    impressions(800).to_csv(tmp_path / "log.csv", index=False)
    cfg = config(path=str(tmp_path / "log.csv"), log1p=True)
    data = load_ranking_data(cfg)
    pipe = FeaturePipeline.fit(data.train, data.spec, cfg.features)
    tr, va, te = (pipe.rows(f, data.labels) for f in (data.train, data.validation, data.test))
    assert (te.groups != 0).all()  # GAUC groups by user
    model = build_model(RankModelConfig(name="deepfm", embed_dim=4, mlp_dims=[16]), pipe.layout(), 1)
    state, _ = fit(model, tr, va, RankTrainConfig(epochs=8, batch_size=64, lr=0.01, patience=3), data.labels)
    auc = metrics.auc(te.labels[:, 0], predict_logits(model, te.cat, te.dense)[:, 0])
    assert state.best_metric > 0.7 and auc > 0.7
    gbdt = fit_lightgbm(pipe, tr, va, params={"min_data_in_leaf": 10})
    assert metrics.auc(te.labels[:, 0], gbdt.logits(feature_matrix(pipe, te)[0])) > 0.7


def test_the_shipped_criteo_config_reads_the_sample(shared_data):
    cfg = load_config("configs/rank-criteo.yaml")
    assert cfg.ranking.tabular.path == str(shared_data / "criteo_sample" / "criteo_sample.txt")
    data = load_ranking_data(cfg.ranking)
    assert len(data.train) + len(data.validation) + len(data.test) == 200
    kinds = [f.kind for f in data.spec.fields]
    assert kinds.count("cat") == 26 and kinds.count("dense") == 13
    assert {f.transform for f in data.spec.fields if f.kind == "dense"} == {"log1p"}
    assert data.train["C1"].map(type).eq(str).all() and data.train["I1"].isna().any()
