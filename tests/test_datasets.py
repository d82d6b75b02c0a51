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
    return d


def _needs_file(d: Path, name: str) -> None:
    if not all((d / f).exists() for f in ds.DATASETS[name].all_files):
        pytest.skip("rdata is not installed; cannot write the fake .rda file")


# ---------------------------------------------------------------------------------------------
# registry


def test_registry_has_the_evaluation_datasets():
    assert len(ds.DATASETS) >= 14
    for name, spec in ds.DATASETS.items():
        assert spec.name == name
        assert spec.file and spec.freq and spec.domain and spec.licence and spec.description
        assert "@" in spec.source and ":" in spec.source
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
                "target": np.ones(2700),
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
    assert time.perf_counter() - t0 < 60
