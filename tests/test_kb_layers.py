"""Layered knowledge bases (timetic.layers): a user KB over a base, read as the union of both
(keyed dedupe, the user's row wins), the base never written."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from timetic.cli import main
from timetic.errors import TimeticInputError
from timetic.kb import KB_FILE, KnowledgeBase
from timetic.layers import (
    SHIPPED,
    LayeredKB,
    base_of,
    chain,
    create_user_kb,
    open_kb,
    shipped_kb_path,
)

RECIPE = json.dumps({"learning_rate": 1e-4, "steps": 10, "batch_size": 8})


def obs(dataset: str, model: str, starts: list[int], ft: float, source: str | None = None) -> pl.DataFrame:
    n = len(starts)
    df = pl.DataFrame({
        "dataset_id": [dataset] * n, "model_id": [model] * n, "task": ["short"] * n, "recipe": [RECIPE] * n,
        "item_id": ["a"] * n, "window_start": starts, "horizon": [24] * n, "zs_mase": [1.0] * n,
        "ft_mase": [ft] * n, "seed": [0] * n, "date": ["2025-01-01T00:00:00.000000+00:00"] * n,
    })
    return df if source is None else df.with_columns(pl.lit(source).alias("source"))


def windows(dataset: str, starts: list[int], value: float) -> pl.DataFrame:
    n = len(starts)
    return pl.DataFrame({"dataset_id": [dataset] * n, "task": ["short"] * n, "item_id": ["a"] * n,
                         "window_start": starts, "f1": [value] * n})


def dataset(dataset_id: str, digest: str) -> pl.DataFrame:
    return pl.DataFrame({"dataset_id": [dataset_id], "content_hash": [digest], "freq": ["h"], "n_series": [1],
                         "total_length": [100], "source": ["test"], "licence": [""], "domain": [""]})


def model(model_id: str, source: str) -> pl.DataFrame:
    return pl.DataFrame({"model_id": [model_id], "adapter": ["patchtst"], "source": [source], "revision": [""],
                         "num_parameters": [10], "depth": [2], "profile_knn": [[0.1, 0.2]],
                         "profile_renyi": [[0.3, 0.4]], "profile_raw_knn": [[0.1]], "pretraining_corpus": [""],
                         "pretraining_datasets": [[]]},
                        schema_overrides={"pretraining_datasets": pl.List(pl.Utf8)})


def fingerprint(folder: Path) -> dict[str, tuple[str, int]]:
    """sha256 and mtime of every file under ``folder`` (hidden ones included)."""
    return {str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def base(tmp_path) -> Path:
    path = tmp_path / "base"
    kb = KnowledgeBase.create(path)
    (path / "models" / "m-rel").mkdir(parents=True)
    kb.add_datasets(pl.concat([dataset("d1", "h1"), dataset("d2", "h2")]))
    kb.add_windows(pl.concat([windows("d1", [0, 24], 1.0), windows("d2", [0], 2.0)]))
    kb.add_models(pl.concat([model("m1", "zoo:m1"), model("m2", "models/m-rel")]))
    kb.add_observations(pl.concat([obs("d1", "m1", [0, 24], 0.5), obs("d2", "m2", [0], 0.7)]))
    return path


@pytest.fixture
def user(tmp_path, base) -> Path:
    path = tmp_path / "user"
    kb = create_user_kb(path, base)
    kb.add_datasets(dataset("mine", "h3"))
    kb.add_windows(pl.concat([windows("mine", [0], 3.0), windows("d1", [24], 9.0)]))
    kb.add_observations(pl.concat([
        obs("mine", "m1", [0], 0.9, source="verify"),
        obs("d1", "m1", [24], 0.1, source="verify"),  # the same key as a base row: the user's row wins
    ]))
    return path


def test_user_kb_records_its_base_and_holds_only_its_rows(base, user):
    meta = json.loads((user / KB_FILE).read_text())
    assert meta["base"] == str(base.resolve()) and meta["schema_version"] == 1
    assert base_of(user) == base.resolve() and base_of(base) is None
    assert [p.resolve() for p in chain(user)] == [base.resolve(), user.resolve()]
    alone = KnowledgeBase.open(user)
    assert alone.observations().height == 2 and alone.datasets().get_column("dataset_id").to_list() == ["mine"]
    assert alone.models().height == 0


def test_layered_read_is_the_union_deduplicated_user_rows_win(base, user):
    kb = open_kb(user)
    assert isinstance(kb, LayeredKB) and kb.path == user and [p.resolve() for p in kb.paths] == [base, user]
    o = kb.observations()
    assert o.height == 4  # base 3 + user 2, one key shared
    assert o.select("dataset_id", "model_id", "task", "recipe_hash", "item_id", "window_start").is_unique().all()
    shared = o.filter((pl.col("dataset_id") == "d1") & (pl.col("window_start") == 24))
    assert shared.get_column("ft_mase").to_list() == [0.1] and shared.get_column("source").to_list() == ["verify"]
    kept = o.filter((pl.col("dataset_id") == "d1") & (pl.col("window_start") == 0))
    assert kept.get_column("ft_mase").to_list() == [0.5] and kept.get_column("source").to_list() == [None]
    assert kb.datasets().get_column("dataset_id").to_list() == ["d1", "d2", "mine"]
    w = kb.windows(dataset_id="d1")
    assert dict(zip(w.get_column("window_start").to_list(), w.get_column("f1").to_list())) == {0: 1.0, 24: 9.0}
    assert kb.observations(model_id="m1", dataset_id="mine").get_column("ft_mase").to_list() == [0.9]
    stats = kb.stats()
    assert stats["n_observations"] == 4 and stats["n_datasets"] == 3 and stats["layers"] == [str(base), str(user)]
    assert stats["unregistered_models"] == []


def test_a_base_models_relative_folder_resolves_against_the_base(base, user):
    from timetic.kb import resolve_model_source

    kb = open_kb(user)
    src = dict(kb.models().select("model_id", "source").iter_rows())
    assert src["m1"] == "zoo:m1"
    assert Path(src["m2"]) == (base / "models" / "m-rel").resolve()
    assert Path(resolve_model_source(kb, src["m2"])).is_dir()


def test_excluded_datasets_leave_every_table(base, user):
    kb = open_kb(user, exclude_datasets=["d1"])
    for table in (kb.datasets(), kb.windows(), kb.observations()):
        assert "d1" not in table.get_column("dataset_id").to_list()
    assert kb.observations().height == 2
    plain = open_kb(base, exclude_datasets=["d2"])  # a single KB can be viewed without a dataset too
    assert isinstance(plain, LayeredKB) and plain.observations().get_column("dataset_id").unique().to_list() == ["d1"]


def test_reading_checking_and_writing_the_user_kb_leave_the_base_untouched(base, user):
    (base / ".datasets.parquet.123.tmp").write_bytes(b"left by a dead writer")  # open(clean=True) would remove it
    before = fingerprint(base)
    kb = open_kb(user)
    kb.tables()
    kb.stats()
    kb.windows(drop_null_features=True)
    assert kb.check() == []
    KnowledgeBase.open(user).add_observations(obs("mine", "m2", [0], 0.8, source="verify"))
    assert open_kb(user).observations().height == 5
    assert fingerprint(base) == before


def test_a_layered_view_refuses_writes(user):
    kb = open_kb(user)
    for write in (lambda: kb.add_observations(obs("mine", "m1", [48], 1.0)), lambda: kb.merge(user),
                  lambda: kb.add_datasets(dataset("x", "h"))):
        with pytest.raises(TimeticInputError, match="not written"):
            write()


def test_check_knows_the_base_models_and_datasets(base, user):
    problems = KnowledgeBase.open(user).check()
    assert problems == [], [str(p) for p in problems]
    # the same rows in a KB that layers over nothing are orphans: the check above is not vacuous
    plain = user.parent / "plain"
    shutil.copytree(user, plain)
    meta = json.loads((plain / KB_FILE).read_text())
    del meta["base"]
    (plain / KB_FILE).write_text(json.dumps(meta))
    kinds = {p.kind for p in KnowledgeBase.open(plain).check()}
    assert "orphan-observations" in kinds


def test_missing_base_and_cycles_are_one_line_errors(tmp_path, base, user):
    moved = tmp_path / "moved"
    base.rename(moved)
    with pytest.raises(TimeticInputError, match="not a knowledge base .*restore it"):
        open_kb(user)
    moved.rename(base)
    meta = json.loads((base / KB_FILE).read_text())
    (base / KB_FILE).write_text(json.dumps({**meta, "base": str(user.resolve())}))
    with pytest.raises(TimeticInputError, match="cycle"):
        open_kb(user)


def test_create_user_kb_refuses_a_folder_with_files(tmp_path, base):
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    with pytest.raises(TimeticInputError, match="not an empty folder"):
        create_user_kb(busy, base)
    assert sorted(p.name for p in busy.iterdir()) == ["notes.txt"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert create_user_kb(empty, base).path == empty and base_of(empty) == base.resolve()
    assert not list(tmp_path.glob(".*.creating"))


def test_over_the_shipped_kb_it_records_shipped_and_leaves_its_files_alone(tmp_path):
    shipped = shipped_kb_path()
    assert shipped is not None
    before = fingerprint(shipped)
    user = tmp_path / "user"
    create_user_kb(user, shipped)
    assert json.loads((user / KB_FILE).read_text())["base"] == SHIPPED
    kb = open_kb(user)
    base_n = KnowledgeBase.open(shipped, clean=False).observations().height
    some = KnowledgeBase.open(shipped, clean=False).observations().head(2)
    mine = some.with_columns(pl.lit(42.0).alias("ft_mase"), pl.lit("verify").alias("source")).drop("recipe_hash")
    KnowledgeBase.open(user).add_observations(mine)  # re-measured: same keys as two shipped rows
    kb = open_kb(user)
    o = kb.observations()
    assert o.height == base_n and (o.get_column("ft_mase") == 42.0).sum() == 2
    assert KnowledgeBase.open(user).check() == []
    assert fingerprint(shipped) == before


def test_cli_reads_a_user_kb_with_its_base(tmp_path, base, user):
    runner = CliRunner()
    res = runner.invoke(main, ["kb", "stats", "--kb", str(user)])
    assert res.exit_code == 0, res.output
    stats = json.loads(res.stdout)
    assert stats["n_observations"] == 4 and stats["layers"] == [str(base), str(user)]
    res = runner.invoke(main, ["kb", "check", "--kb", str(user)])
    assert res.exit_code == 0 and "consistent" in res.stdout, res.output
