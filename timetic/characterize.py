"""Dataset characterization: target -> windows -> per-window meta-features (+ descriptors)."""

from __future__ import annotations

from typing import Callable

import polars as pl

from timetic.data import Target
from timetic.features import add_descriptors, dataset_descriptors, window_features
from timetic.tasks import Task
from timetic.windows import DEFAULT_WINDOWS, Windows, sample_windows


def dataset_features(
    target: Target,
    task: Task,
    n_windows: int = DEFAULT_WINDOWS,
    seed: int = 0,
    backend: str = "fast",
    progress: Callable[[int], None] | None = None,
    windows: Windows | None = None,
) -> pl.DataFrame:
    """One row per sampled window: ``task``, ``window``, ``item_id``, ``start``, then the
    meta-features of the window (context + horizon) and the dataset-level descriptors.

    All feature columns are finite Float64.
    """
    if windows is None:
        windows = sample_windows(target, task, n_windows=n_windows, seed=seed)
    feats = window_features(windows.values, period=task.period, backend=backend, progress=progress)
    desc = dataset_descriptors(target.freq, target.lengths)
    feats = add_descriptors(feats, desc)
    index = windows.index_frame().with_columns(pl.lit(task.name).alias("task"))
    return pl.concat([index.select("task", "window", "item_id", "start"), feats], how="horizontal")


def feature_columns(frame: pl.DataFrame) -> list[str]:
    """The meta-feature columns of a :func:`dataset_features` frame."""
    return [c for c in frame.columns if c not in ("task", "window", "item_id", "start")]
