"""How much does a knowledge base resemble the world? The realism table and the noise ceiling.

    python benchmarks/realism.py [--kb meta_features_v1] [--kb meta_features ...]
                                 [--recipe NAME_OR_HASH] [--out benchmarks/results/realism.md]

For each KB (one column each), over its (dataset, model, task) *cells* of the main recipe (the
recipe with the most observations unless ``--recipe`` names one; seed 0 where seeds repeat):

* share of cells whose fine-tuned model beats seasonal naive: mean fine-tuned MASE < 1 (MASE is
  scaled by the in-sample seasonal-naive error), and, where the KB stores the seasonal-naive
  *forecast's* score per window (``sn_mase``), GIFT-Eval's sense: the geometric mean over windows
  of fine-tuned MASE / seasonal-naive MASE < 1;
* share of cells where fine-tuning beats zero-shot (cell mean MASE), and the median over cells of
  the fine-tuned / zero-shot ratio of cell means;
* Kendall's W of the fine-tuned model ranking across datasets, per horizon, over all models and
  over the better half (the models with the best mean rank): 1 = every dataset ranks the models
  alike (a fixed leaderboard is unbeatable), 0 = no agreement;
* the Spearman correlation between the zero-shot and the fine-tuned ranking (mean over cells of
  a dataset and task): how much a zero-shot ranking already tells;
* the noise ceiling: where the same (dataset, task) was fine-tuned with several recipe seeds,
  the Spearman correlation between the fine-tuned rankings of two seeds (mean over seed pairs and
  datasets, 90 % bootstrap CI over datasets) and how often they agree on the best model. No
  estimator can be expected to rank better than the ranking agrees with itself;
* the ground truth's agreement with itself across evaluation windows: the Spearman correlation
  between the model rankings of two random halves of a cell's evaluation windows (seed 0's run;
  mean over 50 splits, then over cells), and the same stepped up to all windows with the
  Spearman-Brown formula 2r / (1 + r). The seed ceiling holds the windows fixed and varies the
  fine-tuning; this holds the fine-tuning fixed and varies the windows: with few windows the
  ranking a cell is judged by is itself noisy. Cells with one window have no split.
* attainable ρ against this truth: the mean over cells of √ of the stepped-up value. In classical
  test theory a measurement correlates with its true value by the square root of its reliability,
  so an estimator that knew every cell's expected ranking exactly (over all the windows the cell
  could have had) would score about this against the windows the cell has. Seed noise is not
  counted, so it is an upper bound; Spearman's ρ on 13 models follows the formula only roughly.

The GIFT-Eval column repeats published figures (Aksu et al. 2024 leaderboard; the benchmark v2
issue) for comparison; it is not computed here.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import warnings
from pathlib import Path

import numpy as np
import polars as pl
from scipy.stats import rankdata, spearmanr

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TASKS = ("short", "medium", "long")
#: published GIFT-Eval figures quoted in the benchmark v2 issue (not computed here).
GIFT_EVAL = {
    "cells_beat_snaive": "96/97 configs (best FM), 90/97 (median FM)",
    "gmean_vs_snaive": "0.67 (best FM), 0.72 (median FM)",
    "cells_ft_beats_zs": "88 % (TTM-R2), 32 % (Chronos-2 LoRA)",
    "median_ft_zs": "about 0.74 (TTM-R2)",
    "kendall_w": "0.07-0.11 (12 best FMs)",
}


def cell_table(obs: pl.DataFrame) -> pl.DataFrame:
    """One row per (dataset, model, task, recipe_hash, seed): mean scores over finite windows."""
    ok = pl.col("zs_mase").is_finite() & pl.col("ft_mase").is_finite()
    aggs = [
        pl.col("zs_mase").filter(ok).mean().alias("zs"),
        pl.col("ft_mase").filter(ok).mean().alias("ft"),
        pl.len().alias("n_windows"),
    ]
    if "sn_mase" in obs.columns:
        good = ok & pl.col("sn_mase").is_finite() & (pl.col("sn_mase") > 0) & (pl.col("ft_mase") > 0)
        aggs.append((pl.col("ft_mase") / pl.col("sn_mase")).filter(good).log().mean().exp().alias("gm_ft_sn"))
    return obs.group_by("dataset_id", "model_id", "task", "recipe_hash", "seed").agg(aggs)


def main_recipe(obs: pl.DataFrame, recipe: str | None) -> str:
    counts = obs.group_by("recipe_hash").len().sort("len", descending=True)
    if recipe is None:
        return str(counts["recipe_hash"][0])
    for h, r in obs.select("recipe_hash", "recipe").unique("recipe_hash").iter_rows():
        if h.startswith(recipe) or f'"name": "{recipe}"' in (r or ""):
            return str(h)
    raise SystemExit(f"no recipe {recipe!r} in the KB; recipes: {', '.join(counts['recipe_hash'])}")


def same_but_seed(obs: pl.DataFrame, h: str) -> list[str]:
    """Hashes of the recipes equal to recipe ``h`` except for their seed (the noise-ceiling runs)."""
    import json

    def strip(r: str) -> str:
        d = json.loads(r)
        d.pop("seed", None)
        return json.dumps(d, sort_keys=True)

    pairs = obs.select("recipe_hash", "recipe").unique("recipe_hash").iter_rows()
    table = {rh: strip(r) for rh, r in pairs}
    return [rh for rh, key in table.items() if key == table[h]]


def kendall_w(ranks: np.ndarray) -> float:
    """Kendall's W of a (raters, items) rank matrix (no tie correction)."""
    m, n = ranks.shape
    if m < 2 or n < 2:
        return float("nan")
    r = ranks.sum(axis=0)
    s = float(((r - r.mean()) ** 2).sum())
    return 12.0 * s / (m**2 * (n**3 - n))


def ranking_matrix(cells: pl.DataFrame, task: str, col: str = "ft") -> tuple[np.ndarray, list[str], list[str]]:
    """(datasets, models) matrix of ``col`` for one task, over datasets that have every model."""
    t = cells.filter(pl.col("task") == task).pivot(on="model_id", index="dataset_id", values=col)
    models = sorted(c for c in t.columns if c != "dataset_id")
    t = t.drop_nulls()
    return t.select(models).to_numpy().astype(np.float64), t["dataset_id"].to_list(), models


def realism(obs: pl.DataFrame, recipe: str | None = None) -> dict[str, object]:
    h = main_recipe(obs, recipe)
    allc = cell_table(obs.filter(pl.col("recipe_hash").is_in(same_but_seed(obs, h))))
    seed0 = int(allc["seed"].min())
    cells = allc.filter(pl.col("seed") == seed0)
    out: dict[str, object] = {"recipe_hash": h, "n_cells": cells.height,
                              "n_datasets": cells["dataset_id"].n_unique(), "n_models": cells["model_id"].n_unique()}
    ft, zs = cells["ft"].to_numpy(), cells["zs"].to_numpy()
    ok = np.isfinite(ft) & np.isfinite(zs) & (zs > 0)
    out["cells_ft_mase_below_1"] = float(np.mean(ft[ok] < 1))
    out["cells_zs_mase_below_1"] = float(np.mean(zs[ok] < 1))
    if "gm_ft_sn" in cells.columns:
        g = cells["gm_ft_sn"].to_numpy().astype(np.float64)
        g = g[np.isfinite(g)]
        out["cells_beat_snaive"] = float(np.mean(g < 1)) if len(g) else float("nan")
        out["gmean_vs_snaive"] = float(np.exp(np.mean(np.log(g)))) if len(g) else float("nan")
    out["cells_ft_beats_zs"] = float(np.mean(ft[ok] < zs[ok]))
    out["median_ft_zs"] = float(np.median(ft[ok] / zs[ok]))
    for task in TASKS:
        mat, _, models = ranking_matrix(cells, task)
        if mat.shape[0] < 2:
            continue
        ranks = np.vstack([rankdata(r) for r in mat])
        out[f"kendall_w_{task}"] = kendall_w(ranks)
        best = np.argsort(ranks.mean(axis=0))[: max(2, len(models) // 2)]
        out[f"kendall_w_best_half_{task}"] = kendall_w(np.vstack([rankdata(r) for r in mat[:, best]]))
        zmat, _, _ = ranking_matrix(cells, task, "zs")
        rho = [spearmanr(a, b)[0] for a, b in zip(mat, zmat)]
        out[f"rho_zs_ft_{task}"] = float(np.nanmean(rho))
    out.update(noise_ceiling(allc))
    split = window_split_reliability(obs.filter((pl.col("recipe_hash") == h) & (pl.col("seed") == seed0)))
    for task in TASKS:
        t = split.filter((pl.col("task") == task) & pl.col("rho_half").is_not_nan())
        if t.height:
            out[f"split_rho_half_{task}"] = float(t["rho_half"].mean())
            out[f"split_rho_full_{task}"] = float(t["rho_full"].mean())
            out[f"split_attainable_{task}"] = attainable_rho(t["rho_full"].to_numpy())
            out[f"split_n_{task}"] = t.height
    return out


def attainable_rho(reliability: np.ndarray) -> float:
    """Mean over cells of √(reliability), each clipped to [0, 1]: what an exact predictor of each
    cell's expected ranking would score, on average, against a truth measured with that
    reliability (classical test theory: the correlation of a measurement with its true value is
    the square root of its reliability). NaN for no cell."""
    r = np.clip(np.asarray(reliability, dtype=float), 0.0, 1.0)
    r = r[np.isfinite(r)]
    return float(np.sqrt(r).mean()) if r.size else float("nan")


def window_split_reliability(obs: pl.DataFrame, n_splits: int = 50, seed: int = 0) -> pl.DataFrame:
    """Per (dataset, task) cell of ``obs`` (one run per model: one recipe and seed), how well two
    random halves of its evaluation windows agree on the model ranking (module docstring).

    Returns one row per cell, sorted: ``dataset_id``, ``task``, ``n_windows``, ``rho_half`` (mean
    over ``n_splits`` splits of Spearman ρ between the models' mean fine-tuned MASE on each half;
    NaN with fewer than 2 windows or 3 models) and ``rho_full`` (Spearman-Brown: 2ρ / (1 + ρ),
    the agreement expected between two independent sets of as many windows as the cell has)."""
    rng = np.random.default_rng(seed)
    rows = []
    cells = obs.filter(pl.col("ft_mase").is_finite()).select("dataset_id", "task", "model_id", "item_id",
                                                              "window_start", "ft_mase")
    for (ds, task), g in sorted(cells.group_by("dataset_id", "task"), key=lambda kv: kv[0]):
        wide = g.pivot(on="model_id", index=["item_id", "window_start"], values="ft_mase",
                       aggregate_function="mean").sort("item_id", "window_start")
        X = wide.drop("item_id", "window_start").to_numpy().astype(np.float64)  # (windows, models)
        n = X.shape[0]
        rhos = []
        if n >= 2 and X.shape[1] >= 3:
            for _ in range(n_splits):
                perm = rng.permutation(n)
                with warnings.catch_warnings():  # a model without windows in one half: NaN, skipped
                    warnings.simplefilter("ignore", RuntimeWarning)
                    a, b = np.nanmean(X[perm[: n // 2]], axis=0), np.nanmean(X[perm[n // 2 :]], axis=0)
                ok = np.isfinite(a) & np.isfinite(b)
                if ok.sum() >= 3 and np.ptp(a[ok]) > 0 and np.ptp(b[ok]) > 0:
                    rhos.append(spearmanr(a[ok], b[ok])[0])
        r = float(np.mean(rhos)) if rhos else float("nan")
        rows.append((str(ds), str(task), n, r, 2 * r / (1 + r) if np.isfinite(r) and r > -1 else float("nan")))
    return pl.DataFrame(rows, schema={"dataset_id": pl.String, "task": pl.String, "n_windows": pl.Int64,
                                      "rho_half": pl.Float64, "rho_full": pl.Float64}, orient="row")


def noise_ceiling(cells: pl.DataFrame, n_boot: int = 2000, seed: int = 0) -> dict[str, object]:
    """Spearman between the fine-tuned rankings of different recipe seeds (module docstring)."""
    seeds = sorted(cells["seed"].unique().to_list())
    out: dict[str, object] = {"seeds": seeds}
    if len(seeds) < 2:
        return out
    for task in TASKS:
        per_ds: dict[str, list[tuple[float, float]]] = {}
        sub = cells.filter(pl.col("task") == task)
        for (ds,), g in sub.group_by("dataset_id"):
            t = g.pivot(on="seed", index="model_id", values="ft").drop_nulls()
            cols = [c for c in t.columns if c != "model_id"]
            if len(cols) < 2 or t.height < 3:
                continue
            # rho, top-1 agreement, and the regret of picking one seed's best judged by the other
            # seed's scores (both ways): the regret a perfect estimator of one seed would show
            vals = [(spearmanr(t[a], t[b])[0], float(np.argmin(t[a]) == np.argmin(t[b])),
                     0.5 * (float(t[b][int(np.argmin(t[a]))] / t[b].min() - 1.0)
                            + float(t[a][int(np.argmin(t[b]))] / t[a].min() - 1.0)))
                    for a, b in itertools.combinations(cols, 2)]
            per_ds[str(ds)] = vals
        if not per_ds:
            continue
        per_ds = dict(sorted(per_ds.items()))  # group_by's order varies: same seed, same CI
        rho = np.array([np.mean([v[0] for v in vals]) for vals in per_ds.values()])
        top1 = np.array([np.mean([v[1] for v in vals]) for vals in per_ds.values()])
        rng = np.random.default_rng(seed)
        boot = [rho[rng.integers(0, len(rho), len(rho))].mean() for _ in range(n_boot)]
        out[f"ceiling_rho_{task}"] = float(rho.mean())
        out[f"ceiling_ci_{task}"] = (float(np.quantile(boot, 0.05)), float(np.quantile(boot, 0.95)))
        out[f"ceiling_top1_{task}"] = float(top1.mean())
        out[f"ceiling_regret_{task}"] = float(np.mean([np.mean([v[2] for v in vals]) for vals in per_ds.values()]))
        out[f"ceiling_n_{task}"] = len(rho)
        out[f"ceiling_min_{task}"] = (min(per_ds, key=lambda d: np.mean([v[0] for v in per_ds[d]])), float(rho.min()))
    return out


def _fmt(v: object) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return "–" if not np.isfinite(v) else f"{v:.3f}"
    if isinstance(v, tuple) and len(v) == 2 and all(isinstance(x, float) for x in v):
        return f"[{v[0]:.3f}, {v[1]:.3f}]"
    if isinstance(v, tuple):
        return f"{v[0]} ({_fmt(v[1])})"
    return str(v)


ROWS = (
    ("cells (dataset x model x task)", "n_cells", None),
    ("datasets / models", None, None),
    ("cells: fine-tuned MASE < 1 (scale: in-sample seasonal error)", "cells_ft_mase_below_1", None),
    ("cells: zero-shot MASE < 1 (same scale)", "cells_zs_mase_below_1", None),
    ("cells: fine-tuned beats seasonal-naive forecast (geo-mean ratio < 1)", "cells_beat_snaive", "cells_beat_snaive"),
    ("geo-mean fine-tuned / seasonal-naive MASE", "gmean_vs_snaive", "gmean_vs_snaive"),
    ("cells: fine-tuning beats zero-shot", "cells_ft_beats_zs", "cells_ft_beats_zs"),
    ("median fine-tuned / zero-shot MASE", "median_ft_zs", "median_ft_zs"),
    *((f"Kendall's W, {t}", f"kendall_w_{t}", "kendall_w") for t in TASKS),
    *((f"Kendall's W among the better half, {t}", f"kendall_w_best_half_{t}", None) for t in TASKS),
    *((f"Spearman zero-shot vs fine-tuned ranking, {t}", f"rho_zs_ft_{t}", None) for t in TASKS),
    *((f"noise ceiling ρ between seeds, {t} (90 % CI)", f"ceiling_rho_{t}", None) for t in TASKS),
    *((f"noise ceiling top-1 agreement, {t}", f"ceiling_top1_{t}", None) for t in TASKS),
    *((f"noise ceiling regret (one seed's best, judged by another), {t}", f"ceiling_regret_{t}", None) for t in TASKS),
    *((f"ground truth vs itself: ρ between halves of the evaluation windows, {t}", f"split_rho_half_{t}", None)
      for t in TASKS),
    *((f"the same stepped up to all windows (Spearman-Brown), {t}", f"split_rho_full_{t}", None) for t in TASKS),
    *((f"attainable ρ against this truth (√ of the stepped-up value, per cell), {t}", f"split_attainable_{t}", None)
      for t in TASKS),
)


def table(results: dict[str, dict[str, object]]) -> str:
    names = list(results)
    lines = ["| | " + " | ".join(names) + " | GIFT-Eval (published) |", "|---|" + "---|" * (len(names) + 1)]
    for label, key, gift in ROWS:
        cells = []
        for n in names:
            r = results[n]
            if key is None:
                cells.append(f"{r['n_datasets']} / {r['n_models']}")
            elif key.startswith("split_rho_half") and key in r:
                cells.append(f"{_fmt(r[key])} (n={r.get('split_n_' + key.rsplit('_', 1)[1])})")
            elif key.startswith("ceiling_rho") and key in r:
                task = key.rsplit("_", 1)[1]
                cells.append(f"{_fmt(r[key])} {_fmt(r.get(f'ceiling_ci_{task}'))} (n={r.get(f'ceiling_n_{task}')})")
            else:
                cells.append(_fmt(r.get(key)))
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {GIFT_EVAL.get(gift, '') if gift else ''} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kb", action="append", default=None, help="KB folder (repeat for several columns)")
    parser.add_argument("--recipe", default=None, help="recipe name or hash prefix (default: the most observed)")
    parser.add_argument("--out", default=None, help="also write the table (markdown) here")
    args = parser.parse_args(argv)
    from timetic.kb import KnowledgeBase

    results = {}
    for kb_path in args.kb or [str(ROOT / "meta_features")]:
        obs = KnowledgeBase.open(kb_path).observations()
        results[Path(kb_path).name] = realism(obs, args.recipe)
    text = table(results)
    print(text)
    for name, r in results.items():
        if any(k.startswith("ceiling_min") for k in r):
            worst = {k: r[k] for k in r if k.startswith("ceiling_min")}
            print(f"{name}: lowest seed agreement per task: {worst}")
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
