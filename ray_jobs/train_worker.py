"""What every Ray Train loop in these jobs does the same way, on each worker.

Summing a few scalars over the workers, quieting Ray Train's per-report logs, and the checkpoint
every job writes (model, optimizer, best weights so far, the fit's state) and resumes from.
Used by train_embeddings, train_ranker and the retrieval training jobs; :func:`best_of` reads
the last checkpoint back on the driver.
"""

from __future__ import annotations

import logging
import os

import ray.train
import torch
import torch.distributed as dist
from ray.train import CheckpointConfig, FailureConfig, LoggingConfig, RunConfig

from reco import artifacts
from reco.fit_state import FitState
from reco.run_dir import RunDir


def allreduce(values: list[float]) -> list[float]:
    """``values`` summed over the workers (as float64; unchanged with one worker)."""
    t = torch.tensor(values, dtype=torch.float64)
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(t)
    return t.tolist()


def quiet_worker_logs() -> None:
    """Ray Train logs every report and checkpoint at INFO from each worker, which drowns the
    one line per epoch these jobs log. One of those loggers is named by its file path."""
    from ray.train.v2._internal.execution import context

    logging.getLogger("ray.train").setLevel(logging.WARNING)
    logging.getLogger(context.__file__).setLevel(logging.WARNING)


def load_checkpoint(model: torch.nn.Module, opt: torch.optim.Optimizer) -> tuple[FitState, dict | None]:
    """Restore model and optimizer from Ray Train's latest checkpoint, if any, and note the resume.

    Returns the fit's state and the best weights so far (None when starting fresh)."""
    ckpt = ray.train.get_checkpoint()
    if ckpt is None:
        return FitState(), None
    with ckpt.as_directory() as d:
        model.load_state_dict(torch.load(os.path.join(d, "model.pt"), weights_only=True))
        opt.load_state_dict(torch.load(os.path.join(d, "optimizer.pt"), weights_only=True))
        best = torch.load(os.path.join(d, "best.pt"), weights_only=True)
        with open(os.path.join(d, "state.json")) as f:
            state = FitState.from_json(f.read())
    state.resumed_after.append(state.epoch)
    return state, best


def save_checkpoint(
    dirpath: str, model: torch.nn.Module, opt: torch.optim.Optimizer, best: dict, state: FitState
) -> ray.train.Checkpoint:
    """What :func:`load_checkpoint` reads, written to ``dirpath`` (rank 0 only)."""
    torch.save(model.state_dict(), os.path.join(dirpath, "model.pt"))
    torch.save(opt.state_dict(), os.path.join(dirpath, "optimizer.pt"))
    torch.save(best, os.path.join(dirpath, "best.pt"))
    with open(os.path.join(dirpath, "state.json"), "w") as f:
        f.write(state.to_json())
    return ray.train.Checkpoint.from_directory(dirpath)


def run_config(run: RunDir, name: str, max_failures: int) -> RunConfig:
    """Checkpoints under the run directory (local or object storage), so a rerun resumes from the latest."""
    return RunConfig(
        name=name,
        storage_path=run.local_path(artifacts.TRAIN_STORAGE) if run.is_local() else run.path(artifacts.TRAIN_STORAGE),
        storage_filesystem=None if run.is_local() else run.fs,
        checkpoint_config=CheckpointConfig(num_to_keep=2),
        failure_config=FailureConfig(max_failures=max_failures),
        logging_config=LoggingConfig(log_level="WARNING"),
    )


def best_of(result: ray.train.Result) -> tuple[dict, FitState]:
    """The best weights and the fit's state from a finished Ray Train run (its error raised)."""
    if result.error is not None:
        raise result.error
    with result.checkpoint.as_directory() as d:
        best = torch.load(os.path.join(d, "best.pt"), weights_only=True)
        with open(os.path.join(d, "state.json")) as f:
            return best, FitState.from_json(f.read())
