"""The retrieval benchmark's fits as tasks, run in this process or in a pool of processes.

A task is one retriever with one setting: a *validation* task fits on the protocol's validation
inputs and scores the validation targets (with ``--tune``, one task per grid setting); the best
setting by validation recall@50 is chosen, then a *test* task refits on the whole inputs with
that setting and the epochs validation chose, and scores the targets once (MovieLens). Where the
protocol has no refit (the held-out protocols: the fit is the same), a validation task also
scores the test users; only the chosen setting's test figures are ever kept or printed.

With ``jobs > 1`` the tasks run in spawned processes, each loading the data set and config itself
and receiving the StarSpace topic vectors the parent trained; a retriever's test task is submitted
as soon as its last validation task finishes, the slow retrievers first.
"""

from __future__ import annotations

import logging
import multiprocessing
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from bench.retrieval_data import Dataset, load
from bench.retrieval_tuning import GRIDS, apply_settings
from reco.config import Config, load_config
from reco.retrieval.base import Retriever
from reco.retrieval.data import Queries, TrainingData
from reco.retrieval.protocol import evaluate
from reco.retrieval.registry import create_retriever

log = logging.getLogger("bench.retrieval")
TRAINED = {"sequence_all_action": "sequence", "sequence_next_item": "sequence", "two_tower": "two_tower", "mf": "mf"}
SLOW_FIRST = [
    "sequence_all_action",
    "sequence_next_item",
    "mf",
    "two_tower",
    "als",
    "multi_interest",
    "pixie",
    "pooled",
    "last_items_knn",
    "popularity",
]


@dataclass(frozen=True)
class Task:
    label: str
    settings: dict = field(default_factory=dict, hash=False)
    stage: str = "val"  # "val": fit on the validation inputs; "test": refit on the whole inputs
    epochs: int | None = None  # test stage of a trained model: the epochs validation chose


@dataclass
class Setup:
    """What a worker needs to rebuild the parent's state."""

    data: str
    synthetic_users: int
    config: str
    overrides: list[str]
    threads: int
    topic_vectors_val: np.ndarray
    topic_vectors_test: np.ndarray


_STATE: dict[str, Any] = {}


def registry_name(label: str) -> str:
    return "sequence_tower" if label.startswith("sequence_") else label


def config_for(label: str, cfg: Config) -> Config:
    out = cfg.model_copy(deep=True)
    if label.startswith("sequence_"):
        out.retrieval.sequence.objective = label.removeprefix("sequence_")
    return out


def with_epochs(label: str, cfg: Config, epochs: int | None) -> Config:
    """The refit's settings: a trained model runs the epochs validation chose, without validation."""
    section = TRAINED.get(label)
    if section is None or epochs is None:
        return cfg
    out = cfg.model_copy(deep=True)
    getattr(out.retrieval, section).epochs = max(1, int(epochs))
    return out


def latency_ms(r: Retriever, queries: Queries, k: int = 100, n: int = 200) -> dict[str, float]:
    """Per-request latency of one user's candidates (the serving path, without HTTP)."""
    r.index_users(queries.inputs)
    times = []
    for u in queries.inputs.user_ids[:n]:
        t = time.perf_counter()
        r.candidates([u], k)
        times.append((time.perf_counter() - t) * 1000)
    return {"p50": float(np.percentile(times, 50)), "p99": float(np.percentile(times, 99))}


def install(cfg: Config, ds: Dataset) -> None:
    """Make this process's config and data set the ones tasks use (the parent, jobs = 1)."""
    _STATE.update(cfg=cfg, ds=ds)


def init_worker(setup: Setup) -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S", force=True
    )
    torch.set_num_threads(setup.threads)
    ds = load(setup.data, setup.synthetic_users)
    ds.protocol.fit_val.topic_vectors = setup.topic_vectors_val
    ds.protocol.fit_test.topic_vectors = setup.topic_vectors_test
    install(load_config(setup.config, setup.overrides), ds)


def run_task(task: Task) -> dict[str, Any]:
    """Fit and score one retriever setting; figures only (no model crosses processes)."""
    cfg, p = _STATE["cfg"], _STATE["ds"].protocol
    c = with_epochs(task.label, apply_settings(config_for(task.label, cfg), task.settings), task.epochs)
    data: TrainingData = p.fit_val if task.stage == "val" else p.fit_test
    t = time.perf_counter()
    r = create_retriever(registry_name(task.label), c.retrieval).fit(data)
    out: dict[str, Any] = {
        "task": task,
        "fit_seconds": time.perf_counter() - t,
        "best_epoch": getattr(r, "train_meta", {}).get("best_epoch"),
    }
    if task.stage == "val":
        out["val"] = evaluate(r, p.val).summary
        log.info(
            "%s %s: val recall@10 %.4f @50 %.4f (%.0fs)",
            task.label,
            task.settings or "(config)",
            out["val"]["recall@10"],
            out["val"]["recall@50"],
            out["fit_seconds"],
        )
    if task.stage == "test" or not p.refit:
        out["test"] = evaluate(r, p.test)
        out["latency_ms"] = latency_ms(r, p.test)
    return out


def _grid(label: str, tune: bool) -> list[dict]:
    return GRIDS[label] if tune and label in GRIDS else [{}]


def _summarise(label: str, tried: list[dict], test: dict | None) -> dict[str, Any]:
    """The chosen setting (best validation recall@50, the earliest on ties) and its test figures."""
    best = max(tried, key=lambda x: x["val"]["recall@50"])
    final = test if test is not None else best
    return {
        "val": best["val"],
        "test": final["test"],
        "latency_ms": final["latency_ms"],
        "settings": best["task"].settings,
        "fit_seconds": best["fit_seconds"] + (test["fit_seconds"] if test is not None else 0.0),
        "tried": [
            {
                "settings": x["task"].settings,
                "val_recall@10": x["val"]["recall@10"],
                "val_recall@50": x["val"]["recall@50"],
                "fit_seconds": x["fit_seconds"],
            }
            for x in tried
        ]
        if len(tried) > 1
        else [],
    }


def run_all(
    labels: list[str], tune: bool, refit: bool, jobs: int, setup: Setup
) -> tuple[dict[str, dict], dict[str, str]]:
    """Every label's tuning, choice and test; (results by label, errors by label)."""
    tried: dict[str, list[dict]] = {lab: [] for lab in labels}
    tests: dict[str, dict] = {}
    errors: dict[str, str] = {}
    order = sorted(labels, key=SLOW_FIRST.index)
    pending_val = {lab: len(_grid(lab, tune)) for lab in labels}
    first = [Task(lab, s) for lab in order for s in _grid(lab, tune)]

    def test_task(lab: str) -> Task | None:
        if lab in errors or not refit:
            return None
        best = max(tried[lab], key=lambda x: x["val"]["recall@50"])
        return Task(lab, best["task"].settings, "test", best["best_epoch"])

    def record(task: Task, result: dict | None, error: BaseException | None) -> Task | None:
        if error is not None:
            log.error("%s %s failed: %s", task.label, task.settings, error)
            errors[task.label] = f"{type(error).__name__}: {error}"
            return None
        if task.stage == "test":
            tests[task.label] = result
            return None
        tried[task.label].append(result)
        pending_val[task.label] -= 1
        return test_task(task.label) if pending_val[task.label] == 0 else None

    if jobs <= 1:
        queue = list(first)
        while queue:
            task = queue.pop(0)
            try:
                result, error = run_task(task), None
            except Exception as e:  # one retriever failing must not lose the others' figures
                result, error = None, e
            nxt = record(task, result, error)
            if nxt is not None:
                queue.insert(0, nxt)
    else:
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=init_worker, initargs=(setup,)) as pool:
            running: dict[Future, Task] = {pool.submit(run_task, t): t for t in first}
            while running:
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in done:
                    task = running.pop(fut)
                    nxt = record(task, fut.result() if fut.exception() is None else None, fut.exception())
                    if nxt is not None:
                        running[pool.submit(run_task, nxt)] = nxt
    results = {lab: _summarise(lab, tried[lab], tests.get(lab)) for lab in labels if lab not in errors and tried[lab]}
    return results, errors
