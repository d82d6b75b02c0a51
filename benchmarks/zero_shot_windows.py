"""How many target windows must the zero-shot pass of `predict` score?

The zero-shot pass (every candidate forecasts the sampled target windows) dominates `predict`'s
cost; DeepAR's sample paths most of all. The knowledge base scores at most 32 windows per
(dataset, model, task) cell, so the benchmark (benchmarks/evaluate.py) measures the estimator at
that size. This script checks what scoring more windows would buy, on real datasets held out of
the KB (leave-one-dataset-out: the estimator is fitted without the dataset, then ranks the
dataset loaded as a user target would be):

* the ranking at ``zero_shot_windows`` = 16, 32 (default) and 128 (all sampled windows), as
  Spearman ρ against the observed fine-tuned ranking of the KB (ground truth) and against the
  128-window ranking, and whether the top-1 model agrees;
* the wall time of each predict (zero-shot cache off), in one run;
* with ``--sample-paths 100,50``: the same at each number of DeepAR sample paths per window
  (``zero_shot_sample_paths``; the KB's scores used 100). The reference is then the largest size
  at the largest number of paths.

    python benchmarks/zero_shot_windows.py [--kb meta_features] [--datasets a,b] [--limit 8]
                                           [--task short] [--sizes 16,32,128] [--sample-paths 50]

Needs the datasets (TIMETIC_DATA_DIR) and the KB's model weights.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    from scipy.stats import spearmanr

    from timetic.datasets import DATASETS, load_dataset
    from timetic.estimate import TimeTic
    from timetic.kb import KnowledgeBase

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kb", default=str(ROOT / "meta_features"))
    ap.add_argument("--datasets", default=None, help="comma-separated; default: KB datasets with local data")
    ap.add_argument("--limit", type=int, default=8)
    ap.add_argument("--task", default="short")
    ap.add_argument("--sizes", default="16,32,128")
    ap.add_argument("--sample-paths", default="50", help="DeepAR sample paths per window, comma-separated")
    ap.add_argument("--windows", type=int, default=128, help="sampled target windows (features)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    os.environ["TIMETIC_CACHE_DIR"] = "off"
    sizes = [int(s) for s in args.sizes.split(",")]
    paths = [int(s) for s in args.sample_paths.split(",")]
    configs = [(k, p) for k in sizes for p in paths]
    ref_cfg = (max(sizes), max(paths))
    kb = KnowledgeBase.open(args.kb)
    dsets = kb.datasets()
    if args.datasets:
        names = args.datasets.split(",")
    else:
        have = set(kb.observations().filter(pl.col("task") == args.task).get_column("dataset_id").unique().to_list())
        names = [d for d in dsets.get_column("dataset_id").to_list() if d in have and d in DATASETS][: args.limit]
    base = TimeTic(kb=kb, seed=args.seed)
    ctx = base.context_table()
    ds_of = ctx.meta.get_column("dataset_id").to_numpy()
    # ground truth as benchmarks/evaluate.py reads it: the context table's rows (finite scores)
    obs = kb.observations().filter((pl.col("task") == args.task) & (pl.col("recipe_hash") == base.recipe_hash(kb)))
    rows = []
    for name in names:
        truth = obs.filter(pl.col("dataset_id") == name).filter(
            pl.col("ft_mase").is_finite() & pl.col("zs_mase").is_finite()).group_by("model_id").agg(pl.col("ft_mase").mean())
        if truth.height < 3:
            continue
        src = dsets.filter(pl.col("dataset_id") == name).get_column("source")[0]
        ms, ml = _limits(src)
        target = load_dataset(name, max_series=ms, max_length=ml)
        ranks = {}
        for k, p in configs:
            est = TimeTic(kb=kb, seed=args.seed, zero_shot_windows=k,
                          zero_shot_sample_paths=p).fit(ctx.mask(ds_of != name))
            t0 = time.perf_counter()
            r = est.predict(target, task=args.task, n_windows=args.windows)
            wall = time.perf_counter() - t0
            r = r.join(truth, on="model_id", how="inner")
            ranks[(k, p)] = r
            rho = spearmanr(r.get_column("predicted_mase"), r.get_column("ft_mase")).statistic
            rows.append({"dataset": name, "zero_shot_windows": k, "sample_paths": p, "wall_s": wall, "rho_truth": rho,
                         "top1": r.get_column("model_id")[0],
                         "top1_true": truth.sort("ft_mase").get_column("model_id")[0]})
            print(f"{name:24s} k={k:4d} paths={p:4d} {wall:6.1f} s  rho={rho:+.3f}  top1={rows[-1]['top1']}",
                  flush=True)
        ref = ranks[ref_cfg]
        for row in rows[-len(configs):]:
            r = ranks[(row["zero_shot_windows"], row["sample_paths"])].join(
                ref.select("model_id", pl.col("predicted_mase").alias("ref")),
                                                     on="model_id")
            row["rho_vs_max"] = spearmanr(r.get_column("predicted_mase"), r.get_column("ref")).statistic
            row["top1_same_as_max"] = row["top1"] == ref.get_column("model_id")[0]
    df = pl.DataFrame(rows)
    summary = df.group_by("zero_shot_windows", "sample_paths").agg(
        pl.len().alias("datasets"), pl.col("wall_s").mean().alias("mean wall s"),
        pl.col("rho_truth").mean().alias("ρ vs truth"), pl.col("rho_vs_max").mean().alias(f"ρ vs {ref_cfg[0]}/{ref_cfg[1]}"),
        pl.col("top1_same_as_max").mean().alias(f"top-1 = {ref_cfg[0]}/{ref_cfg[1]}"),
        (pl.col("top1") == pl.col("top1_true")).mean().alias("top-1 = true best"),
    ).sort("zero_shot_windows", "sample_paths")
    with pl.Config(tbl_rows=50, tbl_cols=20, float_precision=3, tbl_hide_dataframe_shape=True):
        print(f"\n{args.task} task, {args.windows} sampled windows, KB {Path(args.kb).name}, leave-one-dataset-out")
        print(summary)


def _limits(source: str) -> tuple[int | None, int | None]:
    """build_kb's (max_series, max_length) from a dataset's recorded source line."""
    import re

    m = re.search(r"first (\d+) series, last (\d+) points", source or "")
    return (int(m.group(1)), int(m.group(2))) if m else (None, None)


if __name__ == "__main__":
    main()
