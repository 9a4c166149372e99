"""ExplorerService on small hand-made run directories (no Ray): lists, names, histories, map, metrics.

The MovieLens-like run has a ratings file and a u.item beside it, like ../shared/data/ml-100k,
so the names of topics that are not in the vocabulary (the protocol removes a list's movie
before training) come from the names file. Its embeddings hold two well-separated clusters, so
the map's frame can be checked: a cluster's users land beside their own background.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pytest

from reco import artifacts
from reco.data.histories import HISTORY_SCHEMA
from reco.data.vectors import vector_table
from reco.errors import ArtifactError
from reco.run_dir import RunDir
from reco.vocab import Vocabulary
from serve.explorer import ExplorerService
from serve.explorer_lists import list_label
from serve.explorer_routes import page, static_file
from serve.http_errors import NotFound, OutOfRange
from serve.settings import ServeSettings

N_USERS, N_MOVIES, DIM = 60, 12, 8
TITLES = {str(m): f"Movie {m} ({1990 + m})" for m in range(1, N_MOVIES + 1)} | {"99": "Star Wars (1977)"}


def _ratings(rng: np.random.Generator) -> list[tuple[int, int, float, int]]:
    """(user, movie, rating, ts): users 1-30 love movies 1-6, users 31-60 movies 7-12; movie 1 is rated by 1-20 only."""
    rows = []
    for u in range(1, N_USERS + 1):
        liked = range(1, 7) if u <= 30 else range(7, 13)
        for m in range(1, N_MOVIES + 1):
            if m == 1 and u > 20:
                continue
            if m in liked or rng.random() < 0.2:
                rows.append((u, m, 5.0 if m in liked else 2.0, 1_000_000 + 100 * u + m))
    return rows


def _make_run(root, data_dir, *, seed_lists: bool) -> str:
    rng = np.random.default_rng(0)
    rows = _ratings(rng)
    data_dir.mkdir(exist_ok=True)
    (data_dir / "u.data").write_text("".join(f"{u}\t{m}\t{int(r)}\t{t}\n" for u, m, r, t in rows))
    (data_dir / "u.item").write_text("".join(f"{k}|{v}|01-Jan-1995||\n" for k, v in TITLES.items()), encoding="latin-1")
    run = RunDir(str(root))
    run.start(
        {
            "data": {"format": "movielens", "path": str(data_dir / "u.data")},
            "expansion": {"synthetic_lists": {"min_size": 5}},
        }
    )
    users = Vocabulary.from_counts(np.array([str(u) for u in range(1, N_USERS + 1)]), np.ones(N_USERS, np.int64))
    topics = Vocabulary.from_counts(np.array([str(m) for m in range(1, N_MOVIES + 1)]), np.ones(N_MOVIES, np.int64))
    run.write_table(artifacts.USER_VOCAB, users.to_table("user_id", role=pa.array(["train"] * N_USERS)), step="t")
    names = pa.array([TITLES[r] for r in topics.raw_ids.to_pylist()])
    run.write_table(
        artifacts.TOPIC_VOCAB,
        topics.to_table("topic_id", train_count=np.ones(N_MOVIES, np.int64), name=names),
        step="t",
    )
    u = users.encode([str(r[0]) for r in rows])
    t = topics.encode([str(r[1]) for r in rows])
    w = np.array([r[2] for r in rows], np.float32)
    ts = np.array([r[3] for r in rows], np.int64)
    run.write_table(
        "interactions",
        pa.table({"user_id": u, "topic_id": t, "weight": w, "ts": ts, "split": ["train"] * len(u)}),
        step="t",
    )
    hist = []
    for d in range(N_USERS):
        mine = np.flatnonzero(u == d)
        last = mine[np.argmax(ts[mine])]  # the latest interaction is the held-out target
        inputs = [i for i in mine if i != last]
        hist.append(
            {
                "user_id": d,
                "role": "train",
                "topics": t[inputs].tolist(),
                "weights": w[inputs].tolist(),
                "ts": ts[inputs].tolist(),
                "targets": [int(t[last])],
                "target_weights": [float(w[last])],
                "target_ts": [int(ts[last])],
            }
        )
    run.write_table("histories", pa.Table.from_pylist(hist, schema=HISTORY_SCHEMA), step="t")
    centres = np.zeros((2, DIM), np.float32)
    centres[0, 0], centres[1, 1] = 5.0, 5.0
    vectors = centres[(np.arange(N_USERS) >= 30).astype(int)] + rng.normal(0, 0.3, (N_USERS, DIM)).astype(np.float32)
    run.write_table(artifacts.USER_EMBEDDINGS, vector_table("user_id", np.arange(N_USERS), vectors), step="t")
    run.write_json(
        artifacts.metrics("expansion"),
        {"meta": {"lists": 1}, "buckets": {"small": {"methods": {"blend": {"auc": float("nan")}}}}},
        step="t",
    )
    run.write_json(
        artifacts.metrics("ranking"),
        {"model": "deepfm", "test": {"ctr": {"label": {"auc": 0.7, "gauc": float("nan")}}}},
        step="t",
    )
    run.write_bytes(artifacts.report("curve.png"), b"\x89PNG fake", step="t")
    run.write_bytes(artifacts.report("notes.md"), b"# not a plot", step="t")
    if seed_lists:
        members = [str(x) for x in range(1, 21)]
        table = pa.table(
            {
                "seed_list_id": ["movie:99"] * 20 + ["my list"] * 6,
                "user_id": members + ["31", "32", "33", "34", "35", "36"],
            }
        )
        run.write_table(artifacts.SEED_LISTS, table, step="expand", meta={"source": "a test"})
    return str(root)


@pytest.fixture(scope="module")
def explorer(tmp_path_factory) -> ExplorerService:
    base = tmp_path_factory.mktemp("explorer")
    return ExplorerService(ServeSettings(run_dir=_make_run(base / "run", base / "ml", seed_lists=True)), map_sample=40)


@pytest.fixture(scope="module")
def derived(tmp_path_factory) -> ExplorerService:
    base = tmp_path_factory.mktemp("explorer-derived")
    return ExplorerService(ServeSettings(run_dir=_make_run(base / "run", base / "ml", seed_lists=False)), map_sample=40)


def test_run_info_names_the_run_and_its_data(explorer):
    info = explorer.run_info()
    assert (
        info["data_format"] == "movielens"
        and info["data"].startswith("movielens: ")
        and info["data"].endswith("u.data")
    )
    assert (info["users"], info["topics"], info["map_users"]) == (N_USERS, N_MOVIES, 40)
    assert info["weight_label"] == "rating" and info["topic_names"] is True and info["ranker"] == "deepfm"
    assert info["limits"]["max_seed_ids"] == 10_000 and len(info["map_explained_variance"]) == 2


def test_the_runs_own_seed_lists_with_names_from_the_names_file(explorer):
    lists = {x["id"]: x for x in explorer.seed_lists()}
    assert set(lists) == {"movie:99", "my list"}
    assert lists["movie:99"]["label"] == 'rated "Star Wars (1977)" 4 or more'  # movie 99 is not in the vocabulary
    assert (
        lists["movie:99"]["size"] == 20
        and lists["movie:99"]["bucket"] == "small"
        and "a test" in lists["movie:99"]["source"]
    )
    assert explorer.seed_list("my list")["user_ids"] == ["31", "32", "33", "34", "35", "36"]
    with pytest.raises(NotFound, match="unknown prepared seed list 'nope'"):
        explorer.seed_list("nope")


def test_lists_derived_from_interactions_when_the_run_has_none(derived):
    lists = {x["id"]: x for x in derived.seed_lists()}
    assert lists, "no prepared lists"
    assert lists["movie:1"]["label"] == 'rated "Movie 1 (1991)" 4 or more'
    assert set(derived.seed_list("movie:1")["user_ids"]) == {str(u) for u in range(1, 21)}  # rated 5 by users 1-20 only
    assert all(lists[f"movie:{m}"]["size"] >= 30 for m in range(2, 13) if f"movie:{m}" in lists)


def test_list_labels():
    name = {"50": "Star Wars (1977)", "289": "Radiohead"}.get
    assert list_label("movie:50", name) == 'rated "Star Wars (1977)" 4 or more'
    assert list_label("artist:289", name) == "listens to Radiohead"
    assert list_label("artist:7", name) == "listens to artist 7"
    assert list_label("community:3", name) == "community 3, all members"
    assert list_label("community:3/small-1", name) == "community 3, sample small-1"
    assert list_label("customers-2024", name) == "customers-2024"


def test_history_heaviest_then_latest_with_titles_and_targets(explorer):
    h = explorer.history("31")
    items = h["items"]
    assert h["total"] == len(items) and h["weight_label"] == "rating"
    keys = [(-x["weight"], -x["ts"]) for x in items]
    assert keys == sorted(keys)
    assert {x["item_id"] for x in items if x["weight"] == 5.0} == {str(m) for m in range(7, 13)}
    assert sum(x["held_out"] for x in items) == 1 and items[0]["name"] == TITLES[items[0]["item_id"]]
    with pytest.raises(NotFound, match="unknown user 'ghost'"):
        explorer.history("ghost")
    with pytest.raises(NotFound):
        explorer.history("\ud800")  # not even encodable: unknown, not a crash


def test_top_topics_of_many_users(explorer):
    top = explorer.top_topics(["1", "45", "ghost", "\ud800"], k=2)
    assert set(top) == {"1", "45"}
    assert len(top["1"]) == 2 and all(x["weight"] == 5.0 and int(x["item_id"]) <= 6 for x in top["1"])
    assert all(int(x["item_id"]) >= 7 for x in top["45"])
    with pytest.raises(OutOfRange, match="user_ids is 1001"):
        explorer.top_topics(["1"] * 1001)


def test_map_puts_users_beside_their_own_cluster_in_one_frame(explorer):
    m = explorer.map_points(["1", "2", "2", "ghost"], ["40", "41"])
    assert len(m["background"]) == 40 and len(m["seeds"]) == 2 and m["seeds_unknown"] == 1 and len(m["audience"]) == 2
    bg = {p["user_id"]: np.array([p["x"], p["y"]]) for p in m["background"]}
    first = np.mean([v for k, v in bg.items() if int(k) <= 30], axis=0)
    second = np.mean([v for k, v in bg.items() if int(k) > 30], axis=0)
    for p in m["seeds"]:
        xy = np.array([p["x"], p["y"]])
        assert np.linalg.norm(xy - first) < np.linalg.norm(xy - second)
    for p in m["audience"]:
        xy = np.array([p["x"], p["y"]])
        assert np.linalg.norm(xy - second) < np.linalg.norm(xy - first)
    again = explorer.map_points([], [m["background"][0]["user_id"]])["audience"][0]  # same user, same point
    assert (again["x"], again["y"]) == (m["background"][0]["x"], m["background"][0]["y"])
    assert explorer.map_points([], [])["seeds"] == []


def test_evaluation_is_json_safe_and_serves_only_png_reports(explorer):
    ev = explorer.evaluation()
    assert ev["expansion"]["buckets"]["small"]["methods"]["blend"]["auc"] is None  # NaN is not JSON
    assert ev["ranking"]["test"]["ctr"]["label"] == {"auc": 0.7, "gauc": None}
    assert ev["reports"] == ["curve.png"] and explorer.report("curve.png") == b"\x89PNG fake"
    assert not any(isinstance(v, float) and not math.isfinite(v) for v in _leaves(ev))
    with pytest.raises(NotFound, match="no report plot 'notes.md'"):
        explorer.report("notes.md")


def _leaves(obj):
    if isinstance(obj, dict):
        for v in obj.values():
            yield from _leaves(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _leaves(v)
    else:
        yield obj


def test_an_empty_run_directory_is_a_clear_error(tmp_path):
    with pytest.raises(ArtifactError, match="holds no run"):
        ExplorerService(ServeSettings(run_dir=str(tmp_path)))


def test_page_base_follows_the_route_prefix_and_static_files_stay_inside():
    for root, want in (("", '<base href="./">'), ("/reco", '<base href="/reco/">'), ("/a/b/", '<base href="/a/b/">')):
        html = page(SimpleNamespace(scope={"root_path": root})).body.decode()
        assert want in html and 'src="static/explorer.js"' in html
    assert static_file("explorer.js").media_type == "text/javascript"
    for bad in ("../explorer.py", ".hidden", "nope.js"):
        with pytest.raises(NotFound):
            static_file(bad)
