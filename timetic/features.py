"""Per-window meta-features (dataset characterization).

:func:`window_features` turns windows of shape ``(n_windows, window_length)`` into one row of
features per window; :func:`dataset_descriptors` describes a whole dataset (size, lengths,
frequency) and :func:`add_descriptors` appends those as constant columns.

Every output value is a finite float: whenever a feature is undefined (constant window,
all-missing window, too short for a lag or a season) it takes the fill value listed below.

Preprocessing (``backend="fast"``)
----------------------------------
1. NaN and +-inf count as missing. Each row is divided by its largest absolute observed value,
   so nothing overflows; every feature below is invariant to this rescaling.
2. Missing values are filled by linear interpolation inside the row and by the nearest observed
   value at its edges; an all-missing row becomes zeros.
3. ``z`` is the filled row standardised to mean 0, standard deviation 1 (population). A row whose
   standard deviation is below 1e-12 of its scale is *constant*: ``z`` is all zeros.
4. The row is *seasonal* when ``2 <= period`` and ``2 * period <= window_length`` (two full
   cycles); otherwise every seasonal feature uses its non-seasonal definition or fill value.
5. The tile width ``w`` (lumpiness, stability, level/variance shifts) is ``period`` for seasonal
   rows and 10 otherwise, reduced to ``window_length // 2`` when that is smaller.

Features computed with numpy/scipy, vectorised over rows (``acf_k(y)`` is the biased sample
autocorrelation of ``y`` at lag ``k``, 0 when ``y`` is constant or shorter than ``k + 1``):

==================  ========  ==========================================================
name                fill      definition
==================  ========  ==========================================================
missing_ratio       --        fraction of missing (NaN / inf) values in the raw row
zero_ratio          0         fraction of observed values that are exactly 0
unique_ratio        0         distinct observed values / observed values
cv                  0 | 1000  std / abs(mean) of observed values, capped at 1000
                              (0 when std is 0, 1000 when the mean is 0)
mean_abs_ratio      0         mean / mean(abs) of observed values, in [-1, 1]
skewness            0         third standardised moment of observed values
kurtosis            0         excess kurtosis of observed values
outlier_ratio       0         fraction of observed values with abs(x - median) >
                              3 * 1.4826 * MAD (when MAD = 0: any value off the median)
acf1                0         acf_1(z)
acf10               0         sum of acf_k(z)**2, k = 1..10
diff1_acf1          0         acf_1(diff(z))
diff1_acf10         0         sum of acf_k(diff(z))**2, k = 1..10
diff2_acf1          0         acf_1(diff(z, 2))
diff2_acf10         0         sum of acf_k(diff(z, 2))**2, k = 1..10
pacf5               0         sum of squared partial autocorrelations of z, lags 1..5
                              (Durbin-Levinson recursion on the acf)
diff1_pacf5         0         same on diff(z)
seas_acf1           0         acf_period(z); 0 for non-seasonal rows
arch_acf            0         sum of acf_k(z**2)**2, k = 1..12 (volatility clustering)
spectral_entropy    0         Shannon entropy of the normalised Welch spectrum of z
                              (segments of min(L, 128), DC bin dropped) / log(#bins):
                              ~1 white noise, near 0 one dominant frequency
trend_strength      0         max(0, 1 - var(R) / var(z - S)); 0 if var(z - S) < 1e-8
seasonal_strength   0         max(0, 1 - var(R) / var(z - T)); 0 if non-seasonal or
                              var(z - T) < 1e-8
remainder_acf1      0         acf_1(R)
linearity           0         z . q1 / sqrt(L), q1 the orthonormal linear polynomial of
                              time (a correlation, in [-1, 1]; > 0 increasing)
curvature           0         same with the orthonormal quadratic polynomial (> 0
                              convex); 0 when L < 3
hurst               0.5       DFA-1 scaling exponent alpha of z over <= 10 log-spaced box
                              sizes 4..L/4, clipped to [0, 3]: 0.5 white noise, 1 pink
                              noise, 1.5 random walk (alpha = H for stationary noise,
                              1 + H for its partial sums); 0.5 when constant or L < 20
lumpiness           0         variance (ddof 1) of the variances of non-overlapping
                              width-w tiles of z
stability           0         variance (ddof 1) of the tile means
max_level_shift     0         largest abs difference between the means of two adjacent
                              width-w windows of z, sliding over the row
max_var_shift       0         same for the variances
nonlinearity        0         Terasvirta-style proxy: R^2 of the AR(2) residuals of z on
                              the 2nd and 3rd order products of z[t-1], z[t-2] (the
                              test statistic divided by the sample size), in [0, 1];
                              0 when L < 13 or the AR(2) fit is exact
crossing_points     0         number of crossings of the median / (L - 1)
flat_spots          1         longest run inside one of 10 equal-width bins of z / L
                              (a constant row is one run: 1)
peaks_ratio         0         strict local maxima of z / L
variance_ratio      0         var(z_t - z_{t-q}) / (q var(z_t - z_{t-1})), q =
                              min(10, L // 2) (Lo-MacKinlay; ~1 random walk, ~1/q white
                              noise); 0 when the first differences are constant
kpss                0         KPSS level-stationarity statistic of z, Bartlett long-run
                              variance with trunc(4 (L / 100)**0.25) lags (large: unit
                              root or trend)
==================  ========  ==========================================================

``T`` (trend) is a centred moving average of ``z`` -- a 2 x period MA for even periods, a
period MA for odd periods, and a (2 * max(1, L // 20) + 1)-point MA for non-seasonal rows --
computed on ``z`` extended by odd reflection at both ends (so linear trends are exact there).
``S`` (season) is the mean of ``z - T`` at each phase ``t mod period``, centred to mean zero;
0 for non-seasonal rows. ``R = z - T - S`` is the remainder. This is the classical
moving-average decomposition, a simple stand-in for STL.

catch22 (``c22_*``): the 22 catch22 features of ``z`` via ``pycatch22.catch22_all`` named with
pycatch22's short names (``c22_mode_5``, ``c22_acf_timescale``, ...; see
:data:`CATCH22_FEATURE_NAMES`). Fill: 0 for every catch22 feature of a constant row (catch22 is
undefined there) and 0 for any NaN / inf it returns otherwise.

``backend="tsfresh"``: tsfresh's ``EfficientFCParameters`` on the interpolated raw windows
(not rescaled), columns prefixed ``tsf_`` instead of ``value__``; NaN and +-inf become 0.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import numpy as np
import polars as pl
from scipy import ndimage

from timetic.errors import TimeticInputError
from timetic.tasks import freq_unit

BACKENDS = ("fast", "tsfresh")
#: windows per chunk; ``progress`` is called after each chunk.
CHUNK_SIZE = 64

_CONST_TOL = 1e-12  # std below this (row scaled to max |x| = 1) means constant
_VAR_TOL = 1e-8  # variance of a z-scale component below this counts as zero
_ACF_TOL = 1e-20  # sum of squares per point below this: constant series for the acf
_DIFF_VAR_TOL = 1e-12  # variance of first differences of z below this: no variance ratio
_CV_CAP = 1000.0
_N_BINS = 10
_NONSEASONAL_TILE = 10

NUMPY_FEATURE_NAMES: tuple[str, ...] = (
    "missing_ratio",
    "zero_ratio",
    "unique_ratio",
    "cv",
    "mean_abs_ratio",
    "skewness",
    "kurtosis",
    "outlier_ratio",
    "acf1",
    "acf10",
    "diff1_acf1",
    "diff1_acf10",
    "diff2_acf1",
    "diff2_acf10",
    "pacf5",
    "diff1_pacf5",
    "seas_acf1",
    "arch_acf",
    "spectral_entropy",
    "trend_strength",
    "seasonal_strength",
    "remainder_acf1",
    "linearity",
    "curvature",
    "hurst",
    "lumpiness",
    "stability",
    "max_level_shift",
    "max_var_shift",
    "nonlinearity",
    "crossing_points",
    "flat_spots",
    "peaks_ratio",
    "variance_ratio",
    "kpss",
)

# pycatch22 long name -> short name, in catch22's order.
_CATCH22_NAMES: dict[str, str] = {
    "DN_HistogramMode_5": "mode_5",
    "DN_HistogramMode_10": "mode_10",
    "DN_OutlierInclude_p_001_mdrmd": "outlier_timing_pos",
    "DN_OutlierInclude_n_001_mdrmd": "outlier_timing_neg",
    "CO_FirstCrossing_acf_1e_pointOfCrossing": "acf_timescale",
    "CO_FirstMin_ac": "acf_first_min",
    "SP_Summaries_fft_area_5_1": "low_freq_power",
    "SP_Summaries_fft_wq_50": "median_freq",
    "FC_LocalSimple_mean3_stde": "forecast_error",
    "FC_LocalSimple_mean1_taurat": "whiten_timescale",
    "MD_pNN_pnn40": "high_fluctuation",
    "SB_BinaryStats_mean_longstretch1": "stretch_high",
    "SB_BinaryStats_diff_longstretch0": "stretch_decreasing",
    "SB_MotifThree_quantile_hh": "entropy_pairs",
    "CO_HistogramAMI_even_5bin_ami2": "ami2",
    "CO_trev_1_num": "trev",
    "IN_AutoMutualInfoStats_40_gaussian_fmmi": "ami_timescale",
    "SB_TransitionMatrix_quantile_3_ac_sumdiagcov": "transition_variance",
    "PD_PeriodicityWang_th0_01": "periodicity",
    "CO_Embed2_Dist_tau_d_expfit_meandiff": "embedding_dist",
    "SC_FluctAnal_2_rsrangefit_50_1_logi_prop_r1": "rs_range",
    "SC_FluctAnal_2_dfa_50_1_2_logi_prop_r1": "dfa",
}
CATCH22_FEATURE_NAMES: tuple[str, ...] = tuple("c22_" + s for s in _CATCH22_NAMES.values())
#: column names of ``window_features(..., backend="fast")``, in output order.
FAST_FEATURE_NAMES: tuple[str, ...] = NUMPY_FEATURE_NAMES + CATCH22_FEATURE_NAMES

# ordinal of the frequency unit and its length in seconds (month = year / 12, year = 365.2425 d).
# Business hours (BH) describe as hours and business days (B) as days: the knowledge base has
# neither, and their step is an hour (a day).
_UNIT_CODE = {"S": 0, "T": 1, "H": 2, "BH": 2, "D": 3, "W": 4, "M": 5, "Q": 6, "A": 7}
_UNIT_SECONDS = {
    "S": 1.0,
    "T": 60.0,
    "H": 3600.0,
    "BH": 3600.0,
    "D": 86400.0,
    "W": 7 * 86400.0,
    "M": 365.2425 * 86400.0 / 12,
    "Q": 365.2425 * 86400.0 / 4,
    "A": 365.2425 * 86400.0,
}
DESCRIPTOR_NAMES: tuple[str, ...] = (
    "ds_log_n_series",
    "ds_log_mean_length",
    "ds_log_min_length",
    "ds_log_max_length",
    "ds_log_steps_per_day",
    "ds_freq_unit_code",
)


# ---------------------------------------------------------------------------------------------
# public API


def window_features(
    values: np.ndarray,
    period: int,
    backend: str = "fast",
    progress: Callable[[int], None] | None = None,
) -> pl.DataFrame:
    """Meta-features of each window.

    Args:
        values: array of shape (n_windows, window_length), window_length >= 2; NaN (and +-inf)
            mark missing values and may appear anywhere, whole rows included.
        period: season length in steps (24 hourly, 7 daily, ...; 1 = non-seasonal). A period
            longer than half the window is treated as non-seasonal.
        backend: ``"fast"`` (numpy + catch22, :data:`FAST_FEATURE_NAMES`) or ``"tsfresh"``
            (tsfresh's efficient set, ``tsf_`` columns; needs the optional tsfresh package).
        progress: optional callable, called with the number of windows finished so far
            (cumulative) after every chunk of :data:`CHUNK_SIZE` windows.

    Returns:
        DataFrame of shape (n_windows, n_features), Float64 columns, every value finite.
    """
    if backend not in BACKENDS:
        raise TimeticInputError(f"unknown feature backend {backend!r}; use one of {', '.join(BACKENDS)}")
    x = _as_windows(values)
    period = _as_period(period)
    if backend == "tsfresh":
        return _tsfresh_features(x, progress)
    return _fast_features(x, period, progress)


def dataset_descriptors(freq: str, lengths: np.ndarray) -> dict[str, float]:
    """Dataset-level descriptors (all finite floats), named :data:`DESCRIPTOR_NAMES`.

    Args:
        freq: pandas frequency alias of the dataset (``"h"``, ``"30min"``, ``"D"``, ``"W"``, ...).
        lengths: array of shape (n_series,), the length of every series (>= 1).

    Returns:
        ``ds_log_n_series``, ``ds_log_mean_length``, ``ds_log_min_length``,
        ``ds_log_max_length`` (natural logs), ``ds_log_steps_per_day`` (log of steps per day:
        log 24 hourly, 0 daily, log(1/7) weekly; a month is 1/12 of 365.2425 days) and
        ``ds_freq_unit_code`` (S 0 < T 1 < H 2 < D 3 < W 4 < M 5 < Q 6 < A 7; business hours
        as H, business days as D).
    """
    unit, mult = freq_unit(freq)
    try:
        lens = np.asarray(lengths, dtype=np.float64).ravel()
    except (TypeError, ValueError) as e:
        raise TimeticInputError("series lengths must be numbers; pass an integer array") from e
    if lens.size == 0 or not np.all(np.isfinite(lens)) or np.any(lens < 1):
        raise TimeticInputError(
            "series lengths must be a non-empty array of finite values >= 1; check the dataset"
        )
    step_seconds = _UNIT_SECONDS[unit] * max(mult, 1)
    return {
        "ds_log_n_series": math.log(lens.size),
        "ds_log_mean_length": math.log(float(lens.mean())),
        "ds_log_min_length": math.log(float(lens.min())),
        "ds_log_max_length": math.log(float(lens.max())),
        "ds_log_steps_per_day": math.log(86400.0 / step_seconds),
        "ds_freq_unit_code": float(_UNIT_CODE[unit]),
    }


def add_descriptors(df: pl.DataFrame, desc: dict[str, float]) -> pl.DataFrame:
    """Append each descriptor as a constant Float64 column (``pl.lit``) to ``df``."""
    bad = [k for k, v in desc.items() if not math.isfinite(float(v))]
    if bad:
        raise TimeticInputError(f"descriptors {', '.join(bad)} are not finite; recompute them")
    return df.with_columns(pl.lit(float(v), dtype=pl.Float64).alias(k) for k, v in desc.items())


# ---------------------------------------------------------------------------------------------
# input handling


def _as_windows(values: np.ndarray) -> np.ndarray:
    """Validated float64 array of shape (n_windows, window_length)."""
    try:
        x = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise TimeticInputError(
            "window values must be numbers; pass a float array of shape (n_windows, window_length)"
        ) from e
    if x.ndim != 2:
        raise TimeticInputError(
            f"windows must be a 2-d array (n_windows, window_length), got {x.ndim} dimension(s); "
            "for a single window pass values[None, :]"
        )
    if x.shape[1] < 2:
        raise TimeticInputError(
            f"windows have {x.shape[1]} point(s); use windows of at least 2 points"
        )
    return x


def _as_period(period: int) -> int:
    try:
        p = int(period)
    except (TypeError, ValueError) as e:
        raise TimeticInputError(f"period must be an integer number of steps, got {period!r}") from e
    if p != period or p < 1:
        raise TimeticInputError(f"period must be an integer >= 1 (1 = non-seasonal), got {period!r}")
    return p


def _scale_rows(x: np.ndarray) -> np.ndarray:
    """(n, L) rows divided by their largest absolute finite value; missing -> NaN."""
    finite = np.isfinite(x)
    xf = np.where(finite, x, 0.0)
    amax = np.abs(xf).max(axis=1, keepdims=True)
    scale = np.where(amax > 0, amax, 1.0)
    return np.where(finite, xf / scale, np.nan)


def _interpolate(x: np.ndarray) -> np.ndarray:
    """(n, L) -> (n, L): linear interpolation of NaN inside rows, nearest value at the edges.

    All-NaN rows become zeros. Works on all rows at once.
    """
    mask = ~np.isnan(x)
    n, length = x.shape
    idx = np.broadcast_to(np.arange(length), (n, length))
    prev = np.maximum.accumulate(np.where(mask, idx, -1), axis=1)
    nxt = np.minimum.accumulate(np.where(mask, idx, length)[:, ::-1], axis=1)[:, ::-1]
    lo = np.where(prev >= 0, prev, nxt)
    hi = np.where(nxt < length, nxt, prev)
    lo_c = np.clip(lo, 0, length - 1)
    hi_c = np.clip(hi, 0, length - 1)
    xz = np.where(mask, x, 0.0)
    x_lo = np.take_along_axis(xz, lo_c, axis=1)
    x_hi = np.take_along_axis(xz, hi_c, axis=1)
    gap = hi - lo
    w = np.divide(idx - lo, gap, out=np.zeros((n, length)), where=gap > 0)
    out = x_lo + w * (x_hi - x_lo)
    out = np.where(mask, x, out)
    out[~mask.any(axis=1)] = 0.0
    return out


def _standardize(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n, L) -> z-scored rows (n, L) and the constant-row mask (n,); constant rows -> 0."""
    mu = y.mean(axis=1, keepdims=True)
    d = y - mu
    sd = np.sqrt((d * d).mean(axis=1, keepdims=True))
    const = sd[:, 0] <= _CONST_TOL
    z = np.divide(d, sd, out=np.zeros_like(d), where=~const[:, None])
    return z, const


def _div(a: np.ndarray, b: np.ndarray, fill: float = 0.0, ok: np.ndarray | None = None) -> np.ndarray:
    """a / b where ``ok`` (default b != 0), ``fill`` elsewhere."""
    a, b = np.broadcast_arrays(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))
    where = (b != 0) if ok is None else (ok & (b != 0))
    return np.divide(a, b, out=np.full(a.shape, fill), where=where)


# ---------------------------------------------------------------------------------------------
# distribution of observed values


def _distribution(xs: np.ndarray) -> dict[str, np.ndarray]:
    """Features of the observed values of scaled rows xs (n, L), NaN = missing."""
    mask = ~np.isnan(xs)
    cnt = mask.sum(axis=1)
    ok = cnt > 0
    x0 = np.where(mask, xs, 0.0)
    mean = _div(x0.sum(axis=1), cnt)
    d = np.where(mask, xs - mean[:, None], 0.0)
    m2 = _div((d**2).sum(axis=1), cnt)
    m3 = _div((d**3).sum(axis=1), cnt)
    m4 = _div((d**4).sum(axis=1), cnt)
    sd = np.sqrt(m2)
    var_ok = sd > _CONST_TOL
    abs_mean = _div(np.abs(x0).sum(axis=1), cnt)

    cv = np.where(var_ok, np.minimum(_div(sd, np.abs(mean), fill=_CV_CAP), _CV_CAP), 0.0)

    s = np.sort(xs, axis=1)  # NaN last
    new_value = (s[:, 1:] != s[:, :-1]) & ~np.isnan(s[:, 1:])
    n_unique = np.where(ok, 1 + new_value.sum(axis=1), 0)
    median = _sorted_median(s, cnt)
    dev = np.abs(xs - median[:, None])
    mad = _sorted_median(np.sort(dev, axis=1), cnt)
    thresh = 3.0 * 1.4826 * mad
    outliers = (dev > thresh[:, None]) & mask  # NaN compares False

    return {
        "zero_ratio": _div(((xs == 0) & mask).sum(axis=1), cnt),
        "unique_ratio": _div(n_unique, cnt),
        "cv": cv,
        "mean_abs_ratio": _div(mean, abs_mean),
        "skewness": _div(m3, m2**1.5, ok=var_ok),
        "kurtosis": _div(m4, m2**2, fill=3.0, ok=var_ok) - 3.0,
        "outlier_ratio": _div(outliers.sum(axis=1), cnt),
    }


def _sorted_median(s: np.ndarray, cnt: np.ndarray) -> np.ndarray:
    """Median of the first cnt values of each sorted row s (n, L); 0 when cnt == 0."""
    lo = np.clip((cnt - 1) // 2, 0, None)[:, None]
    hi = np.clip(cnt // 2, 0, s.shape[1] - 1)[:, None]
    med = 0.5 * (np.take_along_axis(s, lo, 1) + np.take_along_axis(s, hi, 1))[:, 0]
    return np.where(cnt > 0, med, 0.0)


# ---------------------------------------------------------------------------------------------
# autocorrelation


def _acf(y: np.ndarray, nlags: int) -> np.ndarray:
    """Biased sample autocorrelation of rows y (n, m): (n, nlags + 1), lag 0 first.

    Lags >= m and constant rows give 0 (lag 0 of a constant row is 0 too).
    """
    n, m = y.shape
    out = np.zeros((n, nlags + 1))
    if m < 2:
        return out
    d = y - y.mean(axis=1, keepdims=True)
    nfft = _next_fast_len(2 * m)
    f = np.fft.rfft(d, nfft, axis=1)
    ac = np.fft.irfft(f.real**2 + f.imag**2, nfft, axis=1)
    k = min(nlags + 1, m)
    c0 = ac[:, :1]
    ok = c0[:, 0] > _ACF_TOL * m
    out[:, :k] = np.divide(ac[:, :k], c0, out=np.zeros((n, k)), where=ok[:, None])
    return np.clip(out, -1.0, 1.0)


def _next_fast_len(n: int) -> int:
    from scipy.fft import next_fast_len

    return int(next_fast_len(n, real=True))


def _pacf_from_acf(r: np.ndarray, nlags: int) -> np.ndarray:
    """Partial autocorrelations (n, nlags) from acf rows r (n, > nlags) by Durbin-Levinson."""
    n = r.shape[0]
    phi = np.zeros((n, nlags + 1))  # phi[:, j]: AR(m) coefficient j
    out = np.zeros((n, nlags))
    for m in range(1, nlags + 1):
        num = r[:, m] - np.sum(phi[:, 1:m] * r[:, m - 1 : 0 : -1], axis=1)
        den = 1.0 - np.sum(phi[:, 1:m] * r[:, 1:m], axis=1)
        pkk = np.clip(_div(num, den, ok=np.abs(den) > 1e-12), -1.0, 1.0)
        new = phi.copy()
        new[:, 1:m] = phi[:, 1:m] - pkk[:, None] * phi[:, m - 1 : 0 : -1]
        new[:, m] = pkk
        phi = new
        out[:, m - 1] = pkk
    return out


def _autocorrelation(z: np.ndarray, period: int, seasonal: bool) -> dict[str, np.ndarray]:
    """ACF/PACF features of z-scored rows (n, L)."""
    r = _acf(z, 10)
    d1 = np.diff(z, axis=1)
    r1 = _acf(d1, 10)
    r2 = _acf(np.diff(z, n=2, axis=1), 10)
    sq = _acf(z * z, 12)
    seas = _acf(z, period)[:, period] if seasonal else np.zeros(len(z))
    return {
        "acf1": r[:, 1],
        "acf10": (r[:, 1:11] ** 2).sum(axis=1),
        "diff1_acf1": r1[:, 1],
        "diff1_acf10": (r1[:, 1:11] ** 2).sum(axis=1),
        "diff2_acf1": r2[:, 1],
        "diff2_acf10": (r2[:, 1:11] ** 2).sum(axis=1),
        "pacf5": (_pacf_from_acf(r, 5) ** 2).sum(axis=1),
        "diff1_pacf5": (_pacf_from_acf(r1, 5) ** 2).sum(axis=1),
        "seas_acf1": seas,
        "arch_acf": (sq[:, 1:13] ** 2).sum(axis=1),
    }


def _welch(z: np.ndarray, nperseg: int) -> np.ndarray:
    """(n, nperseg // 2 + 1) Welch power spectral density of rows z (n, L), as
    ``scipy.signal.welch(z, nperseg=nperseg, axis=1)[1]`` computes it with its defaults (periodic
    Hann window, half-overlapping segments, each segment's mean removed, one-sided density, mean
    over segments; tests/test_features.py checks the two agree). Written out because importing
    ``scipy.signal`` costs about 0.7 s, a quarter of a weight-free predict."""
    n, length = z.shape
    nperseg = min(nperseg, length)
    step = nperseg - nperseg // 2
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(nperseg) / nperseg) if nperseg > 1 else np.ones(1)
    starts = np.arange(0, length - nperseg + 1, step)
    seg = z[:, starts[:, None] + np.arange(nperseg)[None, :]]  # (n, segments, nperseg)
    seg = (seg - seg.mean(axis=2, keepdims=True)) * window
    pxx = np.abs(np.fft.rfft(seg, axis=2)) ** 2 / (window**2).sum()
    if nperseg % 2:
        pxx[..., 1:] *= 2
    else:
        pxx[..., 1:-1] *= 2
    return pxx.mean(axis=1)


def _spectral_entropy(z: np.ndarray) -> np.ndarray:
    """Normalised Shannon entropy of the Welch spectrum of rows z (n, L); 0 if undefined."""
    length = z.shape[1]
    pxx = _welch(z, min(length, 128))
    p = pxx[:, 1:]
    nbins = p.shape[1]
    total = p.sum(axis=1, keepdims=True)
    ok = total[:, 0] > 0
    if nbins < 2:
        return np.zeros(len(z))
    p = np.divide(p, total, out=np.zeros_like(p), where=ok[:, None])
    plogp = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    return np.where(ok, np.clip(-plogp.sum(axis=1) / math.log(nbins), 0.0, 1.0), 0.0)


# ---------------------------------------------------------------------------------------------
# decomposition


def _trend_weights(period: int, seasonal: bool, length: int) -> np.ndarray:
    """Weights of the centred moving average used as trend (odd length)."""
    if seasonal and period % 2 == 0:
        w = np.ones(period + 1)
        w[0] = w[-1] = 0.5
        return w / period
    width = period if seasonal else 2 * max(1, length // 20) + 1
    return np.ones(width) / width


def _decompose(z: np.ndarray, period: int, seasonal: bool) -> tuple[np.ndarray, np.ndarray]:
    """Moving-average decomposition of rows z (n, L) -> trend T (n, L), season S (n, L)."""
    n, length = z.shape
    weights = _trend_weights(period, seasonal, length)
    h = len(weights) // 2
    padded = np.pad(z, ((0, 0), (h, h)), mode="reflect", reflect_type="odd")
    trend = ndimage.correlate1d(padded, weights, axis=1, mode="nearest")[:, h : h + length]
    if not seasonal:
        return trend, np.zeros_like(z)
    detr = z - trend
    cycles = -(-length // period)
    full = np.full((n, cycles * period), np.nan)
    full[:, :length] = detr
    phase_mean = np.nanmean(full.reshape(n, cycles, period), axis=1)
    phase_mean -= phase_mean.mean(axis=1, keepdims=True)
    season = np.tile(phase_mean, cycles)[:, :length]
    return trend, season


def _decomposition(z: np.ndarray, period: int, seasonal: bool) -> dict[str, np.ndarray]:
    trend, season = _decompose(z, period, seasonal)
    rem = z - trend - season
    v_rem = rem.var(axis=1)
    v_ts = (z - season).var(axis=1)
    v_sr = (z - trend).var(axis=1)
    trend_strength = np.clip(1.0 - _div(v_rem, v_ts, ok=v_ts > _VAR_TOL), 0.0, 1.0)
    trend_strength = np.where(v_ts > _VAR_TOL, trend_strength, 0.0)
    seas_strength = np.clip(1.0 - _div(v_rem, v_sr, ok=v_sr > _VAR_TOL), 0.0, 1.0)
    seas_strength = np.where((v_sr > _VAR_TOL) & seasonal, seas_strength, 0.0)
    return {
        "trend_strength": trend_strength,
        "seasonal_strength": seas_strength,
        "remainder_acf1": _acf(rem, 1)[:, 1],
    }


def _polynomial(z: np.ndarray) -> dict[str, np.ndarray]:
    """Linearity and curvature: coefficients on orthonormal polynomials of time / sqrt(L)."""
    length = z.shape[1]
    t = np.linspace(-1.0, 1.0, length)
    basis = np.stack([np.ones(length), t, t * t], axis=1)[:, : min(3, length)]
    q, _ = np.linalg.qr(basis)
    # QR fixes columns up to sign: increasing -> positive linearity, convex -> positive curvature
    q[:, 1] *= np.sign(q[-1, 1])
    coef = np.zeros((len(z), 2))
    coef[:, 0] = z @ q[:, 1]
    if length > 2:
        coef[:, 1] = z @ (q[:, 2] * np.sign(q[0, 2]))
    coef /= math.sqrt(length)
    return {"linearity": coef[:, 0], "curvature": coef[:, 1]}


# ---------------------------------------------------------------------------------------------
# memory and stationarity


def _dfa_scales(length: int) -> np.ndarray:
    return np.unique(np.round(np.geomspace(4, max(4, length // 4), num=10)).astype(int))


def _hurst(z: np.ndarray, const: np.ndarray) -> np.ndarray:
    """DFA-1 exponent of rows z (n, L): slope of log F(s) on log s; 0.5 where undefined."""
    n, length = z.shape
    scales = _dfa_scales(length)
    if len(scales) < 2:
        return np.full(n, 0.5)
    profile = np.cumsum(z, axis=1)
    log_f = np.empty((len(scales), n))
    for i, s in enumerate(scales):
        k = length // s
        blocks = profile[:, : k * s].reshape(n, k, s)
        t = np.arange(s) - (s - 1) / 2.0
        yc = blocks - blocks.mean(axis=2, keepdims=True)
        slope = (yc @ t) / (t @ t)
        f2 = ((yc - slope[..., None] * t) ** 2).mean(axis=(1, 2))
        log_f[i] = np.log(np.maximum(f2, 1e-300)) / 2.0
    log_s = np.log(scales.astype(np.float64))
    ls = log_s - log_s.mean()
    alpha = (ls @ (log_f - log_f.mean(axis=0))) / (ls @ ls)
    bad = const | ~np.isfinite(alpha) | (log_f.min(axis=0) < -300)
    return np.where(bad, 0.5, np.clip(alpha, 0.0, 3.0))


def _tiles(z: np.ndarray, width: int) -> np.ndarray:
    n, length = z.shape
    k = length // width
    return z[:, : k * width].reshape(n, k, width)


def _tiled(z: np.ndarray, width: int) -> dict[str, np.ndarray]:
    """Lumpiness and stability over non-overlapping tiles (n, k, width), k >= 2."""
    tiles = _tiles(z, width)
    variances = tiles.var(axis=2, ddof=1) if width > 1 else np.zeros(tiles.shape[:2])
    return {
        "lumpiness": variances.var(axis=1, ddof=1),
        "stability": tiles.mean(axis=2).var(axis=1, ddof=1),
    }


def _shifts(z: np.ndarray, width: int) -> dict[str, np.ndarray]:
    """Largest change of sliding mean / variance between adjacent width-long windows."""
    n, length = z.shape
    zero = np.zeros((n, 1))
    c1 = np.concatenate([zero, np.cumsum(z, axis=1)], axis=1)
    c2 = np.concatenate([zero, np.cumsum(z * z, axis=1)], axis=1)
    mean = (c1[:, width:] - c1[:, :-width]) / width
    var = np.maximum((c2[:, width:] - c2[:, :-width]) / width - mean**2, 0.0)
    if width == 1:
        var = np.zeros_like(var)
    return {
        "max_level_shift": np.abs(mean[:, width:] - mean[:, :-width]).max(axis=1),
        "max_var_shift": np.abs(var[:, width:] - var[:, :-width]).max(axis=1),
    }


def _nonlinearity(z: np.ndarray) -> np.ndarray:
    """R^2 of AR(2) residuals on 2nd/3rd order lag products (Terasvirta-style), batched."""
    n, length = z.shape
    if length < 13:
        return np.zeros(n)
    y, a, b = z[:, 2:], z[:, 1:-1], z[:, :-2]
    one = np.ones_like(y)
    lin = np.stack([one, a, b], axis=2)
    full = np.stack([one, a, b, a * a, a * b, b * b, a**3, a * a * b, a * b * b, b**3], axis=2)
    e0 = y - _batched_fit(lin, y)
    e1 = e0 - _batched_fit(full, e0)
    ssr0 = (e0**2).sum(axis=1)
    ssr1 = (e1**2).sum(axis=1)
    ok = ssr0 > _VAR_TOL * y.shape[1]
    return np.clip(1.0 - _div(ssr1, ssr0, fill=1.0, ok=ok), 0.0, 1.0)


def _batched_fit(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least-squares fitted values of y (n, T) on x (n, T, p), ridge-stabilised normal equations."""
    xtx = np.einsum("ntp,ntq->npq", x, x)
    xty = np.einsum("ntp,nt->np", x, y)
    p = x.shape[2]
    ridge = 1e-10 * np.trace(xtx, axis1=1, axis2=2)[:, None, None] + 1e-12
    beta = np.linalg.solve(xtx + ridge * np.eye(p), xty[..., None])[..., 0]
    return np.einsum("ntp,np->nt", x, beta)


def _runs_and_crossings(z: np.ndarray) -> dict[str, np.ndarray]:
    n, length = z.shape
    med = np.median(z, axis=1, keepdims=True)
    below = z <= med
    crossings = (below[:, 1:] != below[:, :-1]).sum(axis=1) / (length - 1)

    lo = z.min(axis=1, keepdims=True)
    span = z.max(axis=1, keepdims=True) - lo
    bins = np.floor(np.divide(z - lo, span, out=np.zeros_like(z), where=span > 0) * _N_BINS)
    bins = np.clip(bins, 0, _N_BINS - 1)
    idx = np.broadcast_to(np.arange(length), (n, length))
    starts = np.concatenate([np.ones((n, 1), bool), bins[:, 1:] != bins[:, :-1]], axis=1)
    run_start = np.maximum.accumulate(np.where(starts, idx, 0), axis=1)
    longest = (idx - run_start + 1).max(axis=1)

    mid = z[:, 1:-1]
    peaks = ((mid > z[:, :-2]) & (mid > z[:, 2:])).sum(axis=1)
    return {
        "crossing_points": crossings,
        "flat_spots": longest / length,
        "peaks_ratio": peaks / length,
    }


def _unit_root(z: np.ndarray, const: np.ndarray) -> dict[str, np.ndarray]:
    """Variance ratio and KPSS statistic of z-scored rows (n, L)."""
    n, length = z.shape
    q = min(10, length // 2)
    d1 = z[:, 1:] - z[:, :-1]
    dq = z[:, q:] - z[:, :-q]
    v1 = d1.var(axis=1)
    vr = _div(dq.var(axis=1), q * v1, ok=v1 > _DIFF_VAR_TOL)

    lags = int(4 * (length / 100) ** 0.25)
    r = _acf(z, max(lags, 1))
    gamma0 = (z * z).mean(axis=1)
    bartlett = 1.0 - np.arange(1, lags + 1) / (lags + 1)
    lrv = gamma0 * (1.0 + 2.0 * (r[:, 1 : lags + 1] @ bartlett))
    eta = (np.cumsum(z, axis=1) ** 2).sum(axis=1) / length**2
    kpss = _div(eta, lrv, ok=(lrv > _VAR_TOL) & ~const)
    return {"variance_ratio": vr, "kpss": kpss}


# ---------------------------------------------------------------------------------------------
# fast backend


def _numpy_features(x: np.ndarray, period: int) -> dict[str, np.ndarray]:
    """All numpy features of raw windows x (n, L) -> name -> (n,)."""
    n, length = x.shape
    seasonal = 2 <= period and 2 * period <= length
    width = min(period if seasonal else _NONSEASONAL_TILE, length // 2)
    xs = _scale_rows(x)
    z, const = _standardize(_interpolate(xs))
    feats = {"missing_ratio": np.isnan(xs).mean(axis=1)}
    feats.update(_distribution(xs))
    feats.update(_autocorrelation(z, period, seasonal))
    feats["spectral_entropy"] = _spectral_entropy(z)
    feats.update(_decomposition(z, period, seasonal))
    feats.update(_polynomial(z))
    feats["hurst"] = _hurst(z, const)
    feats.update(_tiled(z, width))
    feats.update(_shifts(z, width))
    feats["nonlinearity"] = _nonlinearity(z)
    feats.update(_runs_and_crossings(z))
    feats.update(_unit_root(z, const))
    feats["_z"] = z
    feats["_const"] = const
    return feats


def _catch22(z: np.ndarray, const: np.ndarray) -> np.ndarray:
    """catch22 of z-scored rows (n, L) -> (n, 22); constant rows and NaN results -> 0."""
    import pycatch22

    out = np.zeros((len(z), len(_CATCH22_NAMES)))
    for i in np.flatnonzero(~const):
        res = pycatch22.catch22_all(z[i].tolist(), catch24=False)
        by_name = dict(zip(res["names"], res["values"]))
        out[i] = [by_name[name] for name in _CATCH22_NAMES]
    return out


def _fast_chunk(x: np.ndarray, period: int) -> np.ndarray:
    """Feature matrix (n, len(FAST_FEATURE_NAMES)) of raw windows x (n, L)."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        feats = _numpy_features(x, period)
        c22 = _catch22(feats.pop("_z"), feats.pop("_const"))
    num = np.column_stack([feats[name] for name in NUMPY_FEATURE_NAMES])
    return np.concatenate([num, c22], axis=1)


def _fast_features(x: np.ndarray, period: int, progress: Callable[[int], None] | None) -> pl.DataFrame:
    n = len(x)
    out = np.zeros((n, len(FAST_FEATURE_NAMES)))
    for start in range(0, n, CHUNK_SIZE):
        stop = min(start + CHUNK_SIZE, n)
        out[start:stop] = _fast_chunk(x[start:stop], period)
        if progress is not None:
            progress(stop)
    out = np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)
    return pl.DataFrame(
        {name: out[:, j] for j, name in enumerate(FAST_FEATURE_NAMES)},
        schema={name: pl.Float64 for name in FAST_FEATURE_NAMES},
    )


# ---------------------------------------------------------------------------------------------
# tsfresh backend


def _tsfresh_features(x: np.ndarray, progress: Callable[[int], None] | None) -> pl.DataFrame:
    """tsfresh EfficientFCParameters of the interpolated windows, single process."""
    try:
        import pandas as pd
        from tsfresh import extract_features
        from tsfresh.feature_extraction import EfficientFCParameters
    except ImportError as e:
        raise TimeticInputError(
            "backend 'tsfresh' needs the tsfresh package; pip install 'timetic[tsfresh]'"
        ) from e
    n, length = x.shape
    finite = np.isfinite(x)
    filled = _interpolate(np.where(finite, x, np.nan))
    params = EfficientFCParameters()
    frames = []
    for start in range(0, n, CHUNK_SIZE):
        stop = min(start + CHUNK_SIZE, n)
        m = stop - start
        long = pd.DataFrame(
            {
                "id": np.repeat(np.arange(start, stop), length),
                "time": np.tile(np.arange(length), m),
                "value": filled[start:stop].ravel(),
            }
        )
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            feats = extract_features(
                long,
                column_id="id",
                column_sort="time",
                default_fc_parameters=params,
                n_jobs=0,
                disable_progressbar=True,
            )
        frames.append(feats.reindex(np.arange(start, stop)))
        if progress is not None:
            progress(stop)
    if not frames:
        return pl.DataFrame()
    table = pd.concat(frames, axis=0)
    columns = list(frames[0].columns)
    table = table.reindex(columns=columns)
    values = np.nan_to_num(table.to_numpy(dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    names = ["tsf_" + c.split("__", 1)[1] if "__" in c else "tsf_" + c for c in columns]
    return pl.DataFrame(
        {name: values[:, j] for j, name in enumerate(names)},
        schema={name: pl.Float64 for name in names},
    )
