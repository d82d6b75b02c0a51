"""The context table: one row per (window, model) -> the learner's X and y.

A row joins (see TimeTic, METHOD.md):

* the window's meta-features (``windows`` table of the knowledge base, or the target's windows),
* the model's entropy profile (``prof_0 .. prof_{L-1}``),
* task descriptors (``task_log_horizon``, ``task_index``),
* the model's zero-shot score on the window (``log_zs_mase``; left out with ``zero_shot=False``),

and, for knowledge-base rows, the label: the observed fine-tuned MASE, transformed (:data:`TRANSFORMS`).

Target transforms (``y`` the learner sees):

* ``"log"``: ``log(ft_mase)``;
* ``"log_ratio"``: ``log(ft_mase / zs_mase)``, the log gain of fine-tuning (needs zero-shot).

Scores are MASE, strictly positive; rows with a non-finite or non-positive MASE are dropped, and so
are MASE values above :data:`MAX_VALID_MASE` (broken ground truth, as reviewers of TimeTic noted).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from timetic.errors import TimeticInputError
from timetic.tasks import TASK_NAMES, Task

KEY = ("dataset_id", "task", "item_id", "window_start")
TRANSFORMS = ("log", "log_ratio")
#: observed MASE above this is treated as broken ground truth and dropped.
MAX_VALID_MASE = 1e3
TASK_COLUMNS = ("task_log_horizon", "task_index")


def profile_columns(length: int) -> list[str]:
    return [f"prof_{i}" for i in range(length)]


def model_matrix(models: pl.DataFrame, profile: str = "knn") -> pl.DataFrame:
    """``model_id`` + one column per profile point (``profile_knn`` or ``profile_renyi`` lists)."""
    col = f"profile_{profile}"
    if col not in models.columns:
        raise TimeticInputError(f"models have no {col!r} column; use profile 'knn' or 'renyi'")
    lengths = models.get_column(col).list.len().unique().to_list() or [6]
    if len(lengths) != 1:
        raise TimeticInputError(
            f"model profiles have different lengths {sorted(lengths)}; recompute them with one --length"
        )
    names = profile_columns(int(lengths[0]))
    return models.select(
        "model_id", *[pl.col(col).list.get(i).cast(pl.Float64).alias(n) for i, n in enumerate(names)]
    )


def task_frame(tasks: pl.Series, horizons: pl.Series) -> pl.DataFrame:
    """Task descriptors of each row."""
    index = {name: float(i) for i, name in enumerate(TASK_NAMES)}
    return pl.DataFrame(
        {
            "task_log_horizon": np.log(horizons.cast(pl.Float64).to_numpy()),
            "task_index": tasks.replace_strict(index, default=-1.0, return_dtype=pl.Float64),
        }
    )


def transform_y(ft: np.ndarray, zs: np.ndarray | None, transform: str) -> np.ndarray:
    if transform == "log":
        return np.log(ft)
    if transform == "log_ratio":
        if zs is None:
            raise TimeticInputError("transform 'log_ratio' needs zero-shot scores; use transform 'log'")
        return np.log(ft) - np.log(zs)
    raise TimeticInputError(f"unknown transform {transform!r}; use one of {', '.join(TRANSFORMS)}")


def log_ft_from_y(y: np.ndarray, log_zs: np.ndarray | None, transform: str) -> np.ndarray:
    """Invert :func:`transform_y` to log fine-tuned MASE (same shapes)."""
    return y if transform == "log" else y + log_zs


@dataclass
class ContextTable:
    """Rows of the context.

    Attributes:
        meta: (n rows) dataset_id, task, item_id, window_start, model_id, horizon, zs_mase, ft_mase,
            sn_mase (the window's seasonal-naive MASE; null in KBs written before it was recorded),
            fit_log (the run's JSON fit log: validation curve etc.; null where not recorded),
            series_length (the dataset's mean points per series), window_length (its task's
            context + horizon; both null where the ``datasets`` table is not given).
        features: (n, p) window meta-features (all candidate columns; selection picks later).
        model: (n, L) profile columns.
        tasks: (n, 2) task descriptors.
        profile: which entropy profile fills ``model`` (``"knn"`` or ``"renyi"``).
    """

    meta: pl.DataFrame
    features: pl.DataFrame
    model: pl.DataFrame
    tasks: pl.DataFrame
    profile: str = "knn"

    def __len__(self) -> int:
        return self.meta.height

    def y(self, transform: str) -> np.ndarray:
        zs = self.meta.get_column("zs_mase").to_numpy()
        return transform_y(self.meta.get_column("ft_mase").to_numpy(), zs, transform)

    def X(self, feature_columns: list[str], zero_shot: bool) -> np.ndarray:
        """Shape (n, p_sel + L + 2 [+ 1]): selected features, profile, task, [log zero-shot]."""
        parts = [self.features.select(feature_columns).to_numpy(), self.model.to_numpy(), self.tasks.to_numpy()]
        if zero_shot:
            parts.append(np.log(self.meta.get_column("zs_mase").to_numpy())[:, None])
        return np.hstack(parts).astype(np.float64)

    def take(self, idx: np.ndarray) -> "ContextTable":
        idx = pl.Series(np.asarray(idx, dtype=np.int64))
        return ContextTable(self.meta[idx], self.features[idx], self.model[idx], self.tasks[idx], self.profile)

    def mask(self, keep: np.ndarray) -> "ContextTable":
        return self.take(np.flatnonzero(keep))


def build_context(
    windows: pl.DataFrame,
    models: pl.DataFrame,
    observations: pl.DataFrame,
    profile: str = "knn",
    require_zero_shot: bool = True,
    datasets: pl.DataFrame | None = None,
) -> ContextTable:
    """Join knowledge-base tables into context rows.

    Args:
        windows: the ``windows`` table (KEY columns + Float64 feature columns).
        models: the ``models`` table (``model_id``, ``profile_<profile>``).
        observations: the ``observations`` table (KEY + model_id, horizon, zs_mase, ft_mase).
        require_zero_shot: drop rows whose zero-shot MASE is missing or invalid.
        datasets: the ``datasets`` table (``dataset_id``, ``n_series``, ``total_length``): fills
            ``series_length``, the dataset's mean points per series (null without it).
    """
    prof = model_matrix(models, profile)
    sn = pl.col("sn_mase") if "sn_mase" in observations.columns else pl.lit(None, dtype=pl.Float64).alias("sn_mase")
    fl = (pl.col("fit_log") if "fit_log" in observations.columns
          else pl.lit(None, dtype=pl.Utf8).alias("fit_log"))
    obs = observations.select(*KEY, "model_id", "horizon", "zs_mase", "ft_mase", sn, fl)
    valid = pl.col("ft_mase").is_finite() & (pl.col("ft_mase") > 0) & (pl.col("ft_mase") < MAX_VALID_MASE)
    if require_zero_shot:
        valid = valid & pl.col("zs_mase").is_finite() & (pl.col("zs_mase") > 0) & (pl.col("zs_mase") < MAX_VALID_MASE)
    obs = obs.filter(valid)
    feature_cols = [c for c in windows.columns if c not in KEY]
    rows = (
        obs.join(windows, on=list(KEY), how="inner")
        .join(prof, on="model_id", how="inner")
        .sort([*KEY, "model_id"])
    )
    # feature sets can differ between datasets (diagonal concat in the KB): keep complete columns
    complete = [c for c in feature_cols if rows.get_column(c).null_count() == 0]
    if datasets is not None and {"dataset_id", "n_series", "total_length"} <= set(datasets.columns):
        mean_len = dict(zip(datasets.get_column("dataset_id").to_list(),
                            (datasets.get_column("total_length") / datasets.get_column("n_series")).to_list()))
        freqs = dict(zip(datasets.get_column("dataset_id").to_list(), datasets.get_column("freq").to_list()))
        cells = rows.select("dataset_id", "task").unique()
        win = {}
        for d, t in cells.iter_rows():
            try:
                win[f"{d}\x00{t}"] = float(Task.preset(t, freqs[d]).window_length)
            except (KeyError, TimeticInputError):
                pass
        rows = rows.with_columns(
            pl.col("dataset_id").replace_strict(mean_len, default=None, return_dtype=pl.Float64).alias("series_length"),
            (pl.col("dataset_id") + "\x00" + pl.col("task")).replace_strict(
                win, default=None, return_dtype=pl.Float64).alias("window_length"),
        )
    else:
        rows = rows.with_columns(pl.lit(None, dtype=pl.Float64).alias("series_length"),
                                 pl.lit(None, dtype=pl.Float64).alias("window_length"))
    meta = rows.select(*KEY, "model_id", "horizon", "zs_mase", "ft_mase", "sn_mase", "fit_log", "series_length", "window_length")
    return ContextTable(
        meta=meta,
        features=rows.select(complete),
        model=rows.select(profile_columns(prof.width - 1)),
        tasks=task_frame(rows.get_column("task"), rows.get_column("horizon")),
        profile=profile,
    )


def stratified_subsample(
    groups: pl.DataFrame, max_rows: int, seed: int = 0
) -> np.ndarray:
    """Row indices: at most ``max_rows`` rows, an equal share per group (e.g. dataset x model).

    Args:
        groups: (n rows) the grouping columns.
    Returns:
        sorted indices, shape (<= max_rows,).
    """
    n = groups.height
    if n <= max_rows:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    codes = groups.select(pl.struct(groups.columns).rank("dense")).to_series().to_numpy() - 1
    order = rng.permutation(n)
    # rank of each row inside its group, in the random order: take the first `share` of each group
    codes_o = codes[order]
    sort = np.argsort(codes_o, kind="stable")
    sorted_codes = codes_o[sort]
    first = np.r_[0, np.flatnonzero(np.diff(sorted_codes)) + 1]
    within = np.empty(n, dtype=np.int64)
    within[sort] = np.arange(n) - np.repeat(first, np.diff(np.r_[first, n]))
    # smallest share per group such that the total fits max_rows
    sizes = np.bincount(codes)
    lo, hi = 0, int(sizes.max())
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if np.minimum(sizes, mid).sum() <= max_rows:
            lo = mid
        else:
            hi = mid - 1
    chosen = order[within < max(lo, 1)]
    if chosen.size > max_rows:
        chosen = rng.choice(chosen, max_rows, replace=False)
    return np.sort(chosen)
