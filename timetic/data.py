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

Frequency and gaps: every series must sit on the grid of one frequency (given, or inferred). Missing
timestamps (an outage, missing hours, a holiday of business-day data) are gaps: the series is
re-indexed onto the grid and the gap filled with NaN, with one :class:`TimeticWarning` saying how
many points each series got. Without ``freq``, a series that pandas cannot infer is explained by
its most common step: hourly bars on weekdays that fit in 8 slots an hour apart read as business
hours ``bh`` (09:00 to 16:00 as in pandas, or other opening hours such as 10:00 to 17:00: the grid
is then those 8 slots of every business day), days that are all weekdays as business days ``B``;
weekly and coarser steps by the frequency pandas infers on runs of three consecutive timestamps. A
step that is not a whole number of grid steps is an error that shows it; so is a frequency whose
single step is not the most common one, a fill that would add more missing points to a series than
it has, or more than :data:`MAX_FILLED_POINTS` in all. Other opening hours (more than 8 hourly
bars a day, half-hourly bars) are an error that says how to aggregate them.

Time zones: timestamps with a zone (parquet, Arrow, pandas) or with UTC offsets (CSV strings such
as ``2024-03-31T01:00:00+01:00``) are read both in UTC and in local wall-clock time, and the
reading with fewer distinct steps is kept (the local one on a tie); the zone is then dropped. So
hourly data across a daylight-saving change is read in UTC (no gap, no duplicate hour), daily and
coarser data and business hours in local time (dates stay dates, opening hours stay put).

Degenerate series: a series that is constant (all zeros included), or repeats itself exactly every
season (m = :func:`timetic.tasks.seasonality` steps), has a seasonal-naive error of 0, so its MASE
is undefined: it is dropped with a warning, and a target with no other series is an error.

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
from timetic.tasks import BUSINESS_HOURS_PER_DAY, Task, freq_unit, seasonality, test_length

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

#: windows (or series) whose mean |observed value| lies outside this range are rescaled by a power
#: of ten before a model sees them (:meth:`Windows.for_models`, :meth:`timetic.data.Target.for_models`).
MODEL_SCALE_RANGE = (1e-1, 1e7)


def power_of_ten_factors(values: np.ndarray, scale_range: tuple[float, float] = MODEL_SCALE_RANGE) -> np.ndarray:
    """(n,) factors 10^k for rows of ``values`` (n, L): 1 where the row's mean |observed value| lies
    within ``scale_range`` (or is 0 / undefined), else the power of ten that brings it into [1, 10)."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows: factor 1
        scale = np.nanmean(np.abs(values), axis=1)
    lo, hi = scale_range
    off = np.isfinite(scale) & (scale > 0) & ((scale < lo) | (scale > hi))
    return np.where(off, 10.0 ** -np.floor(np.log10(np.where(off, scale, 1.0))), 1.0)
#: Most missing points that putting the series on their frequency's grid may add, over the target.
MAX_FILLED_POINTS = 10_000_000
#: A series whose largest seasonal difference (or range) is at most this fraction of its largest
#: |value| is degenerate (constant, or exactly periodic up to float64 rounding).
DEGENERATE_RTOL = 1e-10

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
            shorter = "longer series" if task.name == "short" else "a shorter task (--task short) or longer series"
            raise TimeticInputError(
                f"every series is too short for task {task.name!r} (longest has {int(lengths.max())} "
                f"points; needs context+horizon = {need} plus its final evaluation span, max(10%, "
                f"horizon {task.horizon})); use {shorter}"
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

    def for_models(self) -> "Target":
        """The target as models should see it: each series whose mean |observed value| lies outside
        :data:`MODEL_SCALE_RANGE` multiplied by the power of ten that brings it into [1, 10) (see
        :meth:`timetic.windows.Windows.for_models`); the target itself where none does."""
        scale = self.frame.group_by("item_id", maintain_order=True).agg(
            pl.col("target").abs().mean().alias("s"))
        factors = power_of_ten_factors(scale.get_column("s").fill_null(np.nan).to_numpy()[:, None])
        if (factors == 1.0).all():
            return self
        factor = pl.col("item_id").replace_strict(scale.get_column("item_id"), pl.Series(factors),
                                                  return_dtype=pl.Float64)
        frame = self.frame.with_columns(pl.col("target") * factor)
        return Target(frame=frame, freq=self.freq, name=self.name)

    def to_gluonts(self) -> list[dict[str, Any]]:
        """A GluonTS ``ListDataset``-style list of entries (``start`` as a ``pd.Period``)."""
        if freq_unit(self.freq)[0] == "BH":
            raise TimeticInputError(
                f"GluonTS periods have no business-hour frequency ({self.freq!r}); use target.frame, "
                "or put the target on an hourly grid first"
            )
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
        df = _read_file(path, timestamp)
        name = name or path.name.split(".")[0]
    elif isinstance(source, pl.DataFrame):
        df = source
    elif isinstance(source, pd.DataFrame):
        df = _from_pandas(source, timestamp)
    elif isinstance(source, pl.LazyFrame):
        df = source.collect()
    elif isinstance(source, (np.ndarray, pd.Series, pl.Series)) or (
            isinstance(source, (list, tuple)) and source and not isinstance(source[0], dict)):
        raise TimeticInputError(
            f"cannot load a target from a bare {type(source).__name__} of values: timetic needs timestamps; "
            "pass a DataFrame with timestamp and target columns (and item_id for several series), a file, "
            "or a GluonTS dataset"
        )
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
    freq, long = _check_frequency(long, freq)
    long = _drop_degenerate(long, freq)
    return Target(frame=long, freq=freq, name=name or "target")


# ---------------------------------------------------------------------------------------------
# readers


def _read_file(path: Path, timestamp: str = "timestamp") -> pl.DataFrame:
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
            # the timestamp column as text: its UTC offsets (if any) give the local time too
            df = pl.read_csv(path, separator=sep, infer_schema_length=10000, try_parse_dates=True,
                             schema_overrides={timestamp: pl.Utf8})
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
    elif isinstance(df.index, pd.MultiIndex) and all(n is not None and n not in df.columns for n in df.index.names):
        df = df.reset_index()  # e.g. AutoGluon's (item_id, timestamp) index: its levels become columns
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
    long = _parse_timestamps(long)
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
    if _LOCAL in long.columns:
        long = _pick_clock(long, starts)
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


# ---------------------------------------------------------------------------------------------
# timestamps: parsing, time zones

#: the local wall-clock reading of zoned timestamps, next to the UTC one, until one is picked
_LOCAL = "__timetic_local__"
#: a UTC offset (or Z) after a time of day: ``13:00+01:00``, ``13:00:00.5-0500``, ``13:00Z``
_OFFSET_AFTER_TIME = r"\d:\d{2}(:\d{2}(\.\d*)?)?\s?(Z|[+-]\d{2}(:?\d{2})?)$"
_OFFSET = r"\s?(Z|[+-]\d{2}(:?\d{2})?)$"


def _parse_timestamps(long: pl.DataFrame) -> pl.DataFrame:
    """The ``timestamp`` column as naive ``Datetime("ns")``: in UTC when the input has a time zone
    or UTC offsets, with the local wall-clock reading in :data:`_LOCAL` (:func:`_pick_clock`
    chooses between them once the rows are sorted)."""
    ts = long.get_column("timestamp")
    local = None
    if ts.dtype == pl.Utf8:
        has_offset = ts.str.contains(_OFFSET_AFTER_TIME)
        n_offset, n_values = int(has_offset.sum() or 0), ts.len() - ts.null_count()
        if 0 < n_offset < n_values:
            a = ts.filter(has_offset)[0]
            b = ts.filter(has_offset.not_() & ts.is_not_null())[0]
            raise TimeticInputError(
                f"timestamp column mixes times with and without a UTC offset (e.g. {a!r} and {b!r}); "
                "give every timestamp an offset, or none"
            )
        try:
            if n_offset:
                local = ts.str.replace(_OFFSET, "").str.to_datetime(strict=True)
                ts = ts.str.to_datetime(strict=True, time_zone="UTC")
            else:
                ts = ts.str.to_datetime(strict=True)
        except Exception as e:
            raise TimeticInputError(
                "timestamp column has values that are not dates or times; use ISO dates like "
                "2024-01-31 or 2024-01-31 13:00"
            ) from e
    elif ts.dtype == pl.Date:
        ts = ts.cast(pl.Datetime("ns"))
    elif not isinstance(ts.dtype, pl.Datetime):
        raise TimeticInputError(
            f"timestamp column has type {ts.dtype}, not dates or times; store timestamps as dates"
        )
    if ts.dtype.time_zone:
        if local is None:  # a zone (not offsets read from text): its wall-clock time
            local = ts.dt.replace_time_zone(None)
        ts = ts.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
    columns = [ts.cast(pl.Datetime("ns")).alias("timestamp")]
    if local is not None:
        columns.append(local.cast(pl.Datetime("ns")).alias(_LOCAL))
    return long.with_columns(columns)


def _pick_clock(long: pl.DataFrame, starts: np.ndarray) -> pl.DataFrame:
    """Keep the UTC or the local reading of zoned timestamps: the one with fewer distinct steps
    within series (the local one on a tie). Hourly data across a daylight-saving change is regular
    in UTC (local time skips or repeats an hour); daily data, months and business hours are
    regular in local time (in UTC they move by an hour)."""
    inside = np.ones(max(long.height - 1, 0), dtype=bool)
    inside[starts[1:] - 1] = False
    n_steps = {}
    for col in ("timestamp", _LOCAL):
        steps = np.diff(long.get_column(col).to_numpy().view(np.int64))[inside]
        n_steps[col] = len(np.unique(steps))
    if n_steps[_LOCAL] <= n_steps["timestamp"]:
        long = long.with_columns(pl.col(_LOCAL).alias("timestamp"))
        if not _sorted_by_item_and_time(long):
            long = long.sort(["item_id", "timestamp"])
    return long.drop(_LOCAL)


# ---------------------------------------------------------------------------------------------
# frequency and gaps

_HOUR = 3_600 * 10**9
_DAY = 24 * _HOUR
_WEEK = 7 * _DAY


@dataclass
class _OnGrid:
    """One series placed on the grid of its frequency.

    Attributes:
        freq: the frequency alias.
        positions: shape (n,), each row's index on the grid; None when not computed (a series
            pandas infers as regular).
        grid: shape (size,), the grid's timestamps (int64 ns); None when no point is missing.
    """

    freq: str
    positions: np.ndarray | None = None
    grid: np.ndarray | None = None

    @property
    def filled(self) -> int:
        return 0 if self.grid is None else len(self.grid) - len(self.positions)


def _check_frequency(long: pl.DataFrame, freq: str | None) -> tuple[str, pl.DataFrame]:
    """Infer (or check) one frequency shared by all series; put series with gaps on its grid.

    Returns the frequency and the frame, re-indexed (gaps filled with NaN, one warning) when some
    series miss timestamps of the grid.
    """
    per_series: dict[str, str] = {}
    starts = run_starts(long.get_column("item_id"))  # rows are sorted by item (_validate)
    ends = np.append(starts[1:], long.height)
    stamps = long.get_column("timestamp").to_numpy()
    if freq is not None:
        freq = _canonical(freq)
    fast = _one_fixed_step(stamps, starts, ends, freq)
    if fast is not None:
        return fast, long
    items = long.get_column("item_id").gather(starts).to_list()
    fits: dict[int, _OnGrid] = {}
    for k, (item, a, b) in enumerate(zip(items, starts, ends)):
        if freq is None and b - a < 3:
            continue  # too short to infer; it will be dropped by the task's length check
        fits[k] = _fit_series(item, stamps[a:b], freq)
        per_series[str(item)] = fits[k].freq
    if not per_series:
        raise TimeticInputError(
            "cannot infer the frequency: every series has fewer than 3 points; pass --freq or "
            "longer series"
        )
    freqs = set(per_series.values())
    if len(freqs) > 1:
        first: dict[str, str] = {}
        for item, f in per_series.items():
            first.setdefault(f, item)
        shown = ", ".join(f"{i!r} is {f!r}" for f, i in list(first.items())[:3])
        raise TimeticInputError(
            f"mixed frequencies ({shown}); load one frequency per target, or resample"
        )
    out = freq or freqs.pop()
    freq_unit(out)  # supported?
    filled = {k: fit.filled for k, fit in fits.items() if fit.filled}
    if filled:
        total = sum(filled.values())
        if total > MAX_FILLED_POINTS:
            raise TimeticInputError(
                f"putting the series on frequency {out!r} would add {total:,} missing points "
                f"(more than {MAX_FILLED_POINTS:,}); check the timestamps and --freq, or trim the "
                "series to the spans they cover"
            )
        long = _fill_gaps(long, starts, ends, fits)
        shown = ", ".join(f"{items[k]!r} {n:,}" for k, n in list(filled.items())[:5])
        more = f" and {len(filled) - 5} more series" if len(filled) > 5 else ""
        warnings.warn(
            f"filled {total:,} missing timestamps with NaN to put the series on frequency {out!r} "
            f"(series {shown}{more}); they stay missing: features interpolate, models see them as "
            "missing, metrics skip them",
            TimeticWarning,
            stacklevel=3,
        )
    return out, long


def _to_offset(freq: str) -> pd.DateOffset:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # deprecated aliases ('H', 'BH', 'T')
            return pd.tseries.frequencies.to_offset(freq)
    except (ValueError, TypeError) as e:
        raise TimeticInputError(
            f"unknown frequency {freq!r}; give a pandas alias such as 'h', '30min', 'D', 'B', 'bh', "
            "'W', 'MS'"
        ) from e


def _canonical(freq: str) -> str:
    """A given frequency, checked (known to pandas, supported); business hours as ``bh``."""
    off = _to_offset(freq)
    freq_unit(freq)  # supported?
    if isinstance(off, (pd.offsets.BusinessHour, pd.offsets.CustomBusinessHour)):
        return ("" if off.n == 1 else str(off.n)) + "bh"
    return freq


def _fit_series(item: Any, ts: np.ndarray, freq: str | None) -> _OnGrid:
    """Place one series (``ts``: shape (n,) datetime64[ns], sorted, distinct) on the grid of
    ``freq``, or of the frequency that explains its timestamps when ``freq`` is None."""
    if freq is None:
        inferred = pd.infer_freq(pd.DatetimeIndex(ts))
        if inferred is not None:
            return _OnGrid(inferred)
        return _place(item, ts, _candidate(item, ts), given=False)
    return _place(item, ts, freq, given=True)


def _candidate(item: Any, ts: np.ndarray) -> str:
    """The frequency that explains a series pandas cannot infer (``ts``: n >= 3 timestamps): its
    most common step (ties: the shortest), read as business hours or business days when every
    timestamp is in them; weekly and coarser steps by the frequency pandas infers on runs of three
    consecutive timestamps (so months keep their anchor)."""
    t = ts.view(np.int64)
    values, counts = np.unique(np.diff(t), return_counts=True)
    step = int(values[np.argmax(counts)])
    idx = pd.DatetimeIndex(ts)
    if step < _WEEK:
        if step == _HOUR and _session_slots(idx) is not None:
            return "bh"
        if step == _DAY and (idx.dayofweek < 5).all() and t[-1] - t[0] >= _WEEK:
            return "B"
        return pd.tseries.frequencies.to_offset(pd.Timedelta(step, unit="ns")).freqstr
    votes: dict[str, int] = {}
    for i in np.unique(np.linspace(0, len(t) - 3, num=min(25, len(t) - 2)).astype(np.int64)):
        f = pd.infer_freq(idx[i : i + 3])
        if f is not None:
            votes[f] = votes.get(f, 0) + 1
    if not votes:
        raise TimeticInputError(
            f"series {item!r} has irregular timestamps (most common step {_span(step)}, and no "
            "frequency explains them); resample it to a regular grid (gaps as NaN) or pass --freq"
        )
    return max(votes, key=votes.get)


def _session_slots(idx: pd.DatetimeIndex) -> np.ndarray | None:
    """The 8 times of day (ns after midnight, shape (8,)) of business-hour data, else None.

    Business-hour data: every timestamp on a weekday, at times of day an hour apart that fit in 8
    hourly bars (09:00 to 16:00 as pandas' ``bh``; other opening hours such as 10:00 to 17:00, or
    09:30 to 15:30 whose eighth bar, 16:30, is then always missing)."""
    if not len(idx) or not (idx.dayofweek < 5).all():
        return None
    slots = np.unique(idx.asi8 % _DAY)
    if slots[-1] - slots[0] > (BUSINESS_HOURS_PER_DAY - 1) * _HOUR or ((slots - slots[0]) % _HOUR).any():
        return None
    return slots[0] + np.arange(BUSINESS_HOURS_PER_DAY, dtype=np.int64) * _HOUR


def _session_grid(t: np.ndarray, slots: np.ndarray) -> np.ndarray:
    """Business days from ``t[0]`` to ``t[-1]`` times ``slots`` (int64 ns, sorted), from ``t[0]``
    to ``t[-1]``: the business-hour grid of opening hours other than pandas' 09:00-17:00."""
    days = pd.bdate_range(pd.Timestamp(int(t[0])).normalize(), pd.Timestamp(int(t[-1])).normalize()).asi8
    grid = (days[:, None] + slots[None, :]).ravel()
    return grid[(grid >= t[0]) & (grid <= t[-1])]


def _place(item: Any, ts: np.ndarray, freq: str, given: bool) -> _OnGrid:
    """Grid positions of a series' timestamps on ``freq`` (anchored at its first timestamp), or
    the error that says which step does not fit, or that the fit would be mostly missing."""
    off = _to_offset(freq)
    t = ts.view(np.int64)
    n = len(t)
    if isinstance(off, pd.offsets.Tick):
        p = int(off.nanos)
        rel = t - t[0]
        bad = np.flatnonzero(rel % p)
        if bad.size:
            raise _off_grid(item, t, int(bad[0]), freq, given, step=p)
        positions = rel // p
        size = int(positions[-1]) + 1
        if size - n > n:
            raise _mostly_missing(item, t, positions, freq, given)
        grid = None if size == n else t[0] + np.arange(size, dtype=np.int64) * p
    else:
        slots = None
        if isinstance(off, pd.offsets.BusinessHour) and off.n == 1:
            slots = _session_slots(pd.DatetimeIndex(ts))  # 8 hourly bars a weekday, from any hour
        first = pd.date_range(pd.Timestamp(t[0]), periods=14, freq=off).asi8
        shortest = int(np.diff(first).min())
        if (t[-1] - t[0]) // shortest + 1 > 20 * n + 20:  # surely over twice n points: do not build it
            raise _mostly_missing(item, t, None, freq, given)
        if slots is not None:
            grid = _session_grid(t, slots)
        else:
            grid = pd.date_range(pd.Timestamp(t[0]), pd.Timestamp(t[-1]), freq=off).asi8
        if len(grid) == 0 or grid[0] != t[0]:
            raise _off_grid(item, t, 0, freq, given)
        positions = np.searchsorted(grid, t)
        on = grid[np.minimum(positions, len(grid) - 1)] == t
        if not on.all():
            raise _off_grid(item, t, int(np.argmin(on)), freq, given)
        if len(grid) - n > n:
            raise _mostly_missing(item, t, positions, freq, given)
        if len(grid) == n:
            grid = None
    if n >= 2:
        values, counts = np.unique(np.diff(positions), return_counts=True)
        most = int(values[np.argmax(counts)])
        if most != 1:
            raise TimeticInputError(
                f"series {item!r} does not follow frequency {freq!r}: most of its steps are {most} "
                f"steps of {freq!r} (e.g. {_between(t[0], t[1])}); pass the right "
                "--freq or resample the series"
            )
    return _OnGrid(freq, positions, grid)


def _off_grid(item: Any, t: np.ndarray, k: int, freq: str, given: bool, step: int | None = None) -> TimeticInputError:
    """The error for the first timestamp ``t[k]`` that is not on the grid of ``freq``."""
    what = f"does not follow frequency {freq!r}" if given else "has irregular timestamps"
    fix = ("pass the right --freq or resample the series" if given
           else "resample it to a regular grid (gaps as NaN) or pass --freq")
    if step is not None:  # a fixed step: say which step is not a multiple of it
        problem = f"step of {_span(int(t[k] - t[k - 1]))} {_between(t[k - 1], t[k])} is not a multiple of {_span(step)}"
    elif k == 0:
        problem = f"its first timestamp {_stamp(t[0])} ({_weekday(t[0])}) is not on the {freq!r} grid"
    else:
        problem = (f"{_stamp(t[k])} ({_weekday(t[k])}, after {_stamp(t[k - 1])}) is not on the {freq!r} "
                   "grid")
    if not given and step is not None:
        problem += " (its most common step)"
    if freq.endswith("bh"):
        fix = ("pass the right --freq, or aggregate to business hours ('bh': at most 8 hourly bars a "
               "day, Monday to Friday, such as 09:00 to 16:00) or to days (freq 'B' or 'D')")
    return TimeticInputError(f"series {item!r} {what}: {problem}; {fix}")


def _mostly_missing(item: Any, t: np.ndarray, positions: np.ndarray | None, freq: str, given: bool) -> TimeticInputError:
    """The error for a series whose grid would hold more missing than observed points."""
    n = len(t)
    gaps = np.diff(t)
    g = int(np.argmax(gaps)) if n > 1 else 0
    largest = f"largest gap {_span(int(gaps[g]))}, {_between(t[g], t[g + 1])}" if n > 1 else ""
    added = f"{int(positions[-1]) + 1 - n:,}" if positions is not None else f"over {n:,}"
    session = None if given else _session(t)
    if session is not None:
        return TimeticInputError(
            f"series {item!r} looks like data of opening hours ({session}), which timetic reads only as "
            "business hours (freq 'bh': at most 8 hourly bars a day, Monday to Friday, such as 09:00 to "
            "16:00); aggregate its bars to at most 8 hourly bars a weekday, or to days (freq 'B' for "
            "weekdays, 'D' for every day)"
        )
    return TimeticInputError(
        f"series {item!r} has {n:,} timestamps, and frequency {freq!r} would add {added} missing points "
        f"to them ({largest}); check the timestamps, pass the right --freq, or split the series at "
        "its gaps"
    )


def _session(t: np.ndarray) -> str | None:
    """'09:30-15:30, Monday to Friday' when the timestamps keep to opening hours (a daily window
    of at most 16 hours, or weekdays only, both with steps under a day), else None."""
    if len(t) < 3 or np.diff(t).min() >= _DAY:
        return None
    idx = pd.DatetimeIndex(t)
    tod = t % _DAY
    weekdays = bool((idx.dayofweek < 5).all())
    if tod.max() - tod.min() > 16 * _HOUR and not weekdays:
        return None
    lo, hi = pd.Timestamp(int(tod.min())), pd.Timestamp(int(tod.max()))
    return f"bars {lo:%H:%M} to {hi:%H:%M}" + (", Monday to Friday" if weekdays else "")


def _fill_gaps(long: pl.DataFrame, starts: np.ndarray, ends: np.ndarray, fits: dict[int, "_OnGrid"]) -> pl.DataFrame:
    """Re-index series with gaps onto their grid (missing points NaN); the others unchanged."""
    stamps = long.get_column("timestamp").to_numpy().view(np.int64)
    values = long.get_column("target").to_numpy()
    ts_parts, value_parts, sizes = [], [], []
    for k, (a, b) in enumerate(zip(starts, ends)):
        fit = fits.get(k)
        if fit is None or fit.grid is None:
            ts_parts.append(stamps[a:b])
            value_parts.append(values[a:b])
            sizes.append(b - a)
        else:
            full = np.full(len(fit.grid), np.nan)
            full[fit.positions] = values[a:b]
            ts_parts.append(fit.grid)
            value_parts.append(full)
            sizes.append(len(fit.grid))
    rows = np.repeat(starts, sizes)
    return pl.DataFrame({
        "item_id": long.get_column("item_id").gather(rows),
        "timestamp": pl.Series(np.concatenate(ts_parts).view("datetime64[ns]")).cast(pl.Datetime("ns")),
        "target": np.concatenate(value_parts).astype(np.float64),
    })


def _span(ns: int) -> str:
    """A duration in words: ``37 min``, ``1 h``, ``26 days 3 h``."""
    if ns % 1_000_000_000:
        return f"{ns / 1e9:g} s"
    sec = ns // 1_000_000_000
    days, rest = divmod(sec, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, seconds = divmod(rest, 60)
    parts = [f"{days} day{'s' if days != 1 else ''}" if days else "", f"{hours} h" if hours else "",
             f"{minutes} min" if minutes else "", f"{seconds} s" if seconds else ""]
    return " ".join(p for p in parts if p) or "0 s"


def _stamp(ns: int) -> str:
    """A timestamp, short: ``2020-01-01 10:00`` (seconds when not zero; the date alone at midnight)."""
    ts = pd.Timestamp(int(ns))
    if ts == ts.normalize():
        return ts.strftime("%Y-%m-%d")
    return ts.strftime("%Y-%m-%d %H:%M:%S" if ts.second or ts.microsecond or ts.nanosecond else "%Y-%m-%d %H:%M")


def _between(a: int, b: int) -> str:
    """``between 2020-01-01 10:00 and 10:37`` (the second date is left out when it is the first's)."""
    sa, sb = _stamp(a), _stamp(b)
    if (" " in sa) != (" " in sb):  # one at midnight: give both a time
        sa, sb = (x if " " in x else x + " 00:00" for x in (sa, sb))
    if " " in sa and sa.split(" ")[0] == sb.split(" ")[0]:
        return f"between {sa} and {sb.split(' ')[1]}"
    return f"between {sa} and {sb}"


def _weekday(ns: int) -> str:
    return pd.Timestamp(int(ns)).day_name()


# ---------------------------------------------------------------------------------------------
# degenerate series


def _drop_degenerate(long: pl.DataFrame, freq: str) -> pl.DataFrame:
    """Drop series whose seasonal-naive error is 0 (constant, all zeros included, or repeating
    exactly every season m): their MASE is undefined. One warning; an error when none is left."""
    ids = long.get_column("item_id")
    starts = run_starts(ids)
    ends = np.append(starts[1:], long.height)
    values = long.get_column("target").to_numpy()
    with np.errstate(invalid="ignore"):
        hi = np.fmax.reduceat(values, starts)
        lo = np.fmin.reduceat(values, starts)
    scale = np.maximum(np.abs(hi), np.abs(lo))
    tol = DEGENERATE_RTOL * scale
    m = seasonality(freq)
    why: dict[int, str] = {}
    for k in np.flatnonzero(hi - lo <= tol):
        why[int(k)] = "all zero" if hi[k] == 0 and lo[k] == 0 else f"constant at {hi[k]:.6g}"
    if m > 1:
        for k in np.flatnonzero(hi - lo > tol):
            y = values[starts[k] : ends[k]]
            if len(y) > m:
                d = np.abs(y[m:] - y[:-m])
                d = d[np.isfinite(d)]
                if len(d) >= m and d.max() <= tol[k]:
                    why[int(k)] = f"repeats exactly every {m} steps"
    if not why:
        return long
    names = ids.gather(starts).to_list()
    shown = ", ".join(f"{names[k]!r} ({w})" for k, w in list(why.items())[:5]) + (
        f" and {len(why) - 5} more" if len(why) > 5 else "")
    if len(why) == len(starts):
        raise TimeticInputError(
            f"every series has nothing to forecast: {shown}; a constant (or exactly periodic) series has "
            f"a seasonal-naive error of 0, so its MASE is undefined; pass series that vary"
        )
    warnings.warn(
        f"dropped {len(why)} of {len(starts)} series with nothing to forecast: {shown}; their "
        "seasonal-naive error is 0, so MASE is undefined for them",
        TimeticWarning,
        stacklevel=3,
    )
    keep = np.ones(long.height, dtype=bool)
    for k in why:
        keep[starts[k] : ends[k]] = False
    return long.filter(pl.Series(keep))


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
            offset = _to_offset(freq)
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
