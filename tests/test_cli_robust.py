"""No traceback reaches the user: bad inputs are one ``error:`` line with exit 2, anything
unexpected is one line with exit 1 (``--debug`` shows the traceback). Issue 14.

Test list (each a former traceback or a class of input the fuzz test covers):

* ``predict --out DIR`` where DIR is an existing directory (was ``IsADirectoryError``);
* ``add-observation`` on a garbage, zero-byte, CSV or directory path (was a polars
  ``ComputeError``); the KB is neither created nor changed;
* target values of 1e38 and more (was NaN in DeepAR and a ``Chi2()`` ``ValueError`` on the
  zero-shot path), 1e300, and non-zero values below 1e-30: a load-time error naming the limit;
  1e20 is accepted with a warning;
* the top-level guard: any exception in any command, including nested ``kb`` commands;
* fuzz: generated targets (magnitudes 0 to 1e300, NaN patterns, too-short to long series,
  constant series, nine frequencies with business days and business hours, time zones and
  daylight-saving changes, missing timestamps, long / single-series / wide layouts, parquet
  and CSV) through ``predict --no-zero-shot`` on the shipped KB.
"""

from __future__ import annotations

import traceback

import numpy as np
import pandas as pd
import polars as pl
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from conftest import make_long
from timetic.cli import main

EXAMPLE = "examples/example_target.parquet"


@pytest.fixture(scope="module")
def runner():
    return CliRunner()


def error_lines(res) -> list[str]:
    return [line for line in res.stderr.splitlines() if line.startswith("error:")]


def assert_one_line_error(res, code: int, *expected: str) -> str:
    """Exit ``code``, no traceback, exactly one ``error:`` line on stderr (plus warnings)."""
    assert res.exit_code == code, (res.exit_code, res.output, res.exception)
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exc_info
    assert "Traceback" not in res.output
    errors = error_lines(res)
    assert len(errors) == 1, res.stderr
    others = [line for line in res.stderr.splitlines() if line and not line.startswith(("error:", "warning:"))]
    assert not others, res.stderr
    for text in expected:
        assert text in errors[0], errors[0]
    return errors[0]


def kb_snapshot(path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir()) if p.is_file()}


# ---------------------------------------------------------------------------------------------
# the three former tracebacks


def test_predict_out_is_a_directory(runner, tmp_path):
    res = runner.invoke(main, ["predict", "--target", EXAMPLE, "--no-zero-shot", "--out", str(tmp_path)])
    assert_one_line_error(res, 2, "is a directory", "give a file name")
    assert list(tmp_path.iterdir()) == []  # no temp file left behind


def test_out_checked_before_the_work(runner, tmp_path, monkeypatch):
    """A bad --out fails before the target is even loaded (not after minutes of zero-shot)."""
    import timetic.cli

    def boom(*args, **kwargs):
        raise AssertionError("the target was loaded")

    monkeypatch.setattr(timetic.cli, "_load", boom)
    for args, expected in ((["predict", "--target", EXAMPLE, "--out", str(tmp_path)], "is a directory"),
                           (["report", "--target", EXAMPLE, "--out", str(tmp_path / "no" / "r.html")],
                            "does not exist"),
                           (["features", "--target", EXAMPLE, "--out", str(tmp_path)], "is a directory")):
        assert_one_line_error(runner.invoke(main, args), 2, expected)


def test_atomic_path_refuses_directories_and_bad_folders(tmp_path):
    from timetic.errors import TimeticInputError
    from timetic.io import atomic_path

    afile = tmp_path / "f.txt"
    afile.write_text("x")
    for bad, expected in ((tmp_path, "is a directory"), (tmp_path / "no" / "x.csv", "does not exist"),
                          (afile / "x.csv", "is a file, not a folder")):
        with pytest.raises(TimeticInputError, match=expected):
            with atomic_path(bad) as tmp:
                tmp.write_text("y")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.txt"]


@pytest.mark.parametrize("kind", ["garbage", "zero-byte", "csv", "directory", "target-file"])
def test_add_observation_bad_file(runner, tmp_path, kind):
    kb = tmp_path / "kb"
    assert runner.invoke(main, ["kb", "init", str(kb)]).exit_code == 0
    before = kb_snapshot(kb)
    if kind == "garbage":
        path = tmp_path / "r.parquet"
        path.write_bytes(b"PAR1\x00\x01garbage" * 10)
    elif kind == "zero-byte":
        path = tmp_path / "r.parquet"
        path.write_bytes(b"")
    elif kind == "csv":
        path = tmp_path / "r.csv"
        make_long(1, 50).write_csv(path)
    elif kind == "directory":
        path = tmp_path / "results"
        path.mkdir()
        (path / "a.parquet").write_bytes(b"x")
        (path / "b.csv").write_text("a,b\n1,2\n")
    else:
        path = tmp_path / "target.parquet"
        make_long(1, 50).write_parquet(path)
    res = runner.invoke(main, ["add-observation", str(path), "--kb", str(kb)])
    assert_one_line_error(res, 2, path.name, "timetic finetune")
    assert kb_snapshot(kb) == before
    # a KB that did not exist is not created by a failed add-observation
    res = runner.invoke(main, ["add-observation", str(path), "--kb", str(tmp_path / "new-kb")])
    assert res.exit_code == 2 and not (tmp_path / "new-kb").exists()


def test_add_observation_wrong_column_types(runner, tmp_path):
    """A parquet with the right column names but wrong contents is an input error, not a crash."""
    from timetic.finetune import TABLE_COLUMNS

    df = pl.DataFrame({c: ["x"] for c in TABLE_COLUMNS}).with_columns(
        pl.lit("{not json").alias("recipe"), pl.lit("{}").alias("provenance"))
    path = tmp_path / "r.parquet"
    df.write_parquet(path)
    res = runner.invoke(main, ["add-observation", str(path), "--kb", str(tmp_path / "kb")])
    assert_one_line_error(res, 2, "not a valid fine-tuning result")


def _scaled_example(tmp_path, factor: float):
    path = tmp_path / f"x{factor:g}.parquet"
    pl.read_parquet(EXAMPLE).with_columns(pl.col("target") * factor).write_parquet(path)
    return path


@pytest.mark.parametrize("factor", [1e38, 1e300, -1e36])
def test_huge_values_rejected_at_load_on_the_zero_shot_path(runner, tmp_path, factor):
    # the default (zero-shot) path: the check comes before any model is loaded
    res = runner.invoke(main, ["predict", "--target", str(_scaled_example(tmp_path, factor)), "--windows", "4"])
    assert_one_line_error(res, 2, "out of range", "above 1e+30", "divide the target by a power of ten")


def test_tiny_values_rejected_zero_accepted(runner, tmp_path):
    res = runner.invoke(main, ["predict", "--target", str(_scaled_example(tmp_path, 1e-300)), "--no-zero-shot"])
    assert_one_line_error(res, 2, "below 1e-30", "multiply the target by a power of ten")


def test_large_values_within_the_limit_work_with_a_warning(runner, tmp_path):
    res = runner.invoke(main, ["predict", "--target", str(_scaled_example(tmp_path, 1e20)), "--no-zero-shot",
                               "--windows", "16", "--format", "csv"])
    assert res.exit_code == 0, res.output
    assert "warning:" in res.stderr and "lose accuracy" in res.stderr
    assert res.stdout.startswith("task,rank,model_id")


def test_load_target_magnitude_limits():
    from timetic.data import MAX_ABS_VALUE, load_target
    from timetic.errors import TimeticInputError, TimeticWarning

    df = make_long(2, 100)
    with pytest.raises(TimeticInputError, match="nothing to forecast: 's0' \\(all zero\\)"):
        load_target(df.with_columns(pl.col("target") * 0.0))  # all zeros: not a magnitude error, degenerate
    with pytest.warns(TimeticWarning, match="lose accuracy"):
        load_target(df.with_columns(pl.col("target") * 1e20))
    big = df.with_columns(pl.when(pl.col("item_id") == "s1").then(pl.col("target") * MAX_ABS_VALUE)
                          .otherwise(pl.col("target")).alias("target"))
    with pytest.raises(TimeticInputError, match="series 's1' reaches"):
        load_target(big)
    # NaN is missing, not a magnitude
    nan = df.with_columns(pl.when(pl.col("target") > 10).then(float("nan")).otherwise(pl.col("target")).alias("target"))
    assert load_target(nan).n_series == 2


def test_zero_shot_just_below_the_limit_does_not_crash(runner, tmp_path):
    """DeepAR and the other families at |values| ~1e29 (below the limit): no NaN error escapes."""
    path = _scaled_example(tmp_path, 5e25)  # largest |value| ~7e28
    res = runner.invoke(main, ["predict", "--target", str(path), "--windows", "4", "--models", "deepar-s,tide-s",
                               "--format", "csv"])
    assert res.exit_code == 0, res.output
    assert "deepar-s" in res.stdout


# ---------------------------------------------------------------------------------------------
# the top-level guard


def test_guard_turns_any_exception_into_one_line(runner, monkeypatch):
    import timetic.cli

    def boom(*args, **kwargs):
        raise RuntimeError("something broke\n  on a second line")

    monkeypatch.setattr(timetic.cli, "_load", boom)
    res = runner.invoke(main, ["predict", "--target", EXAMPLE, "--no-zero-shot"])
    line = assert_one_line_error(res, 1)
    assert line == "error: RuntimeError: something broke on a second line (run with --debug for the traceback)"
    assert res.stderr.strip() == line

    res = runner.invoke(main, ["--debug", "predict", "--target", EXAMPLE, "--no-zero-shot"])
    assert res.exit_code == 1 and isinstance(res.exception, RuntimeError)
    tb = "".join(traceback.format_exception(*res.exc_info))
    assert "Traceback" in tb and "boom" in tb and "something broke" in tb

    monkeypatch.setenv("TIMETIC_DEBUG", "1")
    res = runner.invoke(main, ["predict", "--target", EXAMPLE, "--no-zero-shot"])
    assert isinstance(res.exception, RuntimeError)


def test_guard_covers_nested_groups_and_long_messages(runner, monkeypatch):
    import timetic.cli

    def boom(*args, **kwargs):
        raise KeyError("x" * 5000)

    monkeypatch.setattr(timetic.cli, "_open_kb", boom)
    res = runner.invoke(main, ["kb", "stats"])
    line = assert_one_line_error(res, 1, "error: KeyError: ", "(run with --debug for the traceback)")
    assert len(line) < 400


def test_guard_input_errors_outside_friendly_keep_exit_2(runner, monkeypatch):
    import timetic.adapters
    from timetic.errors import TimeticInputError

    def bad():
        raise TimeticInputError("no adapters; reinstall timetic")

    monkeypatch.setattr(timetic.adapters, "available_adapters", bad)
    assert_one_line_error(runner.invoke(main, ["adapters"]), 2, "no adapters")


def test_usage_errors_keep_exit_2(runner):
    res = runner.invoke(main, ["predict", "--target", EXAMPLE, "--windows", "many"])
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert runner.invoke(main, ["no-such-command"]).exit_code == 2


# ---------------------------------------------------------------------------------------------
# fuzz: generated targets through predict --no-zero-shot

FREQS = ["h", "30min", "D", "W-SUN", "MS", "QS", "YS", "B", "bh"]
#: points that a series of each frequency needs for the short task (context + horizon + 10%), rounded up
LONG_ENOUGH = {"h": 700, "30min": 700, "D": 330, "W-SUN": 130, "MS": 90, "QS": 50, "YS": 30, "B": 330, "bh": 700}
MAGNITUDES = [0.0, 1e-300, 1e-30, 1e-8, 1e-3, 1.0, 1e6, 1e12, 1e20, 1e30, 1e38, 1e300]
TYPICAL_MAGNITUDES = [1.0, 1e-3, 1e3, 1e6, 1e12, 0.0]
NAN_PATTERNS = ["none", "sprinkle", "leading", "trailing", "block", "all", "all-but-one"]
SHAPES = ["noise", "seasonal", "constant", "trend", "spike"]
TIME_ZONES = [None, "UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata"]
#: series start: in winter, or days before the spring / autumn daylight-saving change
STARTS = ["2001-01-01", "2001-03-20", "2001-10-22"]
LENGTHS = [1, 2, 3, 10, 40, 90, 130, 330, 700]


@st.composite
def targets(draw):
    """A target file's description: about half have one edge-case series (any magnitude, NaN
    pattern and length), the others only typical series, so that both the errors and the whole
    ranking are exercised."""
    freq = draw(st.sampled_from(FREQS))
    cap = 200 if freq in ("YS", "QS") else 800  # pandas timestamps end in 2262
    layout = draw(st.sampled_from(["long", "single", "wide"]))
    n_series = 1 if layout == "single" else draw(st.integers(1, 3))
    edge = draw(st.booleans())
    same = layout == "wide" or draw(st.booleans())  # wide: one timestamp column for all
    series = []
    for i in range(n_series):
        if edge and i == 0:
            length = min(draw(st.sampled_from(LENGTHS)), cap)
            magnitude, nan = draw(st.sampled_from(MAGNITUDES)), draw(st.sampled_from(NAN_PATTERNS))
        else:
            length = LONG_ENOUGH[freq] + draw(st.sampled_from([0, 7, 60]))
            magnitude, nan = draw(st.sampled_from(TYPICAL_MAGNITUDES)), draw(st.sampled_from(NAN_PATTERNS[:5]))
        if same and series:
            length = series[0]["length"]
        series.append(dict(length=length, magnitude=magnitude * draw(st.sampled_from([1.0, -1.0])),
                           shape=draw(st.sampled_from(SHAPES)), nan=nan))
    return dict(freq=freq, layout=layout, series=series, tz=draw(st.sampled_from(TIME_ZONES)),
                fmt=draw(st.sampled_from(["parquet", "csv"])), seed=draw(st.integers(0, 2**16)),
                start=draw(st.sampled_from(STARTS)), gaps=draw(st.sampled_from([0.0, 0.0, 0.03, 0.3])))


def _values(spec: dict, rng: np.random.Generator) -> np.ndarray:
    n = spec["length"]
    t = np.arange(n, dtype=float)
    shape = spec["shape"]
    if shape == "noise":
        y = rng.normal(1.0, 0.3, n)
    elif shape == "seasonal":  # with a drift: an exactly periodic series is degenerate (no MASE)
        y = 1.0 + 0.5 * np.sin(2 * np.pi * t / 12) + 0.2 * t / max(n, 1)
    elif shape == "constant":
        y = np.ones(n)
    elif shape == "trend":
        y = 1.0 + t / max(n, 1)
    else:
        y = np.zeros(n)
        y[n // 2] = 1.0
    y = y * spec["magnitude"]
    pattern = spec["nan"]
    if pattern == "sprinkle":
        y[rng.random(n) < 0.2] = np.nan
    elif pattern == "leading":
        y[: n // 3] = np.nan
    elif pattern == "trailing":
        y[n - n // 3:] = np.nan
    elif pattern == "block":
        y[n // 4: n // 2] = np.nan
    elif pattern == "all":
        y[:] = np.nan
    elif pattern == "all-but-one":
        y[1:] = np.nan
    return y


def _write_target(case: dict, folder) -> str:
    rng = np.random.default_rng(case["seed"])
    frames = []
    for i, spec in enumerate(case["series"]):
        ts = pd.date_range(case.get("start", "2001-01-01"), periods=spec["length"], freq=case["freq"], tz=case["tz"])
        frame = pl.DataFrame({"item_id": f"s{i}", "timestamp": pl.Series(ts), "target": _values(spec, rng)})
        if case.get("gaps"):  # missing timestamps (rows left out), the first and last kept
            keep = rng.random(frame.height) >= case["gaps"]
            keep[[0, -1]] = True
            frame = frame.filter(pl.Series(keep))
        frames.append(frame)
    long = pl.concat(frames)
    if case["layout"] == "single":
        df = long.drop("item_id")
    elif case["layout"] == "wide":
        df = long.pivot(on="item_id", index="timestamp", values="target")
    else:
        df = long
    path = folder / f"target.{case['fmt']}"
    if case["fmt"] == "csv":
        df.write_csv(path)
    else:
        df.write_parquet(path)
    return str(path)


@settings(max_examples=40, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(case=targets())
def test_fuzz_predict_never_shows_a_traceback(runner, tmp_path_factory, case):
    path = _write_target(case, tmp_path_factory.mktemp("fuzz"))
    args = ["predict", "--target", path, "--no-zero-shot", "--windows", "16", "--format", "csv", "--no-explain"]
    if case["layout"] != "long":
        args += ["--layout", case["layout"] if case["layout"] == "wide" else "long"]
    res = runner.invoke(main, args)
    event(f"exit {res.exit_code}")  # pytest --hypothesis-show-statistics: about half the examples rank
    assert res.exit_code in (0, 2), (case, res.output, res.exc_info and traceback.format_exception(*res.exc_info))
    assert res.exception is None or isinstance(res.exception, SystemExit), (case, res.exc_info)
    assert "Traceback" not in res.output, case
    if res.exit_code == 2:
        assert len(error_lines(res)) == 1, (case, res.stderr)
        assert all(line.startswith(("error:", "warning:")) for line in res.stderr.splitlines() if line), res.stderr
    else:
        assert res.stdout.startswith("task,rank,model_id"), (case, res.output)
        assert not error_lines(res), res.stderr


def test_output_files_follow_the_umask(tmp_path):
    import os

    from timetic.io import atomic_path

    old = os.umask(0o022)
    try:
        out = tmp_path / "ranking.csv"
        with atomic_path(out) as tmp:
            tmp.write_text("a\n")
        assert (out.stat().st_mode & 0o777) == 0o644
        os.umask(0o077)
        other = tmp_path / "private.csv"
        with atomic_path(other) as tmp:
            tmp.write_text("b\n")
        assert (other.stat().st_mode & 0o777) == 0o600
        out.chmod(0o640)  # an existing file keeps its mode
        with atomic_path(out) as tmp:
            tmp.write_text("c\n")
        assert (out.stat().st_mode & 0o777) == 0o640
    finally:
        os.umask(old)


def test_piped_table_shows_every_column_header():
    """Rich markup must not eat headers (``E[regret]`` once printed as ``E``)."""
    from pathlib import Path

    from click.testing import CliRunner

    from timetic.cli import main

    example = Path(__file__).resolve().parents[1] / "examples" / "example_target.parquet"
    res = CliRunner().invoke(main, ["predict", "--target", str(example), "--no-zero-shot", "--quiet"])
    assert res.exit_code == 0, res.output
    for header in ("rank", "pred. MASE", "90% interval", "P(best)", "E[regret]", "P(<naive)"):
        assert header in res.output


@pytest.mark.parametrize("argv, fragment", [
    (["predict", "--target", "x.parquet", "--seed", "-1"], "Invalid value for '--seed'"),
    (["predict", "--target", "x.parquet", "--task", "huge"], "Invalid value for '--task'"),
    (["predict", "--nope"], "No such option"),
    (["nosuch"], "No such command"),
])
def test_usage_errors_are_one_line(argv, fragment):
    from timetic.cli import main

    res = CliRunner().invoke(main, argv)
    assert res.exit_code == 2
    lines = [x for x in res.output.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], res.output
    assert "--help`" in lines[0]
