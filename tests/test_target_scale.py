"""Target loading at scale (issue 13): the per-series checks read runs of sorted rows instead of
hash tables, and one fixed step is inferred once for all series. Same answers and messages as the
per-series path; the cost curve itself is benchmarks/predict_cost.py (not asserted here)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pytest

from timetic import data as D
from timetic.data import Target, load_target
from timetic.errors import TimeticInputError


def frame(n_series: int, length: int, freq: str, seed: int = 0, starts: list[str] | None = None) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    parts = []
    for i in range(n_series):
        start = starts[i % len(starts)] if starts else "2021-01-04"
        parts.append(pl.DataFrame({
            "item_id": [f"s{i:03d}"] * length,
            "timestamp": pl.Series(pd.date_range(start, periods=length, freq=freq).values).cast(pl.Datetime("ns")),
            "target": rng.normal(10, 1, length),
        }))
    return pl.concat(parts)


def per_series_only(monkeypatch) -> None:
    monkeypatch.setattr(D, "_one_fixed_step", lambda *a, **k: None)


@pytest.mark.parametrize("freq", ["h", "30min", "D", "2D", "W-SUN", "W-WED", "MS", "QS", "YS"])
def test_fast_frequency_agrees_with_per_series_inference(freq, monkeypatch):
    df = frame(5, 40, freq)
    fast = load_target(df)
    per_series_only(monkeypatch)
    slow = load_target(df)
    assert fast.freq == slow.freq
    assert fast.frame.equals(slow.frame)


def test_given_frequency_fast_and_per_series(monkeypatch):
    df = frame(3, 50, "h")
    assert load_target(df, freq="h").freq == "h"
    with pytest.raises(TimeticInputError, match="does not follow frequency '2h'"):
        load_target(df, freq="2h")
    with pytest.raises(TimeticInputError, match="unknown frequency"):
        load_target(df, freq="not-a-freq")
    per_series_only(monkeypatch)
    assert load_target(df, freq="h").freq == "h"


def test_weekly_series_anchored_on_different_weekdays_are_still_mixed():
    df = frame(2, 30, "7D", starts=["2021-01-03", "2021-01-04"])  # a Sunday, a Monday: W-SUN vs W-MON
    with pytest.raises(TimeticInputError, match="mixed frequencies"):
        load_target(df)


def test_one_irregular_series_is_named():
    df = frame(3, 30, "h")
    # a step off the hourly grid in s001 (a missing row would be a gap, filled with NaN)
    off = (pl.col("item_id") == "s001") & (pl.arange(0, pl.len()) % 30 == 7)
    df = df.with_columns(pl.when(off).then(pl.col("timestamp") + pl.duration(minutes=37)).otherwise(pl.col("timestamp")))
    with pytest.raises(TimeticInputError, match="series 's001' has irregular timestamps"):
        load_target(df)


def test_shuffled_rows_load_like_sorted_ones():
    df = frame(20, 60, "D", seed=3)
    shuffled = df.sample(fraction=1.0, shuffle=True, seed=1)
    a, b = load_target(df), load_target(shuffled)
    assert a.frame.equals(b.frame) and a.freq == b.freq == "D"
    assert a.item_ids == [f"s{i:03d}" for i in range(20)]
    np.testing.assert_array_equal(a.lengths, np.full(20, 60))


def test_errors_found_on_runs_name_the_series():
    df = frame(4, 30, "h")
    dup = pl.concat([df, df.filter(pl.col("item_id") == "s002").head(1)]).sample(fraction=1.0, shuffle=True, seed=0)
    with pytest.raises(TimeticInputError, match=r"duplicate timestamps within a series \(2 rows, e.g. series 's002'"):
        load_target(dup)
    nan = df.with_columns(pl.when(pl.col("item_id") == "s003").then(float("nan")).otherwise(pl.col("target"))
                          .alias("target"))
    with pytest.raises(TimeticInputError, match=r"series 's003' is entirely NaN \(1 such series\)"):
        load_target(nan)
    big = df.with_columns(pl.when(pl.col("item_id") == "s001").then(pl.col("target") * 1e31)
                          .otherwise(pl.col("target")).alias("target"))
    with pytest.raises(TimeticInputError, match="series 's001' reaches"):
        load_target(big)


def test_lengths_of_a_hand_built_frame_with_scattered_rows():
    """Target.lengths reads runs; rows of a series that are not one block are still counted."""
    df = frame(2, 5, "D")
    scattered = pl.concat([df.head(3), df.tail(5), df.slice(3, 2)])  # s000 rows in two blocks
    t = Target(frame=scattered, freq="D")
    np.testing.assert_array_equal(t.lengths, [5, 5])
    np.testing.assert_array_equal(load_target(df).lengths, [5, 5])


def test_run_starts():
    s = pl.Series(["a", "a", "b", "b", "b", "a"])
    np.testing.assert_array_equal(D.run_starts(s), [0, 2, 5])
    assert D.run_starts(pl.Series([], dtype=pl.Utf8)).tolist() == []


@pytest.mark.parametrize("freq, fast", [("h", "h"), ("30min", "30min"), ("D", "D"), ("2D", "2D"), ("W-SUN", None),
                                        ("MS", None)])
def test_which_frequencies_take_the_fast_path(freq, fast):
    long = load_target(frame(3, 40, freq)).frame
    starts = D.run_starts(long.get_column("item_id"))
    ends = np.append(starts[1:], long.height)
    assert D._one_fixed_step(long.get_column("timestamp").to_numpy(), starts, ends, None) == fast
