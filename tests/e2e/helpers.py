"""Small helpers the e2e tests share: a planted community's seeds, and waiting for a server to be ready."""

from __future__ import annotations

import time

import numpy as np
import requests

from reco import artifacts
from reco.run_dir import RunDir


def community(run_dir: str) -> tuple[list[str], list[str], int]:
    """Raw ids of the largest planted community's members, split 70/30, and the user count."""
    run = RunDir(run_dir)
    truth = run.read_table(artifacts.USER_COMMUNITIES).to_pandas()
    vocab = run.read_table(artifacts.USER_VOCAB).to_pandas().set_index("user_id")["raw_id"]
    biggest = truth.community.value_counts().idxmax()
    members = vocab.loc[truth[truth.community == biggest].user_id].tolist()
    np.random.default_rng(0).shuffle(members)
    cut = int(len(members) * 0.7)
    return members[:cut], members[cut:], len(vocab)


def wait_ready(base: str, name: str, timeout_s: float = 300) -> None:
    """Poll ``base``/readyz until it answers 200; AssertionError with the last answer after ``timeout_s``."""
    deadline, last = time.time() + timeout_s, "no answer"
    while time.time() < deadline:
        try:
            r = requests.get(f"{base}/readyz", timeout=10)
            if r.status_code == 200:
                return
            last = f"{r.status_code} {r.text[:200]}"
        except requests.RequestException as e:
            last = str(e)[:200]
        time.sleep(1)
    raise AssertionError(f"{name} not ready within {timeout_s:.0f}s: {last}")
