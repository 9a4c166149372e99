"""Held-out topic prediction: rank each user's held-out topics among all topics.

The protocol of the spine's figures (validation hit@10 during training, the Last.fm bench):
score every topic for a user, drop the topics already in the user's input, and find where each
held-out target lands. hit@k is the share of targets ranked in the top k; mean rank is 1-based.
The same function scores a model (cosine of user and topic vectors) and the popularity
baseline (the same popularity scores for every user), so both meet the same masking.
"""

from __future__ import annotations

import numpy as np

from reco import artifacts


def target_ranks(
    scores: np.ndarray,
    input_flat: np.ndarray,
    input_lengths: np.ndarray,
    target_flat: np.ndarray,
    target_lengths: np.ndarray,
) -> np.ndarray:
    """0-based rank of every (user, target) among the topics not in that user's input.

    ``scores`` is (B, T); ties count against the target (a constant model scores no hits).
    """
    scores = np.array(scores, dtype=np.float32, copy=True)
    b = len(input_lengths)
    scores[np.repeat(np.arange(b), input_lengths), input_flat] = -np.inf
    rows = np.repeat(np.arange(b), target_lengths)
    s_t = scores[rows, target_flat]
    return (scores[rows] >= s_t[:, None]).sum(axis=1) - 1


def summarize(ranks: np.ndarray, ks: tuple[int, ...] = (1, 10, 20, 50)) -> dict[str, float]:
    if len(ranks) == 0:
        return {**{f"hit@{k}": float("nan") for k in ks}, "mean_rank": float("nan"), "targets": 0}
    out = {f"hit@{k}": float((ranks < k).mean()) for k in ks}
    out["mean_rank"] = float(ranks.mean() + 1)
    out["targets"] = int(len(ranks))
    return out


def popularity_scores(counts: np.ndarray, n_users: int) -> np.ndarray:
    """(n_users, T) scores of the most-popular baseline: minus the popularity rank, ties by id."""
    order = np.lexsort((np.arange(len(counts)), -np.asarray(counts)))
    s = np.empty(len(counts), dtype=np.float32)
    s[order] = -np.arange(len(counts), dtype=np.float32)
    return np.broadcast_to(s, (n_users, len(counts)))


class HoldoutScorer:
    """Ranks of held-out targets for the trained model and for popularity, per history batch.

    A Ray Data actor UDF (it loads the model from the run directory once); the output has one
    row per (user, target): the user's role and the target's 0-based rank under each scorer.
    """

    def __init__(self, run_uri: str):
        import torch

        from reco.embedding.export import load_model
        from reco.run_dir import RunDir

        torch.set_num_threads(1)
        run = RunDir(run_uri)
        self.model, meta = load_model(run.read_bytes(artifacts.STARSPACE_MODEL))
        self.weighted = bool(meta.get("weighted_pooling", False))
        self.topic_vecs = self.model.topic_vectors().numpy()
        counts = run.read_table(artifacts.TOPIC_VOCAB, columns=["train_count"]).column("train_count").to_numpy()
        self.pop = popularity_scores(counts, 1)[0]

    def __call__(self, batch):
        import pyarrow as pa

        from reco.data.histories import flat_lists
        from reco.embedding.export import embed_histories

        in_flat, in_len = flat_lists(batch.column("topics"))
        tg_flat, tg_len = flat_lists(batch.column("targets"))
        users = embed_histories(self.model, batch, self.weighted)
        model_r = target_ranks(users @ self.topic_vecs.T, in_flat, in_len, tg_flat, tg_len)
        pop_r = target_ranks(np.broadcast_to(self.pop, (len(in_len), len(self.pop))), in_flat, in_len, tg_flat, tg_len)
        roles = np.repeat(np.asarray(batch.column("role").to_numpy(zero_copy_only=False)), tg_len)
        return pa.table({"role": pa.array(roles, pa.string()), "model_rank": model_r, "popularity_rank": pop_r})
