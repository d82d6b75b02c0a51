"""Dataset loaders: fake files of every format family in tmp_path, plus the real shared folder."""

from __future__ import annotations

import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest

from timetic import datasets as ds
from timetic.data import Target
from timetic.errors import TimeticInputError, TimeticWarning
from timetic.tasks import Task, test_length

N = 60  # points per fake series

# ---------------------------------------------------------------------------------------------
# fake files, one writer per format family


def _csv_text(df: pd.DataFrame, crlf: bool = False) -> bytes:
    text = df.to_csv(index=False, lineterminator="\r\n" if crlf else "\n")
    return text.encode("utf-8")


def _zip(path: Path, members: dict[str, bytes], dirs: tuple[str, ...] = ()) -> None:
    with zipfile.ZipFile(path, "w") as z:
        for d in dirs:
            z.writestr(d, b"")
        for name, data in members.items():
            z.writestr(name, data)


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def write_ett(d: Path) -> None:
    cols = ["HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT"]
    members = {}
    for name, freq in (("ETTh1", "h"), ("ETTh2", "h"), ("ETTm1", "15min"), ("ETTm2", "15min")):
        df = pd.DataFrame(_rng().normal(size=(N, 7)), columns=cols)
        df.insert(0, "date", pd.date_range("2016-07-01", periods=N, freq=freq).strftime("%Y-%m-%d %H:%M:%S"))
        members[f"ETT-small/{name}.csv"] = _csv_text(df)
    _zip(d / "ETT-small.zip", members, dirs=("ETT-small/",))


def write_weather(d: Path) -> None:
    """CRLF, a latin-1 byte in the header, -9999 codes, one duplicated row and one gap."""
    ts = pd.date_range("2020-01-01 00:10", periods=N, freq="10min")
    df = pd.DataFrame(
        {
            "date": ts.strftime("%Y-%m-%d %H:%M:%S"),
            "p (mbar)": 1000 + _rng().normal(size=N),
            "T (degC)": _rng(1).normal(size=N),
            "wv (m/s)": np.abs(_rng(2).normal(size=N)),
            "wd (deg)": _rng(3).uniform(0, 360, N),
            "rain (mm)": np.zeros(N),
            "raining (s)": np.zeros(N),
            "SWDR (W/mX)": _rng(4).uniform(0, 10, N),
            "OT": 420 + _rng(5).normal(size=N),
        }
    )
    df.loc[5, "wv (m/s)"] = -9999.0
    df = pd.concat([df.iloc[:10], df.iloc[9:10], df.iloc[10:20], df.iloc[25:]])  # dup at 9, gap 20..24
    data = _csv_text(df, crlf=True).replace(b"W/mX", b"W/m\xb2")  # raw latin-1 superscript two
    _zip(d / "weather.zip", {"weather/weather.csv": data}, dirs=("weather/",))


def write_exchange_rate(d: Path) -> None:
    ts = pd.date_range("1990-01-01", periods=N, freq="D")
    df = pd.DataFrame({"date": [f"{t.year}/{t.month}/{t.day} 0:00" for t in ts]})
    for c in ("0", "1", "OT"):
        df[c] = 1 + _rng(int(c) if c.isdigit() else 9).normal(0, 0.01, N)
    (d / "exchange_rate.csv").write_bytes(_csv_text(df))


def write_ili(d: Path) -> None:
    ts = pd.date_range("2002-01-01", periods=N, freq="W-TUE")
    df = pd.DataFrame({"date": ts.strftime("%Y-%m-%d %H:%M:%S")})
    for c in ("% WEIGHTED ILI", "%UNWEIGHTED ILI", "AGE 0-4", "OT"):
        df[c] = _rng().uniform(1, 5, N)
    (d / "national_illness.csv").write_bytes(_csv_text(df))


def write_beijing(d: Path) -> None:
    """NA strings (a leading NA run), CRLF, a column that looks integer until late in the file."""
    ts = pd.date_range("2010-01-01", periods=N, freq="h")
    pm = _rng().uniform(10, 200, N).round()
    df = pd.DataFrame(
        {
            "No": np.arange(1, N + 1),
            "year": ts.year,
            "month": ts.month,
            "day": ts.day,
            "hour": ts.hour,
            "pm2.5": pm.astype(object),
            "TEMP": np.arange(N).astype(object),
            "cbwd": ["NW"] * N,
        }
    )
    df.loc[:4, "pm2.5"] = "NA"
    df.loc[30, "pm2.5"] = "NA"
    df.loc[N - 1, "TEMP"] = 14.66666667
    _zip(d / "beijing_pm2.5.zip", {"raw.csv": _csv_text(df, crlf=True)})


def _m4_csv(rows: dict[str, list[float]], width: int) -> bytes:
    header = ",".join(f'"V{i}"' for i in range(1, width + 2))
    lines = [header]
    for sid, values in rows.items():
        cells = [f'"{sid}"'] + [f'"{v:g}"' for v in values] + [""] * (width - len(values))
        lines.append(",".join(cells))
    return ("\n".join(lines) + "\n").encode()


def write_m4(d: Path) -> None:
    for kind, prefix, h in (("hourly", "H", 48), ("weekly", "W", 13)):
        train = {f"{prefix}1": list(np.arange(1.0, 81.0)), f"{prefix}2": list(np.arange(101.0, 131.0)), f"{prefix}10": list(np.arange(5.0, 55.0))}
        test = {sid: [1000.0 + k for k in range(h)] for sid in train}
        (d / f"m4_{kind}_train.csv").write_bytes(_m4_csv(train, 80))
        (d / f"m4_{kind}_test.csv").write_bytes(_m4_csv(test, h))


def write_single_csvs(d: Path) -> None:
    ts = pd.date_range("2014-07-01", periods=N, freq="30min")
    pd.DataFrame({"timestamp": ts.strftime("%Y-%m-%d %H:%M:%S"), "value": np.arange(N) + 10}).to_csv(
        d / "nyc_taxi.csv", index=False
    )
    ts = pd.date_range("2011-01-01", periods=N, freq="h")
    pd.DataFrame(
        {"date_time": ts.strftime("%Y-%m-%d %H:%M:%S"), "holiday": 0.0, "weather": "clear", "users": np.arange(N) + 1.0}
    ).to_csv(d / "bike_sharing.csv", index=False)
    ts = pd.date_range("2019-01-01", periods=N, freq="h")
    cols = ["so2", "co", "no", "no2", "pm10", "nox", "o3", "veloc.", "direc.", "pm2.5"]
    aq = pd.DataFrame(_rng().uniform(1, 50, (N, len(cols))).round(1), columns=cols)
    aq.insert(0, "datetime", ts.strftime("%Y-%m-%d %H:%M:%S"))
    (d / "air_quality_valencia.csv").write_bytes(_csv_text(aq, crlf=True))
    ts = pd.date_range("2011-12-31 13:00", periods=N, freq="30min")
    pd.DataFrame(
        {
            "Time": ts.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Demand": 4000 + np.arange(N),
            "Temperature": 20.0,
            "Date": "2012-01-01",
            "Holiday": "TRUE",
        }
    ).to_csv(d / "vic_electricity.csv", index=False)


def write_rdas(d: Path) -> bool:
    """R lists of ``msts`` series like tscompdata's; False when rdata is not installed."""
    try:
        import rdata
        from rdata.conversion.to_r import DEFAULT_CLASS_MAP, build_r_object
        from rdata.parser import RObjectType
    except ImportError:
        return False

    class MSTS:
        def __init__(self, values, tsp, periods):
            self.values = np.asarray(values, dtype=float)
            self.tsp, self.periods = tsp, periods

    def msts(data, converter):
        attrs = converter.convert_to_r_attributes(
            {
                "tsp": np.array(data.tsp, dtype=float),
                "class": np.array(["msts", "ts"]),
                "msts": np.array(data.periods, dtype=float),
            }
        )
        return build_r_object(RObjectType.REAL, value=data.values, is_object=True, attributes=attrs)

    classes = dict(DEFAULT_CLASS_MAP)
    classes[MSTS] = msts

    def series(n, start, freq, periods, nan_at=()):
        v = _rng(n).uniform(1, 10, n)
        v[list(nan_at)] = np.nan
        return MSTS(v, [start, start + (n - 1) / freq, freq], periods)

    nn5 = {f"NN5-00{i}": series(N, 1996.20821918, 365.0, [7, 365], nan_at=(3, 40)) for i in (1, 2, 3)}
    rdata.write_rda(d / "nn5.rda", {"nn5": nn5}, constructor_dict=classes)
    load = {str(i): series(N, 2004.0, 8766.0, [24, 168, 8766], nan_at=range(20, 30)) for i in (1, 2, 10)}
    rdata.write_rda(d / "gefcom2012_load.rda", {"gefcom2012_load": load}, constructor_dict=classes)
    wind = {f"wp{i}": series(N, 2009.5, 8766.0, [24, 168, 8766]) for i in (1, 2)}
    rdata.write_rda(d / "gefcom2012_wind.rda", {"gefcom2012_wp": wind}, constructor_dict=classes)
    return True


# --- the second batch: business days, macro, long formats, sentinels, yearly, NAB -------------

M = 100  # months per long-enough monthly fake series (the monthly short task needs 88)
PRICE_HOLIDAY, PRICE_EMPTY = 10, 20  # grid positions of the missing weekday and the empty price


def write_prices(d: Path) -> None:
    """Trading days only: weekdays without one holiday, one empty price (natural gas has one)."""
    days = pd.bdate_range("2020-01-01", periods=N + 1).delete(PRICE_HOLIDAY)
    for f in ("natural_gas_daily.csv", "brent_daily.csv"):
        price = [f"{v:.2f}" for v in _rng().uniform(2, 4, N)]
        price[PRICE_EMPTY - 1] = ""  # file row 19 = grid position 20, after the holiday
        pd.DataFrame({"Date": days.strftime("%Y-%m-%d"), "Price": price}).to_csv(d / f, index=False)


def write_macro(d: Path) -> None:
    months = pd.date_range("1913-01-01", periods=M + 1, freq="MS").delete(50)  # one month unpublished
    index = np.linspace(9.8, 30, M)
    infl = np.r_[np.nan, 100 * np.diff(index) / index[:-1]]
    pd.DataFrame({"Date": months.strftime("%Y-%m-%d"), "Index": index, "Inflation": infl}).to_csv(
        d / "us_cpi_monthly.csv", index=False
    )
    q = pd.date_range("1947-01-01", periods=N, freq="QS")
    pd.DataFrame(
        {
            "date": q.strftime("%Y-%m-%d"),
            "level-current": np.linspace(243.2, 900, N).round(1),
            "level-chained": np.linspace(2182.7, 5000, N).round(1),
            "change-current": -777.0,  # shifted growth columns: must not appear
            "change-chained": -888.0,
        }
    ).to_csv(d / "us_gdp_quarterly.csv", index=False)
    pd.DataFrame({"ds": pd.date_range("1992-01-01", periods=M, freq="MS").strftime("%Y-%m-%d"), "y": np.arange(M) + 146376}).to_csv(
        d / "us_retail_sales.csv", index=False
    )


def write_norway(d: Path) -> None:
    """Long format, quoted makes, R's unquoted NA make, a duplicated month, short and sparse makes."""
    months = pd.date_range("2007-01-01", periods=M, freq="MS")
    rows = []
    for k, t in enumerate(months):
        rows.append((t.year, t.month, "Toyota", 2000 + k, 22.7))
        if k % 10 != 5:  # 10% of the months missing: kept
            rows.append((t.year, t.month, "Tesla", 10 + k, 0.1))
        if k % 2 == 0:  # 50% missing: dropped
            rows.append((t.year, t.month, "Sparse", 5, 0.0))
        if k < 40:  # 40 months: too short
            rows.append((t.year, t.month, "Saab", 50, 0.4))
        if k == 7:
            rows.append((t.year, t.month, "Toyota", 1, 0.0))  # listed twice: summed
            rows.append((t.year, t.month, "NA", 3, 0.0))
    lines = ['"Year","Month","Make","Quantity","Pct"']
    for y, m, make, q, p in rows:
        cell = "NA" if make == "NA" else '"' + make + '"'
        lines.append(f"{y},{m},{cell},{q},{p}")
    text = "\n".join(lines) + "\n"
    (d / "norway_car_sales_by_make.csv").write_text(text)


ONION_MISSING = pd.Timestamp("2005-03-01")


def write_onion(d: Path, month_name=lambda t: t.strftime("%B")) -> None:
    """Long format sorted by market then month name then year; English month names."""
    rows = []
    for market, start, n in (("AGRA(UP)", "2005-01-01", M), ("LASALGAON(MS)", "1996-01-01", M + 20), ("SHORT(X)", "2010-01-01", 30)):
        for k, t in enumerate(pd.date_range(start, periods=n, freq="MS")):
            if market == "AGRA(UP)" and t == ONION_MISSING:
                continue
            name = month_name(t)
            rows.append((market, name, t.year, 1000 + k, 400, 900, 600, "UP", market.split("(")[0], f"{name}-{t.year}"))
    df = pd.DataFrame(rows, columns=["market", "month", "year", "quantity", "priceMin", "priceMax", "priceMod", "state", "city", "date"])
    order = {m: i for i, m in enumerate(pd.date_range("2000-01-01", periods=12, freq="MS").strftime("%B"))}
    df = df.sort_values(["market", "month", "year"], key=lambda c: c.map(order) if c.name == "month" else c)
    df.to_csv(d / "onion_market_arrivals.csv", index=False)


DAILY_MISSING = {"wp_log_peyton_manning.csv": 3, "melbourne_daily_min_temperatures.csv": 1, "daily_total_female_births.csv": 0}


def write_daily(d: Path) -> None:
    for f, (dcol, vcol) in {
        "wp_log_peyton_manning.csv": ("ds", "y"),
        "melbourne_daily_min_temperatures.csv": ("Date", "Temp"),
        "daily_total_female_births.csv": ("Date", "Births"),
    }.items():
        days = pd.date_range("1981-01-01", periods=N + DAILY_MISSING[f], freq="D")
        days = days.delete(list(range(5, 5 + DAILY_MISSING[f])))
        df = pd.DataFrame({dcol: days.strftime("%Y-%m-%d"), vcol: _rng().uniform(5, 20, N).round(2)})
        df.to_csv(d / f, index=False, quoting=2)  # quoted dates and header, bare numbers
    countries = ["China", "US", "United_Kingdom", "Italy", "France", "Germany", "Spain", "Iran"]
    cov = pd.DataFrame({c: np.maximum.accumulate(np.r_[np.zeros(5), _rng(i).integers(0, 50, N - 5).cumsum()]).astype(int) for i, c in enumerate(countries)})
    cov.insert(0, "Date", pd.date_range("2020-01-22", periods=N, freq="D").strftime("%Y-%m-%d"))
    cov.to_csv(d / "covid19_key_countries_daily.csv", index=False)


CO2_SENTINEL_AT = (3, 7)


def write_climate(d: Path) -> None:
    parts = []
    for src, start, n in (("gcag", "1850-01", M), ("GISTEMP", "1880-01", M - 10)):
        ym = pd.period_range(start, periods=n, freq="M").strftime("%Y-%m")
        parts.append(pd.DataFrame({"Source": src, "Year": ym, "Mean": _rng().normal(0, 0.3, n).round(4)}))
    pd.concat(parts).to_csv(d / "global_temp_monthly.csv", index=False)
    months = pd.date_range("1958-03-01", periods=M, freq="MS")
    avg = np.linspace(315, 400, M).round(2)
    interp = avg.copy()
    avg[list(CO2_SENTINEL_AT)] = -99.99
    days = np.full(M, 25)
    days[:20] = -1
    pd.DataFrame(
        {
            "Date": months.strftime("%Y-%m-%d"),
            "Decimal Date": (months.year + (months.month - 0.5) / 12).round(3),
            "Average": [f"{v:.2f}" for v in avg],
            "Interpolated": [f"{v:.2f}" for v in interp],
            "Trend": [f"{v:.2f}" for v in interp - 1],
            "Number of Days": days,
        }
    ).to_csv(d / "co2_mauna_loa_monthly.csv", index=False)
    years = np.arange(1880, 1880 + N)
    csiro = np.where(years < 1880 + N - 5, np.linspace(0, 9, N), np.nan)
    noaa = np.where(years >= 1880 + N - 31, np.linspace(6, 10, N), np.nan)
    pd.DataFrame(
        {"Year": years, "CSIRO Adjusted Sea Level": csiro, "Lower Error Bound": csiro - 1, "Upper Error Bound": csiro + 1, "NOAA Adjusted Sea Level": noaa}
    ).to_csv(d / "sea_level_yearly.csv", index=False)
    cols = {"Total": 0, "Gas Fuel": 20, "Liquid Fuel": 10, "Solid Fuel": 0, "Cement": 25, "Gas Flaring": 30, "Per Capita": 0}
    fossil = pd.DataFrame({"Year": np.arange(1750, 1750 + N)})
    for c, lead in cols.items():
        v = np.arange(N, dtype=float) + 3
        v[:lead] = np.nan
        fossil[c] = v
    fossil.to_csv(d / "co2_fossil_global_yearly.csv", index=False)


def write_nab(d: Path) -> None:
    ec2 = pd.date_range("2014-02-14 14:27", periods=N, freq="5min")
    rds = pd.date_range("2014-02-14 14:30", periods=N, freq="5min").delete(17)  # RDS misses a point
    for f, ts in (("nab_ec2_cpu_utilization_5f5533.csv", ec2), ("nab_rds_cpu_utilization_cc0c53.csv", rds)):
        pd.DataFrame({"timestamp": ts.strftime("%Y-%m-%d %H:%M:%S"), "value": _rng().uniform(0, 100, len(ts))}).to_csv(d / f, index=False)


@pytest.fixture(scope="module")
def fake_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("fake_datasets")
    write_ett(d)
    write_weather(d)
    write_exchange_rate(d)
    write_ili(d)
    write_beijing(d)
    write_m4(d)
    write_single_csvs(d)
    write_rdas(d)
    write_prices(d)
    write_macro(d)
    write_norway(d)
    write_onion(d)
    write_daily(d)
    write_climate(d)
    write_nab(d)
    return d


def _needs_file(d: Path, name: str) -> None:
    if not all((d / f).exists() for f in ds.DATASETS[name].all_files):
        pytest.skip("rdata is not installed; cannot write the fake .rda file")


# ---------------------------------------------------------------------------------------------
# registry


def test_registry_has_the_evaluation_datasets():
    assert len(ds.DATASETS) >= 30
    assert len({s.domain for s in ds.DATASETS.values()}) >= 6
    from timetic.tasks import freq_unit

    assert {"D", "M", "Q", "A"} <= {freq_unit(s.freq)[0] for s in ds.DATASETS.values()}
    for name, spec in ds.DATASETS.items():
        assert spec.name == name
        assert spec.file and spec.freq and spec.domain and spec.licence and spec.description
        assert "@" in spec.source and ":" in spec.source
        card = spec.card()
        assert card["n_series"] >= 1 and 1 <= card["lengths"][0] <= card["lengths"][1]
        Task.preset("short", spec.freq)  # every frequency is supported


# ---------------------------------------------------------------------------------------------
# every dataset from fake files


@pytest.mark.parametrize("name", list(ds.DATASETS))
def test_every_dataset_loads_from_fake_files(fake_dir, name):
    _needs_file(fake_dir, name)
    t = ds.load_dataset(name, data_dir=fake_dir)
    assert isinstance(t, Target)
    assert t.freq == ds.DATASETS[name].freq
    assert t.name == name
    assert t.n_series >= 1
    assert t.frame.schema["timestamp"] == pl.Datetime("ns")
    for s in t.series():
        assert not np.isnan(s[0]) and not np.isnan(s[-1])  # NaN trimmed at both ends
        assert not np.isinf(s).any()


def test_ett_keeps_all_seven_columns(fake_dir):
    t = ds.load_dataset("ettm1", data_dir=fake_dir)
    assert sorted(t.item_ids) == sorted(["HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT"])
    assert t.freq == "15min" and set(t.lengths) == {N}


def test_weather_quirks(fake_dir):
    t = ds.load_dataset("weather", data_dir=fake_dir)
    # units stripped from the latin-1 header; rain, raining and wind direction left out
    assert sorted(t.item_ids) == sorted(["p", "T", "wv", "SWDR", "OT"])
    assert set(t.lengths) == {N}  # duplicate merged, 5-row gap re-inserted
    frame = t.frame.filter(pl.col("item_id") == "wv")
    y = frame.get_column("target").to_numpy()
    assert np.isnan(y[5])  # -9999 code
    assert np.isnan(y[20:25]).all()  # the gap
    assert np.isnan(t.frame.filter(pl.col("item_id") == "p").get_column("target").to_numpy()).sum() == 5


def test_exchange_rate_slash_dates(fake_dir):
    t = ds.load_dataset("exchange_rate", data_dir=fake_dir)
    assert sorted(t.item_ids) == ["OT", "cur0", "cur1"]
    assert t.start_timestamps()[0] == pd.Timestamp("1990-01-01")


def test_ili_weekly_tuesday(fake_dir):
    t = ds.load_dataset("ili", data_dir=fake_dir)
    assert t.freq == "W-TUE" and t.n_series == 4


def test_beijing_na_and_late_float(fake_dir):
    t = ds.load_dataset("beijing_pm25", data_dir=fake_dir)
    assert t.item_ids == ["pm2.5"]
    assert t.lengths[0] == N - 5  # leading NA run trimmed
    assert t.start_timestamps()[0] == pd.Timestamp("2010-01-01 05:00")
    assert np.isnan(t.series()[0]).sum() == 1


@pytest.mark.parametrize("kind,h,freq,start", [("hourly", 48, "h", "2000-01-01"), ("weekly", 13, "W-SUN", "2000-01-02")])
def test_m4_train_and_test_concatenated(fake_dir, kind, h, freq, start):
    t = ds.load_dataset(f"m4_{kind}", data_dir=fake_dir)
    prefix = kind[0].upper()
    by_id = dict(zip(t.item_ids, t.series()))
    assert set(by_id) == {f"{prefix}1", f"{prefix}2", f"{prefix}10"}
    assert len(by_id[f"{prefix}2"]) == 30 + h  # right padding of the train row removed
    np.testing.assert_array_equal(by_id[f"{prefix}1"][:80], np.arange(1.0, 81.0))
    np.testing.assert_array_equal(by_id[f"{prefix}1"][-h:], 1000.0 + np.arange(h))  # official test last
    assert all(s == pd.Timestamp(start) for s in t.start_timestamps())
    assert t.freq == freq


def test_m4_max_series_keeps_file_order(fake_dir):
    t = ds.load_dataset("m4_hourly", data_dir=fake_dir, max_series=2)
    assert sorted(t.item_ids) == ["H1", "H2"]  # file order, not string order (H10 < H2)


def test_rda_series(fake_dir):
    _needs_file(fake_dir, "nn5")
    t = ds.load_dataset("nn5", data_dir=fake_dir)
    assert t.item_ids == ["NN5-001", "NN5-002", "NN5-003"]
    assert t.start_timestamps()[0] == pd.Timestamp("1996-03-18")
    assert np.isnan(t.series()[0]).sum() == 2
    g = ds.load_dataset("gefcom_load", data_dir=fake_dir)
    assert g.item_ids == ["zone01", "zone02", "zone10"]
    assert g.start_timestamps()[0] == pd.Timestamp("2004-01-01 00:00")
    assert np.isnan(g.series()[0][20:30]).all()
    w = ds.load_dataset("gefcom_wind", data_dir=fake_dir)
    assert w.item_ids == ["wp1", "wp2"] and w.start_timestamps()[0] == pd.Timestamp("2009-07-01")


def test_vic_electricity_fixed_utc_plus_10(fake_dir):
    t = ds.load_dataset("vic_electricity", data_dir=fake_dir)
    assert t.start_timestamps()[0] == pd.Timestamp("2011-12-31 23:00")
    assert t.freq == "30min" and t.lengths[0] == N


def test_air_quality_crlf_and_columns(fake_dir):
    t = ds.load_dataset("air_quality", data_dir=fake_dir)
    assert t.n_series == 9 and "wind_speed" in t.item_ids and "direc." not in t.item_ids


# --- the second batch -------------------------------------------------------------------------
# (Target.item_ids are sorted by id; series follow that order)


def _by_id(t: Target) -> dict[str, np.ndarray]:
    return dict(zip(t.item_ids, t.series()))


@pytest.mark.parametrize("name", ["natural_gas", "brent"])
def test_trading_days_on_the_business_day_grid(fake_dir, name):
    t = ds.load_dataset(name, data_dir=fake_dir)
    assert t.freq == "B" and t.n_series == 1 and t.lengths[0] == N + 1
    ts = pd.DatetimeIndex(t.frame.get_column("timestamp").to_numpy())
    assert (ts.dayofweek < 5).all()  # weekends are not on the grid
    y = t.series()[0]
    assert np.flatnonzero(np.isnan(y)).tolist() == [PRICE_HOLIDAY, PRICE_EMPTY]  # holiday, empty price
    assert Task.preset("short", t.freq).horizon == 30 and Task.preset("long", t.freq).context_length == 256


def test_us_cpi_index_level_and_missing_month(fake_dir):
    t = ds.load_dataset("us_cpi", data_dir=fake_dir)
    assert t.item_ids == ["cpi_u"] and t.freq == "MS" and t.lengths[0] == M + 1
    y = t.series()[0]
    assert np.isnan(y[50]) and np.isnan(y).sum() == 1  # the unpublished month
    assert y[0] == pytest.approx(9.8)  # Index, not the (empty) first Inflation value


def test_us_gdp_levels_not_shifted_changes(fake_dir):
    t = ds.load_dataset("us_gdp", data_dir=fake_dir)
    assert t.item_ids == ["gdp_chained", "gdp_current"] and t.freq == "QS"  # pandas infers QS-OCT
    values = t.frame.get_column("target").to_numpy()
    assert not np.isin(values, [-777.0, -888.0]).any()
    y = _by_id(t)
    assert y["gdp_current"][0] == pytest.approx(243.2) and y["gdp_chained"][0] == pytest.approx(2182.7)
    assert t.start_timestamps()[0] == pd.Timestamp("1947-01-01")


def test_norway_long_format(fake_dir):
    t = ds.load_dataset("norway_car_sales", data_dir=fake_dir)
    assert t.item_ids == ["Tesla", "Toyota"]  # NA make, the sparse and the short make dropped
    tesla, toyota = t.series()
    assert toyota[7] == 2000 + 7 + 1  # a make listed twice in a month: summed
    assert len(toyota) == M and not np.isnan(toyota).any()
    assert np.isnan(tesla).sum() == 10 and len(tesla) == M  # absent months -> NaN
    assert t.start_timestamps()[0] == pd.Timestamp("2007-01-01")


def test_onion_month_names_and_quantity(fake_dir):
    t = ds.load_dataset("onion_arrivals", data_dir=fake_dir)
    assert t.item_ids == ["AGRA(UP)", "LASALGAON(MS)"] and t.freq == "MS"  # SHORT(X) dropped
    agra = t.frame.filter(pl.col("item_id") == "AGRA(UP)")
    assert agra.get_column("timestamp")[0] == pd.Timestamp("2005-01-01")
    y = agra.get_column("target").to_numpy()
    k = (ONION_MISSING.year - 2005) * 12 + ONION_MISSING.month - 1
    assert np.isnan(y[k]) and y[0] == 1000 and y[-1] == 1000 + M - 1  # quantity, in time order
    assert t.lengths.tolist() == [M, M + 20]


def test_onion_unknown_month_name(tmp_path):
    write_onion(tmp_path, month_name=lambda t: "Janvier" if t.month == 1 else t.strftime("%B"))
    with pytest.raises(TimeticInputError, match="unknown month name 'Janvier'"):
        ds.load_dataset("onion_arrivals", data_dir=tmp_path)


@pytest.mark.parametrize("name,file", [("peyton_manning", "wp_log_peyton_manning.csv"), ("melbourne_temp", "melbourne_daily_min_temperatures.csv"), ("female_births", "daily_total_female_births.csv")])
def test_daily_files_missing_days(fake_dir, name, file):
    t = ds.load_dataset(name, data_dir=fake_dir)
    gaps = DAILY_MISSING[file]
    assert t.freq == "D" and t.lengths[0] == N + gaps
    assert np.isnan(t.series()[0]).sum() == gaps


def test_covid_countries(fake_dir):
    t = ds.load_dataset("covid19", data_dir=fake_dir)
    assert t.n_series == 8 and "United_Kingdom" in t.item_ids and set(t.lengths) == {N}
    assert all(s[0] == 0 for s in t.series())  # leading zeros are counts, kept


def test_global_temp_sources_and_year_month(fake_dir):
    t = ds.load_dataset("global_temp", data_dir=fake_dir)
    assert t.item_ids == ["GISTEMP", "gcag"] and t.lengths.tolist() == [M - 10, M]
    assert t.start_timestamps() == [pd.Timestamp("1880-01-01"), pd.Timestamp("1850-01-01")]


def test_co2_mauna_loa_sentinel(fake_dir):
    t = ds.load_dataset("co2_mauna_loa", data_dir=fake_dir)
    y = t.series()[0]
    assert np.flatnonzero(np.isnan(y)).tolist() == list(CO2_SENTINEL_AT)  # Average, -99.99 -> NaN
    assert (y[~np.isnan(y)] > 300).all() and len(y) == M


def test_yearly_files(fake_dir):
    s = ds.load_dataset("sea_level", data_dir=fake_dir)
    assert s.freq == "YS" and s.item_ids == ["csiro", "noaa"]  # error bounds not used
    assert s.lengths.tolist() == [N - 5, 31]
    assert s.start_timestamps() == [pd.Timestamp("1880-01-01"), pd.Timestamp(f"{1880 + N - 31}-01-01")]
    f = ds.load_dataset("co2_fossil", data_dir=fake_dir)
    lengths = {k: len(v) for k, v in _by_id(f).items()}
    assert lengths == {"total": N, "gas_fuel": N - 20, "liquid_fuel": N - 10, "solid_fuel": N,
                       "cement": N - 25, "gas_flaring": N - 30, "per_capita": N}  # leading NaN trimmed
    assert dict(zip(f.item_ids, f.start_timestamps()))["gas_fuel"] == pd.Timestamp("1770-01-01")


def test_nab_two_files_own_grids(fake_dir):
    t = ds.load_dataset("nab_aws_cpu", data_dir=fake_dir)
    assert t.item_ids == ["ec2_5f5533", "rds_cc0c53"] and t.freq == "5min"
    assert t.start_timestamps() == [pd.Timestamp("2014-02-14 14:27"), pd.Timestamp("2014-02-14 14:30")]
    assert t.lengths.tolist() == [N, N]
    assert np.isnan(t.series()[1]).sum() == 1 and not np.isnan(t.series()[0]).any()


@pytest.mark.parametrize("freq,want", [("MS", 88), ("QS", 48), ("YS", 28), ("D", 318), ("B", 318), ("h", 623)])
def test_min_length_is_the_short_task_threshold(freq, want):
    assert ds.min_length("short", freq) == want
    task = Task.preset("short", freq)
    for L, ok in ((want, True), (want - 1, False)):
        assert (L - test_length(L, task) >= task.window_length) is ok


def test_cards_and_card_script(fake_dir, capsys):
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "datasets_card.py"
    spec = importlib.util.spec_from_file_location("datasets_card", path)
    card = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(card)
    assert card.main(["--static"]) == 0
    out = capsys.readouterr().out
    assert all(f"`{name}`" in out for name in ds.DATASETS) and "| name | domain | freq |" in out
    assert card.main(["--data-dir", str(fake_dir), "--details"]) == 1  # fake files disagree with the cards
    captured = capsys.readouterr()
    assert "tasks (short / medium / long)" in captured.out and "Parsing choices" in captured.out
    assert "card mismatch: etth1: loaded 7 series" in captured.err


# ---------------------------------------------------------------------------------------------
# options, clean-up and errors


def test_max_length_keeps_last_points(fake_dir):
    full = ds.load_dataset("etth1", data_dir=fake_dir)
    t = ds.load_dataset("etth1", data_dir=fake_dir, max_series=2, max_length=10)
    assert t.n_series == 2 and set(t.lengths) == {10}
    first = full.frame.filter(pl.col("item_id") == t.item_ids[0]).get_column("target").to_numpy()
    np.testing.assert_array_equal(t.series()[0], first[-10:])


def test_max_length_trims_nan_at_the_new_start(fake_dir):
    t = ds.load_dataset("weather", data_dir=fake_dir, max_length=N - 22)  # starts inside the gap
    assert not any(np.isnan(s[0]) for s in t.series())


@pytest.mark.parametrize("bad", [0, -3, 2.5])
def test_bad_limits(fake_dir, bad):
    with pytest.raises(TimeticInputError, match="max_series"):
        ds.load_dataset("etth1", data_dir=fake_dir, max_series=bad)


def test_regularize_duplicates_gaps_inf_and_all_nan():
    ts = pd.to_datetime(["2024-01-01 00:00", "2024-01-01 01:00", "2024-01-01 01:00", "2024-01-01 04:00"])
    frame = pl.DataFrame(
        {
            "item_id": ["a"] * 4 + ["b"] * 3 + ["c"] * 3,
            "timestamp": list(ts) + list(ts[:3]) + list(ts[:3]),
            "target": [1.0, 2.0, 4.0, np.inf, np.nan, 5.0, 7.0, np.nan, None, np.inf],
        },
        schema_overrides={"target": pl.Float64},
    )
    out = ds.regularize(frame, "h")
    a = out.filter(pl.col("item_id") == "a").get_column("target").to_list()
    assert a == [1.0, 3.0]  # duplicates averaged; inf -> NaN trimmed at the end with the gap
    b = out.filter(pl.col("item_id") == "b")
    assert b.get_column("target").to_list() == [6.0]  # leading NaN trimmed, duplicates averaged
    assert "c" not in out.get_column("item_id").to_list()  # all-NaN series dropped
    # a gap inside a series is re-inserted as NaN
    g = pl.DataFrame({"item_id": ["x"] * 3, "timestamp": pd.to_datetime(["2024-01-01", "2024-01-03", "2024-01-04"]), "target": [1.0, 2.0, 3.0]})
    y = ds.regularize(g, "D").get_column("target").to_numpy()
    assert len(y) == 4 and np.isnan(y[1])


def test_regularize_warns_about_off_grid_rows():
    g = pl.DataFrame(
        {"item_id": ["x"] * 3, "timestamp": pd.to_datetime(["2024-01-01 00:00", "2024-01-01 00:20", "2024-01-01 01:00"]), "target": [1.0, 2.0, 3.0]}
    )
    with pytest.warns(TimeticWarning, match="off the 'h' grid"):
        out = ds.regularize(g, "h")
    assert out.get_column("target").to_list() == [1.0, 3.0]


def test_unknown_dataset_lists_names(fake_dir):
    with pytest.raises(TimeticInputError, match="unknown dataset 'nope'; use one of etth1, etth2"):
        ds.load_dataset("nope", data_dir=fake_dir)


def test_missing_file_names_file_and_setting(tmp_path):
    with pytest.raises(TimeticInputError) as e:
        ds.load_dataset("nyc_taxi", data_dir=tmp_path)
    msg = str(e.value)
    assert "nyc_taxi.csv not found in" in msg and str(tmp_path) in msg and "TIMETIC_DATA_DIR" in msg
    assert "\n" not in msg
    (tmp_path / "m4_hourly_train.csv").write_text('"V1","V2"\n"H1","1"\n')
    with pytest.raises(TimeticInputError, match="m4_hourly_test.csv not found"):
        ds.load_dataset("m4_hourly", data_dir=tmp_path)


def test_corrupt_file_is_one_line_error(tmp_path):
    (tmp_path / "ETT-small.zip").write_bytes(b"not a zip")
    with pytest.raises(TimeticInputError, match="cannot parse dataset file ETT-small.zip"):
        ds.load_dataset("etth1", data_dir=tmp_path)


def test_data_dir_setting(monkeypatch, tmp_path, fake_dir):
    monkeypatch.setenv("TIMETIC_DATA_DIR", str(fake_dir))
    assert ds.data_dir() == fake_dir
    assert ds.load_dataset("nyc_taxi").n_series == 1
    monkeypatch.delenv("TIMETIC_DATA_DIR")
    assert ds.data_dir().parts[-2:] == ("shared", "datasets")


def test_supported_tasks():
    long = ds.regularize(
        pl.DataFrame(
            {
                "item_id": ["a"] * 2000 + ["b"] * 700,
                "timestamp": list(pd.date_range("2024-01-01", periods=2000, freq="h")) + list(pd.date_range("2024-01-01", periods=700, freq="h")),
                "target": np.random.default_rng(0).normal(10, 1, 2700),  # constant series would be dropped
            }
        ),
        "h",
    )
    from timetic.data import load_target

    t = load_target(long, freq="h")
    got = ds.supported_tasks(t)
    want = {}
    for name in ("short", "medium", "long"):
        task = Task.preset(name, "h")
        want[name] = sum(L - test_length(L, task) >= task.window_length for L in (2000, 700))
    assert got == want and got["short"] == 2 and got["long"] == 1


def test_main_prints_summary(fake_dir, capsys):
    assert ds.main(["nyc_taxi", "ili", "--data-dir", str(fake_dir)]) == 0
    out = capsys.readouterr().out
    assert "nyc_taxi" in out and "ili" in out and "W-TUE" in out and "short" in out
    assert ds.main(["nope", "--data-dir", str(fake_dir)]) == 2


# ---------------------------------------------------------------------------------------------
# the real shared folder


def test_every_real_dataset_loads():
    directory = ds.data_dir()
    if not all((directory / f).exists() for spec in ds.DATASETS.values() for f in spec.all_files):
        pytest.skip(f"shared datasets not found in {directory}; set TIMETIC_DATA_DIR")
    try:
        import rdata  # noqa: F401
    except ImportError:
        pytest.skip("rdata is not installed; pip install rdata")
    t0 = time.perf_counter()
    for name, spec in ds.DATASETS.items():
        t = ds.load_dataset(name, max_series=3, max_length=2000)
        assert t.freq == spec.freq and 1 <= t.n_series <= 3
        assert t.lengths.max() <= 2000
        assert ds.supported_tasks(t)["short"] >= 1, name
        if all((directory / f).stat().st_size < 1_000_000 for f in spec.all_files):  # small: check the card
            full = ds.load_dataset(name)
            lengths = (int(full.lengths.min()), int(full.lengths.max()))
            assert (full.n_series, lengths) == (spec.n_series, spec.lengths), name
    assert time.perf_counter() - t0 < 60
