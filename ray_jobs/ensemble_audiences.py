"""The expand job's ensemble path: each list expanded by the ensemble on a Ray Data actor pool.

With several representations (``expansion.representations``) and ensemble weights, the batch job
expands every list the way a request with ``method: ensemble`` does (reco.expansion.expander):
each actor loads the run's representations once (StarSpace and ALS vectors, co-engagement's
sparse rows) and expands the lists it is handed, one exhaustive scan per list and component,
then the weighted rank fusion of the list's size bucket (reco.expansion.ensemble). The batch job
and the HTTP route therefore give the same audience for the same list and seed. Each list's
classifiers train on the batch budget (``expansion.classifier``), not a request's.

The vectorised region-density scan of ray_jobs.expand scores all lists per user batch and
stays the path for the single-representation blend; this one costs one pass over the users per
list and component, fine for thousands of lists over a million users, not for far more.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import ray

from reco.config import Config
from reco.errors import ConfigError
from reco.expansion.config import ExpansionConfig, RequestConfig
from reco.expansion.ensemble import NAME as ENSEMBLE
from reco.expansion.ensemble import bucket_weights, has_weights
from reco.expansion.expander import AudienceExpander
from reco.expansion.seed_lists import SeedList
from reco.expansion.user_vectors import representations
from reco.vocab import Vocabulary

AUDIENCE_COLUMNS = ("seed_list_id", "user_id", "score", "rank", "source")


def uses_ensemble(ex: ExpansionConfig) -> bool:
    """Whether the batch job expands by the ensemble: ``expansion.job.method``, or on ``auto`` when the
    config scores several representations and holds ensemble weights."""
    if ex.job.method != "auto":
        return ex.job.method == ENSEMBLE
    return len(representations(ex)) > 1 and has_weights(ex.ensemble)


def check_buckets(ex: ExpansionConfig, seed_counts: list[int]) -> None:
    """A one-line ConfigError when a list falls in a size bucket the ensemble has no weights for."""
    missing = sorted({b for b in map(ex.buckets.of, seed_counts) if not bucket_weights(ex.ensemble, b)})
    if missing:
        raise ConfigError(
            f"expansion.ensemble.weights has none for the {', '.join(missing)} bucket(s) these lists fall in: "
            "set them (bench.expansion --stage validation chooses them) or expansion.job.method=blend"
        )


def batch_budget(ex: ExpansionConfig) -> ExpansionConfig:
    """``ex`` with the request budget raised to the batch classifier's (steps, background, refit)."""
    c = ex.classifier
    request = RequestConfig(max_steps=c.max_epochs, max_background=c.max_background, refit=c.refit)
    return ex.model_copy(update={"request": request})


class ListExpander:
    """Ray Data actor: the run's expander, loaded once, expanding each list of a batch by the ensemble."""

    def __init__(self, run_uri: str, expansion: dict, k: int, counter: ray.actor.ActorHandle | None = None):
        self.expander = AudienceExpander(run_uri, ExpansionConfig.model_validate(expansion))
        self.k, self.counter = k, counter

    def __call__(self, batch: pa.Table) -> pa.Table:
        parts = []
        for list_id, seeds in zip(batch.column("seed_list_id").to_pylist(), batch.column("seeds").to_pylist()):
            parts.append(self.expander.expand(seeds, k=self.k, method=ENSEMBLE).to_table(list_id))
        if self.counter is not None:
            self.counter.add.remote(batch.num_rows)  # fire and forget: progress is best effort
        if not parts:
            return pa.table({c: [] for c in AUDIENCE_COLUMNS})
        return pa.concat_tables(parts).select(list(AUDIENCE_COLUMNS))


def expand_lists(
    cfg: Config, run_uri: str, lists: list[SeedList], users: Vocabulary, counter: ray.actor.ActorHandle | None
) -> pa.Table:
    """(seed_list_id, user_id raw, score, rank, source) for every list, expanded on the actor pool."""
    ex, job = cfg.expansion, cfg.expansion.job
    table = pa.table(
        {
            "seed_list_id": pa.array([s.list_id for s in lists], pa.string()),
            "seeds": pa.array([users.decode(s.users) for s in lists], pa.list_(pa.string())),
        }
    )
    out = ray.data.from_arrow(table).map_batches(
        ListExpander,
        fn_constructor_kwargs={
            "run_uri": run_uri,
            "expansion": batch_budget(ex).model_dump(),
            "k": ex.audience_size,
            "counter": counter,
        },
        batch_size=1,
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(size=min(job.actors, max(len(lists), 1))),
        num_cpus=job.cpus_per_actor,
    )
    parts = [t for t in ray.get(out.to_arrow_refs()) if t.num_rows]
    if not parts:
        return pa.table({c: [] for c in AUDIENCE_COLUMNS})
    audiences = pa.concat_tables(parts)
    at = {s.list_id: i for i, s in enumerate(lists)}
    list_pos = np.asarray([at[i] for i in audiences.column("seed_list_id").to_pylist()], np.int64)
    order = np.lexsort((audiences.column("rank").to_numpy(), list_pos))  # the lists' order, each best first
    return audiences.take(pa.array(order))
