"""The knowledge base per (dataset, task) cell: what the ``stack`` formulation reads.

A *cell* is one (dataset, task). For C cells and G models:

- ``log_ft`` (C, G): log of the model's mean fine-tuned MASE over the cell's evaluation windows
  (the quantity the evaluation ranks by; NaN where the KB has no observation);
- ``log_zs`` (C, G): log of its mean zero-shot MASE over the same windows;
- ``features`` (C, p): the mean of each window meta-feature over the cell's windows;
- ``log_probe`` (C, G), with ``probe_steps`` K: the *learning-curve probe* of the cell's run,
  log(min(v_K, v_0) / v_0) with v_s the validation MASE after s fine-tuning steps (the run's
  ``fit_log``; the first K steps of the recipe are what ``--probe-steps K`` runs on a target).
  NaN where the run recorded no curve or no evaluation at step K;
- ``log_len`` (C,): log10 of the dataset's mean points per series over the task's window length
  (context + horizon; NaN where the KB does not say): how much there is to fine-tune on.

Means over windows are arithmetic, as the ground truth of :mod:`timetic.evaluate` (observed mean
fine-tuned MASE) and the target side (:func:`target_cell`) are.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from timetic.context import KEY, ContextTable


@dataclass
class Cells:
    """Per-cell matrices (see the module docstring).

    Attributes:
        datasets: (C,) dataset id of each cell.
        tasks: (C,) task name of each cell.
        models: (G,) model ids, sorted.
        log_ft: (C, G) log mean fine-tuned MASE, NaN where unobserved.
        log_zs: (C, G) log mean zero-shot MASE, NaN where unobserved.
        features: (C, p) mean window meta-features.
        feature_names: (p,) their names.
        log_probe: (C, G) learning-curve probe (module docstring), or None.
        log_len: (C,) log10 (mean series length of the cell's dataset / the task's window length)
            (NaN: unknown), or None.
    """

    datasets: np.ndarray
    tasks: np.ndarray
    models: np.ndarray
    log_ft: np.ndarray
    log_zs: np.ndarray
    features: np.ndarray
    feature_names: list[str]
    log_probe: np.ndarray | None = None
    log_len: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.datasets)

    def take(self, rows: np.ndarray) -> "Cells":
        """The cells at boolean mask or indices ``rows``."""
        return Cells(self.datasets[rows], self.tasks[rows], self.models, self.log_ft[rows], self.log_zs[rows],
                     self.features[rows], self.feature_names,
                     None if self.log_probe is None else self.log_probe[rows],
                     None if self.log_len is None else self.log_len[rows])


def probe_value(fit_log: str | None, steps: int) -> float:
    """log(min(v_K, v_0) / v_0) of a run's JSON fit log (``val_curve`` = [[step, val_mase], ...]);
    NaN when the curve lacks step 0 or step ``steps`` or a value is not finite and positive."""
    import json

    if not fit_log:
        return float("nan")
    try:
        curve = {int(s): v for s, v in json.loads(fit_log).get("val_curve") or []}
    except (ValueError, TypeError, AttributeError):
        return float("nan")
    v0, vk = curve.get(0), curve.get(int(steps))
    if v0 is None or vk is None or not (np.isfinite(v0) and np.isfinite(vk)) or v0 <= 0 or vk <= 0:
        return float("nan")
    return float(np.log(min(vk, v0) / v0))


def build_cells(ctx: ContextTable, probe_steps: int | None = None) -> Cells:
    """Summarise context rows (one per window and model) into cells; with ``probe_steps``, read
    each run's learning-curve probe from its fit log."""
    aggs = [pl.col("ft_mase").mean().log().alias("log_ft"), pl.col("zs_mase").mean().log().alias("log_zs")]
    if probe_steps is not None:
        fit_log = pl.col("fit_log") if "fit_log" in ctx.meta.columns else pl.lit(None, dtype=pl.Utf8)
        aggs.append(fit_log.drop_nulls().first().alias("fit_log"))
    scores = ctx.meta.group_by("dataset_id", "task", "model_id").agg(aggs)
    if probe_steps is not None:
        scores = scores.with_columns(
            pl.col("fit_log").map_elements(lambda s: probe_value(s, probe_steps), return_dtype=pl.Float64,
                                           skip_nulls=False).alias("log_probe")
        )
    if {"series_length", "window_length"} <= set(ctx.meta.columns):
        length = pl.col("series_length") / pl.col("window_length")
    else:
        length = pl.lit(None, dtype=pl.Float64)
    feats = (
        pl.concat([ctx.meta.select(*KEY, length.alias("_len")), ctx.features], how="horizontal")
        .unique(subset=list(KEY))
        .group_by("dataset_id", "task")
        .agg(pl.col(ctx.features.columns).mean(), pl.col("_len").drop_nulls().first().log10().alias("_log_len"))
        .sort("dataset_id", "task")
    )
    log_len = feats.get_column("_log_len").fill_null(np.nan).to_numpy().astype(np.float64)
    feats = feats.drop("_log_len")
    models = np.array(sorted(scores.get_column("model_id").unique().to_list()))
    keys = feats.select("dataset_id", "task").with_row_index("c")
    full = (
        keys.join(pl.DataFrame({"model_id": models}).with_row_index("g"), how="cross")
        .join(scores, on=["dataset_id", "task", "model_id"], how="left")
        .sort("c", "g")
    )
    C, G = keys.height, len(models)
    return Cells(
        datasets=keys.get_column("dataset_id").to_numpy().astype(str),
        tasks=keys.get_column("task").to_numpy().astype(str),
        models=models,
        log_ft=full.get_column("log_ft").fill_null(np.nan).to_numpy().reshape(C, G),
        log_zs=full.get_column("log_zs").fill_null(np.nan).to_numpy().reshape(C, G),
        features=feats.drop("dataset_id", "task").to_numpy().astype(np.float64),
        feature_names=list(ctx.features.columns),
        log_probe=(full.get_column("log_probe").fill_null(np.nan).to_numpy().reshape(C, G)
                   if probe_steps is not None else None),
        log_len=log_len,
    )


def target_cell(features: pl.DataFrame, feature_names: list[str], zero_shot: dict[str, np.ndarray] | None,
                models: list[str]) -> tuple[np.ndarray, np.ndarray | None]:
    """The target's cell: mean features (p,) in ``feature_names`` order and, with zero-shot scores
    (model -> (n_windows,) MASE), the log of each model's mean finite score (G,) (NaN if none)."""
    f = features.select(feature_names).to_numpy().astype(np.float64)
    mean_f = np.nanmean(f, axis=0) if len(f) else np.full(len(feature_names), np.nan)
    if zero_shot is None:
        return mean_f, None
    out = np.full(len(models), np.nan)
    for g, m in enumerate(models):
        z = np.asarray(zero_shot.get(m, []), dtype=np.float64)
        z = z[np.isfinite(z) & (z > 0)]
        if z.size:
            out[g] = np.log(z.mean())
    return mean_f, out
