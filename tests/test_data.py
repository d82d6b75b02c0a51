"""Target ingestion: formats, layouts, frequency inference, and every bad input."""

from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import make_long
from timetic.cli import main
from timetic.data import load_target
from timetic.errors import TimeticInputError, TimeticWarning
from timetic.tasks import Task


def test_long_parquet_csv_arrow_roundtrip(tmp_path, long_frame):
    for ext, write in (("parquet", "write_parquet"), ("csv", "write_csv"), ("arrow", "write_ipc")):
        p = tmp_path / f"t.{ext}"
        getattr(long_frame, write)(p)
        t = load_target(p)
        assert t.freq == "h" and t.n_series == 3 and list(t.lengths) == [1200] * 3
        np.testing.assert_allclose(t.series()[1], long_frame.filter(pl.col("item_id") == "s1")["target"].to_numpy())
        assert t.name == "t"


def test_wide_layout_and_pandas_and_gluonts(long_frame):
    wide = long_frame.pivot(on="item_id", index="timestamp", values="target")
    t = load_target(wide)
    assert t.n_series == 3 and t.item_ids == ["s0", "s1", "s2"] and t.freq == "h"
    pdf = wide.to_pandas().set_index("timestamp")
    assert load_target(pdf).n_series == 3
    t2 = load_target(t.to_gluonts())
    assert t2.freq == "h" and t2.n_series == 3
    np.testing.assert_allclose(t2.series()[2], t.series()[2])


def test_custom_column_names_and_single_series():
    df = pl.DataFrame({"ds": pd.date_range("2020-01-01", periods=50, freq="D"), "y": np.arange(50.0), "uid": ["a"] * 50})
    t = load_target(df, item_id="uid", timestamp="ds", target="y")
    assert t.item_ids == ["a"] and t.freq == "D"
    single = pl.DataFrame({"timestamp": pd.date_range("2020-01-01", periods=40, freq="MS"), "target": np.arange(40.0)})
    assert load_target(single).freq == "MS"


def test_freq_given_is_checked(long_frame):
    assert load_target(long_frame, freq="h").freq == "h"
    with pytest.raises(TimeticInputError, match="does not follow frequency"):
        load_target(long_frame, freq="D")


def test_unsorted_is_sorted_and_nan_inside_is_kept(long_frame):
    shuffled = long_frame.sample(fraction=1.0, shuffle=True, seed=1)
    shuffled = shuffled.with_columns(
        pl.when(pl.int_range(pl.len()) % 7 == 0).then(None).otherwise(pl.col("target")).alias("target")
    )
    t = load_target(shuffled)
    assert t.frame["timestamp"].is_sorted() or t.frame.group_by("item_id").agg(pl.col("timestamp").is_sorted()).height == 3
    for (item,), g in t.frame.group_by("item_id"):
        assert g["timestamp"].is_sorted()
    assert np.isnan(t.frame["target"].to_numpy()).sum() > 0


def test_short_series_dropped_with_warning_or_error():
    df = pl.concat([make_long(1, 1200), make_long(1, 200).with_columns(pl.lit("short").alias("item_id"))])
    t = load_target(df)
    task = Task.preset("short", "h")
    with pytest.warns(TimeticWarning, match="dropped 1 of 2"):
        kept = t.for_task(task)
    assert kept.item_ids == ["s0"]
    with pytest.raises(TimeticInputError, match="too short"):
        load_target(make_long(2, 200)).for_task(task)


# -- every bad input: one-line message naming the problem, CLI exit 2, nothing written ----------

def _bad_inputs(tmp_path: Path, good: pl.DataFrame) -> dict[str, tuple[Path, str]]:
    cases = {}

    def put(name, df=None, text=None, ext="parquet"):
        p = tmp_path / f"{name}.{ext}"
        if text is not None:
            p.write_text(text)
        elif ext == "csv":
            df.write_csv(p)
        else:
            df.write_parquet(p)
        return p

    cases["missing file"] = (tmp_path / "nope.parquet", "file not found")
    cases["empty file"] = (put("empty", text=""), "is empty")
    cases["unreadable"] = (put("corrupt", text="this is not parquet"), "cannot read corrupt.parquet")
    cases["unknown format"] = (put("data", text="x", ext="xlsx"), "unknown file format")
    cases["no rows"] = (put("norows", good.head(0)), "no rows")
    cases["missing target col"] = (put("misnamed", good.rename({"target": "value"})), "missing target column 'target'")
    cases["missing timestamp"] = (put("nots", good.rename({"timestamp": "time"})), "missing timestamp column")
    cases["non-numeric"] = (
        put("text", good.with_columns(pl.col("target").cast(pl.Utf8)).with_columns(
            pl.when(pl.int_range(pl.len()) == 5).then(pl.lit("abc")).otherwise(pl.col("target")).alias("target")), ext="csv"),
        "non-numeric target",
    )
    cases["inf"] = (
        put("inf", good.with_columns(pl.when(pl.int_range(pl.len()) == 3).then(float("inf")).otherwise(pl.col("target")).alias("target"))),
        "inf values",
    )
    cases["all nan"] = (
        put("allnan", good.with_columns(pl.when(pl.col("item_id") == "s1").then(float("nan")).otherwise(pl.col("target")).alias("target"))),
        "entirely NaN",
    )
    cases["duplicates"] = (put("dup", pl.concat([good, good.head(1)])), "duplicate timestamps")
    # missing rows are gaps (filled with NaN, tests/test_target_inputs.py); a step off the grid is not
    off_grid = pl.when(pl.int_range(pl.len()) % 50 == 7).then(pl.col("timestamp") + pl.duration(minutes=37))
    cases["irregular"] = (put("irregular", good.with_columns(off_grid.otherwise(pl.col("timestamp")))),
                          "irregular timestamps")
    mixed = pl.concat([
        good.filter(pl.col("item_id") == "s0"),
        make_long(1, 300, freq="D").with_columns(pl.lit("daily").alias("item_id")),
    ])
    cases["mixed frequency"] = (put("mixed", mixed), "mixed frequencies")
    cases["too short"] = (put("short", make_long(2, 100)), "too short")
    cases["bad timestamps"] = (
        put("badts", good.with_columns(pl.lit("not a date").alias("timestamp")), ext="csv"),
        "not dates",
    )
    return cases


def test_bad_inputs_cli_exit_2_one_line_nothing_written(tmp_path, long_frame):
    runner = CliRunner()
    for name, (path, expected) in _bad_inputs(tmp_path, long_frame).items():
        out = tmp_path / f"out_{name.replace(' ', '_')}.parquet"
        res = runner.invoke(main, ["features", "--target", str(path), "--out", str(out), "--windows", "8"])
        assert res.exit_code == 2, (name, res.output)
        lines = [ln for ln in res.output.strip().splitlines() if ln.startswith("error:")]
        assert len(lines) == 1 and expected in lines[0], (name, res.output)
        assert ";" in lines[0], f"{name}: message should say what to do: {lines[0]}"
        assert not out.exists(), name
        assert not list(tmp_path.glob(f".out_{name.replace(' ', '_')}*")), name


def test_bad_inputs_api_raise(tmp_path, long_frame):
    for name, (path, expected) in _bad_inputs(tmp_path, long_frame).items():
        if name == "too short":
            with pytest.raises(TimeticInputError, match="too short"):
                load_target(path).for_task(Task.preset("short", "h"))
            continue
        with pytest.raises(TimeticInputError) as e:
            load_target(path)
        assert expected in str(e.value) and "\n" not in str(e.value), name


def test_bad_in_memory_inputs():
    with pytest.raises(TimeticInputError, match="cannot load a target"):
        load_target(42)
    with pytest.raises(TimeticInputError, match="lacks 'start'"):
        load_target([{"target": [1, 2, 3]}])
    with pytest.raises(TimeticInputError, match="unknown layout"):
        load_target(pl.DataFrame({"a": [1]}), layout="diagonal")
    wide_text = pl.DataFrame({"timestamp": pd.date_range("2020", periods=5, freq="D"), "a": ["x"] * 5})
    with pytest.raises(TimeticInputError, match="non-numeric series column"):
        load_target(wide_text, layout="wide")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n_series=st.integers(1, 4),
    length=st.integers(3, 60),
    values=st.lists(st.one_of(st.floats(-1e9, 1e9), st.just(float("nan"))), min_size=1, max_size=240),
    freq=st.sampled_from(["h", "D", "15min", "W-SUN", "MS"]),
)
def test_loader_property(n_series, length, values, freq):
    """Random values: either a valid Target whose values match, or a one-line TimeticInputError."""
    n = n_series * length
    vals = (values * (n // len(values) + 1))[:n]
    df = pl.DataFrame({
        "item_id": np.repeat([f"i{k}" for k in range(n_series)], length),
        "timestamp": np.tile(pd.date_range("2021-01-01", periods=length, freq=freq).values, n_series),
        "target": vals,
    })
    try:
        t = load_target(df)
    except TimeticInputError as e:
        # all NaN, (floats include 1e-300-like values) a series too small for float32, or every
        # series constant / exactly periodic (the values repeat: period len(values))
        assert "\n" not in str(e)
        assert "entirely NaN" in str(e) or "out of range" in str(e) or "nothing to forecast" in str(e)
        return
    assert 1 <= t.n_series <= n_series and t.freq.split("-")[0] == freq.split("-")[0]
    original = dict(zip([f"i{k}" for k in range(n_series)], np.split(np.asarray(vals, dtype=float), n_series)))
    for item, got in zip(t.item_ids, t.series()):  # the kept series are unchanged
        np.testing.assert_array_equal(np.isnan(got), np.isnan(original[item]))
        np.testing.assert_array_equal(got[~np.isnan(got)], original[item][~np.isnan(original[item])])
        assert np.nanmax(got) > np.nanmin(got)  # a constant series is never kept
