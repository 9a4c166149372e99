"""expand: seed lists in, audiences out, every user scored for every list with Ray Data.

1. Seed lists: ``expansion.seed_lists`` (Parquet or JSON lines of seed_list_id, user_id raw),
   or, on a synthetic run without one, lists drawn from the planted communities. Unknown ids
   are counted, duplicates dropped, lists below ``expansion.min_seeds`` rejected (reported).
2. Fit (driver): the seeds' and a background pool's vectors are gathered with Ray Data (the
   spine's pooled embedding, or the retriever named by ``expansion.user_vectors``: one or
   several vectors per user, reco.expansion.user_vectors), hyperplanes drawn through the
   pool's mean, vectors per region counted in a Ray Data pass,
   then each list's density table and affinity classifier fitted; the bundle is written to
   ``models/expansion.npz`` (and the sparse tables to ``expansion/density_tables.parquet``).
3. Score: ``map_batches`` over the user-vector table on an actor pool, each actor holding
   every list's representation; each batch yields each list's top-K by density and by the
   classifier; a group-by per list merges them into the global top-K and blends them.
4. Write ``audiences/`` (seed_list_id, user_id raw, score, rank, source) and
   ``metrics/expand.json``. This replaces the paper's MapReduce join.

One audience job (``POST /v1/audience-jobs``, serve/jobs_routes.py) is this job with two more
options: ``--output URI`` writes everything the lists produce (the bundle, the accepted lists,
``audiences/``, ``metrics/expand.json``) into a run directory of its own at URI instead of the
run's shared artifacts, so jobs running at once never touch one another's files nor the run's
manifest (the run is only read); ``--status URI`` keeps a small JSON status there (state, phase,
users scored so far, the result or the one-line error; reco/expansion/job_status.py) for the
HTTP ingress to read while the job runs.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import ray

from ray_jobs.common import StepTimer, describe_failure, job_main, read_artifact, write_artifact
from ray_jobs.ensemble_audiences import check_buckets, expand_lists, uses_ensemble
from ray_jobs.job_progress import Progress
from ray_jobs.representations import ensure_representations
from reco import artifacts
from reco.config import Config
from reco.errors import DataError
from reco.expansion import job_status
from reco.expansion.affinity_classifier import background_size
from reco.expansion.blend import top_depth
from reco.expansion.list_definitions import community_audiences
from reco.expansion.list_models import ARTIFACT, VectorLookup, fit_list_models
from reco.expansion.region_density import Hyperplanes, region_counts
from reco.expansion.scoring import AudienceBatchScorer, audiences_from_candidates
from reco.expansion.seed_lists import SeedList, lists_table, read_seed_table, resolve
from reco.expansion.user_vectors import (
    COENGAGEMENT,
    VectorSets,
    check_representations,
    check_source,
    representations,
    vector_columns,
)
from reco.run_dir import RunDir
from reco.vocab import Vocabulary

log = logging.getLogger("ray_jobs.expand")
STEP = "expand"
POOL_SIZE = 20_000


def has_artifact(run: RunDir, rel: str) -> bool:
    return run.has(rel)


def seed_list_input(cfg: Config, run: RunDir, users: Vocabulary) -> tuple[pa.Table, str, pa.Table | None] | None:
    """(seed lists, where they came from, every true member per list or None); None: no lists.

    Nothing is written here: the caller records the truth (or forgets an earlier one) only once
    the lists have been checked, so a bad seed-list file leaves the run directory untouched.
    """
    ex = cfg.expansion
    if ex.seed_lists:
        return read_seed_table(ex.seed_lists), ex.seed_lists, None
    if not has_artifact(run, artifacts.USER_COMMUNITIES):
        return None
    defs = community_audiences(run.read_table(artifacts.USER_COMMUNITIES), ex.buckets, ex.synthetic_lists)
    return (
        lists_table(list(defs.lists.items()), users),
        "planted communities (truth/user_communities.parquet)",
        lists_table(list(defs.truth.items()), users),
    )


def record_truth(run: RunDir, truth: pa.Table | None) -> None:
    """Write the lists' truth, or drop an earlier run's: it does not describe these lists."""
    if truth is None:
        run.forget(artifacts.LIST_TRUTH)
    else:
        run.write_table(artifacts.LIST_TRUTH, truth, step=STEP)


def _select(batch: pa.Table, ids: np.ndarray) -> pa.Table:
    return batch.filter(pa.array(np.isin(batch.column("user_id").to_numpy(), ids)))


def _count_regions(batch: pa.Table, lsh: Hyperplanes, max_vectors: int) -> pa.Table:
    counts = region_counts(lsh.codes(VectorSets.from_table(batch, max_vectors).valid()), lsh.n_regions)
    return pa.table({"counts": [counts.ravel()]})


def _merge_group(group: pa.Table, shares: np.ndarray, k: int, depth: int) -> pa.Table:
    return audiences_from_candidates(group, shares, k, depth)


def _collect(ds: ray.data.Dataset) -> pa.Table:
    parts = [t for t in ray.get(ds.to_arrow_refs()) if t.num_rows]
    if not parts:
        return pa.table({})
    return pa.concat_tables(parts)


def fit(cfg: Config, run: RunDir, users_ds: ray.data.Dataset, lists, embedded: np.ndarray):
    """Gather seeds and a background pool, count vectors per region, fit every list (driver).

    The planes are chosen for the number of vectors, estimated from the pool's vectors per user.
    """
    ex = cfg.expansion
    rng = np.random.default_rng([ex.classifier.seed, 0xB6])
    pool_size = min(len(embedded), max(POOL_SIZE, 2 * max(background_size(len(s.users), ex.classifier) for s in lists)))
    pool = np.sort(rng.choice(embedded, size=pool_size, replace=False))
    needed = np.union1d(pool, np.concatenate([s.users for s in lists]))
    gathered = _collect(users_ds.map_batches(_select, batch_format="pyarrow", fn_kwargs={"ids": needed}))
    lookup = VectorLookup.of(gathered.column("user_id").to_numpy(), VectorSets.from_table(gathered, ex.max_vectors))
    pool_vectors = lookup(pool)
    n_vectors = int(round(len(embedded) * len(pool_vectors) / len(pool)))
    lsh = Hyperplanes.for_users(lookup.dim, n_vectors, ex.density, pool_vectors.mean(axis=0))
    counts = _collect(
        users_ds.map_batches(
            _count_regions,
            batch_format="pyarrow",
            batch_size=ex.job.batch_size,
            fn_kwargs={"lsh": lsh, "max_vectors": ex.max_vectors},
        )
    )
    region_users = np.sum(np.stack(counts.column("counts").to_numpy(zero_copy_only=False)), axis=0).reshape(
        lsh.repetitions, lsh.n_regions
    )
    return fit_list_models(lists, lookup, pool, lsh, region_users, ex)


def score(
    cfg: Config,
    run: RunDir,
    users_ds: ray.data.Dataset,
    shares: np.ndarray,
    counter: ray.actor.ActorHandle | None = None,
) -> pa.Table:
    """Candidates per batch on the actor pool, merged and blended per list (Ray Data).

    ``run`` holds the list bundle the actors load; ``counter``, if given, is told how many users
    each batch scored (the progress an audience job reports)."""
    job, k = cfg.expansion.job, cfg.expansion.audience_size
    depth = top_depth(cfg.expansion.blend, k)
    kwargs = {
        "run_uri": run.uri,
        "depth": depth,
        "faults": cfg.faults.model_dump(),
        "max_vectors": cfg.expansion.max_vectors,
    }
    candidates = users_ds.map_batches(
        AudienceBatchScorer if counter is None else CountingScorer,
        fn_constructor_kwargs=kwargs if counter is None else {**kwargs, "counter": counter},
        batch_size=job.batch_size,
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(size=job.actors),
        num_cpus=job.cpus_per_actor,
    )
    merged = candidates.groupby("list_pos").map_groups(
        _merge_group, batch_format="pyarrow", fn_kwargs={"shares": shares, "k": k, "depth": depth}
    )
    return _collect(merged)


class CountingScorer(AudienceBatchScorer):
    """The scoring actor of an audience job: scores like :class:`AudienceBatchScorer` and tells
    ``counter`` (a ray_jobs.job_progress.UsersScored actor) how many users each batch held."""

    def __init__(self, *args, counter: ray.actor.ActorHandle, **kwargs):
        super().__init__(*args, **kwargs)
        self.counter = counter

    def __call__(self, batch: pa.Table) -> pa.Table:
        out = super().__call__(batch)
        self.counter.add.remote(batch.num_rows)  # fire and forget: progress is best effort
        return out


def run(cfg: Config, run: RunDir) -> dict:
    """The batch path: every list of ``expansion.seed_lists`` (or the planted ones) into the run's ``audiences/``."""
    return expand(cfg, run, run, Progress(None))


def expand(cfg: Config, run: RunDir, out: RunDir, progress: Progress) -> dict:
    """Expand the lists over ``run``'s users and vectors, writing the results into ``out``.

    ``out`` is ``run`` on the batch path; an audience job's own run directory otherwise, and then
    ``run`` is only read (its planted truth is neither written nor forgotten).
    """
    ex = cfg.expansion
    shared = out.uri == run.uri
    progress.phase("reading seed lists", 0.01)
    users = Vocabulary.from_table(run.read_table(artifacts.USER_VOCAB), "user_id")
    found = seed_list_input(cfg, run, users)
    if found is None:
        log.info("no seed lists: set expansion.seed_lists to a Parquet or JSON lines file to expand")
        return {
            "step": STEP,
            "skipped": "no seed lists (expansion.seed_lists is not set and the run has no planted truth)",
        }
    table, source, truth = found
    check_representations(representations(ex))  # an unknown name is an error even where the blend runs alone
    if shared:  # an audience job only reads the run: its representations must be there already
        ensure_representations(cfg, run)
    vectors_rel = check_source(ex.user_vectors, run.names())
    if uses_ensemble(ex):
        for rep in representations(ex):
            if rep != COENGAGEMENT:
                check_source(rep, run.names())
    embedded = np.sort(run.read_table(vectors_rel, columns=["user_id"]).column("user_id").to_numpy())
    resolved = resolve(table, users, ex.min_seeds, source, embedded)
    if shared:
        record_truth(run, truth)
    lists = resolved.accepted
    log.info(
        "%d seed list(s) from %s (%d rejected, %d unknown ids)",
        len(lists),
        source,
        len(resolved.rejected),
        resolved.summary()["unknown_ids"],
    )
    if uses_ensemble(ex):
        check_buckets(ex, [len(s.users) for s in lists])
    if not shared:
        out.ensure()
    out.write_table(
        artifacts.SEED_LISTS,
        lists_table([(s.list_id, s.users) for s in lists], users),
        step=STEP,
        meta={"source": source},
    )
    progress.phase("fitting", 0.03, lists=len(lists))
    if uses_ensemble(ex):
        audiences, how = by_ensemble(cfg, run, lists, users, progress)
    else:
        audiences, how = by_blend(cfg, run, out, lists, users, embedded, vectors_rel, progress)
    rows = write_artifact(
        ray.data.from_arrow(audiences), out, artifacts.AUDIENCES, step=STEP, meta={"k": ex.audience_size}
    )
    sources = audiences.group_by(["seed_list_id", "source"]).aggregate([("rank", "count")]).to_pandas()
    summary = {
        "step": STEP,
        "source": source,
        "lists": resolved.summary(),
        "users": int(len(embedded)),
        "audience_rows": rows,
        "k": ex.audience_size,
        **how,
        "user_list_pairs_per_second": len(embedded) * len(lists) / max(how["score_seconds"], 1e-9),
        "sources": {
            name: dict(zip(g["source"], g["rank_count"].astype(int).tolist()))
            for name, g in sources.groupby("seed_list_id")
        },
    }
    out.write_json(artifacts.metrics("expand"), summary, step=STEP)
    return {
        "step": STEP,
        "lists": len(lists),
        "rejected": resolved.rejected,
        "unknown_ids": summary["lists"]["unknown_ids"],
        "users": summary["users"],
        "audience_rows": rows,
        "fit_seconds": round(how["fit_seconds"], 1),
        "score_seconds": round(how["score_seconds"], 1),
        "audiences": out.path(artifacts.AUDIENCES),
    }


def by_blend(
    cfg: Config,
    run: RunDir,
    out: RunDir,
    lists: list[SeedList],
    users: Vocabulary,
    embedded: np.ndarray,
    vectors_rel: str,
    progress: Progress,
) -> tuple[pa.Table, dict]:
    """(audiences, how) by one representation's density and classifier: every list fitted in the
    driver, then all lists scored per user batch on the actor pool and merged per list."""
    ex = cfg.expansion
    log.info("user vectors: %s (%s)", ex.user_vectors, vectors_rel)
    users_ds = read_artifact(run, vectors_rel).select_columns(vector_columns(ex.user_vectors))
    with StepTimer(f"fit {len(lists)} list(s): density tables and classifiers") as t_fit:
        models = fit(cfg, run, users_ds, lists, embedded)
    out.write_bytes(ARTIFACT, models.to_bytes(), step=STEP, rows=len(lists))
    out.write_table(artifacts.DENSITY_TABLES, pa.table(models.table_rows()), step=STEP)
    scoring = f"score {len(embedded):,} users x {len(lists)} lists (Ray Data, {ex.job.actors} actor(s))"
    with StepTimer(scoring) as t_score, progress.while_scoring(len(embedded)) as counter:
        merged = score(cfg, out, users_ds, models.shares, counter)
    if merged.num_rows == 0:
        raise DataError(f"no audience for any of the {len(lists)} seed lists: every user is a seed?")
    merged = merged.take(pa.array(np.lexsort((merged.column("rank").to_numpy(), merged.column("list_pos").to_numpy()))))
    pos = merged.column("list_pos").to_numpy()
    audiences = pa.table(
        {
            "seed_list_id": pa.array(np.asarray(models.list_ids, dtype=object)[pos], pa.string()),
            "user_id": pa.array(users.decode(merged.column("user_id").to_numpy()), pa.string()),
            "score": merged.column("score"),
            "rank": merged.column("rank"),
            "source": merged.column("source"),
        }
    )
    how = {
        "method": "blend",
        "user_vectors": ex.user_vectors,
        "vectors": int(models.region_users[0].sum()),
        "planes": models.lsh.n_planes,
        "repetitions": models.lsh.repetitions,
        "fit_seconds": t_fit.seconds,
        "score_seconds": t_score.seconds,
    }
    return audiences, how


def by_ensemble(
    cfg: Config, run: RunDir, lists: list[SeedList], users: Vocabulary, progress: Progress
) -> tuple[pa.Table, dict]:
    """(audiences, how) by the ensemble of several representations, each list fitted and scored on
    the actor pool (ray_jobs/ensemble_audiences.py)."""
    ex = cfg.expansion
    reps = representations(ex)
    scoring = f"expand {len(lists)} list(s) by the ensemble of {', '.join(reps)} (Ray Data, {ex.job.actors} actor(s))"
    with StepTimer(scoring) as t_score, progress.while_scoring(len(lists), unit="lists") as counter:
        audiences = expand_lists(cfg, run.uri, lists, users, counter)
    if audiences.num_rows == 0:
        raise DataError(f"no audience for any of the {len(lists)} seed lists: every user is a seed?")
    how = {
        "method": "ensemble",
        "user_vectors": ex.user_vectors,
        "representations": reps,
        "fit_seconds": 0.0,  # each list's models are fitted as it is scored
        "score_seconds": t_score.seconds,
    }
    return audiences, how


def audience_job(output: str | None, status: str | None) -> Callable[[Config, RunDir], dict]:
    """The step of one audience job: :func:`expand` into ``output`` (None: the run itself),
    reporting to ``status``; a failure is recorded there as one line before the job ends."""

    def step(cfg: Config, run: RunDir) -> dict:
        progress = Progress(status)
        progress.update()
        try:
            summary = expand(cfg, run, RunDir(output) if output else run, progress)
        except BaseException as e:
            progress.update(state=job_status.FAILED, error=describe_failure(e).splitlines()[0])
            raise
        if "skipped" in summary:
            progress.update(state=job_status.FAILED, error=summary["skipped"])
            raise DataError(summary["skipped"])
        result = {k: summary[k] for k in ("lists", "rejected", "unknown_ids", "users", "audience_rows")}
        progress.update(
            final=True,
            state=job_status.SUCCEEDED,
            phase="done",
            progress=1.0,
            result=result,
            finished_at=job_status.now(),
        )
        return summary

    return step


def _options() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    p.add_argument("--output", help="write this job's lists, bundle and audiences/ into a run directory of their own")
    p.add_argument("--status", help="keep a JSON status (state, progress, result or error) at this local path or URI")
    return p


_batch_main = job_main(run, __doc__.splitlines()[0])


def main(argv: list[str] | None = None) -> int:
    """``--config FILE [--set k=v ...]`` as every job; ``--output URI --status URI`` for an audience job."""
    args = list(sys.argv[1:] if argv is None else argv)
    opts, rest = _options().parse_known_args(args)
    if opts.output is None and opts.status is None:
        return _batch_main(rest)
    return job_main(audience_job(opts.output, opts.status), __doc__.splitlines()[0])(rest)


if __name__ == "__main__":
    raise SystemExit(main())
