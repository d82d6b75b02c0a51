"""Evaluate timetic on a knowledge base and write ``benchmarks/RESULTS.md`` with its figures.

    python benchmarks/evaluate.py [--kb meta_features] [--out benchmarks/RESULTS.md]
        [--scenarios unseen-dataset,unseen-model,few-shot,both-unseen] [--no-logme]

One run: every scenario of :mod:`timetic.evaluate`, timetic's defaults, TimeTic as published, the
ablations (learners, profile estimator, profile on/off, zero-shot column on/off) and the
baselines (zero-shot, leaderboard, kNN meta-learner, LogME, random), metrics per held-out dataset
and task with bootstrap 95% CIs over datasets, figures as PNG next to RESULTS.md. LogME needs the
raw datasets (``TIMETIC_DATA_DIR``) and the zoo's weights; its scores are cached in
``benchmarks/results/logme.parquet``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from timetic.errors import TimeticWarning  # noqa: E402
from timetic.estimate import TimeTic  # noqa: E402
from timetic.evaluate import METRICS, EvalResult, evaluate, ranking_metrics  # noqa: E402
from timetic.kb import KnowledgeBase  # noqa: E402
from timetic.learners import TABICL_ENV, TABPFN_ENV  # noqa: E402

#: TimeTic as published: 20 TotalVariance-selected features (no early stop), 6-point kNN entropy
#: profile, zero-shot column, the fine-tuned score itself (log) as the target, geometric mean.
PUBLISHED = dict(method="window", n_features=20, selection_tol=None, profile="knn", zero_shot=True, transform="log",
                 score="geomean")
#: The baselines a user already has, and the methods the targets compare timetic with.
BASELINES = ("zero-shot", "leaderboard", "knn")


def configs() -> dict[str, dict]:
    """Method name -> TimeTic keyword arguments (``{}`` = timetic's defaults, the ``stack``)."""
    out = {
        "timetic": {},
        "weight-free": {"zero_shot": False},
        "timetic-published": PUBLISHED,
        "window": {"method": "window"},  # timetic 0.1's default: window rows, GP learner
        "window-hgb": {"method": "window", "learner": "hgb"},
        "stack-k=3": {"k": 3},
        "stack-k=8": {"k": 8},
        "stack-weights=ridge": {"stack_weights": "ridge", "zs_scale": "log"},  # timetic 0.2's first stack
        "stack-weights=ridge,zs=match": {"stack_weights": "ridge"},
        "stack-zs=log": {"zs_scale": "log"},
        "stack-zs=rank": {"zs_scale": "rank"},
        "weight-free-weights=ridge": {"zero_shot": False, "stack_weights": "ridge"},
        "stack-task-weights=off": {"stack_task_weights": None},  # one weight set for every horizon
        "weight-free-task-weights=off": {"zero_shot": False, "stack_task_weights": None},
        "stack-combine=select": {"combine": "select"},
        "weight-free-combine=select": {"zero_shot": False, "combine": "select"},
        "stack-k=auto(3,5,8)": {"k": (3, 5, 8)},
        "stack-scale=log": {"scale": "log"},
        "stack-scale=rank": {"scale": "rank"},
        "weight-free-scale=log": {"zero_shot": False, "scale": "log"},
        "weight-free-scale=rank": {"zero_shot": False, "scale": "rank"},
        "stack-inputs=three": {"stack_inputs": None},
        "stack-inputs=three+gains": {"stack_inputs": ("zero_shot", "leaderboard", "knn", "gain_leaderboard", "gain_knn")},
        "stack-inputs=zero-shot+knn": {"stack_inputs": ("zero_shot", "knn")},
        "stack-inputs=zero-shot+leaderboard": {"stack_inputs": ("zero_shot", "leaderboard")},
        "stack-inputs=leaderboard+knn": {"stack_inputs": ("leaderboard", "knn")},
        "stack-components=all": {"components": None},  # kNN neighbours over every meta-feature
        # the previous default (until 2026-12-07): the auto input sets without the cross prior
        "stack-cross=off": {"stack_inputs": [("zero_shot", "leaderboard", "knn"),
                                             ("zero_shot", "leaderboard", "knn", "gain_leaderboard", "gain_knn")]},
        # the previous weight-free default (until 2026-12-07): without the meta prior
        "weight-free-meta=off": {"zero_shot": False, "meta": False},
        "stack-meta=on": {"meta": True},  # the meta prior read with zero-shot scores as well
        "weight-free-components=all": {"zero_shot": False, "components": None},
        "weight-free-k=3": {"zero_shot": False, "k": 3},
        "weight-free-k=8": {"zero_shot": False, "k": 8},
        # held-out-model scenarios only (no model is new to the KB in the others)
        "stack-new-model-weights=always": {"new_model_weights": True},
        "stack-new-model-weights=off": {"new_model_weights": False},
        "weight-free-new-model-weights": {"zero_shot": False, "new_model_weights": True},
        # the previous default (until 2026-12-08): a new model borrows from its nearest profiles,
        # whatever their family
        "stack-families=off": {"families": False},
        "weight-free-families=off": {"zero_shot": False, "families": False},
    }
    if os.environ.get(TABPFN_ENV):
        out["window-tabpfn"] = {"method": "window", "learner": "tabpfn"}
    if os.environ.get(TABICL_ENV):
        out["window-tabicl"] = {"method": "window", "learner": "tabicl"}
    return out


#: methods every scenario runs (the ablations run on unseen-dataset only).
MAIN_METHODS = ("timetic", "weight-free")
#: methods that differ from the defaults only for models new to the KB: run where models are held out.
NEW_MODEL_METHODS = ("stack-new-model-weights=always", "stack-new-model-weights=off", "weight-free-new-model-weights",
                     "stack-families=off", "weight-free-families=off")
#: ablations that also run where models are held out (the cross and meta priors borrow for a new model).
HELD_OUT_MODEL_ABLATIONS = ("stack-cross=off", "weight-free-meta=off")


# ---------------------------------------------------------------------------------------------
# LogME baseline


def logme_scores(kb: KnowledgeBase, cache: Path, max_windows: int = 256, seed: int = 0) -> pl.DataFrame | None:
    """(dataset_id, task, model_id, logme) for every KB cell; None when the datasets are absent."""
    from timetic.datasets import DATASETS, data_dir, load_dataset
    from timetic.finetune import split_series
    from timetic.logme import forecasting_logme
    from timetic.tasks import Task

    ds = kb.datasets()
    models = kb.models()
    key = hashlib.sha256(
        (",".join(sorted(ds["content_hash"].to_list())) + "|" + ",".join(sorted(models["model_id"].to_list()))).encode()
    ).hexdigest()[:16]
    if cache.exists():
        cached = pl.read_parquet(cache)
        if cached.height and cached["kb_key"][0] == key:
            return cached.drop("kb_key")
    missing = [d for d in ds["dataset_id"] if d not in DATASETS]
    if missing or not data_dir().exists():
        print(f"LogME skipped: datasets not available ({data_dir()}); set TIMETIC_DATA_DIR", file=sys.stderr)
        return None
    import torch

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    from timetic.adapters import load_model
    from timetic.kb import resolve_model_source

    cells = kb.observations().select("dataset_id", "task").unique().sort("dataset_id", "task")
    loaded = {
        r["model_id"]: load_model(resolve_model_source(kb, r["source"]), adapter=r["adapter"])
        for r in models.iter_rows(named=True)
    }
    rows = []
    for d in cells["dataset_id"].unique().sort().to_list():
        src = ds.filter(pl.col("dataset_id") == d).row(0, named=True)["source"]
        caps = _caps(src)
        target = load_dataset(d, **caps)
        for task_name in cells.filter(pl.col("dataset_id") == d)["task"].to_list():
            task = Task.preset(task_name, target.freq)
            _, ev = split_series(target, task, max_eval_windows=max_windows, seed=seed)
            for mid, model in loaded.items():
                emb = model.layer_embeddings(ev.context)[-1].numpy()
                rows.append({"dataset_id": d, "task": task_name, "model_id": mid,
                             "logme": forecasting_logme(emb, ev.context, ev.future)})
            print(f"LogME {d}/{task_name}: {len(ev)} windows", file=sys.stderr)
    out = pl.DataFrame(rows)
    cache.parent.mkdir(parents=True, exist_ok=True)
    out.with_columns(pl.lit(key).alias("kb_key")).write_parquet(cache)
    return out


def _caps(source: str) -> dict:
    """The (max_series, max_length) caps recorded in a KB dataset's source note."""
    import re

    m = re.search(r"first (\d+) series, last (\d+) points", source)
    return {"max_series": int(m.group(1)), "max_length": int(m.group(2))} if m else {}


def add_logme(res: EvalResult, scores: pl.DataFrame, scenario: str) -> pl.DataFrame:
    """Metric rows of the LogME ranking (higher LogME = better) for one scenario's folds."""
    truth = res.predictions.filter((pl.col("scenario") == scenario) & (pl.col("method") == "zero-shot"))
    out = []
    for (d, t), g in truth.group_by("dataset_id", "task", maintain_order=True):
        j = g.join(scores, on=["dataset_id", "task", "model_id"], how="inner")
        if j.height < 3:
            continue
        out.append({"scenario": scenario, "method": "logme", "dataset_id": d, "task": t,
                    **ranking_metrics(j["observed"].to_numpy(), -j["logme"].to_numpy())})
    return pl.DataFrame(out)


def add_no_information(res: EvalResult, scenario: str, groups: dict[str, str] | None = None) -> pl.DataFrame:
    """Metric rows of the *no-information* reference in a held-out-model scenario: each held-out
    model is predicted by the mean log observed score of every cell its fold could see (the other
    models on every dataset in ``unseen-model``; the other groups on the other datasets in
    ``both-unseen``, ``groups``: model -> family). It is what an estimator that learned nothing about
    the held-out model would answer, and its ρ is negative by construction: leaving a good model out
    makes the mean of the rest worse, so the better a model, the worse its prediction. A method's
    ρ in these scenarios reads against this floor, not against 0."""
    truth = res.predictions.filter((pl.col("scenario") == scenario) & (pl.col("method") == "timetic"))
    if truth.height == 0:
        return pl.DataFrame()
    groups = groups or {}
    both = scenario == "both-unseen"
    t = truth.select("dataset_id", "task", "model_id", "observed", pl.col("observed").log().alias("y")).with_columns(
        pl.col("model_id").replace_strict(groups, default=pl.col("model_id")).alias("group") if both
        else pl.col("model_id").alias("group"))
    out = []
    for (d, task), g in t.group_by("dataset_id", "task", maintain_order=True):
        seen = t.filter((pl.col("task") == task) & ((pl.col("dataset_id") != d) if both else pl.lit(True)))
        pred = np.array([seen.filter(pl.col("group") != grp)["y"].mean() for grp in g["group"]], dtype=float)
        if len(pred) >= 3:
            out.append({"scenario": scenario, "method": "no-information", "dataset_id": d, "task": task,
                        **ranking_metrics(g["observed"].to_numpy(), pred)})
    return pl.DataFrame(out)


# ---------------------------------------------------------------------------------------------
# report


def per_dataset_ci(pred: pl.DataFrame, method: str, n_boot: int = 500, seed: int = 0) -> pl.DataFrame:
    """Spearman per held-out dataset (mean over tasks) with a 95% CI resampling the ranked models."""
    from scipy import stats

    rng = np.random.default_rng(seed)
    rows = []
    for d, g in pred.filter(pl.col("method") == method).sort("dataset_id").group_by("dataset_id", maintain_order=True):
        rhos, boots = [], []
        for _, gt in g.sort("task", "model_id").group_by("task", maintain_order=True):  # fixed order: same CIs
            o, p = gt["observed"].to_numpy(), gt["predicted"].to_numpy()
            rhos.append(stats.spearmanr(o, p).statistic)
            idx = rng.integers(0, len(o), size=(n_boot, len(o)))
            b = [stats.spearmanr(o[i], p[i]).statistic for i in idx]
            boots.append(np.nan_to_num(np.array(b)))
        bm = np.mean(boots, axis=0)
        rows.append({"dataset_id": d[0] if isinstance(d, tuple) else d, "spearman": float(np.mean(rhos)),
                     "lo": float(np.quantile(bm, 0.025)), "hi": float(np.quantile(bm, 0.975))})
    return pl.DataFrame(rows).sort("spearman")


def figures(res: EvalResult, outdir: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    outdir.mkdir(parents=True, exist_ok=True)
    made = []
    pred = res.predictions.filter(pl.col("scenario") == "unseen-dataset")
    # 1. rho by held-out dataset with CIs: timetic vs zero-shot
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for k, (method, colour) in enumerate([("timetic", "C0"), ("zero-shot", "C1")]):
        t = per_dataset_ci(pred, method)
        x = np.arange(t.height) + (k - 0.5) * 0.35
        if k == 0:
            order = t["dataset_id"].to_list()
        t = t.join(pl.DataFrame({"dataset_id": order, "i": range(len(order))}), on="dataset_id").sort("i")
        ax.errorbar(x, t["spearman"], yerr=[t["spearman"] - t["lo"], t["hi"] - t["spearman"]],
                    fmt="o", color=colour, label=method, capsize=2)
    ax.set_xticks(range(len(order)), order, rotation=45, ha="right")
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_ylabel("Spearman ρ (mean over tasks)")
    ax.set_title("Unseen dataset: ρ per held-out dataset (95% CI, bootstrap over models)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(outdir / "rho_by_dataset.png", dpi=110)
    plt.close(fig)
    made.append("rho_by_dataset.png")
    # 2. predicted vs observed
    t = pred.filter(pl.col("method") == "timetic")
    fig, ax = plt.subplots(figsize=(5, 5))
    for k, task in enumerate(["short", "medium", "long"]):
        g = t.filter(pl.col("task") == task)
        ax.scatter(g["observed"], g["predicted"], s=10, alpha=0.6, label=task, color=f"C{k}")
    lo = float(min(t["observed"].min(), t["predicted"].min()))
    hi = float(max(t["observed"].max(), t["predicted"].max()))
    ax.plot([lo, hi], [lo, hi], color="grey", lw=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("observed mean fine-tuned MASE")
    ax.set_ylabel("predicted")
    ax.set_title("Unseen dataset: predicted vs observed")
    ax.legend()
    fig.tight_layout()
    fig.savefig(outdir / "predicted_vs_observed.png", dpi=110)
    plt.close(fig)
    made.append("predicted_vs_observed.png")
    # 3. calibration of the 90% intervals: coverage by task, and where the truth falls
    fig, axes = plt.subplots(1, 2, figsize=(9, 4))
    cov = t.with_columns(((pl.col("observed") >= pl.col("lower_90")) & (pl.col("observed") <= pl.col("upper_90"))).alias("in"))
    c = cov.group_by("task").agg(pl.col("in").mean()).sort("task")
    axes[0].bar(c["task"], c["in"], color="C0")
    axes[0].axhline(0.9, color="k", ls="--", lw=1, label="nominal 0.90")
    axes[0].set_ylim(0, 1)
    axes[0].set_ylabel("empirical coverage")
    axes[0].legend()
    # position of the truth inside the interval, in log space: 0 = lower, 1 = upper
    pos = (np.log(t["observed"]) - np.log(t["lower_90"])) / (np.log(t["upper_90"]) - np.log(t["lower_90"]))
    axes[1].hist(np.clip(pos.to_numpy(), -2, 3), bins=30, color="C0")
    axes[1].axvline(0, color="k", lw=1)
    axes[1].axvline(1, color="k", lw=1)
    axes[1].set_xlabel("observed position in the 90% interval (log scale; clipped)")
    fig.suptitle("Calibration of timetic's 90% intervals (unseen dataset)")
    fig.tight_layout()
    fig.savefig(outdir / "calibration.png", dpi=110)
    plt.close(fig)
    made.append("calibration.png")
    # 4. reliability of P(best) and P(fine-tuning helps)
    cal = calibration(res.predictions, "timetic")
    fig, axes = plt.subplots(1, 2, figsize=(9, 4))
    for ax, key, title in ((axes[0], "p_best_bins", "P(best)"), (axes[1], "p_improve_bins", "P(fine-tuning helps)")):
        b = cal[key]
        if b:
            ax.plot([x[2] for x in b], [x[3] for x in b], "o-", color="C0")
            for x in b:
                ax.annotate(str(x[1]), (x[2], x[3]), fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.plot([0, 1], [0, 1], color="grey", lw=0.8)
        ax.set_xlabel("predicted probability (bin mean)")
        ax.set_ylabel("observed frequency")
        ax.set_title(title)
    fig.suptitle("Reliability of timetic's probabilities (unseen dataset; n per bin)")
    fig.tight_layout()
    fig.savefig(outdir / "reliability.png", dpi=110)
    plt.close(fig)
    made.append("reliability.png")
    return made


def fmt_table(summary: pl.DataFrame, scenario: str) -> str:
    s = summary.filter(pl.col("scenario") == scenario)
    if s.height == 0:
        return "(no rows)\n"
    lines = ["| method | task | n | Spearman ρ [95% CI] | weighted τ [95% CI] | top-1 | top-3 | regret |",
             "|---|---|---|---|---|---|---|---|"]
    order = {"short": 0, "medium": 1, "long": 2, "mean": 3}
    first = {"timetic": 0, "timetic-published": 1, "zero-shot": 10, "leaderboard": 11, "knn": 12, "logme": 13, "random": 14,
             "no-information": 15}
    s = s.with_columns(pl.col("method").replace_strict(first, default=5, return_dtype=pl.Int64).alias("_m"))
    for r in s.sort(pl.col("task").replace_strict(order, default=9), "_m", "method").iter_rows(named=True):
        lines.append(
            f"| {r['method']} | {r['task']} | {r['n']} | {r['spearman']:.3f} [{r['spearman_lo']:.2f}, {r['spearman_hi']:.2f}] "
            f"| {r['weighted_tau']:.3f} [{r['weighted_tau_lo']:.2f}, {r['weighted_tau_hi']:.2f}] "
            f"| {r['top1']:.2f} | {r['top3']:.2f} | {100 * r['regret']:.1f}% |"
        )
    return "\n".join(lines) + "\n"


def mean_over_tasks(summary: pl.DataFrame) -> pl.DataFrame:
    """Per (scenario, method): metrics averaged over the three horizons (the headline numbers)."""
    cols = [c for c in summary.columns if c.split("_")[0] in METRICS or c in METRICS or c.rsplit("_", 1)[0] in METRICS]
    return (
        summary.group_by("scenario", "method", maintain_order=True)
        .agg(pl.col("n").sum(), *[pl.col(c).mean() for c in cols])
        .with_columns(pl.lit("mean").alias("task"))
        .select(summary.columns)
    )


def observations_hash(kb_path: str | Path) -> str:
    """First 12 hex digits of the sha256 of the KB's observations file (what RESULTS.md names)."""
    return hashlib.sha256((Path(kb_path) / "observations.parquet").read_bytes()).hexdigest()[:12]


def _scenario_methods(s: str, makers: dict) -> list[str]:
    """The methods scenario ``s`` runs: the ablations run where every method can be compared
    (unseen dataset); the others run timetic's defaults only, and where models are held out also
    the methods that differ for a model new to the KB; both-unseen leaves a whole family out with
    each dataset."""
    if s == "unseen-dataset":
        return [k for k in makers if k not in NEW_MODEL_METHODS]
    names = MAIN_METHODS + (NEW_MODEL_METHODS + HELD_OUT_MODEL_ABLATIONS if s in ("unseen-model", "both-unseen") else ())
    return [k for k in names if k in makers]


def _merged(old: EvalResult, new: EvalResult, methods: list[str]) -> EvalResult:
    """``old`` (a cached scenario) with the rows and predictions of ``methods`` replaced by ``new``'s,
    in ``old``'s order of methods (a method ``old`` lacks comes last)."""
    order = list(dict.fromkeys(old.rows["method"].to_list() + methods))
    rank = {m: i for i, m in enumerate(order)}

    def swap(a: pl.DataFrame | None, b: pl.DataFrame | None) -> pl.DataFrame | None:
        if a is None or b is None:
            return a if b is None else b
        keep = a.filter(~pl.col("method").is_in(methods))
        out = pl.concat([keep, b.select([c for c in keep.columns if c in b.columns])], how="diagonal")
        idx = pl.Series([rank[m] for m in out["method"].to_list()])
        return out.with_columns(idx.alias("_order")).sort("_order", maintain_order=True).drop("_order")

    rows = swap(old.rows.drop("wall_s", "kb_hash"), new.rows)
    rows = rows.with_columns(pl.lit(old.rows["wall_s"][0]).alias("wall_s"), pl.lit(old.rows["kb_hash"][0]).alias("kb_hash"))
    return EvalResult(rows, swap(old.predictions, new.predictions))


def _write_scenario(path: Path, res: EvalResult, wall: float, kb_hash: str = "") -> None:
    res.rows.with_columns(pl.lit(wall).alias("wall_s"), pl.lit(kb_hash).alias("kb_hash")).write_parquet(path)
    if res.predictions is not None:
        res.predictions.write_parquet(path.with_suffix(".predictions.parquet"))


def _reruns_path(path: Path) -> Path:
    """The ``--rerun`` record of a scenario cache (``scenario-S.reruns.json``)."""
    return path.with_suffix(".reruns.json")


def _reruns(path: Path, kb_hash: str) -> list[dict]:
    """The ``--rerun`` runs on a scenario cache, oldest first: ``{"methods": [...], "seconds": s}``
    (none when the cache was recomputed in full or is of other KB observations)."""
    p = _reruns_path(path)
    if not p.exists():
        return []
    rec = json.loads(p.read_text())
    return rec["runs"] if rec.get("kb_hash") == kb_hash else []


def _add_rerun(path: Path, kb_hash: str, methods: list[str], seconds: float) -> None:
    runs = _reruns(path, kb_hash) + [{"methods": sorted(methods), "seconds": round(float(seconds))}]
    _reruns_path(path).write_text(json.dumps({"kb_hash": kb_hash, "runs": runs}, indent=1) + "\n")


def _read_scenario(path: Path) -> EvalResult:
    p = path.with_suffix(".predictions.parquet")
    return EvalResult(pl.read_parquet(path), pl.read_parquet(p) if p.exists() else None)


def paired_bootstrap(rows: pl.DataFrame, method: str, others: list[str], metric: str = "spearman",
                     scenario: str = "unseen-dataset", n_boot: int = 10000, seed: int = 0) -> pl.DataFrame:
    """``method`` minus each of ``others`` on the per-dataset mean (over horizons) of ``metric``:
    mean difference, 95% CI and P(difference > 0), resampling held-out datasets."""
    r = rows.filter(pl.col("scenario") == scenario)
    per = r.group_by("method", "dataset_id").agg(pl.col(metric).mean())
    mine = per.filter(pl.col("method") == method).select("dataset_id", pl.col(metric).alias("a"))
    rng = np.random.default_rng(seed)
    out = []
    for o in others:
        j = mine.join(per.filter(pl.col("method") == o).select("dataset_id", pl.col(metric).alias("b")),
                      on="dataset_id").sort("dataset_id")  # group_by's order varies: same seed, same CI
        if j.height < 2:
            continue
        d = (j["a"] - j["b"]).to_numpy()
        boot = d[rng.integers(0, len(d), size=(n_boot, len(d)))].mean(axis=1)
        out.append({"method": method, "versus": o, "metric": metric, "n_datasets": len(d), "diff": float(d.mean()),
                    "lo": float(np.quantile(boot, 0.025)), "hi": float(np.quantile(boot, 0.975)),
                    "p_better": float((boot > 0).mean())})
    return pl.DataFrame(out)


def calibration(pred: pl.DataFrame, method: str = "timetic", scenario: str = "unseen-dataset") -> dict:
    """Coverage of the 90% intervals per horizon, and Brier scores of P(best) and P(fine-tuning
    helps) against their base rates, with reliability bins."""
    t = pred.filter((pl.col("scenario") == scenario) & (pl.col("method") == method))
    t = t.with_columns(
        ((pl.col("observed") >= pl.col("lower_90")) & (pl.col("observed") <= pl.col("upper_90"))).alias("covered"),
        (pl.col("observed") == pl.col("observed").min().over("dataset_id", "task")).cast(pl.Float64).alias("is_best"),
        (pl.col("observed") < pl.col("observed_zs")).cast(pl.Float64).alias("helps"),
    )
    out: dict = {"coverage": t.group_by("task").agg(pl.col("covered").mean(), pl.len()).sort("task"),
                 "coverage_all": float(t["covered"].mean()) if t.height else float("nan")}
    G = t.group_by("dataset_id", "task").len()["len"].to_numpy()
    pb, best = t["p_best"].to_numpy(), t["is_best"].to_numpy()
    out["p_best_brier"] = float(np.mean((pb - best) ** 2))
    out["p_best_brier_base"] = float(np.mean((np.repeat(1.0 / G, G) - best) ** 2)) if len(G) else float("nan")
    h = t.filter(pl.col("p_improve").is_not_nan() & pl.col("observed_zs").is_not_nan())
    pi, helps = h["p_improve"].to_numpy(), h["helps"].to_numpy()
    rate = float(helps.mean()) if len(helps) else float("nan")
    out["helps_rate"] = rate
    out["p_improve_brier"] = float(np.mean((pi - helps) ** 2)) if len(pi) else float("nan")
    out["p_improve_brier_base"] = float(np.mean((rate - helps) ** 2)) if len(pi) else float("nan")
    out["flag_accuracy"] = float(np.mean((pi < 0.5) == (helps == 0))) if len(pi) else float("nan")
    out["flag_constant"] = max(rate, 1 - rate) if len(pi) else float("nan")
    bins = np.linspace(0, 1, 6)

    def reliability(p, y):
        k = np.clip(np.digitize(p, bins[1:-1]), 0, len(bins) - 2)
        return [(f"{bins[i]:.1f}–{bins[i + 1]:.1f}", int((k == i).sum()), float(p[k == i].mean()), float(y[k == i].mean()))
                for i in range(len(bins) - 1) if (k == i).any()]

    out["p_best_bins"] = reliability(pb, best)
    out["p_improve_bins"] = reliability(pi, helps) if len(pi) else []
    return out


def truth_split(kb: KnowledgeBase) -> pl.DataFrame:
    """``realism.window_split_reliability`` of the KB's primary recipe (the evaluation's ground truth)."""
    import realism

    h = TimeTic(kb).recipe_hash(kb)
    return realism.window_split_reliability(kb.observations(recipe_hash=h))


def noise_ceiling(kb: KnowledgeBase) -> float:
    """Mean over horizons of the noise ceiling ρ measured by ``benchmarks/realism.py`` (NaN without seeds)."""
    import realism

    r = realism.realism(kb.observations())
    v = [r[k] for k in r if k.startswith("ceiling_rho_") and np.isfinite(r[k])]
    return float(np.mean(v)) if v else float("nan")


def targets(summary: pl.DataFrame, boot: pl.DataFrame, cal: dict, ceiling: float) -> list[str]:
    """The estimator issue's targets, each checked against this run's numbers."""
    def get(scenario, method, task, metric):
        r = summary.filter((pl.col("scenario") == scenario) & (pl.col("method") == method) & (pl.col("task") == task))
        return float(r[metric][0]) if r.height else float("nan")

    out = ["| target | measured | met |", "|---|---|---|"]

    def row(name, value, ok):
        out.append(f"| {name} | {value} | {'yes' if ok else '**no**'} |")

    U = "unseen-dataset"
    for metric, label in (("spearman", "ρ"), ("weighted_tau", "τ_w")):
        worse = []
        for task in ("short", "medium", "long"):
            mine = get(U, "timetic", task, metric)
            for b in BASELINES:
                v = get(U, b, task, metric)
                if v == v and v >= mine:
                    worse.append(f"{b} ({task}: {v:.3f} ≥ {mine:.3f})")
        row(f"unseen dataset: {label} above zero-shot, leaderboard and kNN in every horizon",
            "; ".join(worse) or "all above", not worse)
    rho_boot = boot.filter((pl.col("method") == "timetic") & (pl.col("metric") == "spearman"))
    if rho_boot.height:
        best = {b: get(U, b, "mean", "spearman") for b in BASELINES}
        b = max(best, key=lambda k: best[k] if best[k] == best[k] else -9)
        r = rho_boot.filter(pl.col("versus") == b)
        pb = float(r["p_better"][0]) if r.height else float("nan")
        row(f"P(timetic's mean ρ > best baseline's, {b}) ≥ 0.9 (paired bootstrap over datasets)", f"{pb:.3f}", pb >= 0.9)
    rho, reg = get(U, "timetic", "mean", "spearman"), get(U, "timetic", "mean", "regret")
    goal = min(0.80, 0.9 * ceiling) if ceiling == ceiling else 0.80
    row(f"unseen dataset: mean ρ ≥ min(0.80, 0.9 × noise ceiling {ceiling:.3f}) = {goal:.3f}", f"{rho:.3f}", rho >= goal)
    row("unseen dataset: regret ≤ 3%", f"{100 * reg:.1f}%", reg <= 0.03)
    wf = get(U, "weight-free", "mean", "spearman")
    lb, kn = get(U, "leaderboard", "mean", "spearman"), get(U, "knn", "mean", "spearman")
    row("weight-free mean ρ above leaderboard and kNN", f"{wf:.3f} vs {lb:.3f}, {kn:.3f}", wf > lb and wf > kn)
    def floor(s):
        f = get(s, "no-information", "mean", "spearman")
        return f" (no-information reference {f:.3f})" if f == f else ""

    um = get("unseen-model", "timetic", "mean", "spearman")
    row("unseen model: ρ ≥ 0.60", f"{um:.3f}{floor('unseen-model')}", um >= 0.60)
    bu = get("both-unseen", "timetic", "mean", "spearman")
    row("both unseen: ρ ≥ 0.50", f"{bu:.3f}{floor('both-unseen')}", bu >= 0.50)
    cov = cal.get("coverage_all", float("nan"))
    covs = ", ".join(f"{t} {c:.2f}" for t, c in cal["coverage"].select("task", "covered").iter_rows()) if "coverage" in cal else ""
    row("90% intervals cover 85–95% (unseen dataset; per horizon)", f"{cov:.3f} ({covs})", 0.85 <= cov <= 0.95)
    fa, fc = cal.get("flag_accuracy", float("nan")), cal.get("flag_constant", float("nan"))
    row("negative-transfer flag more accurate than the constant answer", f"{fa:.3f} vs {fc:.3f}", fa > fc)
    fs = get("few-shot", "timetic", "mean", "spearman")
    row("few-shot (20 windows) within 0.05 ρ of the full target", f"{fs:.3f} vs {rho:.3f}", abs(fs - rho) <= 0.05)
    tau = get(U, "timetic", "mean", "weighted_tau")
    row("TimeTic paper (unseen dataset): ρ 0.46, τ_w 0.35", f"{rho:.3f}, {tau:.3f}", rho > 0.46 and tau > 0.35)
    return out


def unseen_model_coverage(pred: pl.DataFrame, method: str, scenario: str = "unseen-model") -> str:
    """Coverage of the 90% intervals of held-out models, all and per horizon (scenario
    unseen-model: each model's prediction from the fold without it, as predict ranks a model added
    without observations; both-unseen: from the fold without its dataset and its family)."""
    t = pred.filter((pl.col("scenario") == scenario) & (pl.col("method") == method)
                    & pl.col("lower_90").is_not_nan() & pl.col("upper_90").is_not_nan())
    if not t.height:
        return "–"
    t = t.with_columns(((pl.col("observed") >= pl.col("lower_90")) & (pl.col("observed") <= pl.col("upper_90"))).alias("in"))
    per = t.group_by("task").agg(pl.col("in").mean()).sort("task")
    return (f"{float(t['in'].mean()):.3f} (n={t.height}; "
            + ", ".join(f"{k} {v:.2f}" for k, v in per.iter_rows()) + ")")


def calibration_section(cal: dict, wf: dict, pred: pl.DataFrame | None = None) -> list[str]:
    L = ["## Calibration (unseen dataset)", "",
         "Intervals: split-conformal quantiles of leave-one-dataset-out residuals (`timetic.estimate.stack`).",
         "The truth of *fine-tuning helps* is observed mean fine-tuned MASE < observed mean zero-shot MASE;",
         "the base-rate Brier score predicts the rate observed over all evaluated cells (a hindsight",
         "constant, generous to the baseline).", "",
         "| quantity | timetic | weight-free |", "|---|---|---|"]
    for t in ("short", "medium", "long"):
        def cv(c):
            r = c["coverage"].filter(pl.col("task") == t)
            return f"{float(r['covered'][0]):.3f} (n={int(r['len'][0])})" if r.height else "–"
        L.append(f"| 90% interval coverage, {t} | {cv(cal)} | {cv(wf)} |")
    L += [f"| 90% interval coverage, all | {cal['coverage_all']:.3f} | {wf['coverage_all']:.3f} |",
          *([f"| 90% interval coverage of held-out models (scenario unseen-model) | "
             f"{unseen_model_coverage(pred, 'timetic')} | {unseen_model_coverage(pred, 'weight-free')} |",
             f"| 90% interval coverage of held-out families (scenario both-unseen) | "
             f"{unseen_model_coverage(pred, 'timetic', 'both-unseen')} | "
             f"{unseen_model_coverage(pred, 'weight-free', 'both-unseen')} |"]
            if pred is not None else []),
          f"| P(best) Brier (base rate 1/G) | {cal['p_best_brier']:.4f} ({cal['p_best_brier_base']:.4f}) "
          f"| {wf['p_best_brier']:.4f} ({wf['p_best_brier_base']:.4f}) |",
          f"| P(fine-tuning helps) Brier (base rate {cal['helps_rate']:.2f}) | {cal['p_improve_brier']:.4f} "
          f"({cal['p_improve_brier_base']:.4f}) | – |",
          f"| negative-transfer flag accuracy (constant answer) | {cal['flag_accuracy']:.3f} ({cal['flag_constant']:.3f}) | – |",
          "", "Reliability (timetic): predicted probability bin, n, mean predicted, observed frequency.", "",
          "| bin | P(best): n | mean p | observed | P(helps): n | mean p | observed |", "|---|---|---|---|---|---|---|"]
    pb = {b: (n, p, o) for b, n, p, o in cal["p_best_bins"]}
    pi = {b: (n, p, o) for b, n, p, o in cal["p_improve_bins"]}
    empty = (0, float("nan"), float("nan"))
    for b in sorted(set(pb) | set(pi)):  # a bin that either probability occupies
        (n, p, o), (n2, p2, o2) = pb.get(b, empty), pi.get(b, empty)
        L.append(f"| {b} | {n} | {p:.3f} | {o:.3f} | {n2} | {p2:.3f} | {o2:.3f} |")
    return L + [""]


#: strata of a cell's ground-truth reliability (``realism.window_split_reliability``'s ``rho_full``).
RELIABILITY_STRATA = (("one window (no split)", None, None), ("below 0.5", -1.0, 0.5), ("0.5 to 0.8", 0.5, 0.8),
                      ("0.8 and above", 0.8, 1.01))


def by_truth_reliability(rows: pl.DataFrame, split: pl.DataFrame,
                         methods: tuple[str, ...] = (*MAIN_METHODS, *BASELINES)) -> str:
    """Markdown table: the unseen-dataset metrics of ``methods`` per stratum of how well the held-out
    cell's ground truth agrees with itself across its evaluation windows.

    rows: per-(dataset, task) metric records (``EvalResult.rows``); split: one row per cell with
    ``rho_full`` (``realism.window_split_reliability``; NaN or absent: no split)."""
    d = rows.filter((pl.col("scenario") == "unseen-dataset") & pl.col("method").is_in(list(methods)))
    d = d.join(split.select("dataset_id", "task", "rho_full"), on=["dataset_id", "task"], how="left")
    r = pl.col("rho_full").fill_nan(None)
    lines = ["| truth's split-half ρ (all windows) | cells | method | Spearman ρ | weighted τ | top-1 | regret |",
             "|---|---|---|---|---|---|---|"]
    for label, lo, hi in RELIABILITY_STRATA:
        sel = d.filter(r.is_null() if lo is None else (r >= lo) & (r < hi))
        if sel.height == 0:
            continue
        agg = sel.group_by("method").agg(pl.len().alias("n"), *[pl.col(m).mean() for m in
                                                                ("spearman", "weighted_tau", "top1", "regret")])
        for x in agg.sort("spearman", "method", descending=[True, False]).iter_rows(named=True):
            lines.append(f"| {label} | {x['n']} | {x['method']} | {x['spearman']:.3f} | {x['weighted_tau']:.3f} "
                         f"| {x['top1']:.2f} | {100 * x['regret']:.1f}% |")
    return "\n".join(lines) + "\n"


def ablation_table(summary: pl.DataFrame) -> str:
    s = summary.filter((pl.col("scenario") == "unseen-dataset"))
    piv = {}
    for r in s.iter_rows(named=True):
        piv.setdefault(r["method"], {})[r["task"]] = r
    lines = ["| method | ρ mean | ρ short / medium / long | τ_w mean | top-1 | regret |", "|---|---|---|---|---|---|"]
    order = sorted(piv, key=lambda m: -piv[m].get("mean", {}).get("spearman", -9))
    for m in order:
        t = piv[m]
        if "mean" not in t:
            continue
        per = " / ".join(f"{t[k]['spearman']:.3f}" if k in t else "–" for k in ("short", "medium", "long"))
        lines.append(f"| {m} | {t['mean']['spearman']:.3f} | {per} | {t['mean']['weighted_tau']:.3f} "
                     f"| {t['mean']['top1']:.2f} | {100 * t['mean']['regret']:.1f}% |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    from timetic.kb import default_kb_path

    p.add_argument("--kb", type=Path, default=default_kb_path(), help="knowledge base (default: the shipped one)")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "RESULTS.md")
    p.add_argument("--scenarios", default="unseen-dataset,unseen-model,few-shot,both-unseen")
    p.add_argument("--methods", default=None, help="comma-separated subset of the methods (default: all)")
    p.add_argument("--no-logme", action="store_true")
    p.add_argument("--skip-window", action="store_true",
                   help="leave out the window-formulation methods (window*, timetic-published; most of the run time)")
    p.add_argument("--resume", action="store_true", help="reuse scenarios finished by an earlier run")
    p.add_argument("--rerun", default=None,
                   help="with --resume: comma-separated methods to recompute in each reused scenario (the others' "
                        "rows are kept), for a change that touches only those methods")
    p.add_argument("--readme", action=argparse.BooleanOptionalAction, default=None,
                   help="rewrite the README's results block (default: when --out is benchmarks/RESULTS.md)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-boot", type=int, default=1000)
    p.add_argument("--realism-kb", action="append", default=None,
                   help="KBs of the realism table (default: meta_features_v1 and meta_features where present)")
    p.add_argument("--realism-only", action="store_true",
                   help="only recompute the realism section of an existing RESULTS.md (seconds, not minutes)")
    args = p.parse_args(argv)
    if args.readme is None:
        args.readme = args.out.resolve() == (ROOT / "benchmarks" / "RESULTS.md").resolve()
    warnings.simplefilter("ignore", TimeticWarning)
    if args.realism_only:
        text = args.out.read_text() if args.out.is_file() else ""
        section = "\n".join(realism_section(args.realism_kb, alone=True))
        a, b = text.find(REALISM_START), text.find(REALISM_END)
        if a >= 0 and b > a:
            text = text[:a] + section + text[b + len(REALISM_END):]
        else:
            text = text.rstrip("\n") + "\n\n" + section + "\n"
        args.out.write_text(text)
        print(section)
        return 0
    started = time.time()
    kb = KnowledgeBase.open(args.kb)
    scen = args.scenarios.split(",")
    cfg = configs()
    if args.skip_window:
        cfg = {k: v for k, v in cfg.items() if v.get("method") != "window"}
    if args.methods:
        cfg = {k: v for k, v in cfg.items() if k in args.methods.split(",")}
    makers = {k: (lambda c=c: TimeTic(kb, seed=args.seed, **c)) for k, c in cfg.items()}
    parts, preds, walls, reran = [], [], {}, {}
    # RESULTS.md keeps results/ and figures/; another --out (e.g. RESULTS-v2.md) gets its own subfolders
    sub = "" if args.out.name == "RESULTS.md" else args.out.stem
    results = args.out.parent / "results" / sub
    results.mkdir(parents=True, exist_ok=True)
    families = dict(kb.models().select("model_id", "adapter").iter_rows())
    kb_hash = observations_hash(args.kb)
    for s in scen:
        cache = results / f"scenario-{s}.parquet"
        cached = None
        if args.resume and cache.exists():
            old = _read_scenario(cache)
            if "kb_hash" in old.rows.columns and old.rows.get_column("kb_hash")[0] == kb_hash:
                cached = old
            else:
                print(f"{s}: the cached run is of other KB observations; recomputing", flush=True)
        if cached is not None and args.rerun:  # recompute some methods, keep the others' rows
            names = _scenario_methods(s, makers)
            redo = {k: makers[k] for k in args.rerun.split(",") if k in names}
            t0 = time.time()
            res = cached
            if redo:  # judged on the windows and truth of the full run (its first method's context)
                new = evaluate(kb, [s], redo, baselines=False, seed=args.seed,
                               progress=lambda msg: print(msg, file=sys.stderr), model_groups=families,
                               truth_from=makers[names[0]])
                res = _merged(cached, new, list(redo))
            walls[s] = float(cached.rows["wall_s"][0])
            _write_scenario(cache, EvalResult(res.rows.drop("wall_s", "kb_hash"), res.predictions), walls[s], kb_hash)
            if redo:
                _add_rerun(cache, kb_hash, list(redo), time.time() - t0)
            res = EvalResult(res.rows.drop("wall_s", "kb_hash"), res.predictions)
        elif cached is not None:  # a finished scenario of an earlier run on the same KB observations
            res = cached
            walls[s] = float(res.rows["wall_s"][0])
            res = EvalResult(res.rows.drop("wall_s", "kb_hash"), res.predictions)
        else:
            t0 = time.time()
            m = {k: makers[k] for k in _scenario_methods(s, makers)}
            res = evaluate(kb, [s], m, baselines=s in ("unseen-dataset", "few-shot"), seed=args.seed,
                           progress=lambda msg: print(msg, file=sys.stderr), model_groups=families)
            walls[s] = time.time() - t0
            _write_scenario(cache, res, walls[s], kb_hash)
            _reruns_path(cache).unlink(missing_ok=True)  # every method computed afresh
        reran[s] = _reruns(cache, kb_hash)
        parts.append(res.rows)
        if res.predictions is not None:
            preds.append(res.predictions)
        print(f"{s}: {walls[s]:.0f} s", file=sys.stderr)
    res = EvalResult(pl.concat(parts, how="diagonal"), pl.concat(preds, how="diagonal") if preds else None)
    logme_note = "not run (--no-logme)"
    if not args.no_logme:
        t0 = time.time()
        scores = logme_scores(kb, ROOT / "benchmarks" / "results" / "logme.parquet", seed=args.seed)
        if scores is not None:
            extra = [add_logme(res, scores, s) for s in scen if s in ("unseen-dataset", "few-shot")]
            res = EvalResult(pl.concat([res.rows, *extra], how="diagonal"), res.predictions)
            logme_note = f"{time.time() - t0:.0f} s here (cached in benchmarks/results/logme.parquet; 87 s to compute on this machine)"
        else:
            logme_note = "skipped: raw datasets not available"
    floors = [add_no_information(res, s, families) for s in scen if s in ("unseen-model", "both-unseen")]
    floors = [f for f in floors if f.height]
    if floors:
        res = EvalResult(pl.concat([res.rows, *floors], how="diagonal"), res.predictions)
    summary = res.summary(n_boot=args.n_boot, seed=args.seed)
    summary = pl.concat([summary, mean_over_tasks(summary)])
    res.rows.write_parquet(results / "folds.parquet")
    summary.write_parquet(results / "summary.parquet")
    if res.predictions is not None:
        res.predictions.write_parquet(results / "predictions.parquet")
    made = figures(res, args.out.parent / "figures" / sub) if "unseen-dataset" in scen else []
    made = [str(Path(sub) / m) if sub else m for m in made]
    write_report(args, kb, summary, res, made, walls, logme_note, time.time() - started, reran)
    print(f"wrote {args.out} ({time.time() - started:.0f} s)")
    return 0


REALISM_START = "<!-- realism:start -->"
REALISM_END = "<!-- realism:end -->"


def realism_section(kbs: list[str] | None, alone: bool = False) -> list[str]:
    """The realism table (``benchmarks/realism.py``) of the given KBs, as RESULTS.md lines;
    ``alone``: regenerated without the rest of the file (``--realism-only``), which it says."""
    import realism

    paths = [Path(k) for k in kbs] if kbs else [p for p in (ROOT / "meta_features_v1", ROOT / "meta_features")
                                                   if (p / "kb.json").is_file()]
    results = {}
    for path in paths:
        obs = KnowledgeBase.open(path).observations()
        if obs.height:
            results[path.name] = realism.realism(obs)
    if not results:
        return []
    notes = [f"* `{n}`: recipe `{r['recipe_hash']}`, {r['n_cells']} cells, {r['n_datasets']} datasets, "
             f"{r['n_models']} models; seeds {r.get('seeds')}; observations sha256 `{observations_hash(p)}`."
             for p, (n, r) in zip([p for p in paths if p.name in results], results.items())]
    if alone:
        notes.append(f"* This section was regenerated alone (`--realism-only`, {time.strftime('%Y-%m-%d')}); the "
                     "rest of the file, including the noise-ceiling target above, is from the full run its "
                     "header describes.")
    return [REALISM_START, "## Realism of the benchmark (`benchmarks/realism.py`)", "",
            "How much each knowledge base resembles published foundation-model behaviour (GIFT-Eval column:",
            "published figures, not computed here). The noise ceiling is the Spearman correlation between",
            "the fine-tuned rankings of two recipe seeds (empty until seeds are run), on the same windows.",
            "The last rows hold the fine-tuning fixed and vary the windows: the Spearman correlation between",
            "the rankings of two random halves of a cell's evaluation windows (mean over cells with two or",
            "more), and the same stepped up to all windows (Spearman-Brown 2r / (1 + r)). Windows of one",
            "series overlap in time, so the step-up is an approximation. The attainable ρ rows: an estimator",
            "that knew each cell's expected ranking exactly would correlate with the cell's observed ranking",
            "by about the square root of that reliability (classical test theory; mean over cells; seed noise",
            "not counted, so an upper bound): the most any estimator can score against this truth.", "",
            realism.table(results), "", *notes,
            "", "Regenerate this section alone: `python benchmarks/evaluate.py --realism-only`.", REALISM_END, ""]


README_START = "<!-- results:start -->"
README_END = "<!-- results:end -->"


def reliable_cells(rows: pl.DataFrame, split: pl.DataFrame, threshold: float = 0.8) -> pl.DataFrame:
    """Per method: unseen-dataset mean metrics over the held-out cells whose truth agrees with itself
    (``split``'s ``rho_full`` >= ``threshold``), and how many cells that is of how many."""
    d = rows.filter(pl.col("scenario") == "unseen-dataset").join(
        split.select("dataset_id", "task", "rho_full"), on=["dataset_id", "task"], how="left")
    ok = pl.col("rho_full").fill_nan(None) >= threshold
    return d.group_by("method").agg(ok.sum().alias("n"), pl.len().alias("of"),
                                    *[pl.col(m).filter(ok).mean() for m in ("spearman", "regret")])


def readme_block(kb_name: str, summary: pl.DataFrame, boot: pl.DataFrame, cal: dict, cal_wf: dict,
                 reliable: pl.DataFrame | None = None) -> str:
    """The README's results table and plain-words summary, regenerated with RESULTS.md
    (``reliable``: :func:`reliable_cells`)."""
    def get(method, metric, scenario="unseen-dataset", task="mean"):
        r = summary.filter((pl.col("scenario") == scenario) & (pl.col("method") == method) & (pl.col("task") == task))
        return float(r[metric][0]) if r.height else float("nan")

    def ci(method, metric):
        r = summary.filter((pl.col("scenario") == "unseen-dataset") & (pl.col("method") == method)
                           & (pl.col("task") == "mean"))
        return f"[{float(r[metric + '_lo'][0]):.2f}, {float(r[metric + '_hi'][0]):.2f}]" if r.height else ""

    names = {"timetic": "timetic (defaults: stack)", "weight-free": "timetic weight-free (`--no-zero-shot`)",
             "window": "timetic 0.1 (window rows, GP)", "timetic-published": "TimeTic as published",
             "zero-shot": "zero-shot ranking", "knn": "kNN meta-learner", "leaderboard": "leaderboard",
             "logme": "LogME"}
    have = [t for t in ("short", "medium", "long") if np.isfinite(get("timetic", "spearman", task=t))]
    counts = []
    for t in have:
        n = summary.filter((pl.col("scenario") == "unseen-dataset") & (pl.col("method") == "timetic")
                           & (pl.col("task") == t))["n"]
        counts.append(str(int(n[0])) if len(n) else "?")
    over = "the three horizons" if len(have) == 3 else (
        "the " + " and ".join(have) + " task" + ("s, the only ones" if len(have) > 1 else ", the only one")
        + " with observations when this was generated")
    L = [README_START,
         f"Unseen dataset, mean over {over}, on the KB `{kb_name}` ({' / '.join(counts)} held-out datasets"
         + (f" ({' / '.join(have)})" if len(have) > 1 else "") + ";",
         "regenerated by `python benchmarks/evaluate.py` with RESULTS.md):", "",
         "| method | Spearman ρ | weighted τ | top-1 | regret |", "|---|---|---|---|---|"]
    for m, label in names.items():
        if summary.filter(pl.col("method") == m).height == 0:
            continue
        L.append(f"| {label} | {get(m, 'spearman'):.3f} {ci(m, 'spearman')} | {get(m, 'weighted_tau'):.3f} "
                 f"| {get(m, 'top1'):.2f} | {100 * get(m, 'regret'):.1f}% |")
    def horizons(method):
        return " / ".join(f"{v:.3f}" if np.isfinite(v) else "–"
                          for v in (get(method, "spearman", task=t) for t in ("short", "medium", "long")))

    per, zper = horizons("timetic"), horizons("zero-shot")
    b = {r["versus"]: r for r in boot.filter((pl.col("method") == "timetic") & (pl.col("metric") == "spearman")).iter_rows(named=True)}
    zs = b.get("zero-shot")
    L += ["", f"* Per horizon (short / medium / long), timetic ρ {per}; zero-shot ranking {zper}.",
          f"* Paired bootstrap over held-out datasets: timetic − zero-shot ranking Δρ "
          + (f"{zs['diff']:+.3f} [{zs['lo']:+.3f}, {zs['hi']:+.3f}], P(Δ > 0) = {zs['p_better']:.3f}" if zs else "n/a")
          + "; the other baselines in RESULTS.md.",
          f"* Unseen model ρ {get('timetic', 'spearman', 'unseen-model'):.3f}; both unseen "
          f"{get('timetic', 'spearman', 'both-unseen'):.3f}; few-shot (20 target windows) "
          f"{get('timetic', 'spearman', 'few-shot'):.3f}.",
          f"* 90% intervals cover {cal['coverage_all']:.0%} of held-out observed scores "
          f"({cal_wf['coverage_all']:.0%} weight-free). P(fine-tuning helps): Brier {cal['p_improve_brier']:.3f} "
          f"vs {cal['p_improve_brier_base']:.3f} for the (hindsight) base rate {cal['helps_rate']:.2f}; the negative-transfer "
          f"flag is right {cal['flag_accuracy']:.0%} of the time, the constant answer {cal['flag_constant']:.0%}."]
    if reliable is not None and reliable.height:
        r = {x["method"]: x for x in reliable.iter_rows(named=True)}
        if "timetic" in r and r["timetic"]["n"]:
            t = r["timetic"]
            others = ", ".join(f"{m} {r[m]['spearman']:.3f} / {100 * r[m]['regret']:.1f}%" for m in BASELINES if m in r)
            L.append(f"* On the {t['n']} of {t['of']} held-out cells whose truth agrees with itself (two halves of "
                     "their evaluation windows, stepped up to all, rank the models with ρ ≥ 0.8): timetic ρ "
                     f"{t['spearman']:.3f}, regret {100 * t['regret']:.1f}% ({others}; RESULTS.md, "
                     "\"Accuracy where the ground truth is reliable\").")
    L.append(README_END)
    return "\n".join(L)


def update_readme(block: str, path: Path = ROOT / "README.md") -> None:
    text = path.read_text()
    a, b = text.find(README_START), text.find(README_END)
    if a < 0 or b < a:
        print(f"README has no {README_START} block; not updated", file=sys.stderr)
        return
    path.write_text(text[:a] + block + text[b + len(README_END):])


def write_report(args, kb, summary, res, made, walls, logme_note, total, reran: dict | None = None) -> None:
    """RESULTS.md; ``reran``: scenario -> the ``--rerun`` runs on its cache, oldest first."""
    import timetic

    stats = kb.stats()
    kb_hash = observations_hash(args.kb)
    keep = [*MAIN_METHODS, *NEW_MODEL_METHODS, *HELD_OUT_MODEL_ABLATIONS, *BASELINES, "logme", "random", "no-information"]
    main = summary.filter(pl.col("method").is_in(keep) & ~(pl.col("method").is_in(HELD_OUT_MODEL_ABLATIONS)
                                                            & ~pl.col("scenario").is_in(["unseen-model", "both-unseen"])))
    head = main.filter(pl.col("task") == "mean")
    boot = pl.concat([
        paired_bootstrap(res.rows, "timetic", list(BASELINES), "spearman", seed=args.seed),
        paired_bootstrap(res.rows, "timetic", list(BASELINES), "weighted_tau", seed=args.seed),
        paired_bootstrap(res.rows, "weight-free", ["leaderboard", "knn"], "spearman", seed=args.seed),
    ], how="diagonal")
    cal = calibration(res.predictions, "timetic")
    cal_wf = calibration(res.predictions, "weight-free")
    ceiling = noise_ceiling(kb)
    split = truth_split(kb)
    L = ["# timetic benchmark results", "",
         "Generated by `python benchmarks/evaluate.py` (this file, the figures in `figures/` and the raw",
         "tables in `results/` are its output; do not edit by hand).", "",
         f"* KB: `{Path(args.kb).name}` (schema v{stats['schema_version']}, observations sha256 `{kb_hash}`): "
         f"{stats['n_models']} models × {stats['n_datasets']} datasets, {stats['n_cells']} cells, "
         f"{stats['n_observations']:,} window observations (ground truth: the KB's primary recipe only).",
         f"* timetic {timetic.__version__}, seed {args.seed}, bootstrap {args.n_boot} resamples over held-out datasets; "
         f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs.",
         f"* Wall time: this run {total:.0f} s; per scenario (when computed, with `--resume` possibly in an earlier run "
         "on the same KB and code): " + ", ".join(f"{k} {v:.0f} s" for k, v in walls.items()) + f"; LogME {logme_note}."
         + ("".join(f" Recomputed in {k} with `--rerun` ({r['seconds']:.0f} s; the other methods' rows kept): "
                    + ", ".join(f"`{m}`" for m in r["methods"]) + "." for k, runs in (reran or {}).items() for r in runs)),
         "* Ground truth per held-out dataset and task: the observed mean fine-tuned MASE of each model.",
         "  Metrics per (dataset, task), then averaged; `mean` rows average the three horizons.", "",
         "## Headline (unseen dataset, mean over horizons)", "",
         fmt_table(head, "unseen-dataset").replace("| mean |", "| all |"), "",
         "## Targets", "", *targets(summary, boot, cal, ceiling), "",
         "## Paired bootstrap over held-out datasets (unseen dataset)", "",
         "Per held-out dataset, the method's metric (mean over horizons) minus the other's; 10,000 resamples.", "",
         "| method | versus | metric | datasets | mean difference [95% CI] | P(difference > 0) |",
         "|---|---|---|---|---|---|",
         *[f"| {r['method']} | {r['versus']} | {r['metric']} | {r['n_datasets']} | {r['diff']:+.3f} "
           f"[{r['lo']:+.3f}, {r['hi']:+.3f}] | {r['p_better']:.3f} |" for r in boot.iter_rows(named=True)], "",
         "## Accuracy where the ground truth is reliable (unseen dataset)", "",
         "A held-out cell's truth is the models' mean fine-tuned MASE over its evaluation windows; with few",
         "or disparate windows that ranking is itself noisy. Cells grouped by how well two random halves of",
         "their windows agree on the ranking, stepped up to all windows (Spearman-Brown; `benchmarks/realism.py`,",
         "whose table below gives the per-horizon means). Metrics are means over the group's cells.", "",
         by_truth_reliability(res.rows, split),
         *calibration_section(cal, cal_wf, res.predictions),
         "## Ablation (unseen dataset; one change from the defaults each)", "",
         "Every method `TimeTic` can run here, in the same folds; `window*` and `timetic-published` are the",
         "window-row formulation (one row per window and model, a tabular learner in context)"
         + (" — **not run this time** (`--skip-window`)." if args.skip_window else "."), "",
         ablation_table(summary), ""]
    for s in args.scenarios.split(","):
        L += [f"## Scenario: {s}", "", fmt_table(main.filter(pl.col("task") != "mean"), s), ""]
    L += realism_section(args.realism_kb)
    if made:
        L += ["## Figures", ""] + [f"![{m}](figures/{m})" for m in made] + [""]
    stack = TimeTic(kb, seed=args.seed).fit().learner_
    pn = ", ".join(f"{n}: {v:.2f}" for n, v in stack.profile_neighbour_scores_.items())
    on = ", ".join(f"{n}: {v:.3f}" for n, v in stack.other_family_neighbour_scores_.items())
    L += ["## Methods", "",
          "* `timetic`: the defaults of `TimeTic` (the `stack` formulation, see the README).",
          f"  A model new to the KB whose family (adapter) is in the KB borrows its priors from its {stack.profile_neighbours_}",
          "  nearest KB model(s) of that family in entropy-profile space, chosen in each fold from the fold's own",
          "  source cells by leaving one model out (`profile_neighbours='auto'`; on the whole KB, mean within-cell",
          f"  Spearman per number: {pn}); one whose family the KB lacks from its {stack.other_family_neighbours_}",
          "  nearest KB model(s) of other families, chosen by leaving one family out (0: none, its priors are",
          f"  the mean; on the whole KB, mean within-cell Spearman of the placement per number: {on}).",
          "* `stack-families=off`, `weight-free-families=off` (unseen-model, both-unseen): every new model",
          "  borrows from its nearest profiles whatever their family (`TimeTic(families=False)`, the default",
          "  until 2026-12-08).",
          "* `weight-free`: the defaults without the zero-shot pass (`--no-zero-shot`).",
          f"* `timetic-published`: TimeTic as published: {PUBLISHED}.",
          "* `window`: timetic 0.1's default (window rows, Rényi profile, GP learner, log-ratio target).",
          "* `stack-…`, `weight-free-…`, `window-…`: one change from the defaults each.",
          "* `stack-new-model-weights=…`, `weight-free-new-model-weights` (unseen-model, both-unseen): models",
          "  new to the KB weigh their inputs with weights fitted on the KB cells with every model's priors",
          "  borrowed from its profile neighbours: `always` (`TimeTic(new_model_weights=True)`) or `off`",
          "  (the known models' weights); the default (`'auto'`) uses them with zero-shot scores for a target",
          "  that is not one of the KB's datasets (both-unseen), not for one that is (unseen-model).",
          "* `zero-shot`: rank by the observed mean zero-shot MASE on the held-out dataset.",
          "* `leaderboard`: rank by the mean fine-tuned rank over the training datasets.",
          "* `knn`: mean fine-tuned rank over the 3 nearest training datasets (standardised mean features).",
          "* `logme`: LogME (regression) of each model's mean-pooled last-layer embeddings of the held-out",
          "  windows for their standardised futures (`timetic.logme`); higher LogME ranks first.",
          "* `random`: expected values of a uniformly random ranking.",
          "* `no-information` (unseen-model, both-unseen): each held-out model predicted by the mean log",
          "  observed score of every cell its fold could see (`add_no_information`); what an estimator",
          "  that learned nothing about the model would answer. Its ρ is negative by construction",
          "  (leaving a good model out makes the mean of the rest worse), so these scenarios' ρ reads",
          "  against it rather than against 0.", ""]
    args.out.write_text("\n".join(L))
    if args.readme:
        update_readme(readme_block(Path(args.kb).name, summary, boot, cal, cal_wf, reliable_cells(res.rows, split)))


if __name__ == "__main__":
    raise SystemExit(main())
