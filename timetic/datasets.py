"""Loaders for the real evaluation datasets in the shared data folder.

The files are kept exactly as published (see ``MANIFEST.md`` in the data folder); this module parses
them at load time and never copies or rewrites them. The folder is ``$TIMETIC_DATA_DIR`` when set,
else ``../shared/datasets`` next to the repository (see :func:`data_dir`).

Each registered dataset (:data:`DATASETS`) is a :class:`DatasetSpec` whose ``load`` returns the long
frame ``(item_id, timestamp, target)``; :func:`load_dataset` validates it through
:func:`timetic.data.load_target` and returns a :class:`~timetic.data.Target`.

Every loader ends in the same clean-up (:func:`regularize`), so that validation always succeeds:

* ``inf`` and sentinel values become NaN (the Jena weather file codes missing as ``-9999``);
* duplicate timestamps within a series are averaged (weather has one repeated 10-minute row; the
  regular GEFCom R series and the UTC Victoria file have no DST duplicates, but the rule stands);
* each series is re-indexed to the regular grid of its frequency between its first and last
  timestamp, gaps becoming NaN (weather misses 9 rows on 2020-05-29);
* leading and trailing NaN runs are trimmed (Beijing PM2.5 starts with a day of ``NA``), and series
  that are entirely NaN are dropped.

Per-dataset choices (documented in each spec's ``description``):

* M4 files hold no timestamps: each row is a series id (``V1``) and values ``V2..Vn`` (NaN-padded).
  Train and test are concatenated, so the last 48 (hourly) / 13 (weekly) points of a series are the
  official M4 test; the timestamps are a synthetic regular index starting 2000-01-01 00:00 (hourly)
  or Sunday 2000-01-02 (weekly, ``W-SUN``) for every series.
* The R files (``.rda``, read with the ``rdata`` package) hold ``ts``/``msts`` objects whose start is
  a fractional year; the calendar start is taken from the competitions' documentation instead:
  NN5 1996-03-18 (daily), GEFCom2012 load 2004-01-01 00:00 (hour 1 of the competition file; the
  history ends 2008-06-30 05:00, and the 8 backcast weeks are NaN), GEFCom2012 wind 2009-07-01 00:00.
* Victoria electricity: the UTC timestamps are shifted to Australian Eastern *Standard* Time (fixed
  UTC+10, no daylight saving), so days line up with local days without DST duplicates or gaps.
* Weather: 18 of the 21 variables; ``rain``, ``raining`` (over 93% zeros) and the circular wind
  direction ``wd`` are left out. Item ids are the variable names without units (the file's header
  has mangled latin-1 unit characters).
* Air quality (Valencia): 9 series, the 8 pollutants and wind speed; wind direction is left out.
* Trading-day prices (``natural_gas``, ``brent``) use pandas' business-day frequency ``B`` end to
  end (:mod:`timetic.tasks` maps ``B`` to the daily presets, H 30/60/90 and C 256, with MASE season
  5): weekends are not on the grid, weekday holidays without a quote become NaN.
* Long formats: ``norway_car_sales`` (Year, Month, Make, Quantity) and ``onion_arrivals`` (market,
  English month name, year, quantity) become one series per make / market; rows for the same
  month are summed, absent months are NaN, and only series spanning at least :func:`min_length`
  of the monthly short task (88 months) with at most 20% missing months are kept.
  ``global_temp`` (Source, ``YYYY-MM``, Mean) becomes one series per source.
* Sentinels: ``-99.99`` in the Mauna Loa CO2 ``Average`` column is NaN (the ``Interpolated``
  column is not used); yearly files (``sea_level``, ``co2_fossil``) put each year on January 1.
* ``us_gdp`` uses the two level columns; the change columns are shifted by one quarter in the
  source file and are ignored. Its quarter starts are inferred by pandas as ``QS-OCT``, the same
  grid as the registered ``QS`` (:func:`load_dataset` compares grids, not offset names).
"""

from __future__ import annotations

import os
import sys
import time
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import polars as pl

from timetic.data import Target, load_target
from timetic.errors import TimeticInputError, TimeticWarning
from timetic.tasks import TASK_NAMES, Task, test_length

ENV_VAR = "TIMETIC_DATA_DIR"

__all__ = [
    "DATASETS", "DatasetSpec", "data_dir", "load_dataset", "min_length", "regularize", "supported_tasks",
    "summary", "main",
]


# ---------------------------------------------------------------------------------------------
# locating files


def data_dir() -> Path:
    """The folder holding the shared dataset files.

    ``$TIMETIC_DATA_DIR`` when set; else the first existing of ``<repo>/../shared/datasets``
    (relative to the installed package) and ``<cwd>/../shared/datasets``; else the first of them.
    """
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    import timetic

    candidates = [
        Path(timetic.__file__).resolve().parents[2] / "shared" / "datasets",
        Path.cwd().parent / "shared" / "datasets",
    ]
    for c in candidates:
        if c.is_dir():
            return c
    return candidates[0]


_default_dir = data_dir  # the functions below take a ``data_dir`` argument that shadows the name


def _path(directory: Path, file: str) -> Path:
    p = Path(directory) / file
    if not p.is_file():
        raise TimeticInputError(
            f"dataset file {file} not found in {directory}; set {ENV_VAR} to the folder holding the "
            "shared datasets"
        )
    return p


def _parse_error(file: str, e: Exception) -> TimeticInputError:
    reason = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
    return TimeticInputError(
        f"cannot parse dataset file {file}: {reason}; check it against SHA256SUMS in the data folder"
    )


# ---------------------------------------------------------------------------------------------
# registry


@dataclass(frozen=True)
class DatasetSpec:
    """One evaluation dataset.

    Attributes:
        name: registry id (``"etth1"``).
        file: the data file in the data folder (M4: the train file; see ``files``).
        freq: pandas frequency alias of the loaded series.
        domain, licence, source, description: provenance (``source`` is ``repo@commit:path``).
        files: every file the loader reads (defaults to ``(file,)``).
        n_series, lengths: the card's series count and (min, max) series length, as loaded from the
            published files (checked against the real folder by ``benchmarks/datasets_card.py``).
    """

    name: str
    file: str
    freq: str
    domain: str
    licence: str
    source: str
    description: str
    reader: Callable[[Path], pl.DataFrame] = field(repr=False, compare=False)
    files: tuple[str, ...] = ()
    n_series: int = 0
    lengths: tuple[int, int] = (0, 0)

    @property
    def all_files(self) -> tuple[str, ...]:
        return self.files or (self.file,)

    def card(self) -> dict:
        """The dataset card: provenance, shape and every parsing choice, as plain values."""
        return {
            "name": self.name,
            "source": self.source,
            "licence": self.licence,
            "freq": self.freq,
            "n_series": self.n_series,
            "lengths": self.lengths,
            "domain": self.domain,
            "files": self.all_files,
            "description": self.description,
        }

    def load(self, data_dir: str | Path | None = None) -> pl.DataFrame:
        """The cleaned long frame ``(item_id, timestamp, target)`` (see :func:`regularize`)."""
        directory = Path(data_dir) if data_dir is not None else _default_dir()
        for f in self.all_files:
            _path(directory, f)
        try:
            raw = self.reader(directory)
        except TimeticInputError:
            raise
        except Exception as e:  # malformed file: one clear line instead of a parser traceback
            raise _parse_error(self.file, e) from e
        return regularize(raw, self.freq)


# ---------------------------------------------------------------------------------------------
# clean-up shared by every loader


def regularize(frame: pl.DataFrame, freq: str) -> pl.DataFrame:
    """Clean a raw long frame so that :func:`timetic.data.load_target` accepts it.

    inf -> NaN; duplicate (item, timestamp) rows -> their mean (NaN-ignoring); each series
    re-indexed to the regular ``freq`` grid from its first to last timestamp (gaps -> NaN; rows off
    the grid are dropped with a :class:`TimeticWarning`); leading/trailing NaN trimmed; all-NaN
    series dropped. Series keep their order of first appearance.
    """
    df = frame.select(
        pl.col("item_id").cast(pl.Utf8),
        pl.col("timestamp").cast(pl.Datetime("ns")),
        pl.col("target").cast(pl.Float64),
    ).filter(pl.col("timestamp").is_not_null() & pl.col("item_id").is_not_null())
    # NaN / inf -> null, so that means skip them
    df = df.with_columns(
        pl.when(pl.col("target").is_finite()).then(pl.col("target")).otherwise(None).alias("target")
    )
    if df.select(pl.struct("item_id", "timestamp").is_duplicated().any()).item():
        df = df.group_by(["item_id", "timestamp"], maintain_order=True).agg(pl.col("target").mean())
    bounds = df.group_by("item_id", maintain_order=True).agg(
        pl.col("timestamp").min().alias("lo"), pl.col("timestamp").max().alias("hi")
    )
    grids = []
    for item, lo, hi in bounds.iter_rows():
        ts = _grid(pd.Timestamp(lo), freq, end=pd.Timestamp(hi))
        grids.append(
            pl.DataFrame(
                {"item_id": pl.Series([item] * len(ts), dtype=pl.Utf8), "timestamp": pl.Series(ts)}
            ).with_columns(pl.col("timestamp").cast(pl.Datetime("ns")))
        )
    if not grids:
        return pl.DataFrame(schema={"item_id": pl.Utf8, "timestamp": pl.Datetime("ns"), "target": pl.Float64})
    grid = pl.concat(grids)
    off = df.join(grid, on=["item_id", "timestamp"], how="anti")
    if off.height:
        warnings.warn(
            f"dropped {off.height} rows whose timestamps are off the {freq!r} grid (e.g. series "
            f"{off.get_column('item_id')[0]!r} at {off.get_column('timestamp')[0]})",
            TimeticWarning,
            stacklevel=2,
        )
    out = grid.join(df, on=["item_id", "timestamp"], how="left", maintain_order="left")
    # trim leading / trailing NaN; series without any value disappear in the inner join
    out = out.with_columns(pl.int_range(pl.len()).over("item_id").alias("_i"))
    span = (
        out.filter(pl.col("target").is_not_null())
        .group_by("item_id")
        .agg(pl.col("_i").min().alias("_lo"), pl.col("_i").max().alias("_hi"))
    )
    out = out.join(span, on="item_id", how="inner", maintain_order="left").filter(
        (pl.col("_i") >= pl.col("_lo")) & (pl.col("_i") <= pl.col("_hi"))
    )
    return out.select(
        "item_id", "timestamp", pl.col("target").fill_null(float("nan"))
    )


def _grid(start: pd.Timestamp, freq: str, *, end: pd.Timestamp | None = None, periods: int | None = None) -> np.ndarray:
    """Regular ``datetime64[ns]`` timestamps from ``start`` (to ``end`` inclusive, or ``periods`` of them).

    Fixed steps (seconds to days, and weeks: 7-day steps from ``start`` whatever the anchor day)
    use numpy arithmetic, since pandas' ``date_range`` is slow for anchored weekly offsets; calendar
    offsets (months, quarters, years) use ``date_range``. The first timestamp is always ``start``.
    """
    off = pd.tseries.frequencies.to_offset(freq)
    step = None
    if isinstance(off, pd.offsets.Tick):
        step = int(off.nanos)
    elif isinstance(off, pd.offsets.Week):
        step = int(off.n) * 7 * 86_400 * 10**9
    t0 = np.datetime64(start.to_datetime64(), "ns")
    if step is not None:
        n = periods if periods is not None else int((end.value - start.value) // step) + 1
        return t0 + np.arange(max(n, 0), dtype=np.int64) * np.timedelta64(step, "ns")
    if periods is not None:
        return pd.date_range(start, periods=periods, freq=freq).values.astype("datetime64[ns]")
    ts = pd.date_range(start, end, freq=freq)
    if len(ts) == 0 or ts[0] != start:  # start off the offset's anchor: keep it as the first point
        ts = pd.DatetimeIndex([start]).append(ts[ts > start])
    return ts.values.astype("datetime64[ns]")


# ---------------------------------------------------------------------------------------------
# readers, by format family


def _wide_to_long(df: pl.DataFrame, ts_col: str, value_cols: list[str], names: list[str] | None = None) -> pl.DataFrame:
    names = names or value_cols
    parts = [
        df.select(
            pl.lit(name, dtype=pl.Utf8).alias("item_id"),
            pl.col(ts_col).alias("timestamp"),
            pl.col(col).cast(pl.Float64, strict=False).alias("target"),
        )
        for col, name in zip(value_cols, names)
    ]
    return pl.concat(parts)


def _read_csv_bytes(data: bytes, **kw) -> pl.DataFrame:
    """A CSV from bytes: CRLF tolerated, undecodable (latin-1) header bytes replaced."""
    return pl.read_csv(
        data.replace(b"\r\n", b"\n"),
        encoding="utf8-lossy",
        infer_schema_length=None,
        null_values=["NA", "NaN", "nan", ""],
        **kw,
    )


def _zip_member(path: Path, member: str) -> bytes:
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        match = [n for n in names if n == member or n.endswith("/" + member)]
        if not match:
            raise TimeticInputError(
                f"{path.name} has no member {member} (members: {', '.join(names[:6])}); "
                "check the file against SHA256SUMS in the data folder"
            )
        return z.read(match[0])


def _ett(member: str) -> Callable[[Path], pl.DataFrame]:
    def read(d: Path) -> pl.DataFrame:
        df = _read_csv_bytes(_zip_member(_path(d, "ETT-small.zip"), member))
        df = df.with_columns(pl.col("date").cast(pl.Utf8).str.to_datetime("%Y-%m-%d %H:%M:%S"))
        cols = [c for c in df.columns if c != "date"]
        return _wide_to_long(df, "date", cols)

    return read


_WEATHER_DROP = ("rain", "raining", "wd")


def _weather(d: Path) -> pl.DataFrame:
    df = _read_csv_bytes(_zip_member(_path(d, "weather.zip"), "weather.csv"))
    df = df.with_columns(pl.col("date").cast(pl.Utf8).str.to_datetime("%Y-%m-%d %H:%M:%S"))
    cols = [c for c in df.columns if c != "date"]
    names = [c.split(" (")[0].strip() for c in cols]
    keep = [(c, n) for c, n in zip(cols, names) if n not in _WEATHER_DROP]
    long = _wide_to_long(df, "date", [c for c, _ in keep], [n for _, n in keep])
    # -9999 codes a missing reading in the Jena weather station files
    return long.with_columns(
        pl.when(pl.col("target") <= -9998).then(None).otherwise(pl.col("target")).alias("target")
    )


def _exchange_rate(d: Path) -> pl.DataFrame:
    df = _read_csv_bytes(_path(d, "exchange_rate.csv").read_bytes())
    df = df.with_columns(pl.col("date").cast(pl.Utf8).str.to_datetime("%Y/%m/%d %H:%M"))
    cols = [c for c in df.columns if c != "date"]
    return _wide_to_long(df, "date", cols, [c if c == "OT" else f"cur{c}" for c in cols])


def _ili(d: Path) -> pl.DataFrame:
    df = _read_csv_bytes(_path(d, "national_illness.csv").read_bytes())
    df = df.with_columns(pl.col("date").cast(pl.Utf8).str.to_datetime("%Y-%m-%d %H:%M:%S"))
    cols = [c for c in df.columns if c != "date"]
    return _wide_to_long(df, "date", cols)


def _beijing(d: Path) -> pl.DataFrame:
    df = _read_csv_bytes(_zip_member(_path(d, "beijing_pm2.5.zip"), "raw.csv"))
    df = df.with_columns(pl.datetime("year", "month", "day", "hour").alias("timestamp"))
    return _wide_to_long(df, "timestamp", ["pm2.5"], ["pm2.5"])


def _require(df: pl.DataFrame, file: str, cols: list[str]) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise TimeticInputError(
            f"{file} lacks column(s) {', '.join(missing)} (columns: {', '.join(df.columns[:8])}); "
            "check the file against SHA256SUMS in the data folder"
        )


def _year_start(col: pl.Expr) -> pl.Expr:
    """An integer year column -> January 1 of that year."""
    return pl.date(col.cast(pl.Int32), 1, 1)


def _month_start(col: pl.Expr) -> pl.Expr:
    """A ``YYYY-MM`` text column -> the first day of that month."""
    return (col.cast(pl.Utf8).str.strip_chars() + "-01").str.to_date("%Y-%m-%d")


def _single_csv(
    file: str,
    ts_col: str,
    value_cols: list[str],
    names: list[str] | None = None,
    fmt: str | None = None,
    *,
    parse: Callable[[pl.Expr], pl.Expr] | None = None,
    sentinel: float | None = None,
) -> Callable[[Path], pl.DataFrame]:
    """A wide CSV: one timestamp column and one series per value column.

    ``fmt`` is the timestamp's strftime format (``parse``, an expression builder, replaces it for
    years or year-months); ``sentinel`` is a missing-value code that becomes NaN.
    """

    def read(d: Path) -> pl.DataFrame:
        df = _read_csv_bytes(_path(d, file).read_bytes())
        _require(df, file, [ts_col, *value_cols])
        ts = parse(pl.col(ts_col)) if parse is not None else pl.col(ts_col).cast(pl.Utf8).str.to_datetime(fmt)
        df = df.with_columns(ts.alias(ts_col))
        long = _wide_to_long(df, ts_col, value_cols, names)
        if sentinel is not None:
            long = long.with_columns(
                pl.when((pl.col("target") - sentinel).abs() < 1e-9).then(None).otherwise(pl.col("target")).alias("target")
            )
        return long

    return read


def _concat(*readers: Callable[[Path], pl.DataFrame]) -> Callable[[Path], pl.DataFrame]:
    """Several single-file readers as one dataset (series in the readers' order)."""

    def read(d: Path) -> pl.DataFrame:
        return pl.concat([r(d) for r in readers])

    return read


def min_length(task: str, freq: str) -> int:
    """The shortest series length that supports preset ``task`` at ``freq``.

    The smallest L with ``L - test_length(L, task) >= context + horizon`` (see
    :func:`supported_tasks`): monthly short 88, quarterly short 48, yearly short 28, daily short 318.
    """
    t = Task.preset(task, freq)
    L = t.window_length
    while L - test_length(L, t) < t.window_length:
        L += 1
    return L


def _keep_dense(frame: pl.DataFrame, freq: str, task: str = "short", max_nan: float = 0.2) -> pl.DataFrame:
    """Regularize a long frame, then keep the series long and complete enough.

    A series stays when its length on the ``freq`` grid (first to last observation) is at least
    :func:`min_length` of ``task`` and at most ``max_nan`` of its points are missing.
    """
    reg = regularize(frame, freq)
    stats = reg.group_by("item_id", maintain_order=True).agg(
        pl.len().alias("n"), pl.col("target").is_nan().mean().alias("nan")
    )
    keep = stats.filter((pl.col("n") >= min_length(task, freq)) & (pl.col("nan") <= max_nan)).get_column("item_id")
    return reg.filter(pl.col("item_id").is_in(keep.implode()))


_NORWAY = "norway_car_sales_by_make.csv"


def _norway_car_sales(d: Path) -> pl.DataFrame:
    # Make is a quoted name; 10 rows have an unquoted R ``NA`` (unknown make, 1-4 cars): dropped.
    df = _read_csv_bytes(_path(d, _NORWAY).read_bytes())
    _require(df, _NORWAY, ["Year", "Month", "Make", "Quantity"])
    df = df.filter(pl.col("Make").is_not_null()).with_columns(
        pl.col("Make").cast(pl.Utf8).str.strip_chars(), pl.col("Quantity").cast(pl.Float64, strict=False)
    )
    # a make listed twice in a month (Lexus 2015-04: 73 and 1) sells the sum of both rows
    df = df.group_by(["Make", "Year", "Month"], maintain_order=True).agg(
        pl.when(pl.col("Quantity").count() > 0).then(pl.col("Quantity").sum()).alias("Quantity")
    )
    long = df.select(
        pl.col("Make").alias("item_id"),
        pl.date(pl.col("Year").cast(pl.Int32), pl.col("Month").cast(pl.Int8), 1).alias("timestamp"),
        pl.col("Quantity").alias("target"),
    )
    return _keep_dense(long, "MS")


_ONION = "onion_market_arrivals.csv"
_MONTHS = {m: i + 1 for i, m in enumerate(
    ["january", "february", "march", "april", "may", "june", "july", "august", "september",
     "october", "november", "december"]
)}


def _onion_arrivals(d: Path) -> pl.DataFrame:
    df = _read_csv_bytes(_path(d, _ONION).read_bytes())
    _require(df, _ONION, ["market", "month", "year", "quantity"])
    month = pl.col("month").cast(pl.Utf8).str.strip_chars().str.to_lowercase()
    df = df.with_columns(month.replace_strict(_MONTHS, default=None, return_dtype=pl.Int8).alias("_m"))
    bad = df.filter(pl.col("_m").is_null() & pl.col("month").is_not_null())
    if bad.height:
        raise TimeticInputError(
            f"{_ONION} has an unknown month name {bad.get_column('month')[0]!r}; check the file "
            "against SHA256SUMS in the data folder"
        )
    df = df.with_columns(
        pl.col("market").cast(pl.Utf8).str.strip_chars(), pl.col("quantity").cast(pl.Float64, strict=False)
    ).group_by(["market", "year", "_m"], maintain_order=True).agg(
        pl.when(pl.col("quantity").count() > 0).then(pl.col("quantity").sum()).alias("quantity")
    )
    long = df.select(
        pl.col("market").alias("item_id"),
        pl.date(pl.col("year").cast(pl.Int32), pl.col("_m"), 1).alias("timestamp"),
        pl.col("quantity").alias("target"),
    )
    return _keep_dense(long, "MS")


_GLOBAL_TEMP = "global_temp_monthly.csv"


def _global_temp(d: Path) -> pl.DataFrame:
    df = _read_csv_bytes(_path(d, _GLOBAL_TEMP).read_bytes())
    _require(df, _GLOBAL_TEMP, ["Source", "Year", "Mean"])
    return df.select(
        pl.col("Source").cast(pl.Utf8).str.strip_chars().alias("item_id"),
        _month_start(pl.col("Year")).alias("timestamp"),
        pl.col("Mean").cast(pl.Float64, strict=False).alias("target"),
    )


def _vic_electricity(d: Path) -> pl.DataFrame:
    df = _read_csv_bytes(_path(d, "vic_electricity.csv").read_bytes())
    ts = (
        pl.col("Time").cast(pl.Utf8).str.to_datetime("%Y-%m-%dT%H:%M:%SZ", time_zone="UTC")
        .dt.convert_time_zone("Etc/GMT-10")  # fixed UTC+10 (AEST), no daylight saving
        .dt.replace_time_zone(None)
    )
    df = df.with_columns(ts.alias("Time"))
    return _wide_to_long(df, "Time", ["Demand"], ["demand"])


def _m4(train: str, test: str, start: str, freq: str) -> Callable[[Path], pl.DataFrame]:
    def rows(path: Path) -> tuple[list[str], np.ndarray]:
        df = pl.read_csv(path.read_bytes().replace(b"\r\n", b"\n"), infer_schema=False)
        ids = df.get_column(df.columns[0]).to_list()
        values = (
            df.select(pl.col(c).cast(pl.Float64, strict=False) for c in df.columns[1:]).to_numpy()
            if df.width > 1
            else np.empty((df.height, 0))
        )
        return [str(i) for i in ids], values

    def read(d: Path) -> pl.DataFrame:
        train_ids, train_v = rows(_path(d, train))
        test_ids, test_v = rows(_path(d, test))
        tests = dict(zip(test_ids, test_v))
        if set(train_ids) != set(test_ids):
            raise TimeticInputError(
                f"{train} and {test} hold different series ids; check both files against SHA256SUMS"
            )
        t0 = pd.Timestamp(start)
        parts = []
        for sid, tr in zip(train_ids, train_v):
            te = tests[sid]
            # values are NaN-padded on the right: keep the leading observed run of each row
            y = np.concatenate([tr[: _n_leading(tr)], te[: _n_leading(te)]])
            ts = _grid(t0, freq, periods=len(y))
            parts.append(
                pl.DataFrame(
                    {"item_id": [sid] * len(y), "timestamp": pl.Series(ts), "target": y}
                )
            )
        return pl.concat(parts)

    return read


def _n_leading(v: np.ndarray) -> int:
    """Length of the row without its right NaN padding."""
    ok = np.flatnonzero(~np.isnan(v))
    return int(ok[-1]) + 1 if ok.size else 0


def _rda(file: str, start: str, freq: str, rename: Callable[[str], str] = str) -> Callable[[Path], pl.DataFrame]:
    def read(d: Path) -> pl.DataFrame:
        path = _path(d, file)
        try:
            import rdata
        except ImportError as e:
            raise TimeticInputError(
                f"reading {file} needs the rdata package; pip install rdata"
            ) from e

        def ts(obj, attrs):  # keep the raw values; the calendar start comes from the spec
            return np.asarray(obj, dtype=np.float64)

        classes = dict(rdata.conversion.DEFAULT_CLASS_MAP)
        classes["ts"] = ts
        classes["msts"] = ts
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            converted = rdata.conversion.convert(rdata.parser.parse_file(path), classes)
        if len(converted) != 1:
            raise TimeticInputError(
                f"{file} holds {len(converted)} R objects, expected one list of series; check the file"
            )
        series = next(iter(converted.values()))
        if isinstance(series, dict):
            items = list(series.items())
        elif isinstance(series, (list, tuple)):
            items = [(str(i + 1), s) for i, s in enumerate(series)]
        else:
            raise TimeticInputError(
                f"{file} holds a {type(series).__name__}, expected a list of time series; check the file"
            )
        t0 = pd.Timestamp(start)
        parts = []
        for name, values in items:
            y = np.asarray(values, dtype=np.float64).ravel()
            ts_index = _grid(t0, freq, periods=len(y))
            parts.append(
                pl.DataFrame(
                    {"item_id": [rename(str(name))] * len(y), "timestamp": pl.Series(ts_index), "target": y}
                )
            )
        return pl.concat(parts)

    return read


# ---------------------------------------------------------------------------------------------
# the registry

_ASPIRE = "aspire-zero/long_term_forecast_data@e9ac8b3e"
_SSCF = "junwoopark92/Self-Supervised-Contrastive-Forecsating@f394705a"
_M4 = "Mcompetitions/M4-methods@6c1067e5"
_TSCOMP = "robjhyndman/tscompdata@668b3451"
_SKF = "skforecast/skforecast-datasets@f8c3d7fe"
_ETT_LIC = "CC BY-ND 4.0 (redistribute unmodified, attribute)"
_ETT_DESC = (
    "Electricity Transformer Temperature ({site}, {res}), 2016-07 to 2018-06: oil temperature OT "
    "and 6 load variables (HUFL, HULL, MUFL, MULL, LUFL, LULL), each one series."
)


def _spec(name, file, freq, domain, licence, source, description, reader, files=(), *, series, lengths) -> DatasetSpec:
    if isinstance(lengths, int):
        lengths = (lengths, lengths)
    return DatasetSpec(name, file, freq, domain, licence, source, description, reader, tuple(files),
                       int(series), (int(lengths[0]), int(lengths[1])))


_SPECS = [
    _spec("etth1", "ETT-small.zip", "h", "energy", _ETT_LIC, f"{_ASPIRE}:ETT-small.zip/ETTh1.csv",
          _ETT_DESC.format(site="station 1", res="hourly"), _ett("ETTh1.csv"), series=7, lengths=17420),
    _spec("etth2", "ETT-small.zip", "h", "energy", _ETT_LIC, f"{_ASPIRE}:ETT-small.zip/ETTh2.csv",
          _ETT_DESC.format(site="station 2", res="hourly"), _ett("ETTh2.csv"), series=7, lengths=17420),
    _spec("ettm1", "ETT-small.zip", "15min", "energy", _ETT_LIC, f"{_ASPIRE}:ETT-small.zip/ETTm1.csv",
          _ETT_DESC.format(site="station 1", res="15-minute"), _ett("ETTm1.csv"), series=7, lengths=69680),
    _spec("ettm2", "ETT-small.zip", "15min", "energy", _ETT_LIC, f"{_ASPIRE}:ETT-small.zip/ETTm2.csv",
          _ETT_DESC.format(site="station 2", res="15-minute"), _ett("ETTm2.csv"), series=7, lengths=69680),
    _spec("weather", "weather.zip", "10min", "weather", "original: MPI-BGC Jena, none stated",
          f"{_ASPIRE}:weather.zip",
          "Jena weather station 2020, 10-minute: 18 of 21 variables as series (rain, raining and wind "
          "direction left out; ids are the header names without units, whose latin-1 bytes are "
          "mangled; CRLF tolerated); -9999 codes -> NaN; one duplicated row averaged, one 100-minute "
          "gap -> NaN.",
          _weather, series=18, lengths=52704),
    _spec("exchange_rate", "exchange_rate.csv", "D", "finance", "none stated",
          f"{_SSCF}:dataset/exchange_rate/exchange_rate.csv",
          "Daily exchange rates of 8 currencies vs USD, 1990-2010 (ids cur0..cur6 and OT); dates "
          "'YYYY/M/D 0:00'; the file has every calendar day (no trading-day gaps).",
          _exchange_rate, series=8, lengths=7588),
    _spec("ili", "national_illness.csv", "W-TUE", "health", "none stated",
          f"{_SSCF}:dataset/illness/national_illness.csv",
          "US influenza-like illness, weekly (Tuesdays) 2002-2020: the 7 numeric columns as series.",
          _ili, series=7, lengths=966),
    _spec("m4_hourly", "m4_hourly_train.csv", "h", "mixed", "none stated",
          f"{_M4}:Dataset/Train/Hourly-train.csv + Dataset/Test/Hourly-test.csv",
          "M4 Hourly, 414 series: train + test concatenated (last 48 points = official test), right "
          "NaN padding of each row removed; synthetic hourly timestamps from 2000-01-01 00:00.",
          _m4("m4_hourly_train.csv", "m4_hourly_test.csv", "2000-01-01", "h"),
          files=("m4_hourly_train.csv", "m4_hourly_test.csv"), series=414, lengths=(748, 1008)),
    _spec("m4_weekly", "m4_weekly_train.csv", "W-SUN", "mixed", "none stated",
          f"{_M4}:Dataset/Train/Weekly-train.csv + Dataset/Test/Weekly-test.csv",
          "M4 Weekly, 359 series: train + test concatenated (last 13 points = official test), right "
          "NaN padding of each row removed; synthetic weekly timestamps from Sunday 2000-01-02.",
          _m4("m4_weekly_train.csv", "m4_weekly_test.csv", "2000-01-02", "W-SUN"),
          files=("m4_weekly_train.csv", "m4_weekly_test.csv"), series=359, lengths=(93, 2610)),
    _spec("nn5", "nn5.rda", "D", "finance / cash", "GPL-3", f"{_TSCOMP}:data/nn5.rda",
          "NN5 daily ATM cash withdrawals, 111 series from 1996-03-18 (train + 56-day test), missing "
          "days NaN; R ts objects read with rdata, calendar start from the competition documentation.",
          _rda("nn5.rda", "1996-03-18", "D"), series=111, lengths=791),
    _spec("gefcom_load", "gefcom2012_load.rda", "h", "energy", "GPL-3", f"{_TSCOMP}:data/gefcom2012_load.rda",
          "GEFCom2012 hourly load of 20 US utility zones (zone01..zone20), 2004-01-01 00:00 to "
          "2008-06-30 05:00; the 8 backcast test weeks are NaN; R msts objects read with rdata, "
          "calendar start from the competition documentation.",
          _rda("gefcom2012_load.rda", "2004-01-01 00:00", "h", lambda s: f"zone{int(s):02d}" if s.isdigit() else s),
          series=20, lengths=39414),
    _spec("gefcom_wind", "gefcom2012_wind.rda", "h", "renewables", "GPL-3", f"{_TSCOMP}:data/gefcom2012_wp.rda",
          "GEFCom2012 normalised hourly wind power of 7 farms (wp1..wp7), 2009-07-01 00:00 to "
          "2010-12-31 23:00 (13,176 hours, no gaps); R msts objects read with rdata, calendar start "
          "from the competition documentation.",
          _rda("gefcom2012_wind.rda", "2009-07-01 00:00", "h"), series=7, lengths=13176),
    _spec("nyc_taxi", "nyc_taxi.csv", "30min", "transport", "MIT", "numenta/NAB@ea702d75:data/realKnownCause/nyc_taxi.csv",
          "NYC taxi passengers per 30 minutes, 2014-07 to 2015-01, one series.",
          _single_csv("nyc_taxi.csv", "timestamp", ["value"], ["passengers"], "%Y-%m-%d %H:%M:%S"),
          series=1, lengths=10320),
    _spec("bike_sharing", "bike_sharing.csv", "h", "mobility", "UCI via skforecast (BSD-3 repo)",
          f"{_SKF}:data/bike_sharing_dataset_clean.csv",
          "Washington D.C. bike sharing, hourly total users 2011-2012, one series (weather covariates unused).",
          _single_csv("bike_sharing.csv", "date_time", ["users"], ["users"], "%Y-%m-%d %H:%M:%S"),
          series=1, lengths=17544),
    _spec("air_quality", "air_quality_valencia.csv", "h", "air quality", "skforecast-datasets (BSD-3 repo)",
          f"{_SKF}:data/air_quality_valencia_no_missing.csv",
          "Valencia hourly air quality 2019-2023: 8 pollutants and wind speed as 9 series (wind "
          "direction left out; 'veloc.' renamed wind_speed); CRLF tolerated.",
          _single_csv("air_quality_valencia.csv", "datetime",
                      ["so2", "co", "no", "no2", "pm10", "nox", "o3", "veloc.", "pm2.5"],
                      ["so2", "co", "no", "no2", "pm10", "nox", "o3", "wind_speed", "pm2.5"],
                      "%Y-%m-%d %H:%M:%S"),
          series=9, lengths=43824),
    _spec("vic_electricity", "vic_electricity.csv", "30min", "energy", "fpp3 / tsibbledata origin (GPL-3)",
          f"{_SKF}:data/vic_electricity.csv",
          "Victoria (Australia) half-hourly electricity demand 2012-2014, one series; UTC timestamps "
          "shifted to fixed UTC+10 (standard time, no DST).",
          _vic_electricity, series=1, lengths=52608),
    _spec("beijing_pm25", "beijing_pm2.5.zip", "h", "air quality", "UCI (CC BY 4.0)",
          f"{_ASPIRE}:Beijing_pm2.5.zip",
          "Beijing US-embassy PM2.5, hourly 2010-2014, one series; timestamps from the year, month, "
          "day, hour columns; NA -> NaN, leading NA day trimmed.",
          _beijing, series=1, lengths=43800),
    # --- energy prices: trading days only, on pandas' business-day grid ------------------------
    _spec("natural_gas", "natural_gas_daily.csv", "B", "energy prices", "ODC-PDDL-1.0",
          "datasets/natural-gas@f7771269:data/daily.csv",
          "Henry Hub natural gas spot price (US EIA, USD/MMBtu), trading days 1997-01-07 to "
          "2026-08-18, one series. Business-day frequency 'B' end to end (short/medium/long = "
          "H 30/60/90 business days, C 256, MASE season 5): the 289 weekday holidays without a "
          "quote -> NaN, weekends are not on the grid; the one empty price (2018-01-05) -> NaN.",
          _single_csv("natural_gas_daily.csv", "Date", ["Price"], ["henry_hub"], "%Y-%m-%d"),
          series=1, lengths=7726),
    _spec("brent", "brent_daily.csv", "B", "energy prices", "ODC-PDDL-1.0",
          "datasets/oil-prices@2d75ce3a:data/brent-daily.csv",
          "Brent crude oil spot price (US EIA, USD/barrel), trading days 1987-05-20 to 2026-08-18, one "
          "series. Business-day frequency 'B' end to end (as natural_gas): the 282 weekday holidays "
          "without a quote -> NaN, weekends are not on the grid.",
          _single_csv("brent_daily.csv", "Date", ["Price"], ["brent"], "%Y-%m-%d"),
          series=1, lengths=10240),
    # --- macro-economics and retail -------------------------------------------------------------
    _spec("us_cpi", "us_cpi_monthly.csv", "MS", "macro-economics", "ODC-PDDL-1.0",
          "datasets/cpi-us@a1f785a4:data/cpiai.csv",
          "US CPI-U all items index level (1982-84 = 100), monthly 1913-01 to 2026-05, one series "
          "(the Index column; the derived monthly Inflation % column is not used); the month the "
          "file lacks (2025-10, not published) -> NaN.",
          _single_csv("us_cpi_monthly.csv", "Date", ["Index"], ["cpi_u"], "%Y-%m-%d"),
          series=1, lengths=1361),
    _spec("us_gdp", "us_gdp_quarterly.csv", "QS", "macro-economics", "ODC-PDDL-1.0",
          "datasets/gdp-us@bb5921d6:data/quarter.csv",
          "US GDP (BEA, billions of USD, seasonally adjusted annual rate), quarterly 1947Q1 to 2024Q4: "
          "the two level columns as series, gdp_current (level-current, current dollars) and "
          "gdp_chained (level-chained, chained dollars; values match the 2017 base although the "
          "source metadata says 2009). The change-current / change-chained columns are NOT used: "
          "they are shifted (row t holds the growth into quarter t+1). Quarter-start dates "
          "(Jan/Apr/Jul/Oct 1) on the 'QS' grid.",
          _single_csv("us_gdp_quarterly.csv", "date", ["level-current", "level-chained"],
                      ["gdp_current", "gdp_chained"], "%Y-%m-%d"),
          series=2, lengths=312),
    _spec("us_retail", "us_retail_sales.csv", "MS", "retail", "MIT (repo)",
          "facebook/prophet@181f4479:examples/example_retail_sales.csv",
          "US monthly retail sales (Census, millions of USD, not seasonally adjusted), 1992-01 to "
          "2016-05, one series (columns ds, y).",
          _single_csv("us_retail_sales.csv", "ds", ["y"], ["retail_sales"], "%Y-%m-%d"),
          series=1, lengths=293),
    _spec("norway_car_sales", _NORWAY, "MS", "transport / retail", "none stated",
          "selva86/datasets@c943fa88:norway_new_car_sales_by_make.csv",
          "New passenger cars sold in Norway per make, monthly 2007-01 to 2017-01, from the long "
          "format (Year, Month, Make, Quantity, Pct): one series per make, the Quantity column (Pct "
          "unused). The 10 rows whose Make is R's unquoted NA (unknown makes, 1-4 cars) are dropped; "
          "a make listed twice in a month (Lexus 2015-04: 73 and 1) gets the sum. A month without a "
          "row for a make -> NaN (absence is not recorded as 0). Kept: makes whose first-to-last "
          "span is at least 88 months (the shortest length for the monthly short task) with at most "
          "20% missing months: 31 of 65 makes. Dropped: 22 makes spanning under 88 months (Binz, "
          "Chrysler, Dacia, Daihatsu, DS, Dodge, Fisker, Infiniti, Isuzu, Koenigsegg, Lotus, Martin "
          "Motors, McLaren, Mia, Polaris, Saab, Seat, Secma, Tata, Tazzari, Think, Westfield) and 12 "
          "with over 20% missing months (Aston Martin, Bentley, Cadillac, Chevrolet US, Ferrari, "
          "Iveco, Lamborghini, Lancia, Maserati, Morgan, Nilsson, Ssangyong).",
          _norway_car_sales, series=31, lengths=(88, 121)),
    _spec("onion_arrivals", _ONION, "MS", "agriculture", "none stated",
          "selva86/datasets@c943fa88:MarketArrivals.csv",
          "Monthly onion arrivals (quantity, quintals) at Indian wholesale markets, 1996-01 to "
          "2016-02, from the long format (market, month name, year, quantity, priceMin, priceMax, "
          "priceMod, state, city, date): one series per market, the quantity variable (the three "
          "prices are not used); timestamps from the English month name and the year column (the "
          "redundant 'Month-Year' date column is ignored). A missing month -> NaN. Kept: markets "
          "spanning at least 88 months (monthly short task) with at most 20% missing months: 50 "
          "of 120 markets; dropped: 45 markets spanning under 88 months and 25 with over 20% "
          "missing months.",
          _onion_arrivals, series=50, lengths=(110, 242)),
    # --- web, health, demography ----------------------------------------------------------------
    _spec("peyton_manning", "wp_log_peyton_manning.csv", "D", "web traffic", "MIT (repo)",
          "facebook/prophet@181f4479:examples/example_wp_log_peyton_manning.csv",
          "Daily Wikipedia page views of Peyton Manning, as published: natural log of the count, "
          "2007-12-10 to 2016-01-20, one series; the 59 days absent from the file -> NaN on the "
          "daily grid.",
          _single_csv("wp_log_peyton_manning.csv", "ds", ["y"], ["log_views"], "%Y-%m-%d"),
          series=1, lengths=2964),
    _spec("covid19", "covid19_key_countries_daily.csv", "D", "health",
          "ODC-PDDL (datasets/covid-19; data from JHU CSSE)",
          "datasets/covid-19@daefa2fe:data/key-countries-pivoted.csv",
          "COVID-19 cumulative confirmed cases, daily 2020-01-22 to 2022-04-16, 8 countries (China, "
          "US, United_Kingdom, Italy, France, Germany, Spain, Iran) as 8 series; kept as published: "
          "cumulative counts with their leading zeros and the few downward revisions.",
          _single_csv("covid19_key_countries_daily.csv", "Date",
                      ["China", "US", "United_Kingdom", "Italy", "France", "Germany", "Spain", "Iran"],
                      fmt="%Y-%m-%d"),
          series=8, lengths=816),
    _spec("female_births", "daily_total_female_births.csv", "D", "health / demography", "none stated",
          "jbrownlee/Datasets@d20fcb64:daily-total-female-births.csv",
          "Daily total female births in California, 1959 (Time Series Data Library), one series of "
          "365 days; long enough for the daily short task only.",
          _single_csv("daily_total_female_births.csv", "Date", ["Births"], ["births"], "%Y-%m-%d"),
          series=1, lengths=365),
    # --- weather and climate ----------------------------------------------------------------------
    _spec("melbourne_temp", "melbourne_daily_min_temperatures.csv", "D", "weather", "none stated",
          "jbrownlee/Datasets@d20fcb64:daily-min-temperatures.csv",
          "Daily minimum temperature (deg C) in Melbourne, 1981-1990 (Time Series Data Library), one "
          "series; the two days the file lacks (1984-12-31, 1988-12-31) -> NaN.",
          _single_csv("melbourne_daily_min_temperatures.csv", "Date", ["Temp"], ["min_temp"], "%Y-%m-%d"),
          series=1, lengths=3652),
    _spec("global_temp", _GLOBAL_TEMP, "MS", "climate", "ODC-PDDL-1.0",
          "datasets/global-temp@80921494:data/monthly.csv",
          "Global mean surface temperature anomaly (deg C), monthly, from the long format (Source, "
          "Year = 'YYYY-MM', Mean): one series per source, gcag (NOAA GCAG, 1850-01 to 2024-07) and "
          "GISTEMP (NASA, 1880-01 to 2023-12).",
          _global_temp, series=2, lengths=(1728, 2095)),
    _spec("co2_mauna_loa", "co2_mauna_loa_monthly.csv", "MS", "climate", "ODC-PDDL-1.0",
          "datasets/co2-ppm@af2c0a6f:data/co2-mm-mlo.csv",
          "Mauna Loa atmospheric CO2 (ppm), monthly 1958-03 to 2016-12, one series: the measured "
          "Average column, its 7 missing months (code -99.99) -> NaN. The Interpolated column (which "
          "fills those months from the seasonal cycle, i.e. model values) and the Trend, Decimal "
          "Date and Number of Days (-1 = unknown) columns are not used.",
          _single_csv("co2_mauna_loa_monthly.csv", "Date", ["Average"], ["co2_ppm"], "%Y-%m-%d", sentinel=-99.99),
          series=1, lengths=706),
    _spec("sea_level", "sea_level_yearly.csv", "YS", "climate", "ODC-PDDL-1.0",
          "datasets/sea-level-rise@dfe65e4c:data/epa-sea-level.csv",
          "Global mean sea level change (EPA, inches), yearly: csiro (CSIRO Adjusted Sea Level, "
          "1880-2013) and noaa (NOAA Adjusted Sea Level, 1993-2023) as two series, each trimmed to "
          "its own years; the CSIRO lower / upper error bounds are not used. Year -> January 1. "
          "noaa (31 years) supports the yearly short task only.",
          _single_csv("sea_level_yearly.csv", "Year", ["CSIRO Adjusted Sea Level", "NOAA Adjusted Sea Level"],
                      ["csiro", "noaa"], parse=_year_start),
          series=2, lengths=(31, 134)),
    _spec("co2_fossil", "co2_fossil_global_yearly.csv", "YS", "environment", "ODC-PDDL-1.0",
          "datasets/co2-fossil-global@7ef23628:data/global.csv",
          "Global CO2 emissions from fossil fuels and cement (CDIAC / GCP; million tonnes of carbon, "
          "per capita in tonnes), yearly 1750-2024: the 7 columns as series (total, gas_fuel, "
          "liquid_fuel, solid_fuel, cement, gas_flaring, per_capita), each with its leading empty "
          "years trimmed (gas fuel starts 1882, liquid 1855, cement 1880, flaring 1950); zeros kept "
          "as published. Year -> January 1.",
          _single_csv("co2_fossil_global_yearly.csv", "Year",
                      ["Total", "Gas Fuel", "Liquid Fuel", "Solid Fuel", "Cement", "Gas Flaring", "Per Capita"],
                      ["total", "gas_fuel", "liquid_fuel", "solid_fuel", "cement", "gas_flaring", "per_capita"],
                      parse=_year_start),
          series=7, lengths=(75, 275)),
    # --- IT operations ----------------------------------------------------------------------------
    _spec("nab_aws_cpu", "nab_ec2_cpu_utilization_5f5533.csv", "5min", "IT operations", "MIT",
          "numenta/NAB@ea702d75:data/realAWSCloudwatch/ec2_cpu_utilization_5f5533.csv + "
          "data/realAWSCloudwatch/rds_cpu_utilization_cc0c53.csv",
          "AWS CloudWatch CPU utilisation (%) every 5 minutes, 2014-02-14 to 2014-02-28 (NAB "
          "realAWSCloudwatch): ec2_5f5533 (an EC2 instance, samples at :02/:07 ...) and rds_cc0c53 "
          "(an RDS instance, samples at :00/:05 ...), two files as two series, each on its own "
          "5-minute grid; the one point the RDS file misses -> NaN.",
          _concat(
              _single_csv("nab_ec2_cpu_utilization_5f5533.csv", "timestamp", ["value"], ["ec2_5f5533"], "%Y-%m-%d %H:%M:%S"),
              _single_csv("nab_rds_cpu_utilization_cc0c53.csv", "timestamp", ["value"], ["rds_cc0c53"], "%Y-%m-%d %H:%M:%S"),
          ),
          files=("nab_ec2_cpu_utilization_5f5533.csv", "nab_rds_cpu_utilization_cc0c53.csv"),
          series=2, lengths=(4032, 4033)),
]

#: The registered evaluation datasets by id.
DATASETS: dict[str, DatasetSpec] = {s.name: s for s in _SPECS}


# ---------------------------------------------------------------------------------------------
# public loading


def load_dataset(
    name: str,
    data_dir: str | Path | None = None,
    max_series: int | None = None,
    max_length: int | None = None,
) -> Target:
    """Load a registered dataset as a validated :class:`~timetic.data.Target`.

    Args:
        name: a key of :data:`DATASETS`.
        data_dir: the folder with the files; :func:`data_dir` when ``None``.
        max_series: keep the first N series in the file's order (deterministic).
        max_length: keep the last N points of each series.
    """
    spec = DATASETS.get(name)
    if spec is None:
        raise TimeticInputError(f"unknown dataset {name!r}; use one of {', '.join(DATASETS)}")
    for arg, v in (("max_series", max_series), ("max_length", max_length)):
        if v is not None and (not isinstance(v, (int, np.integer)) or v < 1):
            raise TimeticInputError(f"{arg} must be a positive integer, got {v!r}; pass N >= 1 or None")
    frame = spec.load(data_dir)
    if max_series is not None:
        keep = frame.get_column("item_id").unique(maintain_order=True).head(int(max_series))
        frame = frame.filter(pl.col("item_id").is_in(keep.implode()))
    if max_length is not None:
        frame = frame.group_by("item_id", maintain_order=True).tail(int(max_length))
        frame = regularize(frame, spec.freq)  # the kept tail may start with NaN (or be all NaN)
    if frame.height == 0:
        raise TimeticInputError(f"dataset {name!r} has no values left; check the data file")
    # Validate with the frequency inferred per series (fast), then check it is the registered one.
    # (Passing freq= makes load_target rebuild every series with pd.date_range, which takes seconds
    # for anchored weekly offsets such as M4's W-SUN.)
    target = load_target(frame, layout="long", name=name)
    if not _same_grid(target.freq, spec.freq, target.frame.get_column("timestamp")[0]):
        raise TimeticInputError(
            f"dataset {name!r} loaded at frequency {target.freq!r}, expected {spec.freq!r}; check the "
            "data file against SHA256SUMS"
        )
    target.freq = spec.freq
    return target


def _offset(freq: str):
    return pd.tseries.frequencies.to_offset(freq)


def _same_grid(inferred: str, registered: str, start) -> bool:
    """Whether two frequency aliases give the same timestamps from ``start``.

    pandas infers quarter starts on Jan/Apr/Jul/Oct as ``QS-OCT``, which is not the same offset
    object as the registered ``QS`` (``QS-JAN``) but the same grid.
    """
    if _offset(inferred) == _offset(registered):
        return True
    try:
        a = pd.date_range(pd.Timestamp(start), periods=12, freq=inferred)
        b = pd.date_range(pd.Timestamp(start), periods=12, freq=registered)
    except (ValueError, TypeError):
        return False
    return bool((a == b).all())


def supported_tasks(target: Target) -> dict[str, int]:
    """How many series of ``target`` support each preset task.

    A series of length L supports a task when ``L - test_length(L, task) >= task.window_length``
    (one full window fits before its final evaluation span).
    """
    lengths = target.lengths
    out = {}
    for t in TASK_NAMES:
        task = Task.preset(t, target.freq)
        out[t] = int(sum(int(L) - test_length(int(L), task) >= task.window_length for L in lengths))
    return out


def summary(
    names: list[str] | None = None,
    data_dir: str | Path | None = None,
    max_series: int | None = None,
    max_length: int | None = None,
) -> list[dict]:
    """One row per dataset: freq, n_series, min/median/max length, % NaN, load seconds, tasks."""
    rows = []
    for name in names or list(DATASETS):
        t0 = time.perf_counter()
        target = load_dataset(name, data_dir, max_series=max_series, max_length=max_length)
        seconds = time.perf_counter() - t0
        lengths = target.lengths
        values = target.frame.get_column("target").to_numpy()
        rows.append(
            {
                "name": name,
                "freq": target.freq,
                "n_series": target.n_series,
                "min_len": int(lengths.min()),
                "median_len": float(np.median(lengths)),
                "max_len": int(lengths.max()),
                "pct_nan": 100.0 * float(np.isnan(values).mean()),
                "load_s": seconds,
                "tasks": supported_tasks(target),
            }
        )
    return rows


def _format_table(rows: list[dict]) -> str:
    w = max([16] + [len(r["name"]) for r in rows])
    head = f"{'name':<{w}} {'freq':<6} {'series':>6} {'min':>7} {'median':>8} {'max':>7} {'%NaN':>6} {'load s':>7}  tasks (series supporting short/medium/long)"
    lines = [head, "-" * len(head)]
    for r in rows:
        n = r["n_series"]
        tasks = ", ".join(
            f"{t} {k}/{n}" for t, k in r["tasks"].items()
        )
        med = r["median_len"]
        med_s = f"{med:.0f}" if float(med).is_integer() else f"{med:.1f}"
        lines.append(
            f"{r['name']:<{w}} {r['freq']:<6} {n:>6} {r['min_len']:>7} {med_s:>8} {r['max_len']:>7} "
            f"{r['pct_nan']:>6.2f} {r['load_s']:>7.2f}  {tasks}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``python -m timetic.datasets [NAME ...] [--max-series N] [--max-length N] [--data-dir DIR]``."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m timetic.datasets", description="Summarise the evaluation datasets.")
    p.add_argument("names", nargs="*", help=f"dataset ids (default: all of {', '.join(DATASETS)})")
    p.add_argument("--data-dir", default=None, help=f"folder of the files (default: ${ENV_VAR} or ../shared/datasets)")
    p.add_argument("--max-series", type=int, default=None)
    p.add_argument("--max-length", type=int, default=None)
    args = p.parse_args(argv)
    directory = Path(args.data_dir) if args.data_dir else data_dir()
    try:
        rows = summary(args.names or None, directory, args.max_series, args.max_length)
    except TimeticInputError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    print(f"data folder: {directory}")
    print(_format_table(rows))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
