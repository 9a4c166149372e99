"""Ranking stack: every model beside strong simple baselines, on MovieLens 100K, tiny_mtl and a tabular log.

    python -m bench.ranking --data ml-100k     # NCF leave-one-out + full ranking, then the CTR view
    python -m bench.ranking --data tiny_mtl    # multi-task click / conversion against single-task models
    python -m bench.ranking --data criteo      # a tabular log (ranking.source=tabular) against LightGBM
    python -m bench.ranking --data ml-100k --quick   # 2 epochs each: a smoke run, not figures

Every neural model trains through the real job (ray_jobs.train_ranker: Ray Train, 2 workers,
early stopping on validation rows, calibration fitted on validation rows) into its own run
directory under ``--out``; popularity and LightGBM run in process on the same splits and
features. Epochs are always chosen on validation rows, never on test users.

- NCF protocol: each user's latest interaction held out, ranked against 99 sampled unseen items
  (fixed seed): HR@10, NDCG@10; and against every unseen item (full ranking): recall@10, NDCG@10.
- CTR view: rating >= 4 is a click, random 80/10/10 split: AUC, logloss, GAUC, ECE and Brier
  before / after calibration, training examples per second on 2 Ray Train workers (1 thread each).
- tiny_mtl: click and conversion AUC (95% bootstrap interval: the test set has few positives).
- criteo (any ``ranking.source: tabular`` config): LR, DeepFM, DCNv2 and AutoInt+ against
  LightGBM on the same features and split. Each model's settings are swept on the split's
  validation rows only (``TABULAR_SWEEP``, ``GBDT_SWEEP``; epochs by early stopping on
  validation AUC), in one process with the job's own training loop; the chosen settings then
  train through the real job on the config's split. A small log gives a noisy test set, so the
  same selection is repeated on ``--splits`` seeded random splits (each choosing on its own
  validation rows) and the test figures averaged.

It prints each table, writes them with plots to ``<out>/<data>/reports/ranking.md`` and ends with
one JSON line of the headline figures. Timings depend on what else runs on the machine.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import shutil
import sys
import time

import numpy as np
from scipy.special import expit

from ray_jobs import train_ranker
from ray_jobs.common import init_ray, setup_logging
from reco import artifacts
from reco.config import load_config
from reco.plots import figure_png, plt
from reco.rank import metrics
from reco.rank.calibration import choose_and_fit, reliability_png
from reco.rank.catalog import Catalog
from reco.rank.datasets import load_ranking_data
from reco.rank.evaluation import ctr_report, leave_one_out_report, popularity_score_matrix
from reco.rank.features import FeaturePipeline
from reco.rank.gbdt import feature_matrix, fit_lightgbm
from reco.rank.models import build_model
from reco.rank.training import fit, predict_logits
from reco.run_dir import RunDir

log = logging.getLogger("bench.ranking")
CONFIGS = {
    "ml-100k": "configs/rank-ml-100k.yaml",
    "tiny_mtl": "configs/rank-tiny-mtl.yaml",
    "criteo": "configs/rank-criteo.yaml",
}
NCF_BASE = {
    "ranking.source": "movielens_ncf",
    "ranking.train.negatives": 4,
    "ranking.train.monitor": "hr@10",
    "ranking.train.batch_size": 512,
    "ranking.train.lr": 0.002,
    "ranking.train.weight_decay": 1e-6,
    "ranking.train.epochs": 40,
    "ranking.train.patience": 3,
    "ranking.model.embed_dim": 32,
    "ranking.model.mlp_dims": [64, 32, 16],
    "ranking.model.dropout": 0.0,
}
M = "ranking.model.name"
# Settings from a small sweep scored on the validation lists only (MF: dimension 32/64, L2 1e-6/1e-5).
NCF_MODELS = {
    "mf": {M: "mf", "ranking.train.lr": 0.005, "ranking.model.embed_dim": 64, "ranking.train.weight_decay": 1e-5},
    "gmf": {M: "gmf"},
    "mlp": {M: "mlp"},
    "neumf": {M: "neumf", "ranking.train.lr": 0.0005},
}
CTR_MODELS = {
    "lr": {M: "lr", "ranking.train.lr": 0.01},
    "deepfm": {M: "deepfm"},
    "dcnv2": {M: "dcnv2"},
    "autoint+": {M: "autoint+"},
    "resort": {M: "resort"},
}
MTL_MODELS = {
    "shared_bottom": {M: "shared_bottom"},
    "mmoe": {M: "mmoe"},
    "mmoe+esmm": {M: "mmoe", "ranking.model.esmm": True},
    "single-task deepfm (click)": {M: "deepfm", "ranking.labels": ["click"]},
    "single-task deepfm (conversion)": {M: "deepfm", "ranking.labels": ["conversion"]},
}
TABULAR_MODELS = ("lr", "deepfm", "dcnv2", "autoint+")
# Swept per split on its validation rows; the config's other settings (log1p, min_count 2: rare
# values share the trained OOV bucket) won on validation rows in a wider sweep.
TABULAR_SWEEP = {
    "ranking.train.lr": [0.003, 0.01],
    "ranking.model.embed_dim": [4, 8],
    "ranking.train.weight_decay": [0.0, 0.001],
}
GBDT_SWEEP = {
    "num_leaves": [4, 8, 16],
    "min_data_in_leaf": [5, 10, 20],
    "min_data_per_group": [5, 20],
    "cat_smooth": [1.0, 10.0],
}
PAPERS_NCF = [
    "NCF paper (He et al. 2017), MovieLens 1M: NeuMF HR@10 0.730, NDCG@10 0.447",
    "Rendle et al. 2020, MovieLens 1M: tuned MF 0.729 / 0.452, NeuMF 0.709 / 0.435 in their runs",
]
PAPER_CTR = "AutoInt paper (Song et al. 2019), MovieLens 1M CTR view: AutoInt+ AUC 0.8488"


def train(data: str, name: str, overrides: dict, out: str, quick: bool) -> dict:
    """One model through the real job, in its own run directory; returns the job's summary."""
    sets = dict(overrides)
    if quick:
        sets["ranking.train.epochs"] = 2
    run_dir = os.path.join(out, name.replace(" ", "_").replace("(", "").replace(")", "").replace("+", "plus"))
    cfg = load_config(CONFIGS[data], [f"run_dir={run_dir}"] + [f"{k}={json.dumps(v)}" for k, v in sets.items()])
    t0 = time.perf_counter()
    summary = train_ranker.run(cfg, RunDir(run_dir))
    summary["run_dir"], summary["wall_seconds"] = run_dir, time.perf_counter() - t0
    log.info(
        "%s: %d epochs (best %d) in %.0fs", name, summary["epochs_run"], summary["best_epoch"], summary["wall_seconds"]
    )
    return summary


def _curve_png(runs: dict[str, dict], key: str, title: str) -> bytes:
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=110)
    for name, s in runs.items():
        hist = RunDir(s["run_dir"]).read_json(train_ranker.METRICS_ARTIFACT)["history"]
        ax.plot([h["epoch"] for h in hist], [h[key] for h in hist], "o-", ms=3, label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel(key)
    ax.set_title(title)
    ax.legend(fontsize=7)
    return figure_png(fig)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|",
    ] + ["| " + " | ".join(r) + " |" for r in rows]


def bench_ml100k(out: str, quick: bool, gbdt_threads: int) -> tuple[dict, list[str], dict[str, bytes]]:
    cfg = load_config(CONFIGS["ml-100k"], [f"{k}={json.dumps(v)}" for k, v in NCF_BASE.items()])
    data = load_ranking_data(cfg.ranking)
    pipe = FeaturePipeline.fit(data.train, data.spec, cfg.ranking.features)
    catalog = Catalog.build(pipe, data.users, data.items)
    pop = leave_one_out_report(data, catalog, popularity_score_matrix(data, catalog))
    ncf = {}
    for name, extra in NCF_MODELS.items():
        if name == "neumf":
            extra = {**extra, "ranking.model.pretrained": [ncf["gmf"]["run_dir"], ncf["mlp"]["run_dir"]]}
        ncf[name] = train("ml-100k", name, {**NCF_BASE, **extra}, os.path.join(out, "ncf"), quick)
    ncf_rows = {"popularity": {**pop, "examples_per_second": None, "best_epoch": None}}
    ncf_rows.update(
        {
            n: {
                "sampled": s["test"]["sampled"],
                "full": s["test"]["full"],
                "examples_per_second": s["examples_per_second"],
                "best_epoch": s["best_epoch"],
            }
            for n, s in ncf.items()
        }
    )
    ctr = {name: train("ml-100k", name, extra, os.path.join(out, "ctr"), quick) for name, extra in CTR_MODELS.items()}
    gbdt = lightgbm_row(load_config(CONFIGS["ml-100k"]), gbdt_threads)
    lines = [
        "## MovieLens 100K, NCF protocol (test: each user's latest interaction)",
        "",
        "Epochs chosen on each user's second-latest interaction (validation), never on the test items. "
        "Sampled: the held-out item among 99 unseen items (fixed seed). Full: among every item the user has not "
        "interacted with.",
        "",
        *_table(
            ["model", "HR@10", "NDCG@10", "full recall@10", "full NDCG@10", "best epoch", "train examples/s"],
            [
                [
                    n,
                    f"{r['sampled']['hr@10']:.4f}",
                    f"{r['sampled']['ndcg@10']:.4f}",
                    f"{r['full']['recall@10']:.4f}",
                    f"{r['full']['ndcg@10']:.4f}",
                    str(r["best_epoch"] or "-"),
                    f"{r['examples_per_second']:,.0f}" if r["examples_per_second"] else "-",
                ]
                for n, r in ncf_rows.items()
            ],
        ),
        "",
        *[f"- Reference: {p}" for p in PAPERS_NCF],
        "",
    ]
    ctr_rows = {
        n: {
            **s["test"]["ctr"]["click"],
            "examples_per_second": s["examples_per_second"],
            "parameters": s["parameters"],
            "best_epoch": s["best_epoch"],
        }
        for n, s in ctr.items()
    }
    ctr_rows = {"lr": ctr_rows["lr"], "lightgbm": gbdt, **{k: v for k, v in ctr_rows.items() if k != "lr"}}
    lines += [
        "## MovieLens 100K, CTR view (rating >= 4 is a click; random 80/10/10 split)",
        "",
        *_table(
            [
                "model",
                "AUC",
                "logloss",
                "GAUC",
                "ECE before",
                "ECE after",
                "calibration",
                "Brier before",
                "Brier after",
                "parameters",
                "best epoch",
                "train examples/s",
            ],
            [
                [
                    n,
                    f"{r['auc']:.4f}",
                    f"{r['logloss']:.4f}",
                    f"{r['gauc']:.4f}",
                    f"{r['ece_before']:.4f}",
                    f"{r['ece_after']:.4f}",
                    r["method"],
                    f"{r['brier_before']:.4f}",
                    f"{r['brier_after']:.4f}",
                    f"{r['parameters']:,}",
                    str(r["best_epoch"]),
                    f"{r['examples_per_second']:,.0f}",
                ]
                for n, r in ctr_rows.items()
            ],
        ),
        "",
        f"- Reference: {PAPER_CTR}.",
        "- Neural models: Ray Train, 2 workers x 1 thread; examples/s counts training examples over training time. "
        f"LightGBM: {gbdt_threads} "
        "thread(s), in process; its figure is rows x boosting rounds per second of fitting, and its 'parameters' "
        "column counts tree leaves.",
        "",
    ]
    plots = {
        "ncf_curves.png": _curve_png(ncf, "val_hr@10", "NCF models: validation HR@10"),
        "ctr_curves.png": _curve_png(ctr, "val_auc", "CTR models: validation AUC"),
        "reliability_before.png": _reliability(ctr, calibrated=False),
        "reliability_after.png": _reliability(ctr, calibrated=True),
    }
    lines += [
        "![NCF curves](ncf_curves.png) ![CTR curves](ctr_curves.png)",
        "",
        "![before calibration](reliability_before.png) ![after calibration](reliability_after.png)",
        "",
    ]
    head = {
        "data": "ml-100k",
        "ncf_hr@10": {n: r["sampled"]["hr@10"] for n, r in ncf_rows.items()},
        "ncf_ndcg@10": {n: r["sampled"]["ndcg@10"] for n, r in ncf_rows.items()},
        "full_recall@10": {n: r["full"]["recall@10"] for n, r in ncf_rows.items()},
        "full_ndcg@10": {n: r["full"]["ndcg@10"] for n, r in ncf_rows.items()},
        "ctr_auc": {n: r["auc"] for n, r in ctr_rows.items()},
        "ece_before": {n: r["ece_before"] for n, r in ctr_rows.items()},
        "ece_after": {n: r["ece_after"] for n, r in ctr_rows.items()},
        "examples_per_second": {n: r["examples_per_second"] for n, r in ctr_rows.items()},
    }
    return head, lines, plots


def _reliability(runs: dict[str, dict], calibrated: bool) -> bytes:
    curves = {}
    for name, s in runs.items():
        t = RunDir(s["run_dir"]).read_table(train_ranker.PREDICTIONS_ARTIFACT).to_pandas()
        p = t["prob_click"] if calibrated else expit(t["logit_click"].to_numpy(np.float64))
        curves[name] = (np.asarray(p), t["label_click"].to_numpy())
    return reliability_png(curves, 15, "test clicks, " + ("after calibration" if calibrated else "before calibration"))


def lightgbm_row(cfg, threads: int, task: int = 0, params: dict | None = None) -> dict:
    """LightGBM on the job's exact split and features (the same pipeline fitted on the same training rows)."""
    data = load_ranking_data(cfg.ranking)
    pipe = FeaturePipeline.fit(data.train, data.spec, cfg.ranking.features)
    tr, va, te = (pipe.rows(f, data.labels) for f in (data.train, data.validation, data.test))
    model = fit_lightgbm(
        pipe, tr, va, task=task, seed=cfg.ranking.train.seed, params={**(params or {}), "num_threads": threads}
    )
    z_val, z_test = model.logits(feature_matrix(pipe, va)[0]), model.logits(feature_matrix(pipe, te)[0])
    cal, _ = choose_and_fit(
        cfg.ranking.calibration.method, z_val, va.labels[:, task], cfg.ranking.calibration.bins, cfg.ranking.split_seed
    )
    rep = ctr_report(z_test[:, None], te.labels[:, [task]], te.groups, [data.labels[task]], [cal])[data.labels[task]]
    leaves = sum(t["num_leaves"] for t in model.booster.dump_model()["tree_info"][: model.best_iteration])
    return {
        **rep,
        "examples_per_second": len(tr) * model.best_iteration / model.fit_seconds,
        "parameters": leaves,
        "best_epoch": model.best_iteration,
        "z_test": z_test,
        "labels": te.labels[:, task],
    }


def bench_tiny_mtl(out: str, quick: bool, gbdt_threads: int) -> tuple[dict, list[str], dict[str, bytes]]:
    runs = {name: train("tiny_mtl", name, extra, out, quick) for name, extra in MTL_MODELS.items()}
    cfg = load_config(CONFIGS["tiny_mtl"])
    rows = {}
    for name, s in runs.items():
        pred = RunDir(s["run_dir"]).read_table(train_ranker.PREDICTIONS_ARTIFACT).to_pandas()
        rows[name] = {
            t: _auc_with_interval(pred[f"label_{t}"].to_numpy(), pred[f"logit_{t}"].to_numpy()) for t in s["tasks"]
        }
    for t, task in enumerate(("click", "conversion")):
        g = lightgbm_row(cfg, gbdt_threads, t)
        rows.setdefault("lightgbm (one per task)", {})[task] = _auc_with_interval(g["labels"], g["z_test"])
    positives = {
        t: int(
            RunDir(runs["mmoe"]["run_dir"])
            .read_table(train_ranker.PREDICTIONS_ARTIFACT)
            .column(f"label_{t}")
            .to_numpy()
            .sum()
        )
        for t in ("click", "conversion")
    }

    def fmt(r):
        return f"{r[0]:.4f} [{r[1]:.3f}, {r[2]:.3f}]" if r else "-"

    lines = [
        "## tiny_mtl: click and conversion AUC on test.csv",
        "",
        f"1,000 test rows with {positives['click']} clicks and {positives['conversion']} conversions: the intervals "
        "(95% bootstrap) are wide, "
        "so differences between models here are mostly noise.",
        "",
        *_table(
            ["model", "click AUC [95% CI]", "conversion AUC [95% CI]"],
            [[n, fmt(r.get("click")), fmt(r.get("conversion"))] for n, r in rows.items()],
        ),
        "",
    ]
    head = {
        "data": "tiny_mtl",
        "click_auc": {n: r["click"][0] for n, r in rows.items() if "click" in r},
        "conversion_auc": {n: r["conversion"][0] for n, r in rows.items() if "conversion" in r},
    }
    return head, lines, {"mtl_curves.png": _curve_png(runs, "val_logloss", "tiny_mtl: validation logloss")}


def _grid(sweep: dict[str, list], quick: bool) -> list[dict]:
    settings = [dict(zip(sweep, values)) for values in itertools.product(*sweep.values())]
    return settings[:1] if quick else settings


def _short(setting: dict, model: str = "") -> str:
    shown = {k: v for k, v in setting.items() if not (model == "lr" and k.endswith("embed_dim"))}
    return ", ".join(f"{k.rsplit('.', 1)[-1]} {v:g}" for k, v in shown.items())


def sweep_split(data: str, seed: int, quick: bool, gbdt_threads: int) -> dict[str, dict]:
    """Every model's setting with the best validation AUC on split ``seed``, and its test figures.

    In one process with the job's training loop (reco.rank.training.fit) and calibration; test
    rows are only scored once a model's setting is chosen."""
    base = [f"ranking.split_seed={seed}"] + (["ranking.train.epochs=2"] if quick else [])
    cfg = load_config(CONFIGS[data], base)
    rc = cfg.ranking
    d = load_ranking_data(rc)
    pipe = FeaturePipeline.fit(d.train, d.spec, rc.features)
    tr, va, te = (pipe.rows(f, d.labels) for f in (d.train, d.validation, d.test))

    def scored(z_val: np.ndarray, z_test: np.ndarray) -> dict:
        cal, _ = choose_and_fit(rc.calibration.method, z_val, va.labels[:, 0], rc.calibration.bins, rc.split_seed)
        return {
            "test_auc": metrics.auc(te.labels[:, 0], z_test),
            "test_logloss": metrics.logloss(te.labels[:, 0], cal.probabilities(z_test)),
        }

    out: dict[str, dict] = {}
    for name in TABULAR_MODELS:
        best = None
        for setting in _grid(TABULAR_SWEEP, quick):
            if (
                name == "lr"
                and setting.get("ranking.model.embed_dim", 4) != TABULAR_SWEEP["ranking.model.embed_dim"][0]
            ):
                continue  # LR has no embeddings beyond its weights
            c = load_config(CONFIGS[data], base + [f"{M}={name}"] + [f"{k}={v}" for k, v in setting.items()]).ranking
            model = build_model(c.model, pipe.layout(), 1)
            state, _ = fit(model, tr, va, c.train, d.labels)
            if best is None or state.best_metric > best["val_auc"]:
                z_val, z_test = (predict_logits(model, r.cat, r.dense)[:, 0] for r in (va, te))
                best = {"setting": setting, "val_auc": state.best_metric, "best_epoch": state.best_epoch}
                best.update(scored(z_val, z_test))
        out[name] = best
    best = None
    for setting in _grid(GBDT_SWEEP, quick):
        g = fit_lightgbm(pipe, tr, va, seed=rc.train.seed, params={**setting, "num_threads": gbdt_threads})
        z_val, z_test = (g.logits(feature_matrix(pipe, r)[0]) for r in (va, te))
        val_auc = metrics.auc(va.labels[:, 0], z_val)
        if best is None or val_auc > best["val_auc"]:
            best = {"setting": setting, "val_auc": val_auc, "best_epoch": g.best_iteration, **scored(z_val, z_test)}
    out["lightgbm"] = best
    log.info(
        "split %d: %s",
        seed,
        "  ".join(f"{n} val {r['val_auc']:.3f} test {r['test_auc']:.3f}" for n, r in out.items()),
    )
    return out


def bench_tabular(
    data: str, out: str, quick: bool, gbdt_threads: int, splits: int
) -> tuple[dict, list[str], dict[str, bytes]]:
    """The config's split through the real job, then the same selection repeated on ``splits`` random splits."""
    cfg = load_config(CONFIGS[data])
    seed0 = cfg.ranking.split_seed
    seeds = [seed0] + [s for s in range(splits + 1) if s != seed0][: max(splits - 1, 0)]
    swept = {s: sweep_split(data, s, quick, gbdt_threads) for s in seeds}
    chosen = swept[seed0]
    runs = {
        name: train(data, name, {M: name, **chosen[name]["setting"]}, os.path.join(out, "job"), quick)
        for name in TABULAR_MODELS
    }
    gbdt = lightgbm_row(cfg, gbdt_threads, params=chosen["lightgbm"]["setting"])
    neural = {}
    for name, s in runs.items():
        pred = RunDir(s["run_dir"]).read_table(train_ranker.PREDICTIONS_ARTIFACT).to_pandas()
        label = s["tasks"][0]
        neural[name] = {
            "setting": _short(chosen[name]["setting"], name),
            "val_auc": s["best_validation"],
            "test": _auc_with_interval(pred[f"label_{label}"].to_numpy(), pred[f"logit_{label}"].to_numpy()),
            "logloss": s["test"]["ctr"][label]["logloss"],
            "best_epoch": str(s["best_epoch"]),
        }
    rows = {"lr": neural["lr"]}
    rows["lightgbm"] = {
        "setting": _short(chosen["lightgbm"]["setting"]),
        "val_auc": chosen["lightgbm"]["val_auc"],
        "test": _auc_with_interval(gbdt["labels"], gbdt["z_test"]),
        "logloss": gbdt["logloss"],
        "best_epoch": f"{gbdt['best_epoch']} rounds",
    }
    rows.update({name: row for name, row in neural.items() if name != "lr"})
    n = {k: len(getattr(load_ranking_data(cfg.ranking), k)) for k in ("train", "validation", "test")}
    names = ["lr", "lightgbm", *(m for m in TABULAR_MODELS if m != "lr")]
    mean = {
        m: {k: float(np.mean([swept[s][m][k] for s in seeds])) for k in ("val_auc", "test_auc", "test_logloss")}
        for m in names
    }
    sd = {m: float(np.std([swept[s][m]["test_auc"] for s in seeds], ddof=1)) if len(seeds) > 1 else 0.0 for m in names}
    wins = {m: sum(swept[s][m]["test_auc"] > swept[s]["lightgbm"]["test_auc"] for s in seeds) for m in TABULAR_MODELS}
    diff = {m: np.array([swept[s][m]["test_auc"] - swept[s]["lightgbm"]["test_auc"] for s in seeds]) for m in wins}
    se = {m: float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else float("nan") for m, d in diff.items()}
    lines = [
        f"## {data}: the config's split through the real job (split_seed {seed0})",
        "",
        f"{n['train']} training, {n['validation']} validation and {n['test']} test rows. Settings chosen on the "
        "validation rows only (epochs by early stopping on validation AUC); LightGBM on the same encoded features.",
        "",
        *_table(
            ["model", "chosen on validation", "val AUC", "test AUC [95% CI]", "test logloss", "best epoch"],
            [
                [
                    m,
                    r["setting"],
                    f"{r['val_auc']:.4f}",
                    f"{r['test'][0]:.4f} [{r['test'][1]:.3f}, {r['test'][2]:.3f}]",
                    f"{r['logloss']:.4f}",
                    r["best_epoch"],
                ]
                for m, r in rows.items()
            ],
        ),
        "",
        f"## {data}: mean over {len(seeds)} random splits (each choosing its settings on its own validation rows)",
        "",
        "The job's training loop in one process (no Ray Train); test logloss after the calibrator fitted on "
        "validation. The difference to LightGBM is paired by split; the splits share rows, so its standard error "
        "is optimistic.",
        "",
        *_table(
            [
                "model",
                "val AUC",
                "test AUC",
                "sd",
                "test AUC - LightGBM (se)",
                "test logloss",
                "splits beating LightGBM",
            ],
            [
                [
                    m,
                    f"{mean[m]['val_auc']:.4f}",
                    f"{mean[m]['test_auc']:.4f}",
                    f"{sd[m]:.3f}",
                    f"{diff[m].mean():+.4f} ({se[m]:.3f})" if m in diff else "-",
                    f"{mean[m]['test_logloss']:.4f}",
                    f"{wins[m]}/{len(seeds)}" if m in wins else "-",
                ]
                for m in names
            ],
        ),
        "",
    ]
    head = {
        "data": data,
        "job_test_auc": {m: r["test"][0] for m, r in rows.items()},
        "job_test_logloss": {m: r["logloss"] for m, r in rows.items()},
        "splits": len(seeds),
        "mean_test_auc": {m: mean[m]["test_auc"] for m in names},
        "mean_test_logloss": {m: mean[m]["test_logloss"] for m in names},
    }
    return head, lines, {"tabular_curves.png": _curve_png(runs, "val_auc", f"{data}: validation AUC")}


def _auc_with_interval(labels: np.ndarray, scores: np.ndarray) -> tuple[float, float, float]:
    return (metrics.auc(labels, scores), *metrics.bootstrap_auc_interval(labels, scores))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=sorted(CONFIGS), required=True)
    parser.add_argument(
        "--out", default="runs/bench-ranking", help="folder of the per-model run directories and the report"
    )
    parser.add_argument(
        "--quick", action="store_true", help="2 epochs per model: checks the bench runs, not figures to quote"
    )
    parser.add_argument(
        "--gbdt-threads", type=int, default=1, help="LightGBM threads (OpenMP spins badly on a busy 2-core machine)"
    )
    parser.add_argument(
        "--splits", type=int, default=10, help="tabular data: random splits the selection is repeated on"
    )
    args = parser.parse_args(argv)
    setup_logging()
    out = os.path.join(args.out, args.data)
    shutil.rmtree(out, ignore_errors=True)  # fresh runs: a finished checkpoint would otherwise be resumed, not timed
    init_ray(load_config(CONFIGS[args.data]).ray)
    t0 = time.perf_counter()
    if args.data == "ml-100k":
        head, lines, plots = bench_ml100k(out, args.quick, args.gbdt_threads)
    elif args.data == "tiny_mtl":
        head, lines, plots = bench_tiny_mtl(out, args.quick, args.gbdt_threads)
    else:
        head, lines, plots = bench_tabular(args.data, out, args.quick, args.gbdt_threads, args.splits)
    report = RunDir(out)
    report.start({"bench": "ranking", "data": args.data, "quick": args.quick})
    for name, png in plots.items():
        report.write_bytes(artifacts.report(name), png, step="bench.ranking")
    md = [
        f"# Ranking bench: {args.data}{' (quick: 2 epochs, not figures to quote)' if args.quick else ''}",
        "",
        f"Run {time.strftime('%Y-%m-%d %H:%M')}, {time.perf_counter() - t0:.0f}s on {os.cpu_count()} cores "
        "(shared machine: timings vary with its load).",
        "",
        *lines,
    ]
    report.write_bytes(artifacts.report("ranking.md"), "\n".join(md).encode(), step="bench.ranking")
    report.write_json(artifacts.metrics("bench_ranking"), head, step="bench.ranking")
    print("\n".join(md))
    print(f"\nreport: {out}/reports/ranking.md")
    print(json.dumps(head, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
