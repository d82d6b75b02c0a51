"""How much cheaper is `predict` than fine-tuning every candidate?

A generated 100-series hourly target; every model of the knowledge base (12 in the shipped one) is a
candidate. Times, in one run:

* ``predict`` per method (the default ``stack``; ``window`` with a learner on request), without the
  zero-shot pass (weight-free path) and with it (features + zero-shot forecasts of every candidate
  + estimator), the zero-shot and fit caches off (a repeated predict on the same data is faster
  still); then with it again on another target in the same process (``True*``: the model libraries
  are imported by then, as in a pipeline that calls the Python API repeatedly);
* fine-tuning every candidate on the same target with timetic's runner and recipe ``v2`` (the
  realistic recipe of KB v2: early stopping on a validation span, up to 400 steps; ``--recipe kb``
  takes the KB's own recipe) — what `predict` replaces.

Prints the table and the ratios. Targets: weight-free predict <= 10 s; >= 100x cheaper than
fine-tuning all candidates.

    python benchmarks/predict_speed.py [--kb meta_features] [--methods stack,window-gp] [--recipe v2|kb]
                                       [--series 100] [--windows 128]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def make_target(n_series: int, length: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    frames = []
    for i in range(n_series):
        y = (
            50 + 10 * np.sin(2 * np.pi * t / 24 + rng.uniform(0, 6)) * rng.uniform(0.2, 2)
            + 5 * np.sin(2 * np.pi * t / 168) + np.cumsum(rng.normal(0, rng.uniform(0.1, 1), length))
        )
        frames.append(pl.DataFrame({"item_id": [f"s{i}"] * length,
                                    "timestamp": pd.date_range("2024-01-01", periods=length, freq="h"),
                                    "target": y}))
    return pl.concat(frames)


def main() -> None:
    import torch

    from timetic.adapters import load_model
    from timetic.data import load_target
    from timetic.estimate import TimeTic
    from timetic.finetune import run_finetune
    from timetic.kb import KnowledgeBase, default_kb_path, resolve_model_source
    from timetic.learners import available_learners
    from timetic.recipe import Recipe
    from timetic.tasks import Task

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kb", type=Path, default=None)
    parser.add_argument("--methods", default="stack", help="stack and/or window-<learner> (e.g. window-gp)")
    parser.add_argument("--recipe", default="v2", help="recipe of the fine-tuning baseline: a named recipe or 'kb'")
    parser.add_argument("--series", type=int, default=100)
    parser.add_argument("--length", type=int, default=1500)
    parser.add_argument("--windows", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import os

    os.environ["TIMETIC_CACHE_DIR"] = "off"  # time the zero-shot pass itself

    kb = KnowledgeBase.open(args.kb or default_kb_path())
    target = load_target(make_target(args.series, args.length, args.seed), name="bench")
    task = Task.preset("short", target.freq)
    models = kb.models()
    print(f"KB {kb.path}: {models.height} models; target {target.n_series} series x {args.length} h; task short")
    rows = []
    for method in args.methods.split(","):
        learner = method.split("-", 1)[1] if method.startswith("window-") else None
        if learner is not None and learner not in available_learners():
            continue
        for zero_shot in (False, True):
            t0 = time.perf_counter()
            est = TimeTic(kb, method="window" if learner else "stack", learner=learner, zero_shot=zero_shot,
                          seed=args.seed)
            est.fit()
            t_fit = time.perf_counter() - t0
            ranking = est.predict(target, task="short", n_windows=args.windows)
            total = time.perf_counter() - t0
            rows.append({"learner": method, "zero_shot": str(zero_shot), "fit_s": t_fit, "total_s": total,
                         "top": ranking["model_id"][0]})
            print(f"predict method={method:<10} zero_shot={zero_shot!s:<5} {total:7.2f} s "
                  f"(context fit {t_fit:.2f} s) top={ranking['model_id'][0]}", flush=True)
        # the same again on another target in this process: the model libraries are imported now,
        # as in a forecasting pipeline that calls the Python API more than once
        other = load_target(make_target(args.series, args.length, args.seed + 1), name="bench2")
        t0 = time.perf_counter()
        est = TimeTic(kb, method="window" if learner else "stack", learner=learner, zero_shot=True, seed=args.seed)
        est.fit()
        t_fit = time.perf_counter() - t0
        ranking = est.predict(other, task="short", n_windows=args.windows)
        total = time.perf_counter() - t0
        rows.append({"learner": method, "zero_shot": "True*", "fit_s": t_fit, "total_s": total,
                     "top": ranking["model_id"][0]})
        print(f"predict method={method:<10} zero_shot=True* {total:7.2f} s (context fit {t_fit:.2f} s) "
              f"top={ranking['model_id'][0]}  (* another target, libraries already imported)", flush=True)

    # fine-tune every candidate (what predict replaces)
    if args.recipe == "kb":
        recipes = kb.observations().get_column("recipe").unique().to_list()
        recipe = Recipe.from_dict(json.loads(recipes[0])) if recipes else Recipe()
    else:
        recipe = Recipe.named(args.recipe)
    t0 = time.perf_counter()
    per_model = {}
    for r in models.iter_rows(named=True):
        ts = time.perf_counter()
        model = load_model(resolve_model_source(kb, r["source"]), adapter=r["adapter"])
        run_finetune(model, target, task, recipe, max_eval_windows=args.windows)
        per_model[r["model_id"]] = time.perf_counter() - ts
        print(f"fine-tune {r['model_id']:<18} {per_model[r['model_id']]:7.1f} s", flush=True)
    t_ft = time.perf_counter() - t0
    print(f"\nfine-tuning all {len(per_model)} candidates: {t_ft:.1f} s (recipe: {recipe.steps} steps, batch {recipe.batch_size})")
    print(f"{'method':<12}{'zero-shot':<10}{'predict s':>10}{'ratio':>10}  target")
    for r in rows:
        ratio = t_ft / r["total_s"]
        goal = ">=100x" + (" and <=10 s" if r["zero_shot"] == "False" else "")
        ok = ratio >= 100 and (r["zero_shot"] != "False" or r["total_s"] <= 10)
        print(f"{r['learner']:<12}{r['zero_shot']:<10}{r['total_s']:>10.2f}{ratio:>9.0f}x  {goal}: {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
