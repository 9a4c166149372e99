"""The data views the ranker learns from, as pandas frames of raw values plus a FeatureSpec.

- ``movielens``, CTR view: every rating is an impression, a rating >= 4 a click; user (gender,
  age, occupation, zip prefix), item (genres, release year) and context (weekday, rating day)
  features joined from u.user / u.item; random 80/10/10 split with a fixed seed.
- ``movielens_ncf``, the NCF protocol: every rating is an implicit positive; each user's latest
  interaction (same-second ties in seeded random order) is the test item, the latest of the
  rest the validation item (epochs are chosen on it, never on test users' held-out items);
  each is listed with ``eval_negatives`` items the user never interacted with, sampled with a
  fixed seed. Training rows are positives only; the
  training loop samples negatives every epoch.
- ``tiny_mtl``: the multi-task sample (train.csv / test.csv); validation is carved from train.
- ``run_dir``: a pipeline run's interactions with label = weight >= threshold; its train split
  trains, its validation split is halved by user into validation and test, so the ranker also
  trains on the synthetic default run.
- ``tabular``: the user's own log, its files and columns declared in ``ranking.tabular``
  (reco.rank.tabular reads and splits it).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from reco import artifacts
from reco.errors import ConfigError, DataError
from reco.rank.config import RankingConfig
from reco.rank.features import FeatureSpec, FieldSpec, stable_hash
from reco.rank.ranking_data import RankingData
from reco.rank.tabular import random_split, tabular_view
from reco.run_dir import RunDir
from reco.storage import Location, locate

DEFAULT_PATHS = {
    "movielens": "../shared/data/ml-100k",
    "movielens_ncf": "../shared/data/ml-100k",
    "tiny_mtl": "../shared/data/tiny_mtl",
}
ML_GENRES = (
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
)


def _file(folder: str | Location, name: str) -> Location:
    """A non-empty file of a data set's folder (local or a URI), or a DataError naming it."""
    return (folder if isinstance(folder, Location) else locate(folder)).child(name).require_file()


# -- MovieLens ---------------------------------------------------------------------------------


def read_ratings(folder: str) -> pd.DataFrame:
    path = _file(folder, "u.data")
    try:
        with path.open() as f:
            df = pd.read_csv(f, sep="\t", header=None, names=["user_id", "item_id", "rating", "ts"], dtype="int64")
    except ValueError as e:
        raise DataError(f"{path}: not MovieLens u.data (user, item, rating, ts as integers): {e}") from None
    return df


def read_users(folder: str) -> pd.DataFrame:
    """u.user: user_id, gender, age, occupation, zip3 (first three characters of the zip code)."""
    with _file(folder, "u.user").open() as f:
        df = pd.read_csv(
            f,
            sep="|",
            header=None,
            names=["user_id", "age", "gender", "occupation", "zip"],
            dtype={"user_id": "int64", "age": "int64", "zip": "string"},
        )
    df["zip3"] = df["zip"].str[:3]
    return df[["user_id", "gender", "age", "occupation", "zip3"]]


def read_items(folder: str) -> pd.DataFrame:
    """u.item: item_id, genres ("Action|Comedy"), release_year (NaN when unknown)."""
    cols = ["item_id", "title", "release", "video", "url", *ML_GENRES]
    with _file(folder, "u.item").open() as f:
        df = pd.read_csv(f, sep="|", header=None, names=cols, encoding="latin-1")
    flags = df[list(ML_GENRES)].to_numpy(bool)
    names = np.asarray(ML_GENRES, dtype=object)
    genres = ["|".join(names[row]) for row in flags]
    year = pd.to_datetime(df["release"], format="%d-%b-%Y", errors="coerce").dt.year
    return pd.DataFrame(
        {"item_id": df["item_id"].astype("int64"), "genres": genres, "release_year": year.astype("float64")}
    )


ML_CTR_SPEC = FeatureSpec(
    fields=(
        FieldSpec("user_id", "cat", "user"),
        FieldSpec("gender", "cat", "user"),
        FieldSpec("age", "cat", "user"),
        FieldSpec("occupation", "cat", "user"),
        FieldSpec("zip3", "cat", "user"),
        FieldSpec("item_id", "cat", "item"),
        FieldSpec("genres", "multi", "item"),
        FieldSpec("release_year", "dense", "item"),
        FieldSpec("weekday", "cat", "context"),
        FieldSpec("day", "dense", "context"),
    ),
    user_key="user_id",
    item_key="item_id",
)
ID_SPEC = FeatureSpec(
    (FieldSpec("user_id", "cat", "user"), FieldSpec("item_id", "cat", "item")), user_key="user_id", item_key="item_id"
)


def movielens_ctr(folder: str, cfg: RankingConfig) -> RankingData:
    ratings = read_ratings(folder)
    users, items = read_users(folder), read_items(folder)
    df = ratings.merge(users, on="user_id", how="left").merge(items, on="item_id", how="left")
    df["click"] = (df["rating"] >= cfg.label_threshold).astype(np.float32)
    when = pd.to_datetime(df["ts"], unit="s")
    df["weekday"] = when.dt.dayofweek
    df["day"] = (df["ts"] - df["ts"].min()) / 86400.0
    train, val, test = random_split(df, cfg.val_share, cfg.test_share, cfg.split_seed)
    return RankingData("ml-100k ctr", ML_CTR_SPEC, ["click"], train, val, test, "ctr", users, items)


def sample_unseen(
    seen: dict[int, np.ndarray], n_items_all: np.ndarray, n: int, rng: np.random.Generator
) -> dict[int, np.ndarray]:
    """n distinct items per user drawn uniformly from the items the user never interacted with."""
    out = {}
    for user in sorted(seen):
        pool = np.setdiff1d(n_items_all, seen[user], assume_unique=False)
        if len(pool) < n:
            raise DataError(f"user {user} has only {len(pool)} unseen items, fewer than eval_negatives={n}")
        out[user] = rng.choice(pool, size=n, replace=False)
    return out


def _candidate_lists(held: pd.DataFrame, negatives: dict[int, np.ndarray]) -> pd.DataFrame:
    neg_users = np.repeat(held["user_id"].to_numpy(), [len(negatives[u]) for u in held["user_id"]])
    neg_items = np.concatenate([negatives[u] for u in held["user_id"]])
    rows = pd.concat(
        [held.assign(label=1.0), pd.DataFrame({"user_id": neg_users, "item_id": neg_items, "label": 0.0})],
        ignore_index=True,
    )
    return rows.sort_values(["user_id", "label"], ascending=[True, False], kind="stable").reset_index(drop=True)


def latest_last(ratings: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Each user's ratings in time order, same-second ties in a seeded random order.

    44% of MovieLens 100K users rated several movies in their last second; breaking those ties
    by item id would hold out the highest id, i.e. systematically newer, rarer movies."""
    tie = np.random.default_rng([seed, 2]).permutation(len(ratings))
    return ratings.assign(_tie=tie).sort_values(["user_id", "ts", "_tie"], kind="stable").drop(columns="_tie")


def movielens_leave_one_out(folder: str, cfg: RankingConfig) -> RankingData:
    """The NCF protocol (see the module doc); a user needs three interactions."""
    ratings = latest_last(read_ratings(folder), cfg.split_seed)
    pos_from_end = ratings.groupby("user_id").cumcount(ascending=False).to_numpy()
    few = ratings.groupby("user_id")["item_id"].transform("size").to_numpy() < 3
    ratings = ratings[~few]
    pos_from_end = pos_from_end[~few]
    test, val, train = (ratings[pos_from_end == 0], ratings[pos_from_end == 1], ratings[pos_from_end >= 2])
    all_items = np.sort(read_items(folder)["item_id"].to_numpy())
    seen = {u: g.to_numpy() for u, g in ratings.groupby("user_id")["item_id"]}
    rng = np.random.default_rng([cfg.split_seed, 1])  # fixed seed: the same lists every run
    test_neg = sample_unseen(seen, all_items, cfg.eval_negatives, rng)
    val_neg = sample_unseen(seen, all_items, cfg.eval_negatives, rng)
    keep = ["user_id", "item_id"]
    train_rows = train[keep].assign(label=1.0).reset_index(drop=True)
    users = pd.DataFrame({"user_id": np.sort(ratings["user_id"].unique())})
    items = pd.DataFrame({"item_id": all_items})
    return RankingData(
        "ml-100k leave-one-out",
        ID_SPEC,
        ["label"],
        train_rows,
        _candidate_lists(val[keep], val_neg),
        _candidate_lists(test[keep], test_neg),
        "leave_one_out",
        users,
        items,
    )


# -- tiny_mtl ----------------------------------------------------------------------------------


def tiny_mtl(folder: str, cfg: RankingConfig) -> RankingData:
    frames = {}
    for name in ("train.csv", "test.csv"):
        loc = _file(folder, name)
        with loc.open() as f:
            frames[name] = pd.read_csv(f)
        if not {"click", "conversion", "search_id"} <= set(frames[name].columns):
            raise DataError(f"{loc}: needs click, conversion and search_id columns")
    train, test = frames["train.csv"], frames["test.csv"]
    cats = [c for c in train.columns if c.startswith("categorical_")]
    nums = [c for c in train.columns if c.startswith("numerical_")]
    spec = FeatureSpec(
        tuple([FieldSpec(c, "cat") for c in cats] + [FieldSpec(c, "dense") for c in nums]), group_key="search_id"
    )
    val_rows = np.random.default_rng(cfg.split_seed).random(len(train)) < cfg.val_share
    for df in (train, test):
        df[["click", "conversion"]] = df[["click", "conversion"]].astype(np.float32)
    return RankingData(
        "tiny_mtl",
        spec,
        ["click", "conversion"],
        train[~val_rows].reset_index(drop=True),
        train[val_rows].reset_index(drop=True),
        test,
    )


# -- a pipeline run's interactions ---------------------------------------------------------------


def run_dir_view(run: RunDir, cfg: RankingConfig) -> RankingData:
    inter = run.read_table(artifacts.INTERACTIONS, columns=["user_id", "topic_id", "weight", "split"]).to_pandas()
    if len(inter) == 0:
        raise DataError(f"{run.uri}/{artifacts.INTERACTIONS} has no rows")
    users = run.read_table(artifacts.USER_VOCAB, columns=["user_id", "raw_id"]).to_pandas()
    topics = run.read_table(artifacts.TOPIC_VOCAB, columns=["topic_id", "raw_id"]).to_pandas()
    df = pd.DataFrame(
        {
            "user": users["raw_id"].to_numpy()[inter["user_id"].to_numpy()],
            "item": topics["raw_id"].to_numpy()[inter["topic_id"].to_numpy()],
            "label": (inter["weight"].to_numpy() >= cfg.label_threshold).astype(np.float32),
            "split": inter["split"].to_numpy(),
        }
    )
    held = df["split"].isin(["validation", "test_target"])
    to_test = (df["split"] == "test_target") | (held & (stable_hash(df["user"]) % np.uint64(2) == 1))
    train, val, test = df[~held], df[held & ~to_test], df[to_test]
    spec = FeatureSpec(
        (FieldSpec("user", "cat", "user"), FieldSpec("item", "cat", "item")), user_key="user", item_key="item"
    )
    return RankingData(
        f"run {run.uri}",
        spec,
        ["label"],
        *(f.drop(columns="split").reset_index(drop=True) for f in (train, val, test)),
        users=pd.DataFrame({"user": users["raw_id"]}),
        items=pd.DataFrame({"item": topics["raw_id"]}),
    )


def load_ranking_data(cfg: RankingConfig, run: RunDir | None = None) -> RankingData:
    """The configured view, with its labels narrowed to ``cfg.labels``; checked for both classes."""
    folder = cfg.path or DEFAULT_PATHS.get(cfg.source, "")
    if cfg.source == "run_dir":
        if run is None:
            raise ConfigError("ranking.source=run_dir needs a run directory")
        data = run_dir_view(run, cfg)
    elif cfg.source == "tabular":
        data = tabular_view(cfg)
    elif not locate(folder).is_dir():
        raise DataError(f"input not found: {folder} (ranking.path for source {cfg.source})")
    else:
        data = {"movielens": movielens_ctr, "movielens_ncf": movielens_leave_one_out, "tiny_mtl": tiny_mtl}[cfg.source](
            folder, cfg
        )
    if cfg.labels:
        unknown = [lab for lab in cfg.labels if lab not in data.labels]
        if unknown:
            raise ConfigError(f"ranking.labels: {unknown} not in {data.name}'s labels {data.labels}")
        data.labels = list(cfg.labels)
    for name in ("train", "validation", "test"):
        frame = getattr(data, name)
        if len(frame) == 0:
            raise DataError(f"{data.name}: the {name} split is empty")
    y = data.train[data.labels].to_numpy()
    if data.protocol == "ctr" and ((y.sum(axis=0) == 0).any() or (y.sum(axis=0) == len(y)).any()):
        hint = "" if cfg.source == "tabular" else f" (ranking.label_threshold={cfg.label_threshold}?)"
        raise DataError(f"{data.name}: a label has one class in the training split{hint}")
    return data
