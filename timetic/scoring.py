"""Per-window forecast scores with GluonTS' evaluation code (``gluonts.ev``), as GIFT-Eval does.

* MASE: ``gluonts.ev.metrics.MASE`` (forecast ``"0.5"``: the median) per window, i.e. the mean
  absolute error of the median forecast over the window's observed future points, divided by the
  seasonal error ``gluonts.ev.ts_stats.seasonal_error``: the mean absolute difference
  ``|y_t - y_{t-m}|`` over the window's *context* (season length m = ``task.seasonality``; m = 1
  when the context is not longer than m, GluonTS' rule). GIFT-Eval computes the seasonal error on
  the whole history before the forecast; timetic uses the window's context so that every window is
  scored on the data the model saw.
* WQL: ``gluonts.ev.metrics.MeanWeightedSumQuantileLoss`` over the quantile levels, i.e. the mean
  over levels q of ``sum_t 2 |(y_t - f_q,t) (1{f_q,t >= y_t} - q)| / sum_t |y_t|``.

Missing values (NaN) are masked as in ``gluonts.model.evaluation`` (``np.ma.masked_invalid``):
missing future points are skipped, missing context points are skipped in the seasonal error.

A window's MASE is NaN when its seasonal error is 0 or undefined (a constant or all-missing
context) or when its future has no observed point; its WQL is NaN when the future has no observed
point or ``sum |y|`` is 0. Both are NaN when a forecast is not finite at an observed future point
(GluonTS would skip such points silently). Callers drop NaN windows (both scores are computed for every window).
"""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np

from timetic.errors import TimeticInputError


def score_windows(
    context: np.ndarray,
    future: np.ndarray,
    quantiles: np.ndarray,
    quantile_levels: Sequence[float],
    seasonality: int,
) -> dict[str, np.ndarray]:
    """MASE and WQL of every window.

    Args:
        context: shape (n, C), NaN = missing; the seasonal error's data.
        future: shape (n, H), NaN = missing; the truth.
        quantiles: shape (n, Q, H), forecasts in ``quantile_levels`` order (must include 0.5).
        quantile_levels: Q levels in (0, 1).
        seasonality: season length m >= 1.
    Returns:
        ``{"mase": (n,), "wql": (n,)}`` float64, NaN for unscorable windows (module docstring).
    """
    from gluonts.ev.metrics import MASE, MeanWeightedSumQuantileLoss
    from gluonts.ev.ts_stats import seasonal_error

    context = np.asarray(context, dtype=np.float64)
    future = np.asarray(future, dtype=np.float64)
    quantiles = np.asarray(quantiles, dtype=np.float64)
    levels = [float(q) for q in quantile_levels]
    n, H = future.shape if future.ndim == 2 else (-1, -1)
    if future.ndim != 2 or context.ndim != 2 or context.shape[0] != n:
        raise TimeticInputError(
            f"context and future must be (n, C) and (n, H) arrays; got {context.shape} and {future.shape}"
        )
    if quantiles.shape != (n, len(levels), H):
        raise TimeticInputError(
            f"quantile forecasts must have shape (n, Q, H) = {(n, len(levels), H)}; got {quantiles.shape}"
        )
    if 0.5 not in levels:
        raise TimeticInputError("quantile levels must include 0.5 (the median scores MASE)")
    if seasonality < 1:
        raise TimeticInputError(f"seasonality must be >= 1 (got {seasonality})")
    if n == 0:
        return {"mase": np.zeros(0), "wql": np.zeros(0)}

    label = np.ma.masked_invalid(future)
    scale = seasonal_error(np.ma.masked_invalid(context), seasonality=int(seasonality), time_axis=-1)
    scale = np.ma.filled(np.ma.asarray(scale, dtype=np.float64), np.nan)  # (n, 1)
    data = {"label": label, "seasonal_error": scale}
    for j, q in enumerate(levels):
        data[str(q)] = quantiles[:, j, :]

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        mase = MASE(forecast_type="0.5")(axis=1).update(data).get()
        wql = MeanWeightedSumQuantileLoss(quantile_levels=levels)(axis=1).update(data).get()
    mase = np.ma.filled(np.ma.asarray(mase, dtype=np.float64), np.nan).reshape(n)
    wql = np.ma.filled(np.ma.asarray(wql, dtype=np.float64), np.nan).reshape(n)

    observed = np.isfinite(future).any(axis=1)
    bad_forecast = (~np.isfinite(quantiles) & np.isfinite(future)[:, None, :]).any(axis=(1, 2))
    observed &= ~bad_forecast
    abs_sum = np.nansum(np.abs(future), axis=1)
    s = scale.reshape(n)
    mase[~(observed & np.isfinite(s) & (s > 0))] = np.nan
    wql[~(observed & (abs_sum > 0))] = np.nan
    mase[~np.isfinite(mase)] = np.nan
    wql[~np.isfinite(wql)] = np.nan
    return {"mase": mase, "wql": wql}


def seasonal_naive(context: np.ndarray, horizon: int, season: int, n_levels: int) -> np.ndarray:
    """Seasonal naive forecasts: the last observed season repeated, every quantile equal.

    Args:
        context: shape (n, C), NaN = missing (filled from the nearest observed point first).
        season: m >= 1; m = 1 (or a context not longer than m) repeats the last value.
    Returns:
        shape (n, n_levels, horizon).
    """
    from timetic.adapters.base import fill_nan

    filled, _ = fill_nan(np.asarray(context, dtype=np.float64))
    m = int(season) if filled.shape[1] > int(season) else 1
    reps = int(np.ceil(horizon / m))
    point = np.tile(filled[:, -m:], (1, reps))[:, :horizon]
    return np.repeat(point[:, None, :], n_levels, axis=1)
