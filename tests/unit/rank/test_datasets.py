"""The data views: the NCF leave-one-out protocol and the CTR split on MovieLens 100K."""

import pytest

from reco.errors import ConfigError, DataError
from reco.rank.config import RankingConfig
from reco.rank.datasets import latest_last, load_ranking_data, read_ratings


@pytest.fixture(scope="module")
def ncf(shared_data):
    return load_ranking_data(RankingConfig(source="movielens_ncf", path=str(shared_data / "ml-100k")))


def test_leave_one_out_holds_out_each_users_latest_and_samples_unseen_negatives(ncf, shared_data):
    ratings = read_ratings(str(shared_data / "ml-100k"))
    last_ts = ratings.groupby("user_id")["ts"].max()
    ts_of = ratings.set_index(["user_id", "item_id"])["ts"]
    ratings = latest_last(ratings, 0)
    latest = ratings.groupby("user_id").tail(1).set_index("user_id")["item_id"]
    test = ncf.test
    pos = test[test["label"] == 1].set_index("user_id")["item_id"]
    assert len(pos) == 943 and pos.sort_index().equals(latest.sort_index())
    assert (ts_of.loc[list(zip(pos.index, pos))].to_numpy() == last_ts.loc[pos.index].to_numpy()).all()
    # same-second ties are not broken by item id (that would hold out newer, rarer movies)
    max_id_at_last = (
        ratings[ratings["ts"].to_numpy() == last_ts.loc[ratings["user_id"]].to_numpy()]
        .groupby("user_id")["item_id"]
        .max()
    )
    assert (
        pos.sort_index() != max_id_at_last.sort_index()
    ).mean() > 0.15  # 0.30 at seed 0; 0 with an item-id tie-break
    sizes = test.groupby("user_id").size()
    assert (sizes == 100).all()
    seen = ratings.groupby("user_id")["item_id"].apply(set)
    neg = test[test["label"] == 0]
    assert not any(i in seen[u] for u, i in zip(neg["user_id"], neg["item_id"]))
    assert neg.groupby("user_id")["item_id"].nunique().eq(99).all()
    val_pos = ncf.validation[ncf.validation["label"] == 1]
    train_pairs = set(zip(ncf.train["user_id"], ncf.train["item_id"]))
    assert not train_pairs & set(zip(pos.index, pos)) and not train_pairs & set(
        zip(val_pos["user_id"], val_pos["item_id"])
    )
    assert len(ncf.train) + 2 * 943 == len(ratings)


def test_leave_one_out_lists_are_fixed_by_the_seed(ncf, shared_data):
    again = load_ranking_data(RankingConfig(source="movielens_ncf", path=str(shared_data / "ml-100k")))
    assert again.test.equals(ncf.test) and again.validation.equals(ncf.validation)
    other = load_ranking_data(RankingConfig(source="movielens_ncf", path=str(shared_data / "ml-100k"), split_seed=1))
    assert not other.test.equals(ncf.test)


def test_ctr_view_labels_and_split(shared_data):
    data = load_ranking_data(RankingConfig(source="movielens", path=str(shared_data / "ml-100k")))
    n = len(data.train) + len(data.validation) + len(data.test)
    assert n == 100_000 and 0.78 < len(data.train) / n < 0.82
    assert set(data.train["click"].unique()) == {0.0, 1.0}
    assert (data.train["click"] == (data.train["rating"] >= 4)).all()
    assert data.train["genres"].str.contains("Drama").any() and data.train["gender"].isin(["M", "F"]).all()


def test_bad_inputs_are_named(tmp_path, shared_data):
    with pytest.raises(DataError, match="input not found"):
        load_ranking_data(RankingConfig(source="movielens", path=str(tmp_path / "nope")))
    (tmp_path / "u.data").write_text("")
    with pytest.raises(DataError, match="u.data"):
        load_ranking_data(RankingConfig(source="movielens", path=str(tmp_path)))
    with pytest.raises(ConfigError, match="ranking.labels"):
        load_ranking_data(RankingConfig(source="tiny_mtl", path=str(shared_data / "tiny_mtl"), labels=["purchase"]))
    with pytest.raises(DataError, match="one class"):
        load_ranking_data(RankingConfig(source="movielens", path=str(shared_data / "ml-100k"), label_threshold=9))
