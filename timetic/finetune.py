"""Fine-tuning runs: zero-shot and fine-tuned scores of one model on one target and task.

Split (GIFT-Eval style, :func:`split_series`): the last ``test_length(L, task)`` points of every
series (max(10%, H)) are its test span; fine-tuning sees only the points before it. The test span
is tiled from its start by non-overlapping evaluation windows of H steps (as many as fit; a
remainder shorter than H at the end is not scored); each window's context is the C points just
before its first forecast step (reaching back into the training part; NaN-padded on the left when
the series is shorter). At most ``max_eval_windows`` windows are kept: an equal share per series
(leftovers to series with more windows), spread over time within a series (one window drawn per
equal stratum of its windows), seeded by ``recipe.seed``.

:func:`run_finetune` forecasts every evaluation window zero-shot, fine-tunes the model on the
training parts with the uniform :class:`~timetic.recipe.Recipe`, forecasts the same windows again
and scores both (:func:`timetic.scoring.score_windows`). The result keeps one row per window and
the provenance of the run; :meth:`FinetuneResult.write_parquet` stores it.

Validation and early stopping (recipes with ``eval_every`` and ``val_windows``, e.g. ``"v2"``;
:func:`split_validation`): the validation span of a series is taken from the *end of its training
part* (never the test span) and is tiled by non-overlapping windows of H steps, the last one
ending where the training part ends; each window's context is the C points before it. A series
gives at most ``test_length(len(train_i))`` points (max(10%, H) of its training part, as the test
split) and only as many windows as leave at least C + H points to train on (the task's minimum);
a series too short for that gives none and is trained on whole. At most ``recipe.val_windows``
windows are taken: an equal share per series (leftovers to series with more, seeded by
``recipe.seed``), always the last ones of a series. The model is fine-tuned on the training parts
minus their validation spans. The validation loss is the mean seasonal MASE (the same
:func:`~timetic.scoring.score_windows` as the test) of the model's forecasts of the validation
windows that can be scored at all (observed future, non-zero seasonal error); a forecast that
cannot be scored (not finite) makes the loss infinite. The adapter validates at step 0, every
``eval_every`` steps and at the last step, keeps the best weights (possibly the starting ones:
then the fine-tuned forecasts equal the zero-shot ones) and stops after ``patience`` evaluations
without improvement. When no series can give a validation window, the model trains the full step
cap and keeps the last weights (``provenance["validation"]`` says so).
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
import platform
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np
import polars as pl

from timetic.data import Target
from timetic.errors import TimeticInputError
from timetic.recipe import Recipe
from timetic.scoring import score_windows, seasonal_naive
from timetic.tasks import Task, test_length
from timetic.windows import _allocate

#: columns of the per-window table, in order (``recipe`` and ``provenance`` follow in files).
TABLE_COLUMNS = (
    "dataset", "model", "adapter", "task", "horizon", "item_id", "window_start",
    "zs_mase", "ft_mase", "zs_wql", "ft_wql", "sn_mase", "sn_wql",
)
#: their types (a result file is cast to them when read back).
_TABLE_TYPES = {
    **{c: pl.Utf8 for c in ("dataset", "model", "adapter", "task", "item_id")},
    "horizon": pl.Int64, "window_start": pl.Int64,
    **{c: pl.Float64 for c in ("zs_mase", "ft_mase", "zs_wql", "ft_wql", "sn_mase", "sn_wql")},
}
#: columns that files written before they existed may lack (read back as null).
OPTIONAL_COLUMNS = ("sn_mase", "sn_wql")
DEFAULT_EVAL_WINDOWS = 100


@dataclass
class EvalWindows:
    """Evaluation windows in the test spans of a target's series.

    Attributes:
        context: shape (n, C), float64, NaN = missing or left padding.
        future: shape (n, H), float64, NaN = missing.
        item_ids: shape (n,), the series of each window.
        starts: shape (n,), index in its series of each window's first *forecast* step.
        test_starts: shape (n,), index in its series where the window's test span begins.
    """

    context: np.ndarray
    future: np.ndarray
    item_ids: np.ndarray
    starts: np.ndarray
    test_starts: np.ndarray

    def __len__(self) -> int:
        return int(self.context.shape[0])


def split_series(
    target: Target,
    task: Task,
    max_eval_windows: int = DEFAULT_EVAL_WINDOWS,
    seed: int = 0,
    context_length: int | None = None,
) -> tuple[list[np.ndarray], EvalWindows]:
    """Training parts and evaluation windows (see the module docstring).

    Series too short for the task are dropped with a warning (:meth:`Target.for_task`).

    Args:
        context_length: C of the evaluation contexts; default ``task.context_length``.
    Returns:
        ``(train, windows)``: the training part of each kept series, each of shape (L_i - test_i,),
        and the evaluation windows, ordered by series then time.
    """
    if max_eval_windows < 1:
        raise TimeticInputError(f"max_eval_windows must be >= 1 (got {max_eval_windows})")
    target = target.for_task(task)
    H = task.horizon
    C = int(context_length or task.context_length)
    series = target.series()
    ids = np.asarray(target.item_ids, dtype=object)
    test_lens = np.array([test_length(len(s), task) for s in series], dtype=np.int64)
    train = [s[: len(s) - t] for s, t in zip(series, test_lens)]
    counts = test_lens // H  # windows fitting each test span (>= 1: test_length >= H)
    rng = np.random.default_rng(seed)
    quota = _allocate(counts, int(max_eval_windows), rng) if counts.sum() > max_eval_windows else counts
    ctx, fut, item_ids, starts, test_starts = [], [], [], [], []
    for i in np.flatnonzero(quota):
        s, m, q = series[i], int(counts[i]), int(quota[i])
        t0 = len(s) - int(test_lens[i])
        if q < m:
            edges = np.floor(np.linspace(0, m, q + 1)).astype(np.int64)
            js = rng.integers(edges[:-1], edges[1:])
        else:
            js = np.arange(m)
        padded = np.concatenate([np.full(C, np.nan), s])
        for j in js:
            start = t0 + int(j) * H
            ctx.append(padded[start : start + C])  # = s[start - C : start], NaN before 0
            fut.append(s[start : start + H])
            item_ids.append(ids[i])
            starts.append(start)
            test_starts.append(t0)
    windows = EvalWindows(
        context=np.asarray(ctx, dtype=np.float64).reshape(-1, C),
        future=np.asarray(fut, dtype=np.float64).reshape(-1, H),
        item_ids=np.asarray(item_ids, dtype=object),
        starts=np.asarray(starts, dtype=np.int64),
        test_starts=np.asarray(test_starts, dtype=np.int64),
    )
    return train, windows


def split_validation(
    train: list[np.ndarray],
    task: Task,
    max_windows: int,
    seed: int = 0,
    context_length: int | None = None,
    item_ids: np.ndarray | None = None,
) -> tuple[list[np.ndarray], EvalWindows]:
    """Validation windows at the end of the training parts (see the module docstring).

    Args:
        train: the training parts (:func:`split_series`), each of shape (T_i,).
        max_windows: at most this many windows (``recipe.val_windows``).
        context_length: C of the validation contexts; default ``task.context_length``.
        item_ids: the series' ids (default their positions).
    Returns:
        ``(fit, windows)``: the training parts minus their validation spans (a series without
        validation windows is kept whole) and the validation windows, ordered by series then
        time; ``windows.test_starts`` holds where each series' validation span begins (the end
        of its part in ``fit``). Windows that cannot be scored for any forecast (no observed
        future point, zero or undefined seasonal error of the context) are left out.
    """
    if max_windows < 1:
        raise TimeticInputError(f"val_windows must be >= 1 (got {max_windows})")
    H = task.horizon
    C = int(context_length or task.context_length)
    ids = np.asarray(item_ids if item_ids is not None else np.arange(len(train)), dtype=object)
    lengths = np.array([len(s) for s in train], dtype=np.int64)
    span = np.array([test_length(int(n), task) for n in lengths], dtype=np.int64) if len(train) else lengths
    counts = np.maximum(np.minimum(span // H, (lengths - C - H) // H), 0)
    rng = np.random.default_rng(seed)
    quota = _allocate(counts, int(max_windows), rng) if counts.sum() > max_windows else counts
    fit: list[np.ndarray] = []
    ctx, fut, item, starts, span_starts = [], [], [], [], []
    for i, s in enumerate(train):
        q = int(quota[i])
        v0 = len(s) - q * H
        fit.append(s[:v0])
        for j in range(q):
            start = v0 + j * H
            ctx.append(s[start - C : start])
            fut.append(s[start : start + H])
            item.append(ids[i])
            starts.append(start)
            span_starts.append(v0)
    context = np.asarray(ctx, dtype=np.float64).reshape(-1, C)
    future = np.asarray(fut, dtype=np.float64).reshape(-1, H)
    # scorable at all: the MASE of a finite (here: zero) forecast is finite
    probe = np.zeros((len(context), len(_LEVELS), H))
    ok = np.isfinite(score_windows(context, future, probe, _LEVELS, task.seasonality)["mase"])
    windows = EvalWindows(
        context=context[ok],
        future=future[ok],
        item_ids=np.asarray(item, dtype=object)[ok],
        starts=np.asarray(starts, dtype=np.int64)[ok],
        test_starts=np.asarray(span_starts, dtype=np.int64)[ok],
    )
    return fit, windows


#: quantile levels of the scorability probe (only the median matters for MASE).
_LEVELS = (0.1, 0.5, 0.9)


def validation_loss(
    model: Any, windows: EvalWindows, horizon: int, seasonality: int, batch_size: int = 64
) -> float:
    """Mean seasonal MASE of ``model``'s forecasts of ``windows``; ``inf`` when a window cannot be
    scored (a forecast that is not finite at an observed point)."""
    forecast = model.forecast(windows.context, horizon, batch_size=batch_size)
    mase = score_windows(windows.context, windows.future, forecast, tuple(model.quantile_levels), seasonality)["mase"]
    return float(mase.mean()) if len(mase) and np.isfinite(mase).all() else math.inf


def probe_curve(adapter: Any, target: Target, task: Task, recipe: Recipe, steps: int,
                max_eval_windows: int = DEFAULT_EVAL_WINDOWS, batch_size: int = 64) -> tuple[float, float]:
    """The learning-curve probe: (v_0, v_K), the validation MASE before and after the first
    ``steps`` = K optimiser steps of ``recipe`` on ``target``.

    The same training part, validation span, seed and schedule as :func:`run_finetune` with
    ``recipe`` (only the step cap is K, and nothing is evaluated on the test span), so v_K is the
    point at step K of a full run's validation curve (``fit_log``'s ``val_curve``) when K is one
    of its evaluation steps. ``(nan, nan)`` when the adapter cannot validate or no series is long
    enough for a validation window.
    """
    if steps < 1:
        raise TimeticInputError(f"probe steps must be >= 1; got {steps}")
    target = target.for_models()  # tiny or huge values: a power of ten per series (MASE does not change)
    C = int(recipe.context_length or task.context_length)
    train, _ = split_series(target, task, max_eval_windows, seed=recipe.seed, context_length=C)
    if not recipe.validates or not _accepts_validate(adapter):
        return float("nan"), float("nan")
    fit, val = split_validation(train, task, int(recipe.val_windows), seed=recipe.seed, context_length=C,
                                item_ids=_kept_ids(target, task))
    if len(val) == 0:
        return float("nan"), float("nan")
    H = task.horizon
    short = dataclasses.replace(recipe, context_length=C, steps=int(steps), patience=None)
    tuned = adapter.finetune(fit, H, short,
                             validate=lambda m: validation_loss(m, val, H, task.seasonality, batch_size))
    curve = {int(k): v for k, v in (getattr(tuned, "finetune_info", None) or {}).get("val_curve", [])}
    v0, vk = curve.get(0), curve.get(int(steps))
    return (float("nan") if v0 is None else float(v0)), (float("nan") if vk is None else float(vk))


def _accepts_validate(adapter: Any) -> bool:
    try:
        params = inspect.signature(adapter.finetune).parameters
    except (TypeError, ValueError):
        return False
    return "validate" in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


# ---------------------------------------------------------------------------------------------
# result


@dataclass
class FinetuneResult:
    """One fine-tuning run.

    Attributes:
        table: one row per evaluation window, columns :data:`TABLE_COLUMNS`.
        recipe: the recipe as given (``context_length`` None = the task's; the effective value is
            ``provenance["context_length"]``).
        provenance: dataset, model, adapter, task, wall times (``wall_seconds``: ``zero_shot``,
            ``finetune``, ``evaluate``) and CPU times of the same stages (``cpu_seconds``), package versions, hardware, UTC date, seed, sizes, and
            the fine-tuning run: ``recipe_name``, ``recipe_hash``, ``learning_rate``,
            ``validation`` (``"early-stopping"``, ``"off"`` (the recipe does not validate),
            ``"none: ..."`` (no series could give a validation window: full step cap, last
            weights) or ``"unsupported: ..."`` (the adapter's ``finetune`` takes no
            ``validate``)), ``max_steps``, ``steps_run``, ``best_step``, ``best_val``,
            ``val_curve`` (``[[step, val_mase], ...]``, ``None`` = not finite),
            ``stopped_early``, ``n_val_windows``, ``n_val_series``.
        adapter: the fine-tuned adapter (``None`` when read back from a file).
    """

    table: pl.DataFrame
    recipe: Recipe
    provenance: dict[str, Any]
    adapter: Any = field(default=None, repr=False)

    def summary(self) -> dict[str, Any]:
        """Mean zero-shot and fine-tuned MASE / WQL and the relative gain ``(zs - ft) / zs``.

        Means are over the windows where both the zero-shot and the fine-tuned score are finite
        (NaN windows are dropped per metric). A positive gain means fine-tuning helped.
        """
        out: dict[str, Any] = {"n_windows": int(self.table.height)}
        for metric in ("mase", "wql"):
            zs = self.table.get_column(f"zs_{metric}").to_numpy().astype(np.float64)
            ft = self.table.get_column(f"ft_{metric}").to_numpy().astype(np.float64)
            ok = np.isfinite(zs) & np.isfinite(ft)
            mz = float(zs[ok].mean()) if ok.any() else float("nan")
            mf = float(ft[ok].mean()) if ok.any() else float("nan")
            out[f"zs_{metric}"] = mz
            out[f"ft_{metric}"] = mf
            out[f"gain_{metric}"] = (mz - mf) / mz if ok.any() and mz > 0 else float("nan")
            out[f"n_{metric}"] = int(ok.sum())
        return out

    def to_frame(self) -> pl.DataFrame:
        """The table plus constant ``recipe`` and ``provenance`` columns (JSON strings)."""
        return self.table.with_columns(
            pl.lit(self.recipe.to_json(), dtype=pl.Utf8).alias("recipe"),
            pl.lit(json.dumps(self.provenance, sort_keys=True, default=str), dtype=pl.Utf8).alias(
                "provenance"
            ),
        )

    def write_parquet(self, path: str | Path) -> Path:
        """Write :meth:`to_frame` atomically (temp file in the same folder, then rename).

        The recipe and the provenance are stored as JSON string *columns* (constant per file),
        so that result files of many runs concatenate into one table without losing them.
        """
        from timetic.io import atomic_path

        path = Path(path)
        with atomic_path(path) as tmp:
            self.to_frame().write_parquet(tmp)
        return path

    @classmethod
    def read_parquet(cls, path: str | Path) -> "FinetuneResult":
        """Read a file written by :meth:`write_parquet` (``adapter`` is ``None``)."""
        path = Path(path)
        hint = "pass the .parquet file written by `timetic finetune --out`"
        if not path.exists():
            raise TimeticInputError(f"result file not found: {path}; check the path")
        if path.is_dir():
            raise TimeticInputError(f"{path} is a directory, not a fine-tuning result; {hint}")
        if path.stat().st_size == 0:
            raise TimeticInputError(f"{path.name} is empty, not a fine-tuning result; {hint}")
        try:
            df = pl.read_parquet(path)
        except Exception as e:  # polars raises many exception types for corrupt or non-parquet files
            reason = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
            raise TimeticInputError(f"cannot read {path.name} as a parquet file ({reason}); {hint}") from e
        df = df.with_columns(pl.lit(None, dtype=pl.Float64).alias(c) for c in OPTIONAL_COLUMNS if c not in df.columns)
        missing = [c for c in (*TABLE_COLUMNS, "recipe", "provenance") if c not in df.columns]
        if missing:
            raise TimeticInputError(
                f"{path.name} is not a fine-tuning result (missing columns {', '.join(missing)}); {hint}"
            )
        if df.height == 0:
            raise TimeticInputError(f"{path.name} has no rows; re-run the fine-tuning")
        try:
            recipe = Recipe.from_dict(json.loads(df.get_column("recipe")[0]))
            provenance = json.loads(df.get_column("provenance")[0])
            if not isinstance(provenance, dict):
                raise TypeError("provenance is not a JSON object")
            table = df.select(TABLE_COLUMNS).cast(_TABLE_TYPES)
        except TimeticInputError:
            raise
        except Exception as e:
            reason = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
            raise TimeticInputError(
                f"{path.name} is not a valid fine-tuning result ({type(e).__name__}: {reason}); {hint}"
            ) from e
        return cls(table=table, recipe=recipe, provenance=provenance)


# ---------------------------------------------------------------------------------------------
# runner


def run_finetune(
    adapter: Any,
    target: Target,
    task: Task,
    recipe: Recipe = Recipe(),
    max_eval_windows: int = DEFAULT_EVAL_WINDOWS,
    progress: Callable[[str, int, int], None] | None = None,
    dataset_id: str | None = None,
    model_id: str | None = None,
    batch_size: int = 64,
) -> FinetuneResult:
    """Zero-shot vs. fine-tuned scores of ``adapter`` on the test spans of ``target``.

    Args:
        adapter: a :class:`timetic.adapters.Adapter` (left unchanged).
        recipe: the uniform recipe; its ``context_length`` (None = the task's) is the C of both
            the evaluation contexts and the fine-tuning windows; its seed also seeds the choice
            of evaluation windows.
        progress: called as ``progress(stage, done, total)`` with stage ``"zero-shot"``,
            ``"fine-tune"`` (once per optimiser step) or ``"evaluate"``.
        dataset_id, model_id: labels of the rows; default ``target.name`` and the adapter's
            ``source`` (or its name).
        batch_size: windows per forecast batch.
    """
    from timetic.adapters.base import Timer

    target = target.for_models()  # tiny or huge values: a power of ten per series (MASE does not change)
    C = int(recipe.context_length or task.context_length)
    train, windows = split_series(target, task, max_eval_windows, seed=recipe.seed, context_length=C)
    H = task.horizon
    levels = tuple(adapter.quantile_levels)
    n = len(windows)

    def report(stage: str, done: int, total: int) -> None:
        if progress is not None:
            progress(stage, done, total)

    def scored(stage: str, model: Any) -> tuple[dict[str, np.ndarray], Timer]:
        """Scores of ``model``'s forecasts of the evaluation windows, timed (forecast included)."""
        report(stage, 0, n)
        with Timer() as t:
            forecast = model.forecast(windows.context, H, batch_size=batch_size)
            scores = score_windows(windows.context, windows.future, forecast, levels, task.seasonality)
        report(stage, n, n)
        return scores, t

    zs, t_zs = scored("zero-shot", adapter)
    # the seasonal-naive forecast's scores on the same windows (GIFT-Eval's normaliser)
    sn = score_windows(windows.context, windows.future,
                       seasonal_naive(windows.context, H, task.seasonality, len(levels)), levels, task.seasonality)

    ft_recipe = dataclasses.replace(recipe, context_length=C)
    fit, val = train, None
    if not recipe.validates:
        mode = "off"
    elif not _accepts_validate(adapter):
        mode = f"unsupported: {type(adapter).__name__}.finetune takes no validate"
    else:
        fit, val = split_validation(train, task, int(recipe.val_windows), seed=recipe.seed, context_length=C,
                                    item_ids=_kept_ids(target, task))
        if len(val) == 0:
            fit, val = train, None
            mode = "none: no series long enough for a validation window (full step cap, last weights)"
        else:
            mode = "early-stopping"
    kwargs: dict[str, Any] = {}
    if val is not None:
        kwargs["validate"] = lambda m: validation_loss(m, val, H, task.seasonality, batch_size)
    with Timer() as t_ft:
        tuned = adapter.finetune(fit, H, ft_recipe, progress=lambda s, k: report("fine-tune", s, k), **kwargs)
    info = dict(getattr(tuned, "finetune_info", None) or {})
    if info.get("stopped_early"):
        report("fine-tune", int(info["steps_run"]), int(info["steps_run"]))  # finish progress bars

    ft, t_ev = scored("evaluate", tuned)

    dataset = str(dataset_id or target.name)
    model = str(model_id or getattr(adapter, "source", "") or adapter.name)
    table = pl.DataFrame(
        {
            "dataset": [dataset] * n,
            "model": [model] * n,
            "adapter": [str(adapter.name)] * n,
            "task": [task.name] * n,
            "horizon": np.full(n, H, dtype=np.int64),
            "item_id": [str(i) for i in windows.item_ids],
            "window_start": windows.starts.astype(np.int64),
            "zs_mase": zs["mase"],
            "ft_mase": ft["mase"],
            "zs_wql": zs["wql"],
            "ft_wql": ft["wql"],
            "sn_mase": sn["mase"],
            "sn_wql": sn["wql"],
        },
        schema={
            "dataset": pl.Utf8, "model": pl.Utf8, "adapter": pl.Utf8, "task": pl.Utf8,
            "horizon": pl.Int64, "item_id": pl.Utf8, "window_start": pl.Int64,
            "zs_mase": pl.Float64, "ft_mase": pl.Float64, "zs_wql": pl.Float64, "ft_wql": pl.Float64,
            "sn_mase": pl.Float64, "sn_wql": pl.Float64,
        },
    )
    device = recipe.resolve_device()
    provenance = {
        "dataset": dataset,
        "model": model,
        "adapter": str(adapter.name),
        "num_parameters": int(adapter.num_parameters),
        "depth": int(adapter.depth),
        "task": task.to_dict(),
        "context_length": C,
        "n_train_series": len(train),
        "n_train_points": int(sum(len(s) for s in fit)),
        "n_eval_windows": n,
        "max_eval_windows": int(max_eval_windows),
        "seed": int(recipe.seed),
        "recipe_name": recipe.name,
        "recipe_hash": recipe.hash,
        "learning_rate": info.get("learning_rate", recipe.learning_rate_for(adapter.name)),
        "validation": mode,
        "max_steps": int(recipe.steps),
        "steps_run": info.get("steps_run"),
        "best_step": info.get("best_step"),
        "best_val": _finite_or_none(info.get("best_val")),
        "val_curve": [[int(k), _finite_or_none(v)] for k, v in info.get("val_curve", [])],
        "stopped_early": bool(info.get("stopped_early", False)),
        "n_val_windows": len(val) if val is not None else 0,
        "n_val_series": int(len(set(val.item_ids.tolist()))) if val is not None else 0,
        "wall_seconds": {
            "zero_shot": round(t_zs.seconds, 4),
            "finetune": round(t_ft.seconds, 4),
            "evaluate": round(t_ev.seconds, 4),
        },
        "cpu_seconds": {
            "zero_shot": round(t_zs.cpu_seconds, 4),
            "finetune": round(t_ft.cpu_seconds, 4),
            "evaluate": round(t_ev.cpu_seconds, 4),
        },
        "versions": package_versions(),
        "hardware": hardware(device),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    return FinetuneResult(table=table, recipe=recipe, provenance=provenance, adapter=tuned)


def _kept_ids(target: Target, task: Task) -> np.ndarray:
    """Item ids of the series :func:`split_series` keeps (same order as its training parts)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # split_series has warned already
        return np.asarray(target.for_task(task).item_ids, dtype=object)


def _finite_or_none(v: Any) -> float | None:
    return float(v) if v is not None and math.isfinite(float(v)) else None


# ---------------------------------------------------------------------------------------------
# provenance


def package_versions() -> dict[str, str]:
    """Versions of python, timetic and the numeric / model packages (those installed)."""
    from importlib.metadata import PackageNotFoundError, version

    import timetic

    out = {"python": platform.python_version(), "timetic": str(getattr(timetic, "__version__", "unknown"))}
    for pkg in ("numpy", "torch", "gluonts", "polars", "transformers", "chronos-forecasting", "timesfm"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            continue
    return out


def hardware(device: str = "cpu") -> dict[str, Any]:
    """CPU model and core count; the CUDA device name when ``device`` is CUDA."""
    import os

    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    out: dict[str, Any] = {
        "device": device,
        "cpu": cpu or platform.machine(),
        "cpu_count": os.cpu_count(),
        "platform": sys.platform,
    }
    if device.startswith("cuda"):
        import torch

        if torch.cuda.is_available():
            out["cuda"] = torch.cuda.get_device_name(0)
    return out
