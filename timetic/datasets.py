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

__all__ = ["DATASETS", "DatasetSpec", "data_dir", "load_dataset", "regularize", "supported_tasks", "summary", "main"]


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

    @property
    def all_files(self) -> tuple[str, ...]:
        return self.files or (self.file,)

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


def _single_csv(file: str, ts_col: str, value_cols: list[str], names: list[str] | None = None, fmt: str | None = None) -> Callable[[Path], pl.DataFrame]:
    def read(d: Path) -> pl.DataFrame:
        df = _read_csv_bytes(_path(d, file).read_bytes())
        missing = [c for c in [ts_col, *value_cols] if c not in df.columns]
        if missing:
            raise TimeticInputError(
                f"{file} lacks column(s) {', '.join(missing)} (columns: {', '.join(df.columns[:8])}); "
                "check the file against SHA256SUMS in the data folder"
            )
        df = df.with_columns(pl.col(ts_col).cast(pl.Utf8).str.to_datetime(fmt))
        return _wide_to_long(df, ts_col, value_cols, names)

    return read


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


def _spec(name, file, freq, domain, licence, source, description, reader, files=()) -> DatasetSpec:
    return DatasetSpec(name, file, freq, domain, licence, source, description, reader, tuple(files))


_SPECS = [
    _spec("etth1", "ETT-small.zip", "h", "energy", _ETT_LIC, f"{_ASPIRE}:ETT-small.zip/ETTh1.csv",
          _ETT_DESC.format(site="station 1", res="hourly"), _ett("ETTh1.csv")),
    _spec("etth2", "ETT-small.zip", "h", "energy", _ETT_LIC, f"{_ASPIRE}:ETT-small.zip/ETTh2.csv",
          _ETT_DESC.format(site="station 2", res="hourly"), _ett("ETTh2.csv")),
    _spec("ettm1", "ETT-small.zip", "15min", "energy", _ETT_LIC, f"{_ASPIRE}:ETT-small.zip/ETTm1.csv",
          _ETT_DESC.format(site="station 1", res="15-minute"), _ett("ETTm1.csv")),
    _spec("ettm2", "ETT-small.zip", "15min", "energy", _ETT_LIC, f"{_ASPIRE}:ETT-small.zip/ETTm2.csv",
          _ETT_DESC.format(site="station 2", res="15-minute"), _ett("ETTm2.csv")),
    _spec("weather", "weather.zip", "10min", "weather", "original: MPI-BGC Jena, none stated",
          f"{_ASPIRE}:weather.zip",
          "Jena weather station 2020, 10-minute: 18 of 21 variables as series (rain, raining and wind "
          "direction left out); -9999 codes -> NaN; one duplicated row averaged, one 100-minute gap -> NaN.",
          _weather),
    _spec("exchange_rate", "exchange_rate.csv", "D", "finance", "none stated",
          f"{_SSCF}:dataset/exchange_rate/exchange_rate.csv",
          "Daily exchange rates of 8 currencies vs USD, 1990-2010 (ids cur0..cur6 and OT).",
          _exchange_rate),
    _spec("ili", "national_illness.csv", "W-TUE", "health", "none stated",
          f"{_SSCF}:dataset/illness/national_illness.csv",
          "US influenza-like illness, weekly (Tuesdays) 2002-2020: the 7 numeric columns as series.",
          _ili),
    _spec("m4_hourly", "m4_hourly_train.csv", "h", "mixed", "none stated",
          f"{_M4}:Dataset/Train/Hourly-train.csv + Dataset/Test/Hourly-test.csv",
          "M4 Hourly, 414 series: train + test concatenated (last 48 points = official test); "
          "synthetic hourly timestamps from 2000-01-01 00:00.",
          _m4("m4_hourly_train.csv", "m4_hourly_test.csv", "2000-01-01", "h"),
          files=("m4_hourly_train.csv", "m4_hourly_test.csv")),
    _spec("m4_weekly", "m4_weekly_train.csv", "W-SUN", "mixed", "none stated",
          f"{_M4}:Dataset/Train/Weekly-train.csv + Dataset/Test/Weekly-test.csv",
          "M4 Weekly, 359 series: train + test concatenated (last 13 points = official test); "
          "synthetic weekly timestamps from Sunday 2000-01-02.",
          _m4("m4_weekly_train.csv", "m4_weekly_test.csv", "2000-01-02", "W-SUN"),
          files=("m4_weekly_train.csv", "m4_weekly_test.csv")),
    _spec("nn5", "nn5.rda", "D", "finance / cash", "GPL-3", f"{_TSCOMP}:data/nn5.rda",
          "NN5 daily ATM cash withdrawals, 111 series from 1996-03-18 (train + 56-day test), missing days NaN.",
          _rda("nn5.rda", "1996-03-18", "D")),
    _spec("gefcom_load", "gefcom2012_load.rda", "h", "energy", "GPL-3", f"{_TSCOMP}:data/gefcom2012_load.rda",
          "GEFCom2012 hourly load of 20 US utility zones (zone01..zone20), 2004-01-01 00:00 to "
          "2008-06-30 05:00; the 8 backcast test weeks are NaN.",
          _rda("gefcom2012_load.rda", "2004-01-01 00:00", "h", lambda s: f"zone{int(s):02d}" if s.isdigit() else s)),
    _spec("gefcom_wind", "gefcom2012_wind.rda", "h", "renewables", "GPL-3", f"{_TSCOMP}:data/gefcom2012_wp.rda",
          "GEFCom2012 normalised hourly wind power of 7 farms (wp1..wp7), 2009-07-01 to 2010-12-31.",
          _rda("gefcom2012_wind.rda", "2009-07-01 00:00", "h")),
    _spec("nyc_taxi", "nyc_taxi.csv", "30min", "transport", "MIT", "numenta/NAB@ea702d75:data/realKnownCause/nyc_taxi.csv",
          "NYC taxi passengers per 30 minutes, 2014-07 to 2015-01, one series.",
          _single_csv("nyc_taxi.csv", "timestamp", ["value"], ["passengers"], "%Y-%m-%d %H:%M:%S")),
    _spec("bike_sharing", "bike_sharing.csv", "h", "mobility", "UCI via skforecast (BSD-3 repo)",
          f"{_SKF}:data/bike_sharing_dataset_clean.csv",
          "Washington D.C. bike sharing, hourly total users 2011-2012, one series (weather covariates unused).",
          _single_csv("bike_sharing.csv", "date_time", ["users"], ["users"], "%Y-%m-%d %H:%M:%S")),
    _spec("air_quality", "air_quality_valencia.csv", "h", "air quality", "skforecast-datasets (BSD-3 repo)",
          f"{_SKF}:data/air_quality_valencia_no_missing.csv",
          "Valencia hourly air quality 2019-2023: 8 pollutants and wind speed as 9 series (wind direction left out).",
          _single_csv("air_quality_valencia.csv", "datetime",
                      ["so2", "co", "no", "no2", "pm10", "nox", "o3", "veloc.", "pm2.5"],
                      ["so2", "co", "no", "no2", "pm10", "nox", "o3", "wind_speed", "pm2.5"],
                      "%Y-%m-%d %H:%M:%S")),
    _spec("vic_electricity", "vic_electricity.csv", "30min", "energy", "fpp3 / tsibbledata origin (GPL-3)",
          f"{_SKF}:data/vic_electricity.csv",
          "Victoria (Australia) half-hourly electricity demand 2012-2014, one series; UTC timestamps "
          "shifted to fixed UTC+10 (standard time, no DST).",
          _vic_electricity),
    _spec("beijing_pm25", "beijing_pm2.5.zip", "h", "air quality", "UCI (CC BY 4.0)",
          f"{_ASPIRE}:Beijing_pm2.5.zip",
          "Beijing US-embassy PM2.5, hourly 2010-2014, one series; NA -> NaN, leading NA day trimmed.",
          _beijing),
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
    if _offset(target.freq) != _offset(spec.freq):
        raise TimeticInputError(
            f"dataset {name!r} loaded at frequency {target.freq!r}, expected {spec.freq!r}; check the "
            "data file against SHA256SUMS"
        )
    target.freq = spec.freq
    return target


def _offset(freq: str):
    return pd.tseries.frequencies.to_offset(freq)


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
    head = f"{'name':<16} {'freq':<6} {'series':>6} {'min':>7} {'median':>8} {'max':>7} {'%NaN':>6} {'load s':>7}  tasks (series supporting short/medium/long)"
    lines = [head, "-" * len(head)]
    for r in rows:
        n = r["n_series"]
        tasks = ", ".join(
            f"{t} {k}/{n}" for t, k in r["tasks"].items()
        )
        med = r["median_len"]
        med_s = f"{med:.0f}" if float(med).is_integer() else f"{med:.1f}"
        lines.append(
            f"{r['name']:<16} {r['freq']:<6} {n:>6} {r['min_len']:>7} {med_s:>8} {r['max_len']:>7} "
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
