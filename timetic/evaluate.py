"""Evaluation harness: leave datasets and/or models out of the knowledge base, rank, compare.

Scenarios (every fit reads only its fold's training rows; feature selection, the target
transform and the learner all happen inside :meth:`TimeTic.fit`):

* ``unseen-dataset``: leave one dataset out; rank all models on it.
* ``unseen-model``: leave one model out of the context; its score on every dataset comes from
  the fold without it; rank all models per dataset from these leave-one-model-out predictions.
* ``both-unseen``: for every (dataset, model) the fold leaves out the dataset and the model.
* ``few-shot``: as unseen-dataset, but only ``few_shot_windows`` windows of the held-out dataset
  are available for its features and zero-shot scores.

Ground truth per held-out dataset and task: the observed mean fine-tuned MASE of each model (over
the dataset's evaluation windows). Metrics per (dataset, task), then averaged: Spearman ρ, weighted
Kendall τ_w (``scipy.stats.weightedtau``, hyperbolic weights, best models weigh most), top-1
accuracy, top-3 hit rate (the true best is in the predicted top 3), regret (true MASE of the chosen
model / best true MASE − 1). Bootstrap 95% CIs resample datasets.

Baselines in the same folds: zero-shot ranking (observed zero-shot MASE on the held-out dataset),
leaderboard #1 (mean fine-tuned rank over training datasets), kNN meta-learner (mean rank over the
k nearest training datasets in standardised meta-feature space) and random (expected values).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import polars as pl
from scipy import stats

from timetic.context import ContextTable
from timetic.estimate import TargetRows, TimeTic

#: prediction columns beyond the point score: name in EvalResult.predictions -> ranking column.
_EXTRA = {"lower_90": "lower_90", "upper_90": "upper_90", "p_best": "p_best", "p_improve": "p_improve",
          "predicted_gain": "predicted_gain", "p_beats_naive": "p_beats_naive", "naive_mase": "naive_mase"}


def _num(v: Any) -> float:
    return float("nan") if v is None else float(v)


SCENARIOS = ("unseen-dataset", "unseen-model", "both-unseen", "few-shot")
METRICS = ("spearman", "weighted_tau", "top1", "top3", "regret")


# ---------------------------------------------------------------------------------------------
# metrics


def ranking_metrics(true: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """Agreement of predicted and true scores (lower = better) over models; shapes (G,)."""
    true = np.asarray(true, dtype=float)
    pred = np.asarray(pred, dtype=float)
    rho = stats.spearmanr(true, pred).statistic if len(true) > 2 else np.nan
    tau = stats.weightedtau(-true, -pred).statistic  # hyperbolic weights on the best (lowest) scores
    chosen = int(np.argmin(pred))
    best = int(np.argmin(true))
    top3 = np.argsort(pred, kind="stable")[:3]
    return {
        "spearman": float(np.nan_to_num(rho)),
        "weighted_tau": float(np.nan_to_num(tau)),
        "top1": float(chosen == best),
        "top3": float(best in top3),
        "regret": float(true[chosen] / true[best] - 1.0),
    }


def random_metrics(true: np.ndarray) -> dict[str, float]:
    """Expected metrics of a uniformly random ranking."""
    true = np.asarray(true, dtype=float)
    G = len(true)
    return {
        "spearman": 0.0,
        "weighted_tau": 0.0,
        "top1": 1.0 / G,
        "top3": min(3, G) / G,
        "regret": float(np.mean(true / true.min() - 1.0)),
    }


def bootstrap_ci(values: np.ndarray, groups: np.ndarray, n_boot: int = 1000, seed: int = 0) -> tuple[float, float]:
    """95% CI of the mean of ``values`` resampling ``groups`` (datasets) with replacement."""
    rng = np.random.default_rng(seed)
    uniq = np.unique(groups)
    per = np.array([values[groups == g].mean() for g in uniq])
    if len(per) < 2:
        return float(per.mean()), float(per.mean())
    means = per[rng.integers(0, len(per), size=(n_boot, len(per)))].mean(axis=1)
    return float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


# ---------------------------------------------------------------------------------------------
# folds


def held_out_rows(ctx: ContextTable, dataset: str, task: str, models: Sequence[str],
                  max_windows: int | None = None, seed: int = 0,
                  probe_steps: int | None = None) -> tuple[TargetRows, dict[str, float]]:
    """Target rows of a KB dataset (its windows' features and observed zero-shot scores) and the
    ground truth (observed mean fine-tuned MASE per model). With ``probe_steps``, the rows carry
    each model's learning-curve probe read from its run's validation curve: the first
    ``probe_steps`` steps of that run are exactly what ``TimeTic(probe_steps=...)`` runs on a
    target (same split, seed and schedule)."""
    keep = (ctx.meta["dataset_id"] == dataset) & (ctx.meta["task"] == task)
    part = ctx.mask(keep.to_numpy())
    if len(part) == 0:  # e.g. a dataset too short for this task's horizon
        return TargetRows(task=task, features=part.features, zero_shot={}, horizon=0), {}
    keys = part.meta.select("item_id", "window_start")
    frame = pl.concat([keys, part.features], how="horizontal").unique(["item_id", "window_start"], maintain_order=True)
    frame = frame.sort("item_id", "window_start")
    if max_windows is not None and frame.height > max_windows:
        idx = np.sort(np.random.default_rng(seed).choice(frame.height, max_windows, replace=False))
        frame = frame[pl.Series(idx)]
    window_keys = frame.select("item_id", "window_start")
    zs: dict[str, np.ndarray] = {}
    truth: dict[str, float] = {}
    probe: dict[str, float] | None = {} if probe_steps is not None else None
    for m in models:
        rows = part.meta.filter(pl.col("model_id") == m)
        if rows.height == 0:
            continue
        if probe is not None:
            from timetic.estimate.cells import probe_value

            logs = rows.get_column("fit_log").drop_nulls() if "fit_log" in rows.columns else []
            probe[m] = probe_value(logs[0] if len(logs) else None, probe_steps)
        aligned = window_keys.join(rows.select("item_id", "window_start", "zs_mase"), on=["item_id", "window_start"], how="left")
        zs[m] = aligned.get_column("zs_mase").fill_null(np.nan).to_numpy()
        truth[m] = float(rows.get_column("ft_mase").mean())
    horizon = int(part.meta.get_column("horizon")[0])
    naive = None
    if "sn_mase" in part.meta.columns and part.meta.get_column("sn_mase").is_not_null().any():
        per = part.meta.group_by("item_id", "window_start").agg(pl.col("sn_mase").mean())
        naive = window_keys.join(per, on=["item_id", "window_start"], how="left").get_column("sn_mase").fill_null(np.nan).to_numpy()
    lengths = {}
    for col in ("series_length", "window_length"):
        if col in part.meta.columns and part.meta.get_column(col).is_not_null().any():
            lengths[col] = float(part.meta.get_column(col).drop_nulls()[0])
    return TargetRows(task=task, features=frame.drop("item_id", "window_start"), zero_shot=zs, horizon=horizon,
                      naive=naive, probe=probe, **lengths), truth


@dataclass
class EvalResult:
    """Per (scenario, method, dataset, task) metrics; :meth:`summary` averages with CIs."""

    rows: pl.DataFrame
    #: (scenario, method, dataset_id, task, model_id, predicted, observed, lower_90, upper_90,
    #: p_best, p_improve, observed_zs) of every ranked model (intervals and probabilities NaN for
    #: baselines and the leave-one-model-out scenarios; observed_zs: observed mean zero-shot MASE).
    predictions: pl.DataFrame | None = None

    def summary(self, n_boot: int = 1000, seed: int = 0) -> pl.DataFrame:
        out = []
        for (scenario, method, task), g in self.rows.group_by("scenario", "method", "task", maintain_order=True):
            rec: dict[str, Any] = {"scenario": scenario, "method": method, "task": task, "n": g.height}
            for m in METRICS:
                v = g.get_column(m).to_numpy()
                lo, hi = bootstrap_ci(v, g.get_column("dataset_id").to_numpy(), n_boot, seed)
                rec[m], rec[f"{m}_lo"], rec[f"{m}_hi"] = float(v.mean()), lo, hi
            out.append(rec)
        return pl.DataFrame(out)


def _baselines(ctx: ContextTable, train_mask: np.ndarray, dataset: str, task: str, models: list[str],
               rows: TargetRows, truth: dict[str, float], k: int = 3) -> dict[str, np.ndarray]:
    """Predicted scores (lower = better) of the baselines for the held-out dataset."""
    out = {}
    out["zero-shot"] = np.array([np.nanmean(rows.zero_shot[m]) for m in models])
    train = ctx.meta.filter(pl.Series(train_mask)).filter(pl.col("task") == task)
    cell = train.group_by("dataset_id", "model_id").agg(pl.col("ft_mase").mean())
    cell = cell.with_columns(pl.col("ft_mase").rank().over("dataset_id").alias("r"))
    lb = cell.group_by("model_id").agg(pl.col("r").mean())
    lbd = dict(zip(lb["model_id"], lb["r"]))
    out["leaderboard"] = np.array([lbd.get(m, np.inf) for m in models])
    # kNN meta-learner over dataset-level mean features
    feats = ctx.features
    tr_idx = np.flatnonzero(train_mask & (ctx.meta["task"] == task).to_numpy())
    ds = ctx.meta["dataset_id"].to_numpy()[tr_idx]
    F = feats.to_numpy()[tr_idx]
    names = np.unique(ds)
    if len(names) == 0:
        out["knn"] = out["leaderboard"]
        return out
    M = np.vstack([F[ds == n].mean(axis=0) for n in names])
    mu, sd = M.mean(axis=0), M.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    t = rows.features.select(feats.columns).to_numpy().mean(axis=0)
    dist = np.sqrt((((M - mu) / sd - (t - mu) / sd) ** 2).mean(axis=1))
    near = set(names[np.argsort(dist)[:k]])
    kc = cell.filter(pl.col("dataset_id").is_in(list(near))).group_by("model_id").agg(pl.col("r").mean())
    kd = dict(zip(kc["model_id"], kc["r"]))
    out["knn"] = np.array([kd.get(m, np.inf) for m in models])
    return out


def evaluate(
    kb: Any,
    scenarios: Sequence[str] = ("unseen-dataset",),
    make_estimator: Callable[[], TimeTic] | dict[str, Callable[[], TimeTic]] | None = None,
    few_shot_windows: int = 20,
    baselines: bool = True,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
    model_groups: dict[str, str] | None = None,
    truth_from: Callable[[], TimeTic] | None = None,
) -> EvalResult:
    """Run the scenarios. ``make_estimator``: a factory (or {method name: factory}) of unfitted
    :class:`TimeTic` estimators sharing ``kb``; default ``{"timetic": TimeTic(kb)}``.

    ``model_groups`` (model_id -> group, e.g. its family) makes ``both-unseen`` leave a whole group
    out with each dataset (stricter: no sibling of the held-out model stays in the context, and
    fewer refits: datasets x groups instead of datasets x models).

    The baselines, the held-out target rows and the ground truth read the context table of the
    first method, or of ``truth_from``'s estimator (not fitted) when given: an estimator with
    zero-shot scores keeps only the windows that have them, so a run that recomputes some methods
    of an earlier run passes that run's first method to be judged on the same windows."""
    if make_estimator is None:
        make_estimator = {"timetic": lambda: TimeTic(kb, seed=seed)}
    elif callable(make_estimator):
        make_estimator = {"timetic": make_estimator}
    # each method reads the context table its own settings build (profile estimator, zero-shot
    # rows); the baselines and the ground truth read the first method's
    ctxs: dict[str, ContextTable] = {}
    built: dict[tuple, ContextTable] = {}
    probes = set()
    for name, f in make_estimator.items():
        est = f()
        if getattr(est, "probe_steps", None) is not None:
            probes.add(int(est.probe_steps))
        key = (est.profile or "knn", est.zero_shot or est.transform_ == "log_ratio")
        if key not in built:
            built[key] = est.context_table()
        ctxs[name] = built[key]
    if len(probes) > 1:
        raise ValueError(f"methods with different probe_steps {sorted(probes)}: evaluate them in separate runs")
    probe_steps = next(iter(probes), None)
    ctx = next(iter(ctxs.values()))
    if truth_from is not None:
        est = truth_from()
        key = (est.profile or "knn", est.zero_shot or est.transform_ == "log_ratio")
        ctx = built[key] if key in built else est.context_table()
    meta = ctx.meta
    datasets = meta.get_column("dataset_id").unique().sort().to_list()
    models = meta.get_column("model_id").unique().sort().to_list()
    tasks = meta.get_column("task").unique().sort().to_list()
    ds_arr = meta.get_column("dataset_id").to_numpy()
    ds_of = {name: c.meta.get_column("dataset_id").to_numpy() for name, c in ctxs.items()}
    md_of = {name: c.meta.get_column("model_id").to_numpy() for name, c in ctxs.items()}
    records = []
    predictions: list[dict] = []

    def record(scenario, method, d, task, true, pred, cands=None, extra=None, zs=None):
        records.append({"scenario": scenario, "method": method, "dataset_id": d, "task": task,
                        **ranking_metrics(true, pred)})
        nan = [np.nan] * len(pred)
        extra = extra or {}
        zs = nan if zs is None else zs
        for j, (m, p, t) in enumerate(zip(cands or [], pred, true)):
            predictions.append({"scenario": scenario, "method": method, "dataset_id": d, "task": task,
                                "model_id": m, "predicted": float(p), "observed": float(t),
                                **{c: float(extra.get(c, nan)[j]) for c in _EXTRA},
                                "observed_zs": float(zs[j])})

    def observed_zs(rows, cands):
        return [float(np.nanmean(rows.zero_shot[m])) if m in rows.zero_shot else np.nan for m in cands]

    def _record_held_out_models(scenario: str, preds: dict, bounds: dict) -> None:
        """Record the rankings assembled from held-out-model predictions (each model's from the
        fold without it), with each prediction's own 90% interval."""
        for (name, d, task), pm in preds.items():
            rows, truth = held_out_rows(ctx, d, task, models, probe_steps=probe_steps)
            cands = [m for m in models if m in truth and m in pm]
            if len(cands) >= 3:
                b = bounds.get((name, d, task), {})
                extra = {"lower_90": [b.get(m, (np.nan, np.nan))[0] for m in cands],
                         "upper_90": [b.get(m, (np.nan, np.nan))[1] for m in cands]}
                record(scenario, name, d, task, np.array([truth[m] for m in cands]),
                       np.array([pm[m] for m in cands]), cands, extra)

    for scenario in scenarios:
        if scenario not in SCENARIOS:
            from timetic.errors import TimeticInputError

            raise TimeticInputError(f"unknown scenario {scenario!r}; use one of {', '.join(SCENARIOS)}")
        if scenario in ("unseen-dataset", "few-shot"):
            for d in datasets:
                if progress:
                    progress(f"{scenario}: {d}")
                train_mask = ds_arr != d
                fitted = {name: f().fit(ctxs[name].mask(ds_of[name] != d)) for name, f in make_estimator.items()}
                for task in tasks:
                    mw = few_shot_windows if scenario == "few-shot" else None
                    rows, truth = held_out_rows(ctx, d, task, models, max_windows=mw, seed=seed,
                                                probe_steps=probe_steps)
                    cands = [m for m in models if m in truth]
                    if len(cands) < 3:
                        continue
                    true = np.array([truth[m] for m in cands])
                    # the truth of "fine-tuning helps": observed over all the dataset's windows
                    full_rows = rows if mw is None else held_out_rows(ctx, d, task, models)[0]
                    zs_obs = observed_zs(full_rows, cands)
                    for name, est in fitted.items():
                        r = est.rank(rows, cands)
                        by = {row["model_id"]: row for row in r.iter_rows(named=True)}
                        pred = np.array([by[m]["predicted_mase"] if m in by else np.inf for m in cands])
                        extra = {c: [_num(by.get(m, {}).get(k)) for m in cands] for c, k in _EXTRA.items()}
                        record(scenario, name, d, task, true, pred, cands, extra, zs_obs)
                    if baselines:
                        for name, pred in _baselines(ctx, train_mask, d, task, cands, rows, truth).items():
                            record(scenario, name, d, task, true, pred, cands, zs=zs_obs)
                        records.append({"scenario": scenario, "method": "random", "dataset_id": d, "task": task,
                                        **random_metrics(true)})
        elif scenario == "unseen-model":
            preds: dict[tuple, dict] = {}
            bounds: dict[tuple, dict] = {}
            for m in models:
                if progress:
                    progress(f"{scenario}: {m}")
                fitted = {name: f().fit(ctxs[name].mask(md_of[name] != m)) for name, f in make_estimator.items()}
                for d in datasets:
                    for task in tasks:
                        rows, truth = held_out_rows(ctx, d, task, models, probe_steps=probe_steps)
                        if m not in truth:
                            continue
                        # rank every candidate (a formulation may rank relative to the others)
                        # and keep the held-out model's prediction
                        cands = [c for c in models if c in truth]
                        for name, est in fitted.items():
                            r = est.rank(rows, cands).filter(pl.col("model_id") == m)
                            if r.height:
                                preds.setdefault((name, d, task), {})[m] = float(r["predicted_mase"][0])
                                bounds.setdefault((name, d, task), {})[m] = (_num(r["lower_90"][0]), _num(r["upper_90"][0]))
            _record_held_out_models(scenario, preds, bounds)
        elif scenario == "both-unseen":
            preds, bounds = {}, {}
            group_of = {m: (model_groups or {}).get(m, m) for m in models}
            for d in datasets:
                for grp in sorted(set(group_of.values())):
                    members = [m for m in models if group_of[m] == grp]
                    if progress:
                        progress(f"{scenario}: {d} / {grp}")
                    fitted = {
                        name: f().fit(ctxs[name].mask((ds_of[name] != d) & ~np.isin(md_of[name], members)))
                        for name, f in make_estimator.items()
                    }
                    for task in tasks:
                        rows, truth = held_out_rows(ctx, d, task, models, probe_steps=probe_steps)
                        here = [m for m in members if m in truth]
                        if not here:
                            continue
                        cands = [c for c in models if c in truth]
                        for name, est in fitted.items():
                            r = est.rank(rows, cands).filter(pl.col("model_id").is_in(here))
                            for m, v, lo, hi in zip(r["model_id"], r["predicted_mase"], r["lower_90"], r["upper_90"]):
                                preds.setdefault((name, d, task), {})[m] = float(v)
                                bounds.setdefault((name, d, task), {})[m] = (_num(lo), _num(hi))
            _record_held_out_models(scenario, preds, bounds)
    return EvalResult(pl.DataFrame(records), pl.DataFrame(predictions) if predictions else None)
