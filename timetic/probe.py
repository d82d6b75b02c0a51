"""Probe inputs for entropy profiles: a fixed synthetic corpus, or the target's own windows.

:func:`probe_corpus` is the model-agnostic probe: every model's entropy profile is measured on the
same seeded set of synthetic series, so profiles of different models are comparable. The corpus
mixes the structures real series have. Series ``i`` gets a *design* that does not depend on the
seed (so every seed covers the same mix), and random parameters drawn from the seed:

* kind (``i % 8``): 0-5 structured (trend + seasonality + noise), 6 random walk (half with drift),
  7 intermittent counts (zero-inflated Poisson with a weak season, non-negative);
* trend of structured series (``i % 3``): none; linear (total change over the series 0.5-3 times
  ``max(amplitude, 1)``, either sign); exponential-ish (``2 max(amplitude, 1) (exp(r u) - 1)`` for
  relative time ``u`` in [0, 1], with ``exp(r)`` a growth or decay factor of 1.5-4);
* seasonality of structured series (``(i // 3) % 6``): none, period 7, 12, 24, 52, or two periods
  at once (24 and 168, or 7 and 52, alternately); each season is a random-phase sinusoid plus its
  second harmonic (random weight 0-0.5), amplitude 0.5-3;
* noise of structured series (``(i // 2) % 3``): gaussian, heavy-tailed (Student t, 3 degrees of
  freedom, rescaled to unit variance) or AR(1) (coefficient 0.5-0.95, unit stationary variance);
  standard deviation 0.1-1;
* events: every 8th series (``i % 8 == 3``) gets one level shift of 2-5 times its noise level
  (robust std of the differences) at a random point of its middle 80%; every 8th
  (``i % 8 == 5``) gets 3-8 spikes of 4-10 times its noise level, either sign;
* level and scale: finally every series ``y`` becomes ``level + scale * y`` with ``scale``
  log-uniform in [0.01, 1000] and ``level`` uniform in [-3, 3] times ``scale`` times a
  log-uniform factor in [0.1, 100] (so some series sit far from zero, some cross it); counts are
  only multiplied by an integer 1-20 (they stay non-negative integers).

Same ``(n_series, length, seed)`` -> identical corpus, bit for bit.

:func:`probe_from_windows` probes a model on the target's own data instead (a seeded subset of
sampled window contexts).
"""

from __future__ import annotations

import numpy as np

from timetic.errors import TimeticInputError

#: season lengths of the single-period series (the two-period ones use (24, 168) and (7, 52)).
PERIODS = (7, 12, 24, 52)


def probe_corpus(n_series: int = 64, length: int = 512, seed: int = 0) -> np.ndarray:
    """The synthetic probe corpus (see the module docstring for its design).

    Returns:
        shape (n_series, length), float64, finite.
    """
    if n_series < 1 or length < 2:
        raise TimeticInputError(
            f"probe corpus needs n_series >= 1 and length >= 2 (got {n_series}, {length})"
        )
    rng = np.random.default_rng(seed)
    t = np.arange(length, dtype=np.float64)
    out = np.empty((n_series, length))
    for i in range(n_series):
        kind = i % 8
        if kind == 6:
            y = _random_walk(rng, length, drift=bool((i // 8) % 2))
        elif kind == 7:
            y = _intermittent(rng, t)
        else:
            y = _structured(rng, t, trend=i % 3, season=(i // 3) % 6, noise=(i // 2) % 3, alt=(i // 18) % 2)
            if kind == 3:
                y = _level_shift(rng, y)
            elif kind == 5:
                y = _spikes(rng, y)
        out[i] = _level_scale(rng, y, counts=kind == 7)
    return out


def probe_from_windows(context: np.ndarray, n: int = 64, seed: int = 0) -> np.ndarray:
    """A seeded subset of ``n`` rows of the target's window contexts (all rows when fewer).

    Args:
        context: shape (m, C), float, NaN = missing.
    Returns:
        shape (min(n, m), C), rows in their original order.
    """
    context = np.asarray(context, dtype=np.float64)
    if context.ndim != 2 or context.shape[0] == 0:
        raise TimeticInputError(
            f"probe windows must be a non-empty 2-D array (windows, context); got shape {context.shape}"
        )
    m = context.shape[0]
    if m <= n:
        return context.copy()
    rows = np.sort(np.random.default_rng(seed).choice(m, size=n, replace=False))
    return context[rows]


# ---------------------------------------------------------------------------------------------
# components (each returns a series of shape (T,) with a noise std of about 1 or less)


def _season(rng: np.random.Generator, t: np.ndarray, period: float) -> np.ndarray:
    phase = rng.uniform(0, 2 * np.pi, size=2)
    w = 2 * np.pi * t / period
    return np.sin(w + phase[0]) + rng.uniform(0, 0.5) * np.sin(2 * w + phase[1])


def _noise(rng: np.random.Generator, T: int, kind: int) -> np.ndarray:
    if kind == 0:
        return rng.standard_normal(T)
    if kind == 1:
        return rng.standard_t(3, size=T) / np.sqrt(3.0)  # unit variance
    phi = rng.uniform(0.5, 0.95)
    e = rng.standard_normal(T) * np.sqrt(1 - phi**2)
    x = np.empty(T)
    x[0] = rng.standard_normal()
    for k in range(1, T):
        x[k] = phi * x[k - 1] + e[k]
    return x


def _structured(
    rng: np.random.Generator, t: np.ndarray, trend: int, season: int, noise: int, alt: int
) -> np.ndarray:
    T = len(t)
    amp = rng.uniform(0.5, 3.0)
    if season == 0:
        s = np.zeros(T)
    elif season <= len(PERIODS):
        s = amp * _season(rng, t, PERIODS[season - 1])
    else:
        p1, p2 = ((24, 168), (7, 52))[alt]
        s = amp * (_season(rng, t, p1) + rng.uniform(0.3, 1.0) * _season(rng, t, p2))
    u = t / max(T - 1, 1)
    if trend == 0:
        tr = np.zeros(T)
    elif trend == 1:
        tr = rng.choice([-1.0, 1.0]) * rng.uniform(0.5, 3.0) * max(amp, 1.0) * u
    else:
        factor = rng.uniform(1.5, 4.0) ** rng.choice([-1.0, 1.0])
        tr = max(amp, 1.0) * 2.0 * (np.exp(np.log(factor) * u) - 1.0)
    sigma = rng.uniform(0.1, 1.0)
    return tr + s + sigma * _noise(rng, T, noise)


def _random_walk(rng: np.random.Generator, T: int, drift: bool) -> np.ndarray:
    step = rng.standard_normal(T)
    if drift:
        step = step + rng.choice([-1.0, 1.0]) * rng.uniform(0.05, 0.3)
    return np.cumsum(step)


def _intermittent(rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    p_zero = rng.uniform(0.3, 0.8)
    rate = rng.uniform(0.5, 4.0) * (1 + 0.3 * np.sin(2 * np.pi * t / rng.choice(PERIODS)))
    y = rng.poisson(rate).astype(np.float64)
    y[rng.random(len(t)) < p_zero] = 0.0
    return y


def _level_shift(rng: np.random.Generator, y: np.ndarray) -> np.ndarray:
    T = len(y)
    at = rng.integers(int(0.1 * T), max(int(0.9 * T), int(0.1 * T) + 1))
    y = y.copy()
    y[at:] += rng.choice([-1.0, 1.0]) * rng.uniform(2.0, 5.0) * _spread(y)
    return y


def _spikes(rng: np.random.Generator, y: np.ndarray) -> np.ndarray:
    y = y.copy()
    k = int(rng.integers(3, 9))
    where = rng.choice(len(y), size=min(k, len(y)), replace=False)
    y[where] += rng.choice([-1.0, 1.0], size=len(where)) * rng.uniform(4.0, 10.0, size=len(where)) * _spread(y)
    return y


def _spread(y: np.ndarray) -> float:
    """Robust std of the first differences / sqrt(2) (the noise level), at least 0.1."""
    d = np.diff(y)
    mad = np.median(np.abs(d - np.median(d))) * 1.4826 / np.sqrt(2) if len(d) else 0.0
    return float(max(mad, 0.1))


def _level_scale(rng: np.random.Generator, y: np.ndarray, counts: bool) -> np.ndarray:
    if counts:
        return y * float(rng.integers(1, 21))
    scale = 10 ** rng.uniform(-2, 3)
    level = rng.uniform(-3, 3) * scale * 10 ** rng.uniform(-1, 2)
    return level + scale * y
