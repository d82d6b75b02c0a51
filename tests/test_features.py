import math

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from timetic.errors import TimeticInputError
from timetic.features import (
    BACKENDS,
    DESCRIPTOR_NAMES,
    FAST_FEATURE_NAMES,
    add_descriptors,
    dataset_descriptors,
    window_features,
)


def _feature(values, name, period=24):
    return window_features(np.atleast_2d(np.asarray(values, dtype=float)), period)[name].to_numpy()


def _assert_finite(df: pl.DataFrame, n_rows: int) -> None:
    assert df.height == n_rows
    arr = df.to_numpy()
    assert arr.dtype == np.float64
    assert np.isfinite(arr).all(), [c for c in df.columns if not np.isfinite(df[c].to_numpy()).all()]


@pytest.fixture(scope="module")
def mixed_windows() -> np.ndarray:
    rng = np.random.default_rng(0)
    t = np.arange(512)
    rows = [
        np.sin(2 * np.pi * t / 24),
        rng.standard_normal(512),
        np.cumsum(rng.standard_normal(512)),
        0.01 * t + 3,
        np.full(512, 5.0),
        np.full(512, np.nan),
        np.where(rng.random(512) < 0.5, np.nan, rng.standard_normal(512)),
        np.r_[np.full(500, np.nan), rng.standard_normal(12)],
    ]
    return np.stack(rows)


def test_columns_stable_unique_and_finite(mixed_windows):
    df = window_features(mixed_windows, 24)
    assert len(FAST_FEATURE_NAMES) >= 47
    assert df.columns == list(FAST_FEATURE_NAMES)
    assert len(set(df.columns)) == len(df.columns)
    assert all(dtype == pl.Float64 for dtype in df.dtypes)
    assert sum(c.startswith("c22_") for c in df.columns) == 22
    _assert_finite(df, len(mixed_windows))


def test_deterministic(mixed_windows):
    a = window_features(mixed_windows, 24)
    b = window_features(mixed_windows.copy(), 24)
    assert a.equals(b)


def test_input_is_not_modified(mixed_windows):
    before = mixed_windows.copy()
    window_features(mixed_windows, 24)
    np.testing.assert_array_equal(before, mixed_windows)


def test_positive_rescaling_does_not_change_features(mixed_windows):
    # rows are divided by their max |x| first; a power-of-two factor keeps that exact
    a = window_features(mixed_windows, 24)
    assert a.equals(window_features(mixed_windows * 2.0**13, 24))
    noisy = mixed_windows[[1, 2, 6]]
    np.testing.assert_allclose(
        window_features(noisy, 24).to_numpy(), window_features(noisy * 1e4, 24).to_numpy(), rtol=1e-6, atol=1e-6
    )


def test_sine_is_seasonal_and_noise_is_not():
    t = np.arange(512)
    sine = np.sin(2 * np.pi * t / 24)
    noise = np.random.default_rng(1).standard_normal((5, 512))
    assert _feature(sine, "seasonal_strength")[0] > 0.9
    assert _feature(sine, "seas_acf1")[0] > 0.9
    assert _feature(sine, "spectral_entropy")[0] < 0.5
    assert (window_features(noise, 24)["seasonal_strength"].to_numpy() < 0.3).all()
    assert (window_features(noise, 24)["spectral_entropy"].to_numpy() > 0.8).all()


def test_trend_strength_and_linearity():
    t = np.arange(512, dtype=float)
    noise = np.random.default_rng(2).standard_normal(512)
    df = window_features(np.stack([0.01 * t + 3, -0.01 * t + 0.05 * noise, noise]), 24)
    assert df["trend_strength"][0] > 0.9 and df["trend_strength"][1] > 0.9
    assert df["trend_strength"][2] < 0.3
    assert df["linearity"][0] > 0.99 and df["linearity"][1] < -0.99
    assert abs(df["linearity"][2]) < 0.2


def test_hurst_separates_random_walk_from_white_noise():
    rng = np.random.default_rng(3)
    steps = rng.standard_normal((6, 2048))
    h = window_features(np.vstack([np.cumsum(steps, axis=1), steps]), 1)["hurst"].to_numpy()
    walk, white = h[:6], h[6:]
    # DFA-1 alpha: 1.5 for a random walk, 0.5 for white noise
    assert walk.mean() > 1.2 and (walk > 0.8).all()
    assert 0.35 < white.mean() < 0.65 and (white < 0.7).all()


def test_acf_of_known_processes():
    rng = np.random.default_rng(4)
    e = rng.standard_normal(4000)
    ar = np.zeros_like(e)
    for i in range(1, len(e)):
        ar[i] = 0.8 * ar[i - 1] + e[i]
    df = window_features(np.stack([ar, e]), 1)
    assert abs(df["acf1"][0] - 0.8) < 0.05 and abs(df["acf1"][1]) < 0.05
    # AR(1): the partial autocorrelation is ~0.8 at lag 1 and ~0 after
    assert abs(df["pacf5"][0] - 0.64) < 0.08
    assert abs(df["diff1_acf1"][1] + 0.5) < 0.05


def test_constant_and_missing_rows_are_finite():
    x = np.stack([np.full(64, 3.0), np.zeros(64), np.full(64, np.nan), np.full(64, -1e6)])
    df = window_features(x, 12)
    _assert_finite(df, 4)
    assert (df["hurst"].to_numpy() == 0.5).all()
    assert (df["trend_strength"].to_numpy() == 0).all()
    assert df["missing_ratio"].to_list() == [0.0, 0.0, 1.0, 0.0]


def test_missing_ratio_and_half_missing_rows():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 200))
    x[0, ::4] = np.nan  # 25 %
    x[1, rng.permutation(200)[:100]] = np.nan  # 50 %
    x[2, :150] = np.nan  # 75 %, all at the start
    x[2, 160] = np.inf  # inf counts as missing
    df = window_features(x, 7)
    _assert_finite(df, 3)
    np.testing.assert_allclose(df["missing_ratio"].to_numpy(), [0.25, 0.5, 151 / 200])


def test_short_windows_and_period_longer_than_window():
    rng = np.random.default_rng(6)
    for length in (2, 3, 5, 12, 13):
        df = window_features(rng.standard_normal((3, length)), 52)
        _assert_finite(df, 3)
        assert (df["seas_acf1"].to_numpy() == 0).all()
        assert (df["seasonal_strength"].to_numpy() == 0).all()


def test_progress_is_called_with_cumulative_counts():
    seen: list[int] = []
    window_features(np.random.default_rng(7).standard_normal((150, 32)), 4, progress=seen.append)
    assert seen == sorted(seen) and seen[-1] == 150 and len(seen) >= 2


def test_empty_input_gives_empty_frame_with_columns():
    df = window_features(np.empty((0, 16)), 4)
    assert df.height == 0 and df.columns == list(FAST_FEATURE_NAMES)


@pytest.mark.parametrize(
    "values, period",
    [(np.zeros(10), 1), (np.zeros((2, 1)), 1), (np.zeros((2, 10)), 0), (np.zeros((2, 10)), 2.5), ([["a", "b"]], 1)],
)
def test_bad_input_raises(values, period):
    with pytest.raises(TimeticInputError):
        window_features(values, period)


def test_unknown_backend_raises():
    with pytest.raises(TimeticInputError, match="fast, tsfresh"):
        window_features(np.zeros((1, 10)), 1, backend="catch99")
    assert BACKENDS == ("fast", "tsfresh")


_row_values = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False) | st.just(np.nan)


@settings(max_examples=30, deadline=None)
@given(
    data=st.integers(1, 5).flatmap(
        lambda n: st.integers(8, 200).flatmap(
            lambda length: hnp.arrays(np.float64, (n, length), elements=_row_values)
        )
    ),
    period=st.sampled_from([1, 2, 4, 7, 12, 24, 52, 300]),
)
def test_property_any_input_gives_finite_features(data, period):
    df = window_features(data, period)
    _assert_finite(df, data.shape[0])
    assert df.width == len(FAST_FEATURE_NAMES)


def test_tsfresh_backend():
    pytest.importorskip("tsfresh")
    rng = np.random.default_rng(8)
    x = rng.standard_normal((3, 40))
    x[0, 5:9] = np.nan
    x[2] = 1.0
    df = window_features(x, 7, backend="tsfresh")
    assert df.width > 100 and all(c.startswith("tsf_") for c in df.columns)
    _assert_finite(df, 3)


def test_dataset_descriptors_and_add_descriptors():
    hourly = dataset_descriptors("h", np.array([100, 200, 300]))
    assert tuple(hourly) == DESCRIPTOR_NAMES
    assert all(isinstance(v, float) and math.isfinite(v) for v in hourly.values())
    assert hourly["ds_log_n_series"] == pytest.approx(math.log(3))
    assert hourly["ds_log_mean_length"] == pytest.approx(math.log(200))
    assert hourly["ds_log_min_length"] == pytest.approx(math.log(100))
    assert hourly["ds_log_steps_per_day"] == pytest.approx(math.log(24))
    assert dataset_descriptors("30min", [10])["ds_log_steps_per_day"] == pytest.approx(math.log(48))
    assert dataset_descriptors("D", [10])["ds_log_steps_per_day"] == pytest.approx(0.0)
    assert dataset_descriptors("W-SUN", [10])["ds_log_steps_per_day"] == pytest.approx(-math.log(7))
    codes = [dataset_descriptors(f, [5])["ds_freq_unit_code"] for f in ("s", "min", "h", "D", "W", "MS", "QS", "YS")]
    assert codes == sorted(codes) and len(set(codes)) == 8
    df = add_descriptors(pl.DataFrame({"a": [1.0, 2.0]}), hourly)
    assert df.columns == ["a", *DESCRIPTOR_NAMES]
    assert df["ds_log_steps_per_day"].to_list() == [hourly["ds_log_steps_per_day"]] * 2
    with pytest.raises(TimeticInputError):
        dataset_descriptors("h", np.array([]))
    with pytest.raises(TimeticInputError):
        dataset_descriptors("fortnightly", [10])


@pytest.mark.parametrize("length", [1, 2, 3, 17, 127, 128, 129, 700])
def test_welch_is_scipys(length):
    """The spectral entropy's Welch spectrum, written out to spare predict the import of
    ``scipy.signal``, is what ``scipy.signal.welch`` computes with its defaults."""
    from scipy import signal

    from timetic.features import _welch

    rng = np.random.default_rng(length)
    z = rng.normal(size=(5, length)) + np.sin(np.arange(length) / 3.0)[None, :] * 4.0
    expected = signal.welch(z, nperseg=min(length, 128), axis=1)[1]
    np.testing.assert_allclose(_welch(z, min(length, 128)), expected, rtol=1e-10, atol=1e-12)
