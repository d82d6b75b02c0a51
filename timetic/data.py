"""Target ingestion: files or in-memory frames -> a validated :class:`Target`.

A target is a set of univariate series at one regular frequency, held as one long polars frame
``(item_id: Utf8, timestamp: Datetime, target: Float64)`` sorted by item and time.

Accepted inputs:

* files: parquet (``.parquet``, ``.pq``), CSV (``.csv``, ``.csv.gz``, ``.tsv``), Arrow IPC / Feather
  (``.arrow``, ``.feather``, ``.ipc``);
* in memory: a polars or pandas DataFrame (a pandas ``DatetimeIndex`` becomes the timestamp
  column), or a GluonTS dataset (any iterable of entries with ``start`` and ``target``);
* layouts: *long* (``item_id``, ``timestamp``, ``target`` columns, names configurable; without an
  item column the frame is one series) or *wide* (a timestamp column plus one numeric column per
  series). ``layout="auto"`` picks long when the target or item column exists, else wide.

Missing values: NaN (or null) *inside* a series is allowed. It stays NaN in the target; features
interpolate over it, models receive it as missing, and metrics skip it. A series that is entirely
NaN is an error. Timestamps that are not sorted are sorted (this is never ambiguous, since
duplicate timestamps are an error). Every other problem raises :class:`TimeticInputError` with a
one-line message naming the problem and the fix.

Magnitudes: the models compute in float32, so the values must be representable there. A series
whose largest absolute value exceeds :data:`MAX_ABS_VALUE` (1e30), or is non-zero but below
:data:`MIN_ABS_SCALE` (1e-30), is an error that says to rescale the target (MASE and WQL, and so
the rankings, do not depend on the unit). Between those limits and outside
:data:`ACCURATE_RANGE` (1e-6 to 1e15) the target is accepted with a warning, since several model
families lose accuracy there in float32 (measured on the shipped zoo: Chronos-Bolt, Chronos-2,
PatchTST and TimesFM forecasts are wrong from about 1e18; DeepAR, TiDE and Chronos-Bolt produce
NaN somewhere between 1e32 and 1e37).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd
import polars as pl

from timetic.errors import TimeticInputError, TimeticWarning
from timetic.tasks import Task, freq_unit, test_length

SCHEMA = {"item_id": pl.Utf8, "timestamp": pl.Datetime("ns"), "target": pl.Float64}

#: Largest accepted absolute target value: the models compute in float32 (max ~3.4e38), and
#: their scalers sum or square the context, which overflows to inf/NaN somewhere between 1e32
#: and 1e37 (DeepAR, TiDE, Chronos-Bolt of the shipped zoo); 1e30 leaves a margin.
MAX_ABS_VALUE = 1e30
#: A series whose largest absolute value is non-zero but below this underflows in float32.
MIN_ABS_SCALE = 1e-30
#: Series scales (largest absolute value) at which every model family forecasts as it does at
#: unit scale; outside, the target is accepted with a warning.
ACCURATE_RANGE = (1e-6, 1e15)

_READERS = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".tsv": "csv",
    ".gz": "csv",
    ".arrow": "ipc",
    ".feather": "ipc",
    ".ipc": "ipc",
}


@dataclass
class Target:
    """A validated forecasting target.

    Attributes:
        frame: long frame with :data:`SCHEMA`, sorted by ``item_id`` then ``timestamp``.
        freq: pandas frequency alias (``"h"``, ``"30min"``, ``"D"``, ``"W-SUN"``, ``"MS"`` ...).
        name: a label (the file stem by default).
    """

    frame: pl.DataFrame
    freq: str
    name: str = "target"
    _series: list[np.ndarray] | None = field(default=None, repr=False, compare=False)

    @property
    def item_ids(self) -> list[str]:
        return self.frame.get_column("item_id").unique(maintain_order=True).to_list()

    @property
    def n_series(self) -> int:
        return self.frame.get_column("item_id").n_unique()

    @property
    def lengths(self) -> np.ndarray:
        """Shape (n_series,): number of time steps of each series."""
        ids = self.frame.get_column("item_id")
        starts = run_starts(ids)
        if len(starts) == ids.n_unique():  # each series one block of rows (as load_target leaves them)
            return np.diff(np.append(starts, len(ids))).astype(np.int64)
        return (  # rows of a series scattered (a frame built by hand): count them (a hash table)
            self.frame.group_by("item_id", maintain_order=True).len().get_column("len").to_numpy().astype(np.int64)
        )

    def series(self) -> list[np.ndarray]:
        """The target values of each series, in :attr:`item_ids` order; each of shape (T_i,)."""
        if self._series is None:
            values = self.frame.get_column("target").to_numpy()
            bounds = np.cumsum(self.lengths)[:-1]
            self._series = [np.asarray(s, dtype=np.float64) for s in np.split(values, bounds)]
        return self._series

    def start_timestamps(self) -> list[pd.Timestamp]:
        firsts = self.frame.group_by("item_id", maintain_order=True).agg(pl.col("timestamp").first())
        return [pd.Timestamp(t) for t in firsts.get_column("timestamp").to_list()]

    def for_task(self, task: Task) -> "Target":
        """Keep the series long enough for ``task``; warn about each dropped one.

        A series is usable when at least one window of ``task.window_length`` = C + H points fits
        before its final evaluation span (:func:`timetic.tasks.test_length`). Raises
        :class:`TimeticInputError` when no series remains.
        """
        lengths = self.lengths
        usable = np.array([L - test_length(L, task) >= task.window_length for L in lengths])
        if usable.all():
            return self
        ids = self.item_ids
        need = task.window_length
        if not usable.any():
            raise TimeticInputError(
                f"every series is too short for task {task.name!r} (longest has {int(lengths.max())} "
                f"points; needs context+horizon = {need} plus its final 10% evaluation span); "
                "use a shorter task (--task short) or longer series"
            )
        dropped = [ids[i] for i in np.flatnonzero(~usable)]
        shown = ", ".join(map(str, dropped[:5])) + (" ..." if len(dropped) > 5 else "")
        warnings.warn(
            f"dropped {len(dropped)} of {len(ids)} series shorter than context+horizon "
            f"({need}) plus the evaluation span: {shown}",
            TimeticWarning,
            stacklevel=2,
        )
        keep = [ids[i] for i in np.flatnonzero(usable)]
        frame = self.frame.filter(pl.col("item_id").is_in(keep))
        return Target(frame=frame, freq=self.freq, name=self.name)

    def to_gluonts(self) -> list[dict[str, Any]]:
        """A GluonTS ``ListDataset``-style list of entries (``start`` as a ``pd.Period``)."""
        return [
            {"item_id": i, "start": pd.Period(t, freq=period_freq(self.freq)), "target": s}
            for i, t, s in zip(self.item_ids, self.start_timestamps(), self.series())
        ]


def period_freq(freq: str) -> str:
    """The ``pd.Period`` frequency of a timestamp frequency (``"MS"`` -> ``"M"``, ``"QS-OCT"`` -> ``"Q"``)."""
    unit, n = freq_unit(freq)
    prefix = "" if n == 1 else str(n)
    return {"M": prefix + "M", "Q": prefix + "Q", "A": prefix + "Y"}.get(unit, freq)


def run_starts(column: pl.Series) -> np.ndarray:
    """Row offsets where a run of equal values begins (the first row of each series in a frame
    sorted by item), shape (n_runs,) int64. A run-length encoding: no hash table over the rows,
    memory O(runs)."""
    if len(column) == 0:
        return np.zeros(0, dtype=np.int64)
    runs = column.rle()
    lengths = runs.struct.field(runs.struct.fields[0]).to_numpy().astype(np.int64)  # "len"
    return np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)


def _steps_within(long: pl.DataFrame, starts: np.ndarray) -> np.ndarray:
    """Shape (rows - 1,): nanoseconds from each row to the next, in the frame's order; the step
    from one run of items to the next reads 1 (so it is neither a duplicate nor out of order)."""
    steps = np.diff(long.get_column("timestamp").to_numpy().view(np.int64))
    steps[starts[1:] - 1] = 1
    return steps


def _sorted_by_item_and_time(long: pl.DataFrame) -> bool:
    """Whether rows are already in (item_id, timestamp) order (ties allowed), without sorting."""
    ids = long.get_column("item_id")
    if not ids.is_sorted():
        return False
    return bool((_steps_within(long, run_starts(ids)) >= 0).all())


def load_target(
    source: Any,
    *,
    item_id: str = "item_id",
    timestamp: str = "timestamp",
    target: str = "target",
    layout: str = "auto",
    freq: str | None = None,
    name: str | None = None,
) -> Target:
    """Load and validate a target.

    Args:
        source: path to a parquet / CSV / Arrow file, a polars or pandas DataFrame, or a GluonTS
            dataset (iterable of dicts with ``start`` and ``target``).
        item_id, timestamp, target: column names of the long layout (``timestamp`` also names the
            time column of the wide layout).
        layout: ``"long"``, ``"wide"`` or ``"auto"``.
        freq: pandas frequency alias; inferred from the timestamps when ``None``.
        name: label of the target; defaults to the file stem or ``"target"``.
    """
    if layout not in ("auto", "long", "wide"):
        raise TimeticInputError(f"unknown layout {layout!r}; use 'long', 'wide' or 'auto'")
    if isinstance(source, (str, Path)):
        path = Path(source)
        df = _read_file(path)
        name = name or path.name.split(".")[0]
    elif isinstance(source, pl.DataFrame):
        df = source
    elif isinstance(source, pd.DataFrame):
        df = _from_pandas(source, timestamp)
    elif isinstance(source, pl.LazyFrame):
        df = source.collect()
    elif hasattr(source, "__iter__"):
        df = _from_gluonts(source)  # frequency re-inferred from the period start timestamps
        layout = "long"
    else:
        raise TimeticInputError(
            f"cannot load a target from {type(source).__name__}; pass a file path, a polars or "
            "pandas DataFrame, or a GluonTS dataset"
        )
    if df.height == 0:
        raise TimeticInputError("the target has no rows; pass a file or frame with data")
    long = _to_long(df, item_id=item_id, timestamp=timestamp, target=target, layout=layout)
    long = _validate(long)
    freq = _check_frequency(long, freq)
    return Target(frame=long, freq=freq, name=name or "target")


# ---------------------------------------------------------------------------------------------
# readers


def _read_file(path: Path) -> pl.DataFrame:
    if not path.exists():
        raise TimeticInputError(f"file not found: {path}; check the path")
    if path.is_dir():
        raise TimeticInputError(f"{path} is a directory; pass a parquet, CSV or Arrow file")
    suffix = path.suffix.lower()
    kind = _READERS.get(suffix)
    if kind is None:
        raise TimeticInputError(
            f"unknown file format {suffix or '(no extension)'!r} of {path.name}; "
            "use .parquet, .csv or .arrow/.feather"
        )
    if path.stat().st_size == 0:
        raise TimeticInputError(f"{path.name} is empty; pass a file with data")
    try:
        if kind == "parquet":
            df = pl.read_parquet(path)
        elif kind == "ipc":
            df = pl.read_ipc(path)
        else:
            sep = "\t" if path.name.lower().endswith((".tsv", ".tsv.gz")) else ","
            df = pl.read_csv(path, separator=sep, infer_schema_length=10000, try_parse_dates=True)
    except Exception as e:  # polars raises many exception types for corrupt files
        reason = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
        raise TimeticInputError(
            f"cannot read {path.name} as {kind}: {reason}; check that the file is a valid {kind} file"
        ) from e
    if df.height == 0:
        raise TimeticInputError(f"{path.name} has no rows; pass a file with data")
    return df


def _from_pandas(df: pd.DataFrame, timestamp: str) -> pl.DataFrame:
    if isinstance(df.index, pd.DatetimeIndex):
        df = df.rename_axis(timestamp if timestamp not in df.columns else "__index__").reset_index()
    else:
        df = df.reset_index(drop=True)
    try:
        return pl.from_pandas(df)
    except Exception as e:
        raise TimeticInputError(f"cannot convert the pandas frame: {e}; pass plain columns") from e


def _from_gluonts(dataset: Iterable) -> pl.DataFrame:
    frames, freqs = [], set()
    for k, entry in enumerate(dataset):
        if not isinstance(entry, dict) or "start" not in entry or "target" not in entry:
            raise TimeticInputError(
                "a GluonTS dataset entry lacks 'start' or 'target'; pass entries like "
                "{'start': pd.Period(...), 'target': array}"
            )
        values = np.asarray(entry["target"], dtype=np.float64)
        if values.ndim != 1:
            raise TimeticInputError(
                f"entry {k} has a {values.ndim}-D target; timetic takes univariate series"
            )
        start = entry["start"]
        if isinstance(start, pd.Period):
            f = start.freqstr
            freqs.add(f)
            ts = pd.period_range(start, periods=len(values), freq=start.freq).to_timestamp()
        else:
            raise TimeticInputError(
                f"entry {k} has a start of type {type(start).__name__}; use a pd.Period with a frequency"
            )
        frames.append(
            pl.DataFrame(
                {
                    "item_id": [str(entry.get("item_id", k))] * len(values),
                    "timestamp": pl.Series(ts.values).cast(pl.Datetime("ns")),
                    "target": values,
                }
            )
        )
    if not frames:
        raise TimeticInputError("the GluonTS dataset has no entries; pass a non-empty dataset")
    if len(freqs) > 1:
        raise TimeticInputError(
            f"mixed frequencies in the GluonTS dataset ({', '.join(sorted(freqs))}); "
            "load one frequency per target"
        )
    return pl.concat(frames)


# ---------------------------------------------------------------------------------------------
# layout


def _to_long(df: pl.DataFrame, *, item_id: str, timestamp: str, target: str, layout: str) -> pl.DataFrame:
    cols = df.columns
    if layout == "auto":
        layout = "long" if (target in cols or item_id in cols) else "wide"
    if timestamp not in cols:
        raise TimeticInputError(
            f"missing timestamp column {timestamp!r} (columns: {_show(cols)}); name it with "
            "--timestamp-col (timestamp= in Python)"
        )
    if layout == "long":
        if target not in cols:
            raise TimeticInputError(
                f"missing target column {target!r} (columns: {_show(cols)}); name it with "
                "--target-col (target= in Python), or use --layout wide"
            )
        if item_id in cols:
            item = pl.col(item_id).cast(pl.Utf8)
        elif len(cols) == 2:
            item = pl.lit("0")  # one series: only timestamp and target columns
        else:
            raise TimeticInputError(
                f"missing item id column {item_id!r} (columns: {_show(cols)}); name it with "
                "--item-id-col (item_id= in Python), or drop the extra columns for one series"
            )
        long = df.select(
            item.alias("item_id"), pl.col(timestamp).alias("timestamp"), pl.col(target).alias("target")
        )
    else:
        value_cols = [c for c in cols if c != timestamp]
        if not value_cols:
            raise TimeticInputError(
                "wide layout needs one column per series besides the timestamp; none found"
            )
        bad = [c for c in value_cols if not df.schema[c].is_numeric()]
        if bad:
            raise TimeticInputError(
                f"non-numeric series column(s) in wide layout: {_show(bad)}; drop them or use the "
                "long layout (item_id, timestamp, target)"
            )
        long = df.unpivot(index=timestamp, on=value_cols, variable_name="item_id", value_name="target").rename(
            {timestamp: "timestamp"}
        )
    return long


def _show(cols: list[str], k: int = 8) -> str:
    return ", ".join(repr(c) for c in cols[:k]) + (" ..." if len(cols) > k else "")


# ---------------------------------------------------------------------------------------------
# validation


def _validate(long: pl.DataFrame) -> pl.DataFrame:
    # timestamps
    ts_type = long.schema["timestamp"]
    if ts_type == pl.Utf8:
        try:
            long = long.with_columns(pl.col("timestamp").str.to_datetime(strict=True))
        except Exception as e:
            raise TimeticInputError(
                "timestamp column has values that are not dates or times; use ISO dates like "
                "2024-01-31 or 2024-01-31 13:00"
            ) from e
    elif ts_type == pl.Date:
        long = long.with_columns(pl.col("timestamp").cast(pl.Datetime("ns")))
    elif not isinstance(ts_type, pl.Datetime):
        raise TimeticInputError(
            f"timestamp column has type {ts_type}, not dates or times; store timestamps as dates"
        )
    if isinstance(long.schema["timestamp"], pl.Datetime) and long.schema["timestamp"].time_zone:
        long = long.with_columns(pl.col("timestamp").dt.replace_time_zone(None))
    long = long.with_columns(pl.col("timestamp").cast(pl.Datetime("ns")))
    if long.get_column("timestamp").null_count():
        raise TimeticInputError("timestamp column has empty values; fill or drop those rows")
    if long.get_column("item_id").null_count():
        raise TimeticInputError("item id column has empty values; fill or drop those rows")

    # target values
    t_type = long.schema["target"]
    if t_type == pl.Utf8:
        bad = long.filter(
            pl.col("target").is_not_null()
            & pl.col("target").cast(pl.Float64, strict=False).is_null()
        )
        if bad.height:
            raise TimeticInputError(
                f"non-numeric target: {bad.height} values such as {bad.get_column('target')[0]!r}; "
                "clean the target column to numbers (empty or NaN for missing)"
            )
        long = long.with_columns(pl.col("target").cast(pl.Float64))
    elif t_type == pl.Boolean or not (t_type.is_numeric() or t_type == pl.Null):
        raise TimeticInputError(
            f"non-numeric target: column has type {t_type}; store the target as numbers"
        )
    long = long.with_columns(pl.col("target").cast(pl.Float64).fill_null(float("nan")))
    infs = long.filter(pl.col("target").is_infinite())
    if infs.height:
        raise TimeticInputError(
            f"inf values in the target ({infs.height} rows, first in series "
            f"{infs.get_column('item_id')[0]!r}); replace them with NaN for missing or finite values"
        )

    # per series. Sorted once (skipped when the rows already are), the checks below read each
    # series as a run of rows: no hash table over the rows, so memory stays a few bytes per row
    # (a 10-million-row target peaked at 2.1 GB with group-bys and a struct duplicate check).
    if not _sorted_by_item_and_time(long):
        long = long.sort(["item_id", "timestamp"])  # not stable: equal keys are an error below anyway
    ids = long.get_column("item_id")
    starts = run_starts(ids)
    values = long.get_column("target").to_numpy()
    with np.errstate(invalid="ignore"):
        scale = np.fmax.reduceat(np.abs(values), starts)  # largest |value| per series; NaN: all NaN
    _check_magnitudes(ids.gather(starts), scale)

    n = long.height
    ts = long.get_column("timestamp")
    same = _steps_within(long, starts) == 0  # same item, same timestamp as the row before
    if same.any():
        dup = np.zeros(n, dtype=bool)
        dup[1:] |= same
        dup[:-1] |= same
        first = int(np.argmax(dup))
        raise TimeticInputError(
            f"duplicate timestamps within a series ({int(dup.sum())} rows, e.g. series "
            f"{ids[first]!r} at {ts[first]}); aggregate or drop the duplicates"
        )
    all_nan = np.flatnonzero(np.isnan(scale))
    if len(all_nan):
        raise TimeticInputError(
            f"series {ids[int(starts[all_nan[0]])]!r} is entirely NaN "
            f"({len(all_nan)} such series); drop it from the target"
        )
    return long.select(pl.col(c).cast(t) for c, t in SCHEMA.items())


def _check_magnitudes(series_ids: pl.Series, scale: np.ndarray) -> None:
    """Reject series the float32 models cannot represent; warn where they lose accuracy.

    ``series_ids``, ``scale``: per series (in item order), its id and largest |value| (NaN when
    the series is all NaN)."""
    keep = np.isfinite(scale) & (scale > 0)
    if not keep.any():
        return
    ids, s = series_ids.filter(pl.Series(keep)), scale[keep]
    for bad, limit, how in (
        (s > MAX_ABS_VALUE, f"above {MAX_ABS_VALUE:.0e}", "divide"),
        (s < MIN_ABS_SCALE, f"non-zero but below {MIN_ABS_SCALE:.0e}", "multiply"),
    ):
        if bad.any():
            idx = np.flatnonzero(bad)
            i = int(idx[np.argmax(s[idx])] if how == "divide" else idx[np.argmin(s[idx])])
            raise TimeticInputError(
                f"target values out of range: series {ids[i]!r} reaches |value| {s[i]:.3g}, "
                f"{limit} ({int(bad.sum())} such series; the models compute in float32); "
                f"{how} the target by a power of ten first (rankings do not depend on the unit)"
            )
    lo, hi = ACCURATE_RANGE
    off = (s < lo) | (s > hi)
    if off.any():
        i = int(np.argmax(np.maximum(s / hi, lo / s)))  # the farthest outside
        warnings.warn(
            f"{int(off.sum())} of {len(s)} series have values of magnitude outside {lo:.0e} to {hi:.0e} "
            f"(e.g. series {ids[i]!r}, largest |value| {s[i]:.3g}), where some models lose accuracy in "
            "float32; rescale the target by a power of ten for reliable zero-shot scores",
            TimeticWarning,
            stacklevel=4,
        )


def _check_frequency(long: pl.DataFrame, freq: str | None) -> str:
    """Infer (or check) one regular frequency shared by all series."""
    per_series: dict[str, str] = {}
    starts = run_starts(long.get_column("item_id"))  # rows are sorted by item (_validate)
    ends = np.append(starts[1:], long.height)
    stamps = long.get_column("timestamp").to_numpy()
    fast = _one_fixed_step(stamps, starts, ends, freq)
    if fast is not None:
        return fast
    items = long.get_column("item_id").gather(starts).to_list()
    for item, a, b in zip(items, starts, ends):
        ts = pd.DatetimeIndex(stamps[a:b])
        if len(ts) < 3:
            if freq is None:
                continue  # too short to infer; it will be dropped by the task's length check
            per_series[str(item)] = _conform(ts, freq, item)
            continue
        if freq is not None:
            per_series[str(item)] = _conform(ts, freq, item)
            continue
        inferred = pd.infer_freq(ts)
        if inferred is None:
            steps = pd.Series(ts).diff().dropna().value_counts()
            shown = ", ".join(str(s) for s in steps.index[:3])
            raise TimeticInputError(
                f"series {item!r} has irregular timestamps (steps {shown}); resample it to a "
                "regular grid (fill gaps with NaN) or pass --freq"
            )
        per_series[str(item)] = inferred
    if not per_series:
        raise TimeticInputError(
            "cannot infer the frequency: every series has fewer than 3 points; pass --freq or "
            "longer series"
        )
    freqs = set(per_series.values())
    if len(freqs) > 1:
        items = {}
        for item, f in per_series.items():
            items.setdefault(f, item)
        shown = ", ".join(f"{i!r} is {f!r}" for f, i in list(items.items())[:3])
        raise TimeticInputError(
            f"mixed frequencies ({shown}); load one frequency per target, or resample"
        )
    out = freq or freqs.pop()
    freq_unit(out)  # supported?
    return out


#: the fast path of :func:`_one_fixed_step` infers only steps shorter than this: a week's step
#: takes its alias from a weekday (W-SUN, W-MON), so series of one step can still differ.
_FAST_INFER_BELOW = np.timedelta64(7, "D").astype("timedelta64[ns]").astype(np.int64)


def _one_fixed_step(stamps: np.ndarray, starts: np.ndarray, ends: np.ndarray, freq: str | None) -> str | None:
    """The frequency of every series at once when all of them advance by one fixed step, else None
    (then each series is inferred or checked on its own, with the error messages that go with it).

    A fixed step shorter than a week has one pandas alias whatever the series' start (``h``,
    ``30min``, ``D``, ``2D``...), so one series' ``infer_freq`` holds for all; a given ``freq``
    that is a fixed offset (a Tick) of that step fits every series. Vectorised: a 10,000-series
    target costs one ``np.diff``, not 10,000 ``infer_freq`` calls.
    """
    if len(stamps) < 2:
        return None
    steps = np.diff(stamps.view(np.int64))
    inside = np.ones(len(steps), dtype=bool)
    inside[starts[1:] - 1] = False  # the step from one series' last row to the next one's first
    steps = steps[inside]
    if len(steps) == 0 or steps[0] <= 0 or not (steps == steps[0]).all():
        return None
    step = int(steps[0])
    if freq is not None:
        try:
            offset = pd.tseries.frequencies.to_offset(freq)
        except (ValueError, TypeError):
            return None  # the per-series check words the error
        if isinstance(offset, pd.tseries.offsets.Tick) and offset.nanos == step:
            freq_unit(freq)  # supported?
            return freq
        return None
    if step >= _FAST_INFER_BELOW:
        return None
    longest = int(np.argmax(ends - starts))
    if ends[longest] - starts[longest] < 3:
        return None
    inferred = pd.infer_freq(pd.DatetimeIndex(stamps[starts[longest] : ends[longest]]))
    if inferred is None:
        return None
    freq_unit(inferred)  # supported?
    return inferred


def _conform(ts: pd.DatetimeIndex, freq: str, item: Any) -> str:
    try:
        expected = pd.date_range(ts[0], periods=len(ts), freq=freq)
    except (ValueError, TypeError) as e:
        raise TimeticInputError(
            f"unknown frequency {freq!r}; give a pandas alias such as 'h', '30min', 'D', 'W', 'MS'"
        ) from e
    if len(ts) and (len(expected) != len(ts) or not (expected == ts).all()):
        raise TimeticInputError(
            f"series {item!r} does not follow frequency {freq!r} (e.g. {ts[0]} then "
            f"{ts[1] if len(ts) > 1 else '-'}); pass the right --freq or resample the series"
        )
    return freq
