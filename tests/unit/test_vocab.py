import numpy as np
import pandas as pd
import pyarrow as pa

from reco.vocab import Vocabulary, count_ids, merge_counts


def test_natural_order_numeric_ids():
    v = Vocabulary.from_counts(np.array(["10", "9", "100", "1"]), np.array([1, 2, 3, 4]))
    assert v.raw_ids.to_pylist() == ["1", "9", "10", "100"]
    assert v.counts.tolist() == [4, 2, 1, 3]


def test_string_ids_sorted_lexicographically():
    v = Vocabulary.from_counts(np.array(["bob", "alice", "u10"]), np.array([1, 1, 1]))
    assert v.raw_ids.to_pylist() == ["alice", "bob", "u10"]


def test_encode_decode_round_trip_and_unknown():
    v = Vocabulary.from_counts(np.array(["a", "b", "c"]), np.ones(3))
    assert v.encode(["c", "a", "zz"]).tolist() == [2, 0, -1]
    assert v.decode([2, 0]) == ["c", "a"]


def test_table_round_trip():
    v = Vocabulary.from_counts(np.array(["x", "y"]), np.array([3, 4]))
    t = v.to_table("user_id")
    back = Vocabulary.from_table(t.take(pa.array([1, 0])), "user_id")
    assert back.raw_ids.to_pylist() == ["x", "y"]
    assert back.counts.tolist() == [3, 4]


def test_counts_merge_across_batches():
    b1 = pa.table({"user": ["1", "1", "2"], "topic": ["a", "b", "a"]})
    b2 = pa.table({"user": ["2", "3"], "topic": ["c", "a"]})
    parts = pd.concat([count_ids(b1).to_pandas(), count_ids(b2).to_pandas()])
    users, topics = merge_counts(parts)
    assert users.raw_ids.to_pylist() == ["1", "2", "3"]
    assert users.counts.tolist() == [2, 2, 1]
    assert dict(zip(topics.raw_ids.to_pylist(), topics.counts.tolist())) == {"a": 3, "b": 1, "c": 1}


def test_a_few_ids_are_encoded_like_many():
    """Small lookups (a served request) use a dict, large ones pyarrow: the same answer."""
    from reco.vocab import SMALL_LOOKUP

    v = Vocabulary.from_counts(np.array([str(i) for i in range(3000)]), np.ones(3000, np.int64))
    few = ["7", 12, "nope", "2999", " 5", "0"]
    many = few * (SMALL_LOOKUP // len(few) + 1)
    assert len(many) > SMALL_LOOKUP
    assert v.encode(few).tolist() == [7, 12, -1, 2999, -1, 0]
    assert v.encode(many).tolist() == v.encode(few).tolist() * (len(many) // len(few))
    assert v.encode([]).tolist() == [] and v.encode([]).dtype == np.int64
