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
PUBLISHED = dict(n_features=20, selection_tol=None, profile="knn", zero_shot=True, transform="log", score="geomean")


def configs() -> dict[str, dict]:
    """Method name -> TimeTic keyword arguments (``{}`` = timetic's defaults)."""
    out = {
        "timetic": {},
        "timetic-published": PUBLISHED,
        "learner=hgb": {"learner": "hgb"},
        "profile=knn": {"profile": "knn"},
        "profile=off": {"profile": None},
        "zero-shot=off": {"zero_shot": False},
    }
    if os.environ.get(TABPFN_ENV):
        out["learner=tabpfn"] = {"learner": "tabpfn"}
    if os.environ.get(TABICL_ENV):
        out["learner=tabicl"] = {"learner": "tabicl"}
    return out


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


# ---------------------------------------------------------------------------------------------
# report


def per_dataset_ci(pred: pl.DataFrame, method: str, n_boot: int = 500, seed: int = 0) -> pl.DataFrame:
    """Spearman per held-out dataset (mean over tasks) with a 95% CI resampling the ranked models."""
    from scipy import stats

    rng = np.random.default_rng(seed)
    rows = []
    for d, g in pred.filter(pl.col("method") == method).group_by("dataset_id", maintain_order=True):
        rhos, boots = [], []
        for _, gt in g.group_by("task"):
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
    return made


def fmt_table(summary: pl.DataFrame, scenario: str) -> str:
    s = summary.filter(pl.col("scenario") == scenario)
    if s.height == 0:
        return "(no rows)\n"
    lines = ["| method | task | n | Spearman ρ [95% CI] | weighted τ [95% CI] | top-1 | top-3 | regret |",
             "|---|---|---|---|---|---|---|---|"]
    order = {"short": 0, "medium": 1, "long": 2, "mean": 3}
    first = {"timetic": 0, "timetic-published": 1, "zero-shot": 10, "leaderboard": 11, "knn": 12, "logme": 13, "random": 14}
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


def _write_scenario(path: Path, res: EvalResult, wall: float) -> None:
    res.rows.with_columns(pl.lit(wall).alias("wall_s")).write_parquet(path)
    if res.predictions is not None:
        res.predictions.write_parquet(path.with_suffix(".predictions.parquet"))


def _read_scenario(path: Path) -> EvalResult:
    p = path.with_suffix(".predictions.parquet")
    return EvalResult(pl.read_parquet(path), pl.read_parquet(p) if p.exists() else None)


def targets(summary: pl.DataFrame) -> list[str]:
    """The issue's benchmark targets, each checked against this run's numbers."""
    def get(scenario, method, task, metric):
        r = summary.filter((pl.col("scenario") == scenario) & (pl.col("method") == method) & (pl.col("task") == task))
        return float(r[metric][0]) if r.height else float("nan")

    out = ["| target | measured | met |", "|---|---|---|"]

    def row(name, value, ok):
        out.append(f"| {name} | {value} | {'yes' if ok else '**no**'} |")

    rho, tau = get("unseen-dataset", "timetic", "mean", "spearman"), get("unseen-dataset", "timetic", "mean", "weighted_tau")
    zs_tau = get("unseen-dataset", "zero-shot", "mean", "weighted_tau")
    reg = get("unseen-dataset", "timetic", "mean", "regret")
    row("unseen dataset: mean ρ ≥ 0.70", f"{rho:.3f}", rho >= 0.70)
    row("unseen dataset: mean τ_w ≥ 0.60", f"{tau:.3f}", tau >= 0.60)
    row("unseen dataset: τ_w ≥ 1.5 × zero-shot's", f"{tau:.3f} vs 1.5 × {zs_tau:.3f} = {1.5 * zs_tau:.3f}", tau >= 1.5 * zs_tau)
    row("unseen dataset: regret ≤ 3%", f"{100 * reg:.1f}%", reg <= 0.03)
    base = ["zero-shot", "leaderboard", "knn", "logme", "random"]
    worse = []
    for task in ("short", "medium", "long"):
        mine = get("unseen-dataset", "timetic", task, "spearman")
        for b in base:
            v = get("unseen-dataset", b, task, "spearman")
            if v == v and v >= mine:
                worse.append(f"{b} ({task}: {v:.3f} ≥ {mine:.3f})")
    row("unseen dataset: ρ above every baseline in every horizon", "; ".join(worse) or "all above", not worse)
    um = get("unseen-model", "timetic", "mean", "spearman")
    row("unseen model: ρ ≥ 0.50", f"{um:.3f}", um >= 0.50)
    fs = get("few-shot", "timetic", "mean", "spearman")
    row("few-shot within 0.05 ρ of full", f"{fs:.3f} vs {rho:.3f}", abs(fs - rho) <= 0.05)
    row("TimeTic paper (unseen dataset): ρ 0.46, τ_w 0.35", f"{rho:.3f}, {tau:.3f}", rho > 0.46 and tau > 0.35)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kb", type=Path, default=ROOT / "meta_features")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "RESULTS.md")
    p.add_argument("--scenarios", default="unseen-dataset,unseen-model,few-shot,both-unseen")
    p.add_argument("--methods", default=None, help="comma-separated subset of the methods (default: all)")
    p.add_argument("--no-logme", action="store_true")
    p.add_argument("--resume", action="store_true", help="reuse scenarios finished by an earlier run")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-boot", type=int, default=1000)
    p.add_argument("--realism-kb", action="append", default=None,
                   help="KBs of the realism table (default: meta_features and meta_features_v2 where present)")
    p.add_argument("--realism-only", action="store_true",
                   help="only recompute the realism section of an existing RESULTS.md (seconds, not minutes)")
    args = p.parse_args(argv)
    warnings.simplefilter("ignore", TimeticWarning)
    if args.realism_only:
        text = args.out.read_text() if args.out.is_file() else ""
        section = "\n".join(realism_section(args.realism_kb))
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
    if args.methods:
        cfg = {k: v for k, v in cfg.items() if k in args.methods.split(",")}
    makers = {k: (lambda c=c: TimeTic(kb, seed=args.seed, **c)) for k, c in cfg.items()}
    parts, preds, walls = [], [], {}
    results = args.out.parent / "results"
    results.mkdir(parents=True, exist_ok=True)
    families = dict(kb.models().select("model_id", "adapter").iter_rows())
    for s in scen:
        cache = results / f"scenario-{s}.parquet"
        if args.resume and cache.exists():  # a finished scenario of an earlier run (same KB)
            res = _read_scenario(cache)
            walls[s] = float(res.rows["wall_s"][0])
            res = EvalResult(res.rows.drop("wall_s"), res.predictions)
        else:
            t0 = time.time()
            # the ablations run where every method can be compared: unseen dataset; the others
            # run timetic's defaults only; both-unseen leaves a whole family out with each dataset
            m = makers if s == "unseen-dataset" else {"timetic": makers.get("timetic", lambda: TimeTic(kb, seed=args.seed))}
            res = evaluate(kb, [s], m, baselines=s in ("unseen-dataset", "few-shot"), seed=args.seed,
                           progress=lambda msg: print(msg, file=sys.stderr), model_groups=families)
            walls[s] = time.time() - t0
            _write_scenario(cache, res, walls[s])
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
    summary = res.summary(n_boot=args.n_boot, seed=args.seed)
    summary = pl.concat([summary, mean_over_tasks(summary)])
    res.rows.write_parquet(results / "folds.parquet")
    summary.write_parquet(results / "summary.parquet")
    if res.predictions is not None:
        res.predictions.write_parquet(results / "predictions.parquet")
    made = figures(res, args.out.parent / "figures") if "unseen-dataset" in scen else []
    write_report(args, kb, summary, res, made, walls, logme_note, time.time() - started)
    print(f"wrote {args.out} ({time.time() - started:.0f} s)")
    return 0


REALISM_START = "<!-- realism:start -->"
REALISM_END = "<!-- realism:end -->"


def realism_section(kbs: list[str] | None) -> list[str]:
    """The realism table (``benchmarks/realism.py``) of the given KBs, as RESULTS.md lines."""
    import realism

    paths = [Path(k) for k in kbs] if kbs else [p for p in (ROOT / "meta_features", ROOT / "meta_features_v2")
                                                   if (p / "kb.json").is_file()]
    results = {}
    for path in paths:
        obs = KnowledgeBase.open(path).observations()
        if obs.height:
            results[path.name] = realism.realism(obs)
    if not results:
        return []
    notes = [f"* `{n}`: recipe `{r['recipe_hash']}`, {r['n_cells']} cells, {r['n_datasets']} datasets, "
             f"{r['n_models']} models; seeds {r.get('seeds')}." for n, r in results.items()]
    return [REALISM_START, "## Realism of the benchmark (`benchmarks/realism.py`)", "",
            "How much each knowledge base resembles published foundation-model behaviour (GIFT-Eval column:",
            "published figures, not computed here). The noise ceiling is the Spearman correlation between",
            "the fine-tuned rankings of two recipe seeds (empty until seeds are run).", "",
            realism.table(results), "", *notes,
            "", "Regenerate this section alone: `python benchmarks/evaluate.py --realism-only`.", REALISM_END, ""]


def write_report(args, kb, summary, res, made, walls, logme_note, total) -> None:
    import timetic

    stats = kb.stats()
    kb_hash = hashlib.sha256((Path(args.kb) / "observations.parquet").read_bytes()).hexdigest()[:12]
    head = summary.filter(pl.col("task") == "mean")
    L = ["# timetic benchmark results", "",
         "Generated by `python benchmarks/evaluate.py` (this file, the figures in `figures/` and the raw",
         "tables in `results/` are its output; do not edit by hand).", "",
         f"* KB: `{Path(args.kb).name}` (schema v{stats['schema_version']}, observations sha256 `{kb_hash}`): "
         f"{stats['n_models']} models × {stats['n_datasets']} datasets, {stats['n_cells']} cells, "
         f"{stats['n_observations']:,} window observations.",
         f"* timetic {timetic.__version__}, seed {args.seed}, bootstrap {args.n_boot} resamples over held-out datasets; "
         f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs.",
         f"* Wall time: this run {total:.0f} s; per scenario (when computed, with `--resume` possibly in an earlier run "
         "on the same KB and code): " + ", ".join(f"{k} {v:.0f} s" for k, v in walls.items()) + f"; LogME {logme_note}.",
         "* Ground truth per held-out dataset and task: the observed mean fine-tuned MASE of each model.",
         "  Metrics per (dataset, task), then averaged; `mean` rows average the three horizons.", "",
         "## Headline (mean over horizons)", "",
         fmt_table(head, "unseen-dataset").replace("| mean |", "| all |"), "",
         "## Targets", "", *targets(summary), "",
         "Few-shot note: the KB scores at most 32 evaluation windows per (dataset, model, task), so a",
         "100-window budget sees all the scored windows of most held-out datasets; on this KB few-shot",
         "equals full, by construction rather than by robustness.", ""]
    for s in args.scenarios.split(","):
        L += [f"## Scenario: {s}", "", fmt_table(summary.filter(pl.col("task") != "mean"), s), ""]
    L += realism_section(args.realism_kb)
    if made:
        L += ["## Figures", ""] + [f"![{m}](figures/{m})" for m in made] + [""]
    L += ["## Methods", "",
          "* `timetic`: the defaults of `TimeTic` (see the README).",
          f"* `timetic-published`: TimeTic as published: {PUBLISHED}.",
          "* `learner=…`, `profile=…`, `zero-shot=off`: one change from the defaults each.",
          "* `zero-shot`: rank by the observed mean zero-shot MASE on the held-out dataset.",
          "* `leaderboard`: rank by the mean fine-tuned rank over the training datasets.",
          "* `knn`: mean fine-tuned rank over the 3 nearest training datasets (standardised mean features).",
          "* `logme`: LogME (regression) of each model's mean-pooled last-layer embeddings of the held-out",
          "  windows for their standardised futures (`timetic.logme`); higher LogME ranks first.",
          "* `random`: expected values of a uniformly random ranking.", ""]
    args.out.write_text("\n".join(L))


if __name__ == "__main__":
    raise SystemExit(main())
