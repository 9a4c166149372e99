"""Malformed data fed to the jobs: a clear one-line error and the run directory left as it was.

A copy of a finished run directory is the victim of every case: each bad input is ingested (or expanded)
into it, must fail with ``error: ...`` naming the problem, and the manifest and every artifact
file must be byte-for-byte what they were. Ids that look odd but are valid (negative, huge,
unicode) must come through exactly.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ray_jobs import expand, ingest
from reco import artifacts
from reco.run_dir import RunDir

pytestmark = pytest.mark.ray
ROOT = Path(__file__).resolve().parents[2]
GENERIC = ["--set", "data.format=generic", "--set", "data.columns={user: u, topic: t, weight: w}"]


def _snapshot(run_dir: Path) -> dict[str, str]:
    return {
        str(p.relative_to(run_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(run_dir.rglob("*"))
        if p.is_file() and "train" not in p.parts
    }


@pytest.fixture(scope="module")
def victim(tiny_run, tmp_path_factory) -> Path:
    """A copy of the session's finished tiny run (the other tests keep the original)."""
    run_dir = tmp_path_factory.mktemp("bad-input") / "run"
    shutil.copytree(tiny_run[0], run_dir)
    return run_dir


def _good_rows(n: int = 400) -> dict[str, list]:
    return {"u": [str(i % 97) for i in range(n)], "t": [str(i % 13) for i in range(n)], "w": [1.0] * n}


def _csv(path: Path, rows: dict[str, list]) -> Path:
    lines = ["u,t,w"] + [f"{u},{t},{w}" for u, t, w in zip(rows["u"], rows["t"], rows["w"])]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def truncated_parquet(d: Path) -> Path:
    pq.write_table(pa.table(_good_rows()), d / "full.parquet")
    data = (d / "full.parquet").read_bytes()
    (d / "cut.parquet").write_bytes(data[: len(data) // 2])
    return d / "cut.parquet"


def wrong_types(d: Path) -> Path:
    rows = _good_rows()
    pq.write_table(pa.table({"u": rows["u"], "t": rows["t"], "w": ["heavy"] * len(rows["u"])}), d / "typed.parquet")
    return d / "typed.parquet"


def _parquet(path: Path, rows: dict[str, list]) -> Path:
    pq.write_table(pa.table(rows), path)
    return path


def nan_weights(d: Path) -> Path:
    rows = _good_rows()
    rows["w"][7] = float("nan")
    return _parquet(d / "nan.parquet", rows)


def inf_weights(d: Path) -> Path:
    rows = _good_rows()
    rows["w"][3] = float("-inf")
    return _parquet(d / "inf.parquet", rows)


def nan_in_csv(d: Path) -> Path:
    rows = _good_rows()
    rows["w"][7] = float("nan")  # written as "nan": CSV readers take it for an empty value
    return _csv(d / "nan.csv", rows)


def empty_ids(d: Path) -> Path:
    rows = _good_rows()
    rows["u"][5] = ""
    return _csv(d / "empty-id.csv", rows)


def header_only(d: Path) -> Path:
    return _csv(d / "header.csv", {"u": [], "t": [], "w": []})


def empty_file(d: Path) -> Path:
    (d / "empty.csv").write_text("")
    return d / "empty.csv"


BAD_FILES = [
    (truncated_parquet, "not a readable Parquet file"),
    (wrong_types, "(weight) is not numeric"),
    (nan_weights, "NaN or infinite"),
    (inf_weights, "NaN or infinite"),
    (nan_in_csv, "(weight) has 1 empty value"),
    (empty_ids, "empty value"),
    (header_only, "no interactions"),
    (empty_file, "input file is empty"),
]


@pytest.mark.parametrize("make, message", BAD_FILES, ids=[m.__name__ for m, _ in BAD_FILES])
def test_bad_interaction_files_fail_clearly_and_change_nothing(victim, tmp_path, capsys, make, message):
    before = _snapshot(victim)
    path = make(tmp_path)
    rc = ingest.main(
        ["--config", "configs/tiny.yaml", "--set", f"run_dir={victim}", "--set", f"data.path={path}", *GENERIC]
    )
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert rc == 2 and err.startswith("error: ") and message in err, err
    assert path.name in err or message == "no interactions"
    assert _snapshot(victim) == before, "a failed ingest changed the run directory"


def test_odd_but_valid_ids_come_through_exactly(ray_session, tmp_path):
    odd = ["-1", "-000042", "99999999999999999999999999", "ユーザー", "użytkownik", "👩‍🔬", "inner space"]
    rows = {
        "u": [odd[i % len(odd)] for i in range(700)],
        "t": [f"topic-{i % 11}" for i in range(700)],
        "w": [1.0] * 700,
    }  # 100 each
    data = tmp_path / "odd.parquet"
    pq.write_table(pa.table(rows), data)
    run_dir = tmp_path / "run"
    assert (
        ingest.main(
            [
                "--config",
                "configs/tiny.yaml",
                "--set",
                f"run_dir={run_dir}",
                "--set",
                f"data.path={data}",
                *GENERIC,
            ]
        )
        == 0
    )
    raw = RunDir(str(run_dir)).read_table(artifacts.USER_VOCAB).column("raw_id").to_pylist()
    assert sorted(raw) == sorted(odd)


@pytest.mark.parametrize(
    "content, message",
    [
        ("", "empty"),
        (
            '{"seed_list_id": "a", "user_id": "ghost-1"}\n{"seed_list_id": "a", "user_id": "ghost-2"}\n',
            "no seed list has at least",
        ),
        ('{"seed_list_id": "a"}\n', "user_id"),
        ("this is not json\n", "seeds.jsonl"),
    ],
    ids=["empty-file", "only-unknown-ids", "missing-column", "malformed-json"],
)
def test_bad_seed_lists_fail_clearly_and_change_nothing(victim, tmp_path, capsys, content, message):
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text(content)
    before = _snapshot(victim)
    rc = expand.main(
        ["--config", "configs/tiny.yaml", "--set", f"run_dir={victim}", "--set", f"expansion.seed_lists={seeds}"]
    )
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert rc == 2 and err.startswith("error: ") and message in err, err
    assert _snapshot(victim) == before
