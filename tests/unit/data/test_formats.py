"""Real formats read in place, and every bad input named in one line."""

import pyarrow as pa
import pytest

from reco.data.config import ColumnMapping, DataConfig
from reco.data.formats import filter_batch, normalize_batch, read_local, read_topic_names, resolve_source
from reco.errors import DataError


def test_movielens_u_data(shared_data):
    src = resolve_source(DataConfig(format="movielens", path=str(shared_data / "ml-100k" / "u.data")))
    t = read_local(src)
    assert t.num_rows == 100_000
    assert t.schema.names == ["user", "topic", "weight", "ts"]
    assert len(set(t.column("user").to_pylist())) == 943
    assert len(set(t.column("topic").to_pylist())) == 1682
    assert t.column("ts").to_numpy().min() > 800_000_000
    names = read_topic_names(src).to_pandas().set_index("raw_id")["name"]
    assert names["1"] == "Toy Story (1995)"


def test_movielens_directory_works(shared_data):
    src = resolve_source(DataConfig(format="movielens", path=str(shared_data / "ml-100k")))
    assert src.files[0].uri.endswith("u.data")


def test_movielens_ratings_dat(tmp_path):
    p = tmp_path / "ratings.dat"
    p.write_text("1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978300000\n")
    t = read_local(resolve_source(DataConfig(format="movielens", path=str(p))))
    assert t.column("user").to_pylist() == ["1", "1", "2"]
    assert t.column("topic").to_pylist() == ["1193", "661", "1193"]
    assert t.column("weight").to_pylist() == [5.0, 3.0, 4.0]


def test_lastfm(shared_data):
    src = resolve_source(DataConfig(format="lastfm", path=str(shared_data / "lastfm-2k" / "user_artists.dat")))
    t = read_local(src)
    assert t.num_rows == 92_834
    assert len(set(t.column("user").to_pylist())) == 1892
    assert (t.column("ts").to_numpy() == 0).all()
    names = read_topic_names(src).to_pandas().set_index("raw_id")["name"]
    assert names["1"] == "MALICE MIZER"


def test_lastfm_with_header(tmp_path):
    p = tmp_path / "user_artists.dat"
    p.write_text("userID\tartistID\tweight\n2\t51\t13883\n2\t52\t11690\n")
    t = read_local(resolve_source(DataConfig(format="lastfm", path=str(p))))
    assert t.num_rows == 2 and t.column("weight").to_pylist() == [13883.0, 11690.0]


def _generic(path, **kw):
    return DataConfig(
        format="generic", path=str(path), columns=ColumnMapping(user="u", topic="t", weight="w", ts="time"), **kw
    )


def test_generic_csv_tsv_parquet(tmp_path):
    (tmp_path / "a.csv").write_text("u,t,w,time\nalice,x,1.5,10\nbob,y,2,20\n")
    t = read_local(resolve_source(_generic(tmp_path / "a.csv")))
    assert t.column("user").to_pylist() == ["alice", "bob"]
    assert t.column("weight").to_pylist() == [1.5, 2.0]
    (tmp_path / "a.tsv").write_text("u\tt\tw\ttime\nalice\tx\t1\t10\n")
    assert read_local(resolve_source(_generic(tmp_path / "a.tsv"))).num_rows == 1
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"u": [1, 2], "t": ["x", "y"], "w": [1.0, 2.0], "time": [1, 2]}), tmp_path / "a.parquet")
    t = read_local(resolve_source(_generic(tmp_path / "a.parquet")))
    assert t.column("user").to_pylist() == ["1", "2"]


def test_missing_file_is_named(tmp_path):
    with pytest.raises(DataError, match="input not found: .*nope.dat"):
        resolve_source(DataConfig(format="lastfm", path=str(tmp_path / "nope.dat")))


def test_empty_file_is_named(tmp_path):
    p = tmp_path / "u.data"
    p.write_text("")
    with pytest.raises(DataError, match="input file is empty: .*u.data"):
        resolve_source(DataConfig(format="movielens", path=str(p)))


def test_header_only_file_has_no_interactions(tmp_path):
    p = tmp_path / "a.csv"
    p.write_text("u,t,w,time\n")
    with pytest.raises(DataError, match="no interactions"):
        read_local(resolve_source(_generic(p)))


def test_missing_columns_are_named(tmp_path):
    p = tmp_path / "a.csv"
    p.write_text("u,topic,w,time\n1,2,3,4\n")
    with pytest.raises(DataError, match=r"missing column\(s\) \['t'\]"):
        resolve_source(_generic(p))


def test_wrong_field_count_for_movielens(tmp_path):
    p = tmp_path / "u.data"
    p.write_text("1\t2\t3\n")
    with pytest.raises(DataError, match="expected 4"):
        resolve_source(DataConfig(format="movielens", path=str(p)))


def test_wrongly_typed_column_is_named(tmp_path):
    p = tmp_path / "a.csv"
    p.write_text("u,t,w,time\n1,2,lots,4\n")
    with pytest.raises(DataError, match=r"a.csv: column 'w' \(weight\) is not numeric"):
        read_local(resolve_source(_generic(p)))


def test_nan_weights_and_empty_ids_are_rejected():
    cols = {"user": "u", "topic": "t", "weight": "w", "ts": None}
    with pytest.raises(DataError, match="NaN or infinite"):
        normalize_batch(pa.table({"u": ["1"], "t": ["2"], "w": [float("nan")]}), cols, "x.csv")
    with pytest.raises(DataError, match="empty value"):
        normalize_batch(pa.table({"u": ["1", None], "t": ["2", "3"], "w": [1.0, 2.0]}), cols, "x.csv")
    with pytest.raises(DataError, match="empty value"):
        normalize_batch(pa.table({"u": ["1", " "], "t": ["2", "3"], "w": [1.0, 2.0]}), cols, "x.csv")


def test_unknown_format_is_an_error():
    cfg = DataConfig.model_construct(format="netflix", path="x")
    with pytest.raises(DataError, match="unknown data format 'netflix'"):
        resolve_source(cfg)


def test_filters():
    t = pa.table(
        {
            "user": ["1", "1", "2"],
            "topic": ["a", "b", "a"],
            "weight": pa.array([5, 2, 4], pa.float32()),
            "ts": [0, 0, 0],
        }
    )
    out = filter_batch(t, min_weight=4, exclude_topics=["b"])
    assert out.column("topic").to_pylist() == ["a", "a"]
    out = filter_batch(t, min_weight=None, exclude_topics=["a"])
    assert out.column("topic").to_pylist() == ["b"]
