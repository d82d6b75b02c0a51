"""Target inputs that real data brings (issue 14, "inputs that are accepted but should not be"):
gaps in the timestamps, business days and business hours, degenerate series, time zones.

* gaps: a series whose timestamps one frequency explains (most steps one grid step, the rest
  multiples of it) is re-indexed onto the grid with NaN, with one warning; a step off the grid is an
  error that shows it; fills that would be mostly missing, or huge, are errors;
* windows: long gaps never give sampled windows whose context or horizon is mostly missing;
* business days ``B`` and business hours ``bh`` end to end; other opening hours: an error that
  says how to convert;
* constant, all-zero and exactly periodic series (no seasonal-naive MASE) are dropped with a
  warning, an error when none is left; two very different targets rank differently;
* time zones: parquet (zoned) and CSV (UTC offsets) load to the same series, across DST changes.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest
from click.testing import CliRunner

from timetic import data as D
from timetic.cli import main
from timetic.data import load_target
from timetic.errors import TimeticInputError, TimeticWarning
from timetic.tasks import Task, feature_period, seasonality
from timetic.windows import MIN_OBSERVED, sample_windows


def series_frame(ts, values=None, item: str | list = "a", seed: int = 0) -> pl.DataFrame:
    """A long frame from timestamps (a pandas index or list) and values (noisy by default)."""
    ts = pd.DatetimeIndex(ts)
    if values is None:
        rng = np.random.default_rng(seed)
        values = 10 + np.sin(np.arange(len(ts)) / 3.7) + rng.normal(0, 0.3, len(ts)).cumsum()
    return pl.DataFrame({"item_id": item if isinstance(item, list) else [item] * len(ts),
                         "timestamp": pl.Series(ts), "target": np.asarray(values, dtype=float)})


def load_quietly(source, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TimeticWarning)
        return load_target(source, **kwargs)


def one_line_error(tmp_path: Path, target: Path, *expected: str, args: tuple = ()) -> str:
    """``timetic features`` on a bad target: exit 2, one ``error: problem; fix`` line, nothing written."""
    out = tmp_path / "features.parquet"
    res = CliRunner().invoke(main, ["features", "--target", str(target), "--out", str(out), "--windows", "8", *args])
    assert res.exit_code == 2, res.output
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and ";" in errors[0], res.stderr
    assert not [line for line in res.stderr.splitlines() if line and not line.startswith(("error:", "warning:"))]
    for text in expected:
        assert text in errors[0], errors[0]
    assert not out.exists() and not list(tmp_path.glob(".features*"))
    return errors[0]


# ---------------------------------------------------------------------------------------------
# 1. gaps


def test_sensor_outage_is_filled_with_nan_and_warned():
    ts = pd.date_range("2023-01-01", periods=120 * 144, freq="10min")
    outage = (ts >= "2023-02-10") & (ts < "2023-03-08")  # 26 days
    full = series_frame(ts, item="sensor")
    df = full.filter(pl.Series(~outage))
    with pytest.warns(TimeticWarning, match=r"filled 3,744 missing timestamps with NaN .* frequency '10min' "
                                            r"\(series 'sensor' 3,744\)"):
        t = load_target(df)
    assert t.freq == "10min" and list(t.lengths) == [len(ts)]
    assert t.frame["timestamp"].to_list() == full["timestamp"].to_list()
    got = t.series()[0]
    assert np.isnan(got[outage]).all() and not np.isnan(got[~outage]).any()
    np.testing.assert_array_equal(got[~outage], full["target"].to_numpy()[~outage])
    # the same with the frequency given
    with pytest.warns(TimeticWarning, match="filled 3,744"):
        assert load_target(df, freq="10min").frame.equals(t.frame)


def test_hourly_counts_with_missing_hours_per_series_and_freq_given():
    rng = np.random.default_rng(1)
    parts, missing = [], {}
    for i in range(3):
        ts = pd.date_range("2023-01-01", periods=1500, freq="h")
        keep = rng.random(1500) > 0.05
        keep[[0, -1]] = True
        missing[f"c{i}"] = int((~keep).sum())
        parts.append(series_frame(ts[keep], rng.poisson(10, keep.sum()), item=f"c{i}"))
    df = pl.concat(parts)
    shown = ", ".join(f"'{k}' {v}" for k, v in missing.items())
    for freq in (None, "h"):
        with pytest.warns(TimeticWarning, match=f"filled {sum(missing.values())} missing timestamps.*{shown}"):
            t = load_target(df, freq=freq)
        assert t.freq == "h" and list(t.lengths) == [1500] * 3
        assert int(np.isnan(t.frame["target"].to_numpy()).sum()) == sum(missing.values())


def test_many_series_with_gaps_are_summarised():
    ts = pd.date_range("2023-01-01", periods=200, freq="D")
    df = pl.concat([series_frame(ts.delete([50 + i]), item=f"s{i}", seed=i) for i in range(8)])
    with pytest.warns(TimeticWarning) as record:
        load_target(df)
    messages = [str(w.message) for w in record if "filled" in str(w.message)]
    assert len(messages) == 1  # one warning for the target
    assert "filled 8 missing timestamps" in messages[0] and "'s4' 1 and 3 more series" in messages[0]


def test_calendar_frequencies_with_gaps():
    for freq, drop, expected in (("MS", [5, 17], "MS"), ("W-SUN", [3, 40], "W-SUN"), ("QS", [7], "QS-OCT"),
                                 ("B", [10, 11, 60], "B"), ("bh", [9, 20, 21, 22], "bh"), ("D", [4], "D")):
        ts = pd.date_range("2004-01-01", periods=120, freq=freq)
        with pytest.warns(TimeticWarning, match=f"filled {len(drop)} missing timestamps"):
            t = load_target(series_frame(ts.delete(drop)))
        assert t.freq == expected, freq
        assert t.frame["timestamp"].to_list() == list(ts), freq


def test_a_step_off_the_grid_is_shown():
    ts = pd.date_range("2020-01-01", periods=800, freq="h").append(pd.DatetimeIndex(["2020-01-01 10:37"]))
    df = series_frame(ts.sort_values())
    with pytest.raises(TimeticInputError) as e:
        load_target(df)
    assert str(e.value).startswith(
        "series 'a' has irregular timestamps: step of 37 min between 2020-01-01 10:00 and 10:37 is not a "
        "multiple of 1 h (its most common step); ")
    with pytest.raises(TimeticInputError, match="series 'a' does not follow frequency 'h': step of 37 min between "
                                                "2020-01-01 10:00 and 10:37 is not a multiple of 1 h; pass the right"):
        load_target(df, freq="h")


def test_a_frequency_must_be_the_most_common_step():
    hourly = series_frame(pd.date_range("2020-01-01", periods=500, freq="h"))
    with pytest.raises(TimeticInputError, match="does not follow frequency 'D': step of 1 h between 2020-01-01 00:00 "
                                                "and 01:00 is not a multiple of 1 day"):
        load_target(hourly, freq="D")
    with pytest.raises(TimeticInputError, match=r"does not follow frequency '30min': most of its steps are 2 steps "
                                                r"of '30min' \(e.g. between 2020-01-01 00:00 and 01:00\)"):
        load_target(hourly, freq="30min")  # as many missing as observed, but no step is one grid step
    # every other hour, plus an odd hour now and then: fewer missing than observed, but most steps are 2 h
    ts = pd.date_range("2020-01-01", periods=500, freq="2h")
    ts = ts.append(ts[::4] + pd.Timedelta("1h")).sort_values()
    with pytest.raises(TimeticInputError, match="does not follow frequency 'h': most of its steps are 2 steps of 'h'"):
        load_target(series_frame(ts), freq="h")


def test_blow_ups_are_errors(monkeypatch):
    # two bursts of hourly data a year apart: the hourly grid would be almost all missing
    ts = pd.date_range("2020-01-01", periods=100, freq="h").append(pd.date_range("2021-01-01", periods=100, freq="h"))
    with pytest.raises(TimeticInputError, match=r"series 'a' has 200 timestamps, and frequency 'h' would add 8,684 "
                                                r"missing points to them \(largest gap 361 days 21 h, between "
                                                r"2020-01-05 03:00 and 2021-01-01 00:00\); check the timestamps"):
        load_target(series_frame(ts))
    with pytest.raises(TimeticInputError, match="has 10 timestamps, and frequency 'B' would add over 10 missing"):
        load_target(series_frame(ts.normalize().unique()), freq="B")
    # the total limit, over all series
    ts = pd.date_range("2020-01-01", periods=400, freq="h")
    df = pl.concat([series_frame(ts.delete(range(100, 150)), item=f"s{i}", seed=i) for i in range(3)])
    monkeypatch.setattr(D, "MAX_FILLED_POINTS", 120)
    with pytest.raises(TimeticInputError, match=r"would add 150 missing points \(more than 120\)"):
        load_target(df)


def test_gaps_do_not_hide_mixed_frequencies():
    hourly = series_frame(pd.date_range("2020-01-01", periods=300, freq="h").delete([7, 8]), item="h")
    half = series_frame(pd.date_range("2020-01-01", periods=300, freq="30min").delete([9]), item="m")
    with pytest.raises(TimeticInputError, match="mixed frequencies"):
        load_quietly(pl.concat([hourly, half]))


def test_gap_errors_through_the_cli(tmp_path):
    ts = pd.date_range("2020-01-01", periods=800, freq="h").append(pd.DatetimeIndex(["2020-01-01 10:37"]))
    path = tmp_path / "irregular.csv"
    series_frame(ts.sort_values()).write_csv(path)
    one_line_error(tmp_path, path, "step of 37 min between 2020-01-01 10:00 and 10:37", "pass --freq")
    one_line_error(tmp_path, path, "does not follow frequency 'h'", args=("--freq", "h"))


def test_gaps_through_the_cli_warn_and_work(tmp_path):
    ts = pd.date_range("2020-01-01", periods=900, freq="h")
    path = tmp_path / "gappy.parquet"
    series_frame(ts.delete(range(300, 340))).write_parquet(path)
    out = tmp_path / "f.parquet"
    res = CliRunner().invoke(main, ["features", "--target", str(path), "--out", str(out), "--windows", "8"])
    assert res.exit_code == 0, res.output
    assert "warning: filled 40 missing timestamps with NaN" in res.stderr and out.exists()


# ---------------------------------------------------------------------------------------------
# 1b. long gaps downstream: windows, features, metrics


def outage_target(length: int = 3000, outage: tuple[int, int] = (800, 1700)) -> "D.Target":
    ts = pd.date_range("2022-01-01", periods=length, freq="h")
    keep = np.ones(length, dtype=bool)
    keep[outage[0]:outage[1]] = False
    return load_quietly(series_frame(ts[keep]))


def test_windows_skip_mostly_missing_context_or_horizon():
    t = outage_target()
    for name in ("short", "medium"):
        task = Task.preset(name, "h")
        w = sample_windows(t, task, 256, seed=0)
        assert len(w) > 0
        assert (np.isnan(w.context).mean(axis=1) <= 1 - MIN_OBSERVED).all()
        assert (np.isnan(w.future).mean(axis=1) <= 1 - MIN_OBSERVED).all()
        # every admissible start is a candidate: asking for all of them gets each exactly once
        series = t.series()[0]
        C, H = task.context_length, task.horizon
        admissible = [s for s in range(len(series) - D.test_length(len(series), task) - task.window_length + 1)
                      if np.isfinite(series[s:s + C]).mean() >= MIN_OBSERVED
                      and np.isfinite(series[s + C:s + C + H]).mean() >= MIN_OBSERVED]
        every = sample_windows(t, task, 4096, seed=0)
        assert sorted(every.starts.tolist()) == admissible[:4096]


def test_windows_unchanged_for_complete_series():
    """The rule never moves windows of a series without missing values (same seed, same windows)."""
    from timetic.windows import _admissible_starts

    t = load_target(series_frame(pd.date_range("2022-01-01", periods=2000, freq="h")))
    task = Task.preset("short", "h")
    s = t.series()[0]
    np.testing.assert_array_equal(_admissible_starts(s, task),
                                  np.arange(len(s) - D.test_length(len(s), task) - task.window_length + 1))


def test_series_with_only_gap_windows_get_none_and_all_missing_is_an_error():
    ts = pd.date_range("2022-01-01", periods=3000, freq="h")
    good = series_frame(ts, item="good")
    sparse = series_frame(ts, item="sparse").with_columns(  # 30% observed everywhere
        pl.when(pl.int_range(pl.len()) % 10 < 7).then(float("nan")).otherwise(pl.col("target")).alias("target"))
    task = Task.preset("short", "h")
    t = load_quietly(pl.concat([good, sparse]))
    with pytest.warns(TimeticWarning, match=r"1 of 2 series get no windows.*\('sparse'\)"):
        w = sample_windows(t, task, 64)
    assert set(w.item_ids) == {"good"} and len(w) == 64
    with pytest.raises(TimeticInputError, match="no window of task 'short' has at least half"):
        sample_windows(load_quietly(sparse), task, 64)


def test_features_and_metrics_survive_windows_with_gaps():
    from timetic.adapters.base import QUANTILE_LEVELS
    from timetic.features import window_features
    from timetic.scoring import score_windows, seasonal_naive

    t = outage_target(outage=(900, 1300))
    task = Task.preset("short", "h")
    w = sample_windows(t, task, 256, seed=1)
    gappy = np.isnan(w.values).any(axis=1)
    assert gappy.any()  # some windows straddle the outage edge
    feats = window_features(w.values[gappy], period=task.period)
    assert np.isfinite(feats.to_numpy()).all()
    forecast = seasonal_naive(w.context, task.horizon, task.seasonality, len(QUANTILE_LEVELS))
    scores = score_windows(w.context, w.future, forecast, QUANTILE_LEVELS, task.seasonality)
    assert np.isfinite(scores["mase"]).all() and np.isfinite(scores["wql"]).all()


# ---------------------------------------------------------------------------------------------
# 2. business days and business hours


def trading_hours(days: int = 300, holidays: tuple = ("2023-01-16", "2023-02-20", "2023-04-07"), seed: int = 0):
    """Hourly bars 09:00-16:00, Monday to Friday (a call centre, an exchange), with holidays missing."""
    ts = pd.date_range("2023-01-02 09:00", periods=8 * days, freq="bh")
    h = np.arange(len(ts))
    rng = np.random.default_rng(seed)
    y = 100 + 10 * np.sin(2 * np.pi * h / 8) + 4 * np.sin(2 * np.pi * h / 40) + rng.normal(0, 1, len(ts)).cumsum() * 0.3
    keep = ~ts.normalize().isin(pd.to_datetime(list(holidays)))
    return ts, series_frame(ts[keep], y[keep], item="desk")


def test_business_hour_presets_and_seasonality():
    assert [Task.preset(n, "bh").horizon for n in ("short", "medium", "long")] == [40, 200, 400]
    for n in ("short", "medium", "long"):
        task = Task.preset(n, "bh")
        assert task.context_length == 512 and task.seasonality == 8 and task.period == 8
        assert task.window_length <= 1024
    assert seasonality("2bh") == 4 and seasonality("3bh") == 1
    assert seasonality("B") == 5 and seasonality("C") == 5 and feature_period("B") == 5
    from timetic.features import dataset_descriptors

    d = dataset_descriptors("bh", np.array([800]))
    assert d["ds_freq_unit_code"] == dataset_descriptors("h", np.array([800]))["ds_freq_unit_code"]


def test_trading_hours_load_with_holidays_filled():
    ts, df = trading_hours()
    with pytest.warns(TimeticWarning, match=r"filled 24 missing timestamps with NaN .* frequency 'bh'"):
        t = load_target(df)
    assert t.freq == "bh" and list(t.lengths) == [len(ts)]
    assert t.frame["timestamp"].to_list() == list(ts)
    for given in ("bh", "BH", "cbh"):
        with warnings.catch_warnings():
            warnings.simplefilter("error", FutureWarning)  # no deprecated-alias noise from pandas
            assert load_quietly(df, freq=given).freq == "bh"
    with pytest.raises(TimeticInputError, match=r"GluonTS periods have no business-hour frequency"):
        t.to_gluonts()
    w = sample_windows(t, Task.preset("short", "bh"), 64)
    assert len(w) == 64 and w.values.shape[1] == 552


def test_trading_hours_rank_through_the_cli(tmp_path):
    _, df = trading_hours()
    path = tmp_path / "desk.csv"
    df.write_csv(path)
    res = CliRunner().invoke(main, ["predict", "--target", str(path), "--no-zero-shot", "--windows", "16",
                                    "--format", "csv", "--no-explain"])
    assert res.exit_code == 0, res.output
    assert res.stdout.startswith("task,rank,model_id") and len(res.stdout.strip().splitlines()) > 3
    assert "frequency 'bh'" in res.stderr  # the fill warning, and the KB has no business-hour dataset


def test_business_days_with_holidays():
    ts = pd.date_range("2021-01-04", periods=400, freq="B")
    t = load_target(series_frame(ts))
    assert t.freq == "B" and Task.preset("short", "B").seasonality == 5  # regular: as before
    with pytest.warns(TimeticWarning, match="filled 2 missing timestamps"):
        t = load_target(series_frame(ts.delete([20, 200])))
    assert t.freq == "B" and list(t.lengths) == [400]
    weekend = series_frame(ts.append(pd.DatetimeIndex(["2021-01-09"])).sort_values())  # a Saturday
    with pytest.raises(TimeticInputError, match=r"2021-01-09 \(Saturday, after 2021-01-08\) is not on the 'B' grid"):
        load_target(weekend, freq="B")


@pytest.mark.parametrize("shift,bars,filled", [("0h", 8, 0), ("1h", 8, 0), ("30min", 7, 1), ("-1h", 6, 2)])
def test_other_opening_hours_of_at_most_8_bars_are_business_hours(shift, bars, filled):
    """Hourly bars on weekdays that fit in 8 slots an hour apart (10:00 to 17:00, a 09:30-16:00
    session's 09:30 to 15:30) read as ``bh``; the slots a day lacks stay missing."""
    ts, _ = trading_hours(days=120, holidays=())
    ts = pd.DatetimeIndex([t + pd.Timedelta(shift) for t in ts if t.hour < 9 + bars])
    holiday = ts.normalize() == pd.Timestamp("2023-03-01")
    for source in (ts, ts[~holiday]):
        days = 120 - 1  # the grid ends at the last bar
        expect = days * filled + (bars if len(source) < len(ts) else 0)
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            t = load_target(series_frame(source))
        assert t.freq == "bh" and t.lengths[0] == len(source) + expect, (shift, len(source))
        fills = [str(w.message) for w in record if "filled" in str(w.message)]
        assert (fills == []) if expect == 0 else (f"filled {expect:,} missing" in fills[0])
        assert load_quietly(series_frame(source), freq="bh").frame.equals(t.frame)


@pytest.mark.parametrize("freq,hours", [("h", "bars 08:00 to 18:00, Monday to Friday"), ("30min", "bars 09:00 to 16:30")])
def test_other_opening_hours_say_how_to_convert(tmp_path, freq, hours):
    days = pd.bdate_range("2023-01-02", periods=100)
    if freq == "h":  # 11 hourly bars a weekday
        ts = pd.DatetimeIndex([d + pd.Timedelta(hours=h) for d in days for h in range(8, 19)])
    else:  # half-hourly bars every day of the week
        days = pd.date_range("2023-01-02", periods=100, freq="D")
        ts = pd.DatetimeIndex([d + pd.Timedelta(minutes=30 * k) for d in days for k in range(18, 34)])
    path = tmp_path / "session.parquet"
    series_frame(ts).write_parquet(path)
    line = one_line_error(tmp_path, path, f"series 'a' looks like data of opening hours ({hours}",
                          "freq 'bh': at most 8 hourly bars a day", "or to days (freq 'B' for weekdays, 'D' for every day)")
    assert "Monday to Friday)" in line or freq == "30min"


def test_business_hours_given_but_data_at_night(tmp_path):
    ts = pd.date_range("2023-01-02", periods=24 * 40, freq="h")
    with pytest.raises(TimeticInputError, match=r"its first timestamp 2023-01-02 \(Monday\) is not on the 'bh' "
                                                r"grid; pass the right --freq, or aggregate to business hours \('bh': "
                                                r"at most 8 hourly bars a day"):
        load_target(series_frame(ts), freq="bh")


# ---------------------------------------------------------------------------------------------
# 3. degenerate targets


def test_constant_and_zero_series_are_dropped_with_a_warning():
    ts = pd.date_range("2022-01-01", periods=800, freq="h")
    df = pl.concat([series_frame(ts, item="ok"), series_frame(ts, np.full(800, 3.5), item="flat"),
                    series_frame(ts, np.zeros(800), item="zeros")])
    with pytest.warns(TimeticWarning, match=r"dropped 2 of 3 series with nothing to forecast: 'flat' \(constant at 3.5\), "
                                            r"'zeros' \(all zero\); their seasonal-naive error is 0"):
        t = load_target(df)
    assert t.item_ids == ["ok"]


def test_exactly_periodic_series_is_dropped():
    ts = pd.date_range("2022-01-01", periods=800, freq="h")
    pure = np.sin(2 * np.pi * np.arange(800) / 24)
    df = pl.concat([series_frame(ts, item="ok"), series_frame(ts, pure, item="sine")])
    with pytest.warns(TimeticWarning, match=r"'sine' \(repeats exactly every 24 steps\)"):
        assert load_target(df).item_ids == ["ok"]
    noisy = pure + np.random.default_rng(0).normal(0, 1e-3, 800)  # any noise: a forecastable series
    assert load_target(series_frame(ts, noisy)).n_series == 1
    # daily data (m = 1): a sine is not degenerate
    assert load_target(series_frame(pd.date_range("2022-01-01", periods=800, freq="D"), pure)).n_series == 1


def test_only_degenerate_series_is_an_error(tmp_path):
    ts = pd.date_range("2022-01-01", periods=800, freq="h")
    for values, text in ((np.zeros(800), "'a' (all zero)"), (np.full(800, -2.0), "'a' (constant at -2)"),
                         (np.r_[np.nan, 7.0, np.full(798, np.nan)], "'a' (constant at 7)")):
        path = tmp_path / "flat.csv"
        series_frame(ts, values).write_csv(path)
        one_line_error(tmp_path, path, f"every series has nothing to forecast: {text}", "pass series that vary")


@pytest.mark.parametrize("scale,expected", [(1e300, "above 1e+30"), (1e-300, "below 1e-30")])
def test_extreme_magnitudes_are_errors_even_when_constant(tmp_path, scale, expected):
    ts = pd.date_range("2022-01-01", periods=800, freq="h")
    for values in (np.full(800, scale), scale * (1 + np.random.default_rng(0).random(800))):
        path = tmp_path / "extreme.parquet"
        series_frame(ts, values).write_parquet(path)
        one_line_error(tmp_path, path, "target values out of range", expected, "by a power of ten")


def test_very_different_targets_rank_differently():
    """Weight-free rankings (no zero-shot) read the target: a smooth sinusoid and a noisy random walk
    get different orders from the shipped knowledge base."""
    from timetic.estimate import TimeTic

    rng = np.random.default_rng(0)
    n = 1500
    ts = pd.date_range("2024-01-01", periods=n, freq="h")
    t = np.arange(n)
    smooth = pl.concat([series_frame(ts, a * np.sin(2 * np.pi * t / 24 + a) + 0.02 * rng.normal(size=n), item=f"s{a}")
                        for a in (1, 2)])
    walk = pl.concat([series_frame(ts, rng.normal(size=n).cumsum() + rng.normal(size=n), item=f"s{a}") for a in (1, 2)])
    est = TimeTic.from_kb(zero_shot=False)
    rankings = [est.predict(load_target(df), task="short", n_windows=64) for df in (smooth, walk)]
    orders = [r.get_column("model_id").to_list() for r in rankings]
    assert sorted(orders[0]) == sorted(orders[1])
    assert orders[0] != orders[1]
    assert not np.allclose(rankings[0]["predicted_mase"].to_numpy(), rankings[1]["predicted_mase"].to_numpy())


# ---------------------------------------------------------------------------------------------
# 4. time zones


def zoned(freq: str, tz: str, start: str, periods: int, seed: int = 0) -> pl.DataFrame:
    ts = pd.date_range(start, periods=periods, freq=freq, tz=tz)
    y = 5 + np.random.default_rng(seed).normal(size=periods).cumsum()
    return pl.DataFrame({"timestamp": pl.Series(ts), "target": y})


def write_both(tmp_path: Path, df: pl.DataFrame) -> tuple[Path, Path]:
    """A zoned frame as parquet (the zone kept) and as CSV (ISO strings with UTC offsets)."""
    pq, csv = tmp_path / "zoned.parquet", tmp_path / "zoned.csv"
    df.write_parquet(pq)
    pd.DataFrame({"timestamp": [t.isoformat() for t in df["timestamp"].to_pandas()],
                  "target": df["target"].to_numpy()}).to_csv(csv, index=False)
    return pq, csv


@pytest.mark.parametrize("tz", ["Europe/Berlin", "America/New_York"])
def test_hourly_across_dst_loads_in_utc_from_parquet_and_csv(tmp_path, tz):
    df = zoned("h", tz, "2023-03-01", 24 * 300)  # spring and autumn changes
    pq, csv = write_both(tmp_path, df)
    assert "+01:00" in csv.read_text() or "-05:00" in csv.read_text()
    with warnings.catch_warnings():
        warnings.simplefilter("error", TimeticWarning)  # no gap, no fill
        a, b = load_target(pq), load_target(csv)
    assert a.freq == b.freq == "h" and a.frame.equals(b.frame)
    utc = df["timestamp"].dt.convert_time_zone("UTC").dt.replace_time_zone(None).cast(pl.Datetime("ns"))
    assert a.frame["timestamp"].to_list() == utc.to_list()
    assert load_target(df.to_pandas().set_index("timestamp")).frame.equals(a.frame)  # pandas, zoned index


@pytest.mark.parametrize("freq,start,periods,expected", [("D", "2023-01-01", 500, "D"), ("MS", "2015-01-01", 100, "MS"),
                                                          ("bh", "2023-01-02 09:00", 8 * 300, "bh")])
def test_daily_monthly_and_business_hours_keep_local_time(tmp_path, freq, start, periods, expected):
    df = zoned(freq, "Europe/Berlin", start, periods)
    pq, csv = write_both(tmp_path, df)
    a, b = load_target(pq), load_target(csv)
    assert a.freq == b.freq == expected and a.frame.equals(b.frame)
    local = df["timestamp"].dt.replace_time_zone(None).cast(pl.Datetime("ns"))
    assert a.frame["timestamp"].to_list() == local.to_list()  # dates stay dates, opening hours stay put


def test_utc_suffix_and_mixed_offsets(tmp_path):
    ts = pd.date_range("2023-01-01", periods=800, freq="h")
    z = pl.DataFrame({"timestamp": [t.strftime("%Y-%m-%dT%H:%M:%SZ") for t in ts], "target": np.arange(800.0) % 7})
    t = load_target(z)
    assert t.freq == "h" and t.frame["timestamp"][0] == pd.Timestamp("2023-01-01")
    mixed = z.with_columns(pl.when(pl.int_range(pl.len()) == 3).then(pl.lit("2023-01-01 03:00"))
                           .otherwise(pl.col("timestamp")).alias("timestamp"))
    path = tmp_path / "mixed.csv"
    mixed.write_csv(path)
    one_line_error(tmp_path, path, "mixes times with and without a UTC offset", "give every timestamp an offset")


def test_readme_documents_the_business_hour_presets():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    row = next(line for line in readme.splitlines() if line.startswith("| business hour (`bh`) |"))
    cells = [c.strip() for c in row.strip("|").split("|")][1:]
    tasks = [Task.preset(n, "bh") for n in ("short", "medium", "long")]
    assert cells == [str(t.horizon) for t in tasks] + [str(tasks[0].context_length), str(tasks[0].seasonality),
                                                        str(tasks[0].period)]
    assert "10 million" in readme and D.MAX_FILLED_POINTS == 10_000_000
    assert "at least half of their\n  context and half of their horizon" in readme and MIN_OBSERVED == 0.5


def test_a_multiindex_frame_and_bare_values():
    """An AutoGluon-style (item_id, timestamp) MultiIndex loads like the long frame; bare values
    (no timestamps) get an error that says what to pass."""
    import numpy as np
    import pandas as pd
    import pytest

    from conftest import make_long
    from timetic.data import load_target
    from timetic.errors import TimeticInputError

    long = make_long(2, 300).to_pandas()
    indexed = long.set_index(["item_id", "timestamp"])
    assert load_target(indexed).frame.equals(load_target(long).frame)
    for bare in (np.arange(100.0), pd.Series(np.arange(100.0)), [1.0, 2.0, 3.0]):
        with pytest.raises(TimeticInputError, match="needs timestamps"):
            load_target(bare)
