"""Seed lists in: formats, unknown ids, duplicates, too-small lists, and bad input."""

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from reco.errors import DataError
from reco.expansion.seed_lists import lists_table, read_seed_table, resolve
from reco.vocab import Vocabulary

# dense id i <-> raw id str(100 + i): numeric raw ids sort numerically, so the mapping is fixed
USERS = Vocabulary.from_counts(np.array([str(100 + i) for i in range(20)]), np.ones(20, np.int64))


def u(i):
    return str(100 + i)


def _jsonl(tmp_path, rows, name="lists.jsonl"):
    p = tmp_path / name
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(p)


def test_jsonl_and_parquet_read_the_same(tmp_path):
    rows = [
        {"seed_list_id": "a", "user_id": u(1)},
        {"seed_list_id": "a", "user_id": u(2)},
        {"seed_list_id": 7, "user_id": 3},
    ]
    pq.write_table(pa.table({"seed_list_id": ["a", "a", "7"], "user_id": [u(1), u(2), "3"]}), tmp_path / "l.parquet")
    from_json = read_seed_table(_jsonl(tmp_path, rows[:2] + [{"seed_list_id": "7", "user_id": "3"}]))
    from_parquet = read_seed_table(str(tmp_path / "l.parquet"))
    assert from_json.equals(from_parquet)
    ints = read_seed_table(_jsonl(tmp_path, [{"seed_list_id": 7, "user_id": 3}], "ints.jsonl"))
    assert ints.column("user_id").to_pylist() == ["3"] and ints.column("seed_list_id").to_pylist() == ["7"]


def test_unknown_counted_duplicates_dropped_small_lists_rejected_others_go_on(tmp_path):
    rows = (
        [{"seed_list_id": "big", "user_id": u(i)} for i in range(8)]
        + [{"seed_list_id": "big", "user_id": u(1)}, {"seed_list_id": "big", "user_id": u(1)}]
        + [{"seed_list_id": "big", "user_id": "nobody"}, {"seed_list_id": "big", "user_id": "ghost"}]
        + [{"seed_list_id": "tiny", "user_id": raw} for raw in (u(3), u(4), "zzz")]
    )
    out = resolve(read_seed_table(_jsonl(tmp_path, rows)), USERS, min_seeds=5)
    assert [s.list_id for s in out.accepted] == ["big"]
    big = out.accepted[0]
    assert big.users.tolist() == list(range(8)) and big.unknown == 2 and big.duplicates == 2 and big.given == 12
    assert (
        "tiny" in out.rejected
        and "2 known seed(s)" in out.rejected["tiny"]
        and "expansion.min_seeds=5" in out.rejected["tiny"]
    )
    s = out.summary()
    assert s["unknown_ids"] == 2 and s["duplicates_dropped"] == 2 and s["accepted"] == 1


def test_ids_without_an_embedding_count_as_unknown(tmp_path):
    rows = [{"seed_list_id": "a", "user_id": u(i)} for i in range(6)]
    out = resolve(read_seed_table(_jsonl(tmp_path, rows)), USERS, min_seeds=2, embedded=np.array([0, 1, 2, 3]))
    assert out.accepted[0].users.tolist() == [0, 1, 2, 3] and out.accepted[0].unknown == 2


def test_an_empty_list_is_an_error(tmp_path):
    rows = [{"seed_list_id": "ok", "user_id": u(i)} for i in range(6)] + [{"seed_list_id": "void", "user_id": None}]
    with pytest.raises(DataError, match="seed list 'void' is empty"):
        resolve(read_seed_table(_jsonl(tmp_path, rows)), USERS, min_seeds=1)


def test_no_list_surviving_is_an_error(tmp_path):
    rows = [{"seed_list_id": "a", "user_id": u(1)}, {"seed_list_id": "b", "user_id": "nobody"}]
    with pytest.raises(DataError, match="no seed list has at least expansion.min_seeds=5"):
        resolve(read_seed_table(_jsonl(tmp_path, rows)), USERS, min_seeds=5)


@pytest.mark.parametrize(
    "content, name, message",
    [
        (None, "missing.jsonl", "seed lists not found"),
        ("", "empty.jsonl", "seed lists file is empty"),
        ('{"seed_list_id": "a"}\n', "nouser.jsonl", "missing column(s) ['user_id']"),
        ('{"seed_list_id": "a", "user_id": "101"\n', "broken.jsonl", "cannot be read"),
        (
            '{"seed_list_id": null, "user_id": "101"}\n{"seed_list_id": "a", "user_id": "102"}\n',
            "noid.jsonl",
            "without a seed_list_id",
        ),
        ('{"seed_list_id": "a", "user_id": 1.5}\n', "float.jsonl", "non-integer numbers"),
        ("a,b\n", "lists.csv", "expected a .parquet file"),
    ],
)
def test_bad_files_fail_with_one_line_naming_them(tmp_path, content, name, message):
    p = tmp_path / name
    if content is not None:
        p.write_text(content)
    with pytest.raises(DataError) as e:
        read_seed_table(str(p))
    assert message in str(e.value) and name in str(e.value) and "\n" not in str(e.value)


def test_parquet_without_rows_is_an_error(tmp_path):
    pq.write_table(
        pa.table({"seed_list_id": pa.array([], pa.string()), "user_id": pa.array([], pa.string())}),
        tmp_path / "e.parquet",
    )
    with pytest.raises(DataError, match="hold no rows"):
        read_seed_table(str(tmp_path / "e.parquet"))


def test_lists_table_writes_raw_ids():
    t = lists_table([("a", np.array([0, 3])), ("b", np.array([19]))], USERS)
    assert t.to_pydict() == {"seed_list_id": ["a", "a", "b"], "user_id": ["100", "103", "119"]}
