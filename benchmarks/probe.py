"""Is a cheap fine-tuning probe worth its cost? (`predict --probe-steps K`)

The learning-curve probe fine-tunes every candidate for the first K steps of the KB's recipe on
the target and reads log(min(v_K, v_0) / v_0), its validation MASE after K steps relative to
before (:mod:`timetic.estimate.stack`). In the KB the same quantity is the point at step K of
each run's recorded validation curve (same split, seed and schedule), so the estimator with the
probe is evaluated leave-one-dataset-out like every other method, on the datasets whose runs
recorded curves.

One run prints:

* accuracy (unseen-dataset: Spearman ρ, weighted τ, top-1 regret) of the default estimator, the
  estimator with the probe, the baselines and the probe's own ranking (zero-shot MASE x the probe
  ratio) on the same held-out (dataset, task) cells;
* cost: the probe's wall time on one real dataset for every candidate, against the full
  fine-tuning of the same cells as the KB recorded it (wall_time_s), and a check that the probe
  reproduces the KB runs' v_K (``--cost-dataset``; needs TIMETIC_DATA_DIR and the weights).

    python benchmarks/probe.py [--kb meta_features] [--steps 25] [--cost-dataset female_births]
                               [--no-cost]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def accuracy(kb, steps: int, seed: int) -> pl.DataFrame:
    from timetic.errors import TimeticWarning
    from timetic.estimate import TimeTic
    from timetic.evaluate import METRICS, EvalResult, evaluate, ranking_metrics

    warnings.simplefilter("ignore", TimeticWarning)
    methods = {"timetic": lambda: TimeTic(kb, seed=seed),
               f"timetic+probe{steps}": lambda: TimeTic(kb, seed=seed, probe_steps=steps)}
    res = evaluate(kb, ["unseen-dataset"], make_estimator=methods, seed=seed)
    # the probe's own ranking: zero-shot MASE x the probe ratio, on the same cells
    from timetic.evaluate import held_out_rows

    ctx = TimeTic(kb, seed=seed).context_table()
    models = ctx.meta.get_column("model_id").unique().sort().to_list()
    extra = []
    for (d, task), _ in res.rows.filter(pl.col("method") == "timetic").group_by("dataset_id", "task"):
        rows, truth = held_out_rows(ctx, d, task, models, probe_steps=steps)
        cands = [m for m in models if m in truth and np.isfinite(rows.probe.get(m, np.nan))]
        if len(cands) < 3:
            continue
        pred = np.array([np.log(np.nanmean(rows.zero_shot[m])) + rows.probe[m] for m in cands])
        extra.append({"scenario": "unseen-dataset", "method": f"zero-shot x probe{steps}", "dataset_id": d,
                      "task": task, **ranking_metrics(np.array([truth[m] for m in cands]), pred)})
    rows_all = pl.concat([res.rows, pl.DataFrame(extra).select(res.rows.columns)], how="vertical_relaxed")
    # cells where every observed model has a probe: the comparison set
    probed = rows_all.filter(pl.col("method") == f"zero-shot x probe{steps}").select("dataset_id", "task")
    cmp = rows_all.join(probed, on=["dataset_id", "task"], how="inner")
    summary = EvalResult(rows=cmp).summary()
    # mean over the tasks (no CI: the per-task bootstraps do not combine into one)
    cis = [c for c in summary.columns if c.endswith(("_lo", "_hi"))]
    metrics = [c for c in summary.columns if c not in ("scenario", "method", "task", "n", *cis)]
    mean = summary.group_by("scenario", "method").agg(pl.col("n").sum(), *[pl.col(c).mean() for c in metrics])
    mean = mean.with_columns(pl.lit("mean").alias("task"), *[pl.lit(float("nan")).alias(c) for c in cis])
    summary = pl.concat([summary, mean.select(summary.columns)])
    order = {"short": 0, "medium": 1, "long": 2, "mean": 3}
    summary = summary.sort(pl.col("task").replace_strict(order, default=9), pl.col("spearman"), "method",
                           descending=[False, True, False])
    # P(fine-tuning helps) on the same cells: the negative-transfer flag (p < 0.5) against the
    # observed outcome (fine-tuned mean MASE below zero-shot), Brier score against the base rate
    pred = res.predictions.join(probed, on=["dataset_id", "task"], how="inner").filter(
        pl.col("p_improve").is_not_nan() & pl.col("observed_zs").is_not_nan())
    flags = []
    for (method,), g in pred.group_by("method", maintain_order=True):
        p = g.get_column("p_improve").to_numpy()
        y = (g.get_column("observed") < g.get_column("observed_zs")).to_numpy().astype(float)
        base = y.mean()
        flags.append({"method": method, "cells x models": len(y), "helps (observed)": base,
                      "flag accuracy": float(((p >= 0.5) == (y == 1)).mean()),
                      "constant answer": float(max(base, 1 - base)),
                      "Brier": float(((p - y) ** 2).mean()), "Brier base rate": float(((base - y) ** 2).mean())})
    return summary, pl.DataFrame(flags)


def cost(kb, steps: int, dataset: str, seed: int) -> None:
    from timetic.adapters import load_model
    from timetic.datasets import load_dataset
    from timetic.estimate import TimeTic
    from timetic.estimate.cells import probe_value
    from timetic.finetune import probe_curve, run_finetune
    from timetic.kb import resolve_model_source
    from timetic.recipe import Recipe
    from timetic.tasks import Task

    est = TimeTic(kb, seed=seed)
    h = est.recipe_hash(kb)
    obs = kb.observations().filter((pl.col("recipe_hash") == h) & (pl.col("dataset_id") == dataset)
                                   & (pl.col("task") == "short"))
    if obs.height == 0:
        print(f"cost: {dataset} has no short-task observations in the KB; pick another --cost-dataset")
        return
    recipe = Recipe.from_dict(json.loads(obs.get_column("recipe").drop_nulls()[0]))
    src = kb.datasets().filter(pl.col("dataset_id") == dataset).get_column("source")[0]
    import re

    m = re.search(r"first (\d+) series, last (\d+) points", src or "")
    target = load_dataset(dataset, max_series=int(m.group(1)) if m else None, max_length=int(m.group(2)) if m else None)
    task = Task.preset("short", target.freq)
    max_eval = int(obs.group_by("model_id").len().get_column("len").max())
    cells = obs.group_by("model_id").agg(pl.col("wall_time_s").first(), pl.col("fit_log").drop_nulls().first(),
                                         pl.col("fit_log").drop_nulls().first().map_elements(
                                             lambda s: json.loads(s)["steps_run"], return_dtype=pl.Int64
                                         ).alias("steps_run"))
    models = kb.models()
    out = []
    for r in cells.sort("model_id").iter_rows(named=True):
        row = models.filter(pl.col("model_id") == r["model_id"])
        model = load_model(resolve_model_source(kb, row.get_column("source")[0]), adapter=row.get_column("adapter")[0])
        t0 = time.perf_counter()
        v0, vk = probe_curve(model, target, task, recipe, steps)
        wall = time.perf_counter() - t0
        t0 = time.perf_counter()
        res = run_finetune(model, target, task, recipe, max_eval_windows=max_eval)
        full_wall = time.perf_counter() - t0
        full_vk = dict(res.provenance["val_curve"]).get(steps)
        kb_curve = dict(json.loads(r["fit_log"])["val_curve"]) if r["fit_log"] else {}
        kb_vk = kb_curve.get(steps)
        out.append({"model": r["model_id"], "probe s": wall, "full fine-tune s": full_wall,
                    "full (KB record) s": r["wall_time_s"], "steps run": res.provenance["steps_run"],
                    "v_K probe": vk, "v_K full": full_vk, "v_K KB": kb_vk,
                    "probe = full": bool(full_vk is not None and np.isclose(vk, full_vk, rtol=1e-6)),
                    "probe = KB": bool(kb_vk is not None and np.isclose(vk, kb_vk, rtol=1e-3)),
                    "log probe": np.log(min(vk, v0) / v0) if np.isfinite(v0) and np.isfinite(vk) else np.nan,
                    "KB log probe": probe_value(r["fit_log"], steps)})
        print(f"  {r['model_id']:16s} probe {wall:6.1f} s  full {full_wall:7.1f} s  "
              f"v_K {vk:.4f} vs full {full_vk} vs KB {kb_vk}", flush=True)
    df = pl.DataFrame(out)
    with pl.Config(tbl_rows=30, tbl_cols=20, float_precision=3, tbl_hide_dataframe_shape=True, tbl_width_chars=200):
        print(df)
    p, f = df.get_column("probe s").sum(), df.get_column("full fine-tune s").sum()
    print(f"\ncost on {dataset} (short task, {df.height} candidates, probe and full fine-tuning timed in "
          f"this run): probe {p:.0f} s vs full fine-tuning {f:.0f} s -> {100 * p / f:.1f}% "
          f"({f / p:.1f}x cheaper); v_K equal to the full run's for "
          f"{int(df.get_column('probe = full').sum())}/{df.height} models and to the KB's record for "
          f"{int(df.get_column('probe = KB').sum())}/{df.height}")


def main() -> None:
    from timetic.kb import KnowledgeBase

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kb", default=str(ROOT / "meta_features"))
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--cost-dataset", default="female_births")
    ap.add_argument("--no-cost", action="store_true")
    ap.add_argument("--no-accuracy", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    os.environ.setdefault("TIMETIC_CACHE_DIR", "off")
    kb = KnowledgeBase.open(args.kb)
    t0 = time.perf_counter()
    if not args.no_accuracy:
        summary, flags = accuracy(kb, args.steps, args.seed)
        cols = ["task", "method", "n", "spearman", "spearman_lo", "spearman_hi", "weighted_tau", "top1", "regret"]
        cols = [c for c in cols if c in summary.columns]
        with pl.Config(tbl_rows=-1, tbl_cols=20, float_precision=3, tbl_hide_dataframe_shape=True,
                       tbl_width_chars=200):
            print(f"unseen-dataset, (dataset, task) cells whose runs recorded a validation curve at step "
                  f"{args.steps} ({time.perf_counter() - t0:.0f} s):")
            print(summary.select(cols))  # by task, best first
            print("\nP(fine-tuning helps) on the same cells (flag: P < 0.5 = negative transfer):")
            print(flags)
    if not args.no_cost:
        cost(kb, args.steps, args.cost_dataset, args.seed)


if __name__ == "__main__":
    main()
