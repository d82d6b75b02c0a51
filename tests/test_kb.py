"""Knowledge base storage: schemas, upserts, errors, atomicity, concurrent writers, merge."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import filelock
import polars as pl
import pytest
from conftest import make_long

from timetic.errors import TimeticInputError
from timetic.kb import (
    DATASETS_SCHEMA,
    MODELS_SCHEMA,
    OBSERVATIONS_SCHEMA,
    SCHEMA_VERSION,
    WINDOWS_SCHEMA,
    KnowledgeBase,
    content_hash,
    recipe_hash,
)

PKG_DIR = Path(__file__).resolve().parents[1] / "timetic"
RECIPE = json.dumps({"learning_rate": 1e-4, "steps": 100, "batch_size": 32})

# Child processes import timetic.kb through a bare `timetic` package module, which skips the
# package __init__ (pandas, scikit-learn ...: seconds per process) but runs kb.py, io.py, errors.py.
CHILD_PRELUDE = f"""
import os, sys, time, types
pkg = types.ModuleType("timetic"); pkg.__path__ = [{str(PKG_DIR)!r}]; sys.modules["timetic"] = pkg
import polars as pl
from timetic.kb import KnowledgeBase

def observations(offset, n, model="m1"):
    return pl.DataFrame({{
        "dataset_id": ["d1"] * n, "model_id": [model] * n, "task": ["short"] * n,
        "recipe": [{RECIPE!r}] * n, "item_id": [f"s{{i % 7}}" for i in range(offset, offset + n)],
        "window_start": list(range(offset, offset + n)), "horizon": [24] * n,
        "zs_mase": [1.0] * n, "ft_mase": [0.5] * n, "date": ["2025-01-01T00:00:00.000000+00:00"] * n,
    }})
"""


def observations(
    offset: int, n: int, model: str = "m1", ft_mase: float = 0.5, date: str = "2025-01-01"
) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "dataset_id": ["d1"] * n,
            "model_id": [model] * n,
            "task": ["short"] * n,
            "recipe": [RECIPE] * n,
            "item_id": [f"s{i % 7}" for i in range(offset, offset + n)],
            "window_start": list(range(offset, offset + n)),
            "horizon": [24] * n,
            "zs_mase": [1.0] * n,
            "ft_mase": [ft_mase] * n,
            "zs_wql": [float("nan")] * n,
            "seed": [0] * n,
            "date": [date] * n,
        }
    )


def models() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "model_id": ["chronos-bolt-tiny", "patchtst-small"],
            "adapter": ["chronos", "patchtst"],
            "num_parameters": [8_000_000, 1_000_000],
            "depth": [4, 3],
            "profile_knn": [[0.1, 0.2, 0.3], [1.0, 2.0]],
            "profile_renyi": [[0.5], None],
            "profile_raw_knn": [[1.0, float("nan")], []],
            "pretraining_corpus": ["chronos mix", None],
            "pretraining_datasets": [["m4_hourly", "electricity"], []],
            "added": ["2025-01-01T00:00:00.000000+00:00", "2025-01-02T00:00:00.000000+00:00"],
        }
    )


def run_child(code: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", CHILD_PRELUDE + code], **kwargs)


def snapshot(path: Path) -> dict[str, bytes]:
    return {f.name: f.read_bytes() for f in sorted(path.iterdir()) if f.suffix in (".parquet", ".json")}


def assert_one_line(err: pytest.ExceptionInfo, *fragments: str) -> None:
    msg = str(err.value)
    assert "\n" not in msg and ";" in msg, msg
    for fragment in fragments:
        assert fragment in msg, msg


# --------------------------------------------------------------------------------------------------
# create / open / schemas
# --------------------------------------------------------------------------------------------------


def test_create_open_roundtrip(tmp_path):
    kb = KnowledgeBase.create(tmp_path / "kb")
    meta = json.loads((tmp_path / "kb" / "kb.json").read_text())
    assert meta["schema_version"] == SCHEMA_VERSION and meta["created"] and meta["timetic_version"]
    kb2 = KnowledgeBase.open(tmp_path / "kb")
    assert kb2.meta == meta
    assert kb2.datasets().schema == DATASETS_SCHEMA
    assert kb2.windows().schema == WINDOWS_SCHEMA
    assert kb2.models().schema == MODELS_SCHEMA
    assert kb2.observations().schema == OBSERVATIONS_SCHEMA
    assert not list((tmp_path / "kb").glob("*.pickle")) and not list((tmp_path / "kb").glob("*.pkl"))

    with pytest.raises(TimeticInputError) as err:
        KnowledgeBase.create(tmp_path / "kb")
    assert_one_line(err, "already exists")
    assert KnowledgeBase.create(tmp_path / "kb", exist_ok=True).meta == meta  # opened, not rewritten
    assert KnowledgeBase.open_or_create(tmp_path / "kb").meta == meta
    assert KnowledgeBase.open_or_create(tmp_path / "new" / "kb").observations().height == 0


def test_typed_schemas_roundtrip(tmp_path):
    kb = KnowledgeBase.create(tmp_path)
    assert kb.add_models(models()) == 2
    assert kb.add_datasets(
        {"dataset_id": ["d1"], "freq": ["h"], "n_series": [3], "total_length": [3600], "source": ["/data/x.csv"]}
    ) == 1
    kb = KnowledgeBase.open(tmp_path)
    m = kb.models()
    assert m.schema == MODELS_SCHEMA
    row = m.filter(pl.col("model_id") == "chronos-bolt-tiny").row(0, named=True)
    assert row["profile_knn"] == [0.1, 0.2, 0.3] and row["pretraining_datasets"] == ["m4_hourly", "electricity"]
    assert row["num_parameters"] == 8_000_000
    other = m.filter(pl.col("model_id") == "patchtst-small").row(0, named=True)
    assert other["profile_renyi"] is None and other["profile_raw_knn"] == []
    d = kb.datasets()
    assert d.schema == DATASETS_SCHEMA and d["n_series"].to_list() == [3]
    assert d["added"][0].endswith("+00:00") and d["licence"][0] is None  # defaults


# --------------------------------------------------------------------------------------------------
# upserts
# --------------------------------------------------------------------------------------------------


def test_add_observations_is_idempotent_and_replaces_changed_rows(tmp_path):
    kb = KnowledgeBase.create(tmp_path)
    obs = observations(0, 50)
    assert kb.add_observations(obs) == 50
    first = kb.observations()
    assert first["recipe_hash"].unique().to_list() == [recipe_hash(RECIPE)]
    assert first.select("dataset_id", "model_id", "task", "recipe_hash", "item_id", "window_start").is_unique().all()
    assert kb.add_observations(obs) == 0
    assert kb.add_observations(obs.reverse()) == 0
    assert kb.observations().equals(first)

    changed = obs.head(5).with_columns(ft_mase=pl.lit(0.25))
    assert kb.add_observations(changed) == 0
    after = kb.observations()
    assert after.height == 50
    assert after.filter(pl.col("window_start") < 5)["ft_mase"].to_list() == [0.25] * 5
    assert after.filter(pl.col("window_start") >= 5)["ft_mase"].to_list() == [0.5] * 45
    key = ["dataset_id", "model_id", "task", "recipe_hash", "item_id", "window_start"]
    assert after.equals(after.sort(key))

    # a second recipe is a different key
    other_recipe = obs.head(3).with_columns(recipe=pl.lit(json.dumps({"steps": 0})))
    assert kb.add_observations(other_recipe) == 3
    assert kb.observations(recipe_hash=recipe_hash(RECIPE)).height == 50
    assert kb.observations(model_id=["m1", "m2"], task="short").height == 53
    assert kb.observations(dataset_id="nope").height == 0


def test_upsert_keeps_columns_not_supplied_and_windows_diagonal(tmp_path):
    kb = KnowledgeBase.create(tmp_path)
    kb.add_models(models())
    added = kb.models()["added"].to_list()
    # re-adding with fewer columns keeps the stored profile and date
    assert kb.add_models(pl.DataFrame({"model_id": ["patchtst-small"], "revision": ["abc"]})) == 0
    m = kb.models().filter(pl.col("model_id") == "patchtst-small").row(0, named=True)
    assert m["revision"] == "abc" and m["profile_knn"] == [1.0, 2.0] and m["adapter"] == "patchtst"
    assert kb.models()["added"].to_list() == added

    key = {"dataset_id": ["d1", "d1"], "task": ["short", "short"], "item_id": ["a", "b"], "window_start": [0, 5]}
    assert kb.add_windows(pl.DataFrame({**key, "acf1": [0.5, 0.6], "n_peaks": [3, 4]})) == 2
    assert kb.add_windows(pl.DataFrame({**key, "catch22_x": [1.0, 2.0]})) == 0  # extends the same windows
    assert kb.add_windows(
        pl.DataFrame({"dataset_id": ["d2"], "task": ["long"], "item_id": ["a"], "window_start": [0], "other": [9.0]})
    ) == 1
    w = KnowledgeBase.open(tmp_path).windows()
    assert w.columns == [*WINDOWS_SCHEMA.names(), "acf1", "n_peaks", "catch22_x", "other"]
    assert all(w.schema[c] == pl.Float64 for c in ("acf1", "n_peaks", "catch22_x", "other"))
    d1 = kb.windows(dataset_id="d1")
    assert d1["n_peaks"].to_list() == [3.0, 4.0] and d1["catch22_x"].to_list() == [1.0, 2.0]
    assert d1["other"].null_count() == 2
    assert kb.windows(dataset_id="d1", drop_null_features=True).columns[-1] == "catch22_x"
    assert kb.windows(task="long", drop_null_features=True).columns == [*WINDOWS_SCHEMA.names(), "other"]


def test_added_frames_are_cast_to_the_schema(tmp_path):
    kb = KnowledgeBase.create(tmp_path)
    obs = observations(0, 3).with_columns(
        pl.col("window_start").cast(pl.Int32),
        pl.col("horizon").cast(pl.Float64),
        pl.col("ft_mase").cast(pl.Float32),
        date=pl.lit(datetime(2025, 3, 1, 12, tzinfo=timezone.utc)),
    )
    assert kb.add_observations(obs) == 3
    got = kb.observations()
    assert got.schema == OBSERVATIONS_SCHEMA
    assert got["date"].to_list() == ["2025-03-01T12:00:00.000000+00:00"] * 3


def test_recipe_and_content_hash():
    assert recipe_hash('{"a": 1, "b": [1, 2]}') == recipe_hash({"b": [1, 2], "a": 1}) and len(recipe_hash("{}")) == 16
    assert recipe_hash('{"a": 1}') != recipe_hash('{"a": 2}')
    with pytest.raises(TimeticInputError):
        recipe_hash("{not json")
    frame = make_long(n_series=2, length=50)
    h = content_hash(frame)
    assert len(h) == 64
    shuffled = frame.sample(fraction=1.0, shuffle=True, seed=1).select("target", "item_id", "timestamp")
    assert content_hash(shuffled) == h
    assert content_hash(frame.with_columns(pl.col("timestamp").cast(pl.Datetime("us")))) == h
    assert content_hash(frame.with_columns(pl.col("target") + 1e-9)) != h
    # pinned: the hash must not change between runs, machines or polars versions
    tiny = pl.DataFrame(
        {
            "item_id": ["b", "a", "a"],
            "timestamp": [datetime(2024, 1, 1), datetime(2024, 1, 2), datetime(2024, 1, 1)],
            "target": [3.0, None, 1.0],
        }
    )
    assert content_hash(tiny) == content_hash(tiny.with_columns(pl.col("target").fill_null(float("nan"))))
    tokyo = tiny.with_columns(pl.col("timestamp").dt.replace_time_zone("UTC").dt.convert_time_zone("Asia/Tokyo"))
    assert content_hash(tokyo) == content_hash(tiny)
    assert content_hash(tiny) == "6dce2b9899ff1e42afc18fb099e753aa0c202473866e0edf1398790184b2cd74"


def test_stats_and_export(tmp_path):
    kb = KnowledgeBase.create(tmp_path / "kb")
    kb.add_models(models())
    kb.add_datasets({"dataset_id": ["d1"], "freq": ["h"]})
    kb.add_observations(observations(0, 10))
    kb.add_observations(observations(0, 4, model="chronos-bolt-tiny").with_columns(task=pl.lit("long")))
    kb.add_windows({"dataset_id": ["d1"], "task": ["short"], "item_id": ["s0"], "window_start": [0], "f": [1.0]})
    s = kb.stats()
    assert (s["n_datasets"], s["n_models"], s["n_observations"], s["n_windows"]) == (1, 2, 14, 1)
    assert s["n_cells"] == 2 and s["tasks"] == ["long", "short"]
    assert s["models_per_dataset"] == {"d1": 2} and s["unregistered_models"] == ["m1"]
    json.dumps(s)

    files = kb.export(tmp_path / "out")
    assert sorted(f.name for f in files) == ["datasets.csv", "models.csv", "observations.csv", "windows.csv"]
    m = pl.read_csv(tmp_path / "out" / "models.csv")
    assert json.loads(m.filter(pl.col("model_id") == "chronos-bolt-tiny")["pretraining_datasets"][0]) == [
        "m4_hourly",
        "electricity",
    ]
    kb.export(tmp_path / "obs.parquet", table="observations")
    assert pl.read_parquet(tmp_path / "obs.parquet").equals(kb.observations())
    kb.export(tmp_path / "j", table=["models"], format="json")
    assert pl.read_json(tmp_path / "j" / "models.json").height == 2
    with pytest.raises(TimeticInputError):
        kb.export(tmp_path / "all.csv")  # one file, several tables
    with pytest.raises(TimeticInputError):
        kb.export(tmp_path / "kb")  # over the KB's own tables


# --------------------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------------------


def test_open_errors(tmp_path):
    with pytest.raises(TimeticInputError) as err:
        KnowledgeBase.open(tmp_path)
    assert_one_line(err, "not a timetic knowledge base", "no kb.json", "timetic kb init")

    KnowledgeBase.create(tmp_path / "kb")
    meta = tmp_path / "kb" / "kb.json"
    good = meta.read_text()
    meta.write_text(json.dumps({"schema_version": 0, "created": "x", "timetic_version": "0"}))
    with pytest.raises(TimeticInputError) as err:
        KnowledgeBase.open(tmp_path / "kb")
    assert_one_line(err, "schema version 0", f"reads {SCHEMA_VERSION}", "rebuild or migrate")
    meta.write_text("{broken")
    with pytest.raises(TimeticInputError) as err:
        KnowledgeBase.open(tmp_path / "kb")
    assert_one_line(err, "kb.json", "not valid JSON")
    meta.write_text(good)

    table = tmp_path / "kb" / "observations.parquet"
    table.write_bytes(b"PAR1 this is not parquet at all")
    with pytest.raises(TimeticInputError) as err:
        KnowledgeBase.open(tmp_path / "kb")
    assert_one_line(err, "observations.parquet", "is broken", "restore it from a backup or rebuild")

    pl.DataFrame(schema={**OBSERVATIONS_SCHEMA, "window_start": pl.Int32}).write_parquet(table)
    with pytest.raises(TimeticInputError) as err:
        KnowledgeBase.open(tmp_path / "kb")
    assert_one_line(err, "observations.parquet", "window_start is Int32, expected Int64")

    pl.DataFrame(schema=OBSERVATIONS_SCHEMA).drop("ft_mase").write_parquet(table)
    with pytest.raises(TimeticInputError) as err:
        KnowledgeBase.open(tmp_path / "kb")
    assert_one_line(err, "missing column ft_mase")

    table.unlink()
    with pytest.raises(TimeticInputError) as err:
        KnowledgeBase.open(tmp_path / "kb")
    assert_one_line(err, "observations.parquet is missing")


@pytest.mark.parametrize(
    "change, fragment",
    [
        (lambda df: df.drop("model_id", "task"), "miss required column(s) model_id, task"),
        (lambda df: df.drop("recipe"), "miss required column(s) recipe_hash"),
        (lambda df: df.with_columns(extra=pl.lit(1.0)), "unknown column(s) extra"),
        (lambda df: df.with_columns(ft_mase=pl.lit("bad")), "column ft_mase"),
        (lambda df: df.with_columns(window_start=pl.col("window_start") + 0.5), "non-integer"),
        (
            lambda df: df.with_columns(item_id=pl.when(pl.col("window_start") != 3).then(pl.col("item_id"))),
            "key column(s) item_id",
        ),
        (lambda df: df.with_columns(recipe=pl.lit([1])), "column recipe"),
    ],
)
def test_bad_added_frames_write_nothing(tmp_path, change, fragment):
    kb = KnowledgeBase.create(tmp_path)
    kb.add_observations(observations(100, 5))
    before = snapshot(tmp_path)
    with pytest.raises(TimeticInputError) as err:
        kb.add_observations(change(observations(0, 10)))
    assert_one_line(err, fragment)
    assert snapshot(tmp_path) == before


def test_bad_window_features_and_lock_timeout(tmp_path):
    kb = KnowledgeBase.create(tmp_path, lock_timeout=0.2)
    with pytest.raises(TimeticInputError) as err:
        kb.add_windows({"dataset_id": ["d"], "task": ["t"], "item_id": ["a"], "window_start": [0], "name": ["x"]})
    assert_one_line(err, "feature column name")
    held = filelock.FileLock(str(tmp_path / ".lock"))
    with held:
        with pytest.raises(TimeticInputError) as err:
            kb.add_observations(observations(0, 2))
        assert_one_line(err, "busy")
    assert kb.add_observations(observations(0, 2)) == 2


# --------------------------------------------------------------------------------------------------
# atomicity and concurrency (real processes)
# --------------------------------------------------------------------------------------------------


def test_writer_killed_mid_write_leaves_previous_table(tmp_path):
    kb = KnowledgeBase.create(tmp_path / "kb")
    kb.add_observations(observations(0, 100))
    previous = kb.observations()
    marker = tmp_path / "writing"
    child = run_child(
        f"""
orig = pl.DataFrame.write_parquet
def partial_write(self, file, *args, **kwargs):
    orig(self, file, *args, **kwargs)
    size = os.path.getsize(file)
    with open(file, "r+b") as f:
        f.truncate(size // 2)           # half a file, as if killed mid-write
    open({str(marker)!r}, "w").close()
    time.sleep(120)
pl.DataFrame.write_parquet = partial_write
KnowledgeBase.open({str(tmp_path / "kb")!r}).add_observations(observations(1000, 100_000))
"""
    )
    try:
        deadline = time.monotonic() + 30
        while not marker.exists():
            assert child.poll() is None, "child died before writing"
            assert time.monotonic() < deadline, "child never reached the write"
            time.sleep(0.05)
        strays = list((tmp_path / "kb").glob(".observations.parquet.*.tmp"))
        assert strays and strays[0].stat().st_size > 0
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL
    assert (tmp_path / "kb" / strays[0].name).exists()  # the dead writer's temp file is left over ...
    assert KnowledgeBase(tmp_path / "kb").observations().equals(previous)  # ... readers ignore it ...
    reopened = KnowledgeBase.open(tmp_path / "kb")
    assert not list((tmp_path / "kb").glob(".*.tmp")) and not (tmp_path / "kb" / ".lock").exists()  # ... open cleans
    assert reopened.observations().equals(previous)
    assert reopened.add_observations(observations(0, 1)) == 0  # the lock is free again
    assert reopened.observations().equals(previous)


def test_writer_killed_at_random_times_is_all_or_nothing(tmp_path):
    kb = KnowledgeBase.create(tmp_path / "kb")
    chunk = 5_000
    ready = tmp_path / "ready"
    for attempt, delay in enumerate((0.1, 0.4, 0.9)):
        ready.unlink(missing_ok=True)
        child = run_child(
            f"""
kb = KnowledgeBase.open({str(tmp_path / "kb")!r})
frames = [observations((100 + i) * {chunk}, {chunk}, model="m{attempt}") for i in range(40)]
open({str(ready)!r}, "w").close()
for f in frames:
    kb.add_observations(f)
"""
        )
        deadline = time.monotonic() + 30
        while not ready.exists() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(delay)
        child.kill()
        child.wait(10)
        obs = KnowledgeBase.open(tmp_path / "kb").observations()
        per_model = obs.group_by("model_id").len()
        assert (per_model["len"] % chunk == 0).all(), per_model  # whole adds only
        assert obs.select(pl.struct("model_id", "window_start").is_unique().all()).item()
    assert kb.add_observations(observations(0, 1, model="after")) == 1  # lock free, leftovers removed
    assert not list((tmp_path / "kb").glob(".*.tmp"))


def test_concurrent_writers_lose_nothing(tmp_path):
    KnowledgeBase.create(tmp_path / "kb")
    go = tmp_path / "go"
    children = [
        run_child(
            f"""
kb = KnowledgeBase.open({str(tmp_path / "kb")!r})
rows = observations({w} * 1000, 200, model="m{w}")
while not os.path.exists({str(go)!r}):
    time.sleep(0.01)
for start in range(0, 200, 20):   # 10 small adds each, to interleave the writers
    kb.add_observations(rows.slice(start, 20))
"""
        )
        for w in range(4)
    ]
    go.touch()
    codes = [c.wait(60) for c in children]
    assert codes == [0, 0, 0, 0]
    obs = KnowledgeBase.open(tmp_path / "kb").observations()
    assert obs.height == 800
    assert obs.group_by("model_id").len().sort("model_id")["len"].to_list() == [200] * 4
    assert not list((tmp_path / "kb").glob(".*.tmp"))


# --------------------------------------------------------------------------------------------------
# merge
# --------------------------------------------------------------------------------------------------


def test_merge_two_kbs(tmp_path):
    a = KnowledgeBase.create(tmp_path / "a")
    b = KnowledgeBase.create(tmp_path / "b")
    a.add_observations(observations(0, 30, ft_mase=0.5, date="2025-01-01"))
    b.add_observations(observations(20, 30, ft_mase=0.7, date="2025-02-01"))  # 20..29 overlap, newer
    b.add_observations(observations(0, 5, ft_mase=0.9, date="2024-12-01"))  # 0..4 overlap, older
    a.add_models(models().head(1))
    b.add_models(models())
    a.add_windows({"dataset_id": ["d1"], "task": ["short"], "item_id": ["s0"], "window_start": [0], "f1": [1.0]})
    b.add_windows(
        {"dataset_id": ["d1", "d2"], "task": ["short"] * 2, "item_id": ["s0"] * 2, "window_start": [0, 0], "f2": [2.0, 3.0]}
    )

    added = a.merge(tmp_path / "b")
    assert added == {"datasets": 0, "windows": 1, "models": 1, "observations": 20}
    obs = a.observations()
    assert obs.height == 50 and sorted(obs["window_start"].to_list()) == list(range(50))
    mase = dict(zip(obs["window_start"].to_list(), obs["ft_mase"].to_list()))
    assert [mase[i] for i in (0, 4, 5, 19)] == [0.5] * 4  # a's rows were newer
    assert [mase[i] for i in (20, 29, 49)] == [0.7] * 3  # b's rows were newer
    assert a.models().height == 2
    w = a.windows().sort("dataset_id")
    assert w["f1"].to_list() == [1.0, None] and w["f2"].to_list() == [2.0, 3.0]

    snapshot_a = snapshot(tmp_path / "a")
    assert a.merge(b) == {"datasets": 0, "windows": 0, "models": 0, "observations": 0}
    assert snapshot(tmp_path / "a") == snapshot_a

    # merging the other way round gives the same observations
    b.merge(a)
    assert b.observations().equals(a.observations())

    old = KnowledgeBase.create(tmp_path / "old")
    (tmp_path / "old" / "kb.json").write_text(json.dumps({"schema_version": 0}))
    with pytest.raises(TimeticInputError) as err:
        a.merge(tmp_path / "old")
    assert_one_line(err, "schema version 0")
    assert old.path.exists()


def test_tables_without_optional_columns_read_as_null(tmp_path):
    """A KB written before the seasonal-naive columns existed opens; they read back as null."""
    import shutil

    from timetic.kb import TABLES

    src = Path(__file__).resolve().parents[1] / "meta_features_v1"
    if not (src / "kb.json").is_file():
        pytest.skip("no shipped KB in this checkout")
    kb_dir = tmp_path / "old"
    shutil.copytree(src, kb_dir)
    obs_file = kb_dir / TABLES["observations"].filename
    pl.read_parquet(obs_file).drop(list(TABLES["observations"].optional), strict=False).write_parquet(obs_file)
    obs = KnowledgeBase.open(kb_dir).observations()
    assert obs.height > 0 and obs.get_column("sn_mase").null_count() == obs.height


def test_negative_scores_are_refused(tmp_path):
    import polars as pl
    import pytest

    from timetic.errors import TimeticInputError
    from timetic.kb import KnowledgeBase

    kb = KnowledgeBase.create(tmp_path / "kb")
    row = {"dataset_id": "d", "model_id": "m", "task": "short", "recipe_hash": "r", "item_id": "a",
           "window_start": 0, "horizon": 48, "zs_mase": -5.0, "ft_mase": float("nan")}
    with pytest.raises(TimeticInputError, match="negative zs_mase"):
        kb.add_observations(pl.DataFrame([row]))
    assert kb.add_observations(pl.DataFrame([{**row, "zs_mase": 1.2}])) == 1  # NaN (undefined) is fine
