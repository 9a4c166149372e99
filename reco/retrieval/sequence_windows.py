"""Training and inference windows for the sequence user tower, free of torch.

A training window is a user's latest ``max_len`` engagements up to a random end point, laid out
right-aligned (left-padded) so the last column is the latest action. Several *anchor* columns
are chosen in it; under a causal mask the tower's output at an anchor sees only that column and
the ones before it, and is asked to predict one engagement that came *after* it:

- ``all_action`` (PinnerFormer's dense all-action objective): a random engagement among the
  next ``window`` ones (optionally also within ``window_seconds``), so every anchor learns the
  user's longer-term future, not just the next click;
- ``next_item`` (SASRec-style): the very next engagement.

Each engagement also carries a time-gap feature: the log2 bucket of the seconds since the user's
previous engagement. Inference windows are every user's latest ``max_len`` engagements.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reco.retrieval.data import UserSequences

GAP_BUCKETS = 32


def gap_buckets(seqs: UserSequences) -> np.ndarray:
    """(total,) log2 bucket of seconds since the same user's previous engagement, 0 for the first."""
    gaps = np.diff(seqs.ts, prepend=seqs.ts[:1] if len(seqs.ts) else seqs.ts).astype(np.float64)
    gaps[seqs.offsets[:-1][seqs.lengths > 0]] = 0
    return np.minimum(np.floor(np.log2(1 + np.maximum(gaps, 0))), GAP_BUCKETS - 1).astype(np.int64)


@dataclass
class Windows:
    tokens: np.ndarray  # (B, N) topic ids; pad_id on the left where a window is short
    gaps: np.ndarray  # (B, N) gap buckets (0 on pads)
    positions: np.ndarray  # (B, N) position of each column in its user's sequence, -1 on pads
    rows: np.ndarray  # (B,) row of each window's user in the sequences
    anchor_window: np.ndarray | None = None  # (A,) which window each anchor belongs to
    anchor_col: np.ndarray | None = None  # (A,) the anchor's column
    positives: np.ndarray | None = None  # (A,) topic to predict
    positive_pos: np.ndarray | None = None  # (A,) its position in the user's sequence


def layout(seqs: UserSequences, rows: np.ndarray, ends: np.ndarray, max_len: int, pad_id: int) -> Windows:
    """Right-aligned windows of ``rows`` ending at positions ``ends`` (inclusive; -1: empty)."""
    b = len(rows)
    tokens = np.full((b, max_len), pad_id, np.int64)
    gaps = np.zeros((b, max_len), np.int64)
    positions = np.full((b, max_len), -1, np.int64)
    buckets = gap_buckets(seqs)
    for i, (r, e) in enumerate(zip(rows, ends)):
        if e < 0:
            continue
        s = max(0, e - max_len + 1)
        n = e - s + 1
        base = seqs.offsets[r]
        tokens[i, max_len - n :] = seqs.topics[base + s : base + e + 1]
        gaps[i, max_len - n :] = buckets[base + s : base + e + 1]
        positions[i, max_len - n :] = np.arange(s, e + 1)
    return Windows(tokens, gaps, positions, np.asarray(rows, np.int64))


def training_windows(
    seqs: UserSequences,
    rows: np.ndarray,
    max_len: int,
    objective: str,
    window: int,
    anchors: int,
    pad_id: int,
    rng: np.random.Generator,
    window_seconds: int | None = None,
) -> Windows:
    """One window per user of ``rows`` with at least two engagements, with anchors and positives."""
    rows = np.asarray(rows, np.int64)
    rows = rows[seqs.lengths[rows] >= 2]
    lengths = seqs.lengths[rows]
    ends = (rng.random(len(rows)) * (lengths - 1)).astype(np.int64)  # in [0, L-2]: a future always exists
    w = layout(seqs, rows, ends, max_len, pad_id)
    a_win, a_col, pos_pos = [], [], []
    for i, (r, e, length) in enumerate(zip(rows, ends, lengths)):
        s = max(0, e - max_len + 1)
        cand = np.arange(s, e + 1)
        pick = cand if len(cand) <= anchors else np.r_[rng.choice(cand[:-1], anchors - 1, replace=False), e]
        horizon = 1 if objective == "next_item" else window
        last = np.minimum(pick + horizon, length - 1)
        if window_seconds is not None and objective != "next_item":
            ts = seqs.ts[seqs.offsets[r] : seqs.offsets[r + 1]]
            in_time = np.searchsorted(ts, ts[pick] + window_seconds, side="right") - 1
            last = np.maximum(np.minimum(last, in_time), pick + 1)
        positive = pick + 1 + (rng.random(len(pick)) * (last - pick)).astype(np.int64)
        a_win.append(np.full(len(pick), i))
        a_col.append(max_len - 1 - (e - pick))
        pos_pos.append(positive)
    if not a_win:
        empty = np.empty(0, np.int64)
        w.anchor_window, w.anchor_col, w.positives, w.positive_pos = empty, empty, empty, empty
        return w
    w.anchor_window = np.concatenate(a_win).astype(np.int64)
    w.anchor_col = np.concatenate(a_col).astype(np.int64)
    w.positive_pos = np.concatenate(pos_pos).astype(np.int64)
    w.positives = seqs.topics[seqs.offsets[rows[w.anchor_window]] + w.positive_pos]
    return w


def inference_windows(seqs: UserSequences, max_len: int, pad_id: int) -> Windows:
    """Every user's latest ``max_len`` engagements (an all-pad row for a user with none)."""
    return layout(seqs, np.arange(len(seqs)), seqs.lengths - 1, max_len, pad_id)
