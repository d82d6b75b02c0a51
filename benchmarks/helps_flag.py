"""Can anything cheap predict negative transfer? The negative-transfer flag against the constant answer.

    python benchmarks/helps_flag.py [--kb meta_features] [--k 5] [--out benchmarks/results/helps_flag.md]
    python benchmarks/helps_flag.py --stack [--out benchmarks/results/helps_flag.md]

``--stack`` instead measures what ``timetic`` itself answers: the stack's P(fine-tuning helps)
(unseen-dataset scenario of ``timetic.evaluate``) in the default estimator and with one of its
P(helps) settings changed (``STACK_VARIANTS``: ``helps_model``, ``gain_zs_rank``, ``gain_length``),
by task: Brier score against the hindsight base rate (the rate over all held-out cells, as
RESULTS.md reports it), flag accuracy against the constant answer, flags raised and right. With
``--out`` the table is appended to that file as a section.

``timetic predict`` flags a candidate when P(fine-tuning helps) < 0.5. On KB v2 fine-tuning helps
(observed mean fine-tuned MASE < observed mean zero-shot MASE) in about 4 of 5 (dataset, model,
task) cells, so "it always helps" is right 80 % of the time, and the estimator's flag never fires
(``benchmarks/RESULTS.md``, calibration). This script asks whether *any* input available at
prediction time without fine-tuning would let a classifier beat that constant, in the
unseen-dataset scenario: for each held-out dataset, a classifier is fitted on the other datasets'
cells and predicts the held-out dataset's cells. Every input of a training cell is computed
without its own dataset (as the held-out dataset's are without it), so nothing leaks.

Inputs (per cell and model), combined in the variants printed:

* ``gain_lb``: the model's mean log(fine-tuned / zero-shot) over the training datasets (all tasks);
  ``helps_lb``: the share of training cells where fine-tuning helped it;
* ``gain_knn``: its mean log ratio over the ``k`` training datasets nearest in mean window
  meta-features (same task, standardised on the training datasets);
* ``log_len``: log10 of the dataset's mean series length (little training data per series makes
  early stopping keep the starting point, and fine-tuned = zero-shot is "does not help");
* ``log_zs``, ``rel_zs``: log mean zero-shot MASE, and the same centred over the cell's models;
* ``zs_rank``: the model's zero-shot rank among the cell's models, -0.5 (best) .. 0.5 (worst), as
  the stack's gain model reads it (``zs_rank``);
* the task (two indicators).

``gains`` in a variant's name is gain_lb + gain_knn; "gains + log_len + zs_rank" are the stack's own
gain inputs (its default P(fine-tuning helps) is a logistic regression on them, ``--stack``).

Classifiers: logistic regression (scikit-learn defaults) and a gradient-boosted tree classifier
(``HistGradientBoostingClassifier``, 100 iterations, depth 3). Reported: flag accuracy (flag = P <
0.5), Brier score, how many cells are flagged and how many flags are right, against the constant
answer (the training folds' base rate, not a hindsight one). Seconds on 2 cores.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _report import tables, write_result  # noqa: E402

TASKS = ("short", "medium", "long")
VARIANTS = {
    "gain_lb": ["gain_lb"],
    "gain_lb + gain_knn": ["gain_lb", "gain_knn"],
    "gain_lb + log_len": ["gain_lb", "log_len"],
    "gains + log_len + rel_zs": ["gain_lb", "gain_knn", "log_len", "rel_zs"],
    "helps_lb + zs_rank": ["helps_lb", "zs_rank"],
    "gains + log_len + zs_rank": ["gain_lb", "gain_knn", "log_len", "zs_rank"],
    "all": ["gain_lb", "helps_lb", "gain_knn", "log_len", "log_zs", "rel_zs", "zs_rank"],
}


#: the stack's P(fine-tuning helps) variants --stack compares (TimeTic keyword arguments); the
#: previous default (until 2026-12-07): the gain model's residuals, recalibrated, no zero-shot rank.
STACK_VARIANTS = {
    "default": {},
    "helps_model=residuals": {"helps_model": "residuals"},
    "gain_zs_rank=False": {"gain_zs_rank": False},
    "previous default": {"helps_model": "residuals", "gain_zs_rank": False},
    "gain_length=False": {"gain_length": False},
}


def load_cells(kb: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(cells, features): one row per (dataset, task, model) of the KB's main recipe, seed 0, with
    zs / ft (mean MASE over finite windows), gain = log(ft / zs) and helps = ft < zs; and the mean
    window meta-features per (dataset, task)."""
    from realism import cell_table, main_recipe

    obs = pl.read_parquet(kb / "observations.parquet")
    h = main_recipe(obs, None)
    obs = obs.filter((pl.col("recipe_hash") == h) & (pl.col("seed") == 0))
    cells = (
        cell_table(obs)
        .filter(pl.col("zs").is_finite() & pl.col("ft").is_finite() & (pl.col("zs") > 0) & (pl.col("ft") > 0))
        .with_columns((pl.col("ft") / pl.col("zs")).log().alias("gain"), (pl.col("ft") < pl.col("zs")).alias("helps"),
                      pl.col("zs").log().alias("log_zs"))
        .with_columns((pl.col("log_zs") - pl.col("log_zs").mean().over("dataset_id", "task")).alias("rel_zs"),
                      ((pl.col("zs").rank().over("dataset_id", "task") - 1) / (pl.len().over("dataset_id", "task") - 1)
                       - 0.5).alias("zs_rank"))
    )
    ds = pl.read_parquet(kb / "datasets.parquet").select(
        "dataset_id", (pl.col("total_length") / pl.col("n_series")).log10().alias("log_len"))
    cells = cells.join(ds, on="dataset_id", how="left").sort("dataset_id", "task", "model_id")
    win = pl.read_parquet(kb / "windows.parquet")
    skip = {"dataset_id", "task", "item_id", "window_start"}
    num = [c for c, t in win.schema.items() if c not in skip and t.is_numeric()]
    feats = win.group_by("dataset_id", "task").agg(pl.col(num).mean()).sort("dataset_id", "task")
    return cells, feats


def priors(train: pl.DataFrame, rows: pl.DataFrame, feats: pl.DataFrame, k: int) -> pl.DataFrame:
    """``rows`` with gain_lb, helps_lb and gain_knn computed from ``train`` cells only."""
    lb = train.group_by("model_id").agg(pl.col("gain").mean().alias("gain_lb"),
                                        pl.col("helps").cast(pl.Float64).mean().alias("helps_lb"))
    out = rows.join(lb, on="model_id", how="left")
    knn = []
    train_ds = train.get_column("dataset_id").unique().to_list()
    for task in rows.get_column("task").unique().to_list():
        f = feats.filter(pl.col("task") == task)
        tr = f.filter(pl.col("dataset_id").is_in(train_ds))
        if tr.height == 0:
            continue
        Xtr = tr.drop("dataset_id", "task").to_numpy().astype(np.float64)
        mu, sd = np.nanmean(Xtr, axis=0), np.nanstd(Xtr, axis=0)
        sd[~(sd > 0)] = 1.0
        Z = np.nan_to_num((Xtr - mu) / sd)
        for d in rows.filter(pl.col("task") == task).get_column("dataset_id").unique().to_list():
            x = f.filter(pl.col("dataset_id") == d).drop("dataset_id", "task").to_numpy().astype(np.float64)
            if x.shape[0] == 0:
                continue
            dist = np.sqrt(((Z - np.nan_to_num((x[0] - mu) / sd)) ** 2).sum(axis=1))
            near = tr.get_column("dataset_id").to_numpy()[np.argsort(dist)[:k]].tolist()
            g = (train.filter((pl.col("task") == task) & pl.col("dataset_id").is_in(near))
                 .group_by("model_id").agg(pl.col("gain").mean().alias("gain_knn")))
            knn.append(g.with_columns(pl.lit(d).alias("dataset_id"), pl.lit(task).alias("task")))
    if knn:
        out = out.join(pl.concat(knn).select("dataset_id", "task", "model_id", "gain_knn"),
                       on=["dataset_id", "task", "model_id"], how="left")
    else:
        out = out.with_columns(pl.lit(None, dtype=pl.Float64).alias("gain_knn"))
    # a model without training cells for the neighbours falls back to its leaderboard gain
    return out.with_columns(pl.col("gain_knn").fill_null(pl.col("gain_lb")))


def by_series_length(cells: pl.DataFrame) -> pl.DataFrame:
    """Share of cells where fine-tuning helps, by log10 mean series length of the dataset."""
    edges = [2.0, 2.5, 3.0, 3.5, 4.0]
    b = pl.col("log_len")
    bin_ = pl.when(b <= edges[0]).then(pl.lit(f"<= {edges[0]}"))
    for a, z in zip(edges, edges[1:]):
        bin_ = bin_.when(b <= z).then(pl.lit(f"({a}, {z}]"))
    bin_ = bin_.otherwise(pl.lit(f"> {edges[-1]}"))
    return (cells.with_columns(bin_.alias("log10 length"), b.alias("_k"))
            .group_by("log10 length").agg(pl.col("_k").min().alias("_o"), pl.len().alias("cells"),
                                          pl.col("dataset_id").n_unique().alias("datasets"),
                                          pl.col("helps").mean().round(3).alias("helps"))
            .sort("_o").drop("_o"))


def by_zs_rank(cells: pl.DataFrame) -> pl.DataFrame:
    """Share of cells where fine-tuning helps, by the model's zero-shot rank quarter in its cell."""
    q = pl.col("zs_rank") + 0.5  # 0 best .. 1 worst
    bin_ = (pl.when(q <= 0.25).then(pl.lit("best quarter")).when(q <= 0.5).then(pl.lit("second"))
            .when(q <= 0.75).then(pl.lit("third")).otherwise(pl.lit("worst quarter")))
    return (cells.with_columns(bin_.alias("zero-shot rank"), q.alias("_k"))
            .group_by("zero-shot rank").agg(pl.col("_k").min().alias("_o"), pl.len().alias("cells"),
                                            pl.col("helps").mean().round(3).alias("helps"))
            .sort("_o").drop("_o"))


def design(df: pl.DataFrame, cols: list[str]) -> np.ndarray:
    X = [df.get_column(c).cast(pl.Float64).fill_null(np.nan).to_numpy() for c in cols]
    X += [(df.get_column("task") == t).to_numpy().astype(float) for t in TASKS[1:]]
    return np.nan_to_num(np.column_stack(X))


def run(cells: pl.DataFrame, feats: pl.DataFrame, k: int, seed: int = 0) -> pl.DataFrame:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    datasets = sorted(cells.get_column("dataset_id").unique().to_list())
    learners = {
        "logistic": lambda: LogisticRegression(max_iter=2000),
        "boosted trees": lambda: HistGradientBoostingClassifier(max_iter=100, max_depth=3, random_state=seed),
    }
    y_all = cells.get_column("helps").to_numpy().astype(int)
    held = cells.get_column("dataset_id").to_numpy()
    P = {(lname, v): np.full(cells.height, np.nan) for lname in learners for v in VARIANTS}
    const = np.full(cells.height, np.nan)
    for d in datasets:
        train = cells.filter(pl.col("dataset_id") != d)
        # training rows: each training dataset's inputs from the other training datasets
        inner = pl.concat([priors(train.filter(pl.col("dataset_id") != d2), train.filter(pl.col("dataset_id") == d2), feats, k)
                           for d2 in sorted(train.get_column("dataset_id").unique().to_list())])
        test = priors(train, cells.filter(pl.col("dataset_id") == d), feats, k)
        mask = held == d
        ytr = inner.get_column("helps").to_numpy().astype(int)
        const[mask] = ytr.mean()
        for v, cols in VARIANTS.items():
            Xtr, Xte = design(inner, cols), design(test, cols)
            for lname, make in learners.items():
                P[(lname, v)][mask] = make().fit(Xtr, ytr).predict_proba(Xte)[:, 1]
    rows = [_scores("constant (training base rate)", "-", const, y_all)]
    rows += [_scores(v, lname, p, y_all) for (lname, v), p in P.items()]
    return pl.DataFrame(rows)


def _scores(variant: str, learner: str, p: np.ndarray, y: np.ndarray) -> dict:
    flag = p < 0.5
    return {"inputs": variant, "classifier": learner, "cells": int(len(y)), "helps (observed)": round(float(y.mean()), 3),
            "flag accuracy": round(float(((~flag) == (y == 1)).mean()), 3), "Brier": round(float(((p - y) ** 2).mean()), 4),
            "flagged": int(flag.sum()), "flags right": int((flag & (y == 0)).sum())}


def stack_variants(kb_path: Path) -> pl.DataFrame:
    """The stack's P(fine-tuning helps) in each of :data:`STACK_VARIANTS`, by task."""
    import warnings

    from timetic.estimate import TimeTic
    from timetic.evaluate import evaluate
    from timetic.kb import KnowledgeBase

    kb = KnowledgeBase(kb_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = evaluate(kb, scenarios=("unseen-dataset",), baselines=False, make_estimator={
            name: (lambda kw=kw: TimeTic(kb, seed=0, **kw)) for name, kw in STACK_VARIANTS.items()})
    p = (res.predictions.filter(pl.col("p_improve").is_not_nan() & pl.col("observed_zs").is_not_nan())
         .with_columns((pl.col("observed") < pl.col("observed_zs")).cast(pl.Float64).alias("y")))
    out = []
    for task in ("all", "short", "medium", "long"):
        for (method,), g in p.group_by("method", maintain_order=True):
            g = g if task == "all" else g.filter(pl.col("task") == task)
            if g.height == 0:
                continue
            y, q = g["y"].to_numpy(), g["p_improve"].to_numpy()
            out.append({"task": task, "stack": method, "cells": g.height,
                        "Brier": round(float(((q - y) ** 2).mean()), 4),
                        "base-rate Brier": round(float(((y.mean() - y) ** 2).mean()), 4),
                        "flag accuracy": round(float(((q >= 0.5) == (y == 1)).mean()), 3),
                        "constant": round(float(max(y.mean(), 1 - y.mean())), 3),
                        "flagged": int((q < 0.5).sum()), "flags right": int(((q < 0.5) & (y == 0)).sum())})
    return pl.DataFrame(out)


def main(argv: list[str] | None = None) -> int:
    from timetic.kb import default_kb_path

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kb", type=Path, default=default_kb_path())
    ap.add_argument("--k", type=int, default=5, help="nearest training datasets of gain_knn")
    ap.add_argument("--by-length-only", action="store_true", help="only the share of cells helped by series length")
    ap.add_argument("--out", type=Path, default=None, help="also write the table (markdown) here")
    ap.add_argument("--stack", action="store_true", help="the stack's own P(helps) in each of STACK_VARIANTS")
    args = ap.parse_args(argv)
    t0 = time.time()
    if args.stack:
        table = stack_variants(args.kb)
        with tables():
            text = f"{args.kb.name}: unseen dataset, {time.time() - t0:.0f} s\n{table}"
        print(text)
        if args.out:
            write_result(args.out, "helps_flag.py", text, args="--stack ",
                         section="The stack's P(fine-tuning helps): logistic or residuals, with and without the zero-shot rank and length inputs")
        return 0
    cells, feats = load_cells(args.kb)
    by_length = by_series_length(cells)
    if args.by_length_only:
        print(by_length)
        return 0
    table = run(cells, feats, args.k)
    took = time.time() - t0
    with tables():
        text = (f"{args.kb.name}: {cells.height} cells ({cells['dataset_id'].n_unique()} datasets), leave one dataset out, "
                f"k={args.k}, {took:.0f} s\n{table}\nfine-tuning helps, by log10 mean series length of the dataset:\n{by_length}"
                f"\nfine-tuning helps, by the model's zero-shot rank among the cell's models:\n{by_zs_rank(cells)}")
    print(text)
    if args.out:
        write_result(args.out, "helps_flag.py", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
