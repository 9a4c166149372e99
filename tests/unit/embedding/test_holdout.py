import numpy as np

from reco.embedding.holdout import popularity_scores, summarize, target_ranks


def test_ranks_exclude_inputs_and_count_ties_against_target():
    scores = np.array([[0.9, 0.8, 0.7, 0.1]])
    # input topic 0 is masked, so target 1 ranks first
    r = target_ranks(scores, np.array([0]), np.array([1]), np.array([1, 3]), np.array([2]))
    assert r.tolist() == [0, 2]
    flat = np.zeros((1, 4))
    assert target_ranks(flat, np.array([], np.int64), np.array([0]), np.array([2]), np.array([1])).tolist() == [3]


def test_summary_and_popularity():
    s = summarize(np.array([0, 5, 30]), ks=(1, 10))
    assert s == {"hit@1": 1 / 3, "hit@10": 2 / 3, "mean_rank": 12.666666666666666, "targets": 3}
    p = popularity_scores(np.array([5, 9, 5, 1]), 2)
    assert p.shape == (2, 4)
    assert np.argsort(-p[0]).tolist() == [1, 0, 2, 3]
