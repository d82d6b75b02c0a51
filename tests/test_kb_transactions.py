"""The KB across tables: multi-table changes are all-or-nothing even when the writer is killed at any
write step, leftovers of dead writers are cleaned on open, and `kb check` finds and repairs
inconsistencies."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import filelock
import polars as pl
import pytest
from click.testing import CliRunner
from conftest import make_long

from timetic.errors import TimeticInputError
from timetic.kb import KILL_ENV, TABLES, KnowledgeBase

ROOT = Path(__file__).resolve().parents[1]
DATE = "2025-01-01T00:00:00.000000+00:00"


def windows(dataset: str, n: int, feature: str = "acf1") -> pl.DataFrame:
    return pl.DataFrame(
        {
            "dataset_id": [dataset] * n,
            "task": ["short"] * n,
            "item_id": [f"s{i % 3}" for i in range(n)],
            "window_start": list(range(n)),
            feature: [0.1 * i for i in range(n)],
        }
    )


def dataset_row(dataset: str) -> pl.DataFrame:
    return pl.DataFrame({"dataset_id": [dataset], "freq": ["h"], "n_series": [3], "added": [DATE]})


def observations(dataset: str, model: str, n: int) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "dataset_id": [dataset] * n,
            "model_id": [model] * n,
            "task": ["short"] * n,
            "recipe": ['{"steps": 40}'] * n,
            "item_id": [f"s{i % 3}" for i in range(n)],
            "window_start": list(range(n)),
            "ft_mase": [0.5] * n,
            "date": [DATE] * n,
        }
    )


def seeded_kb(path: Path) -> KnowledgeBase:
    """A KB with one dataset (and its windows), one model and observations of it."""
    kb = KnowledgeBase.create(path)
    kb.add_datasets(dataset_row("d0"))
    kb.add_windows(windows("d0", 6))
    kb.add_models(pl.DataFrame({"model_id": ["m0"], "adapter": ["x"], "added": [DATE]}))
    kb.add_observations(observations("d0", "m0", 6))
    return kb


def state(path: Path) -> dict[str, pl.DataFrame]:
    """Every table as a lock-free reader sees it (no cleanup, no recovery); ``added`` dropped (it is
    the time of the write)."""
    kb = KnowledgeBase(path)
    return {name: kb._read(name).drop("added", strict=False) for name in TABLES}


def same(a: dict[str, pl.DataFrame], b: dict[str, pl.DataFrame]) -> bool:
    return all(a[name].equals(b[name]) for name in TABLES)


def leftovers(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir() if p.name.startswith("."))


def run_killed(args: list[str], step: int | None, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, KILL_ENV: str(step)} if step else {k: v for k, v in os.environ.items() if k != KILL_ENV}
    return subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, **kwargs)


def kill_at_every_step(tmp_path: Path, template: Path, args: list[str]) -> int:
    """Run ``args`` (a command writing the KB copy ``tmp_path/kb``) killed after write step 1, 2, ...
    until it completes; after each kill the KB is as before or as after the change, for a lock-free
    reader at once and after open() has cleaned up. Returns the number of write steps."""
    before = state(template)
    kb_dir = tmp_path / "kb"
    shutil.copytree(template, kb_dir)
    done = run_killed(args, None)
    assert done.returncode == 0, done.stderr
    after = state(kb_dir)
    assert not same(before, after), "the command changed nothing"
    assert leftovers(kb_dir) == []
    seen = []
    for step in range(1, 40):
        shutil.rmtree(kb_dir)
        shutil.copytree(template, kb_dir)
        res = run_killed(args, step)
        if res.returncode == 0:
            assert same(state(kb_dir), after)
            break
        assert res.returncode == -signal.SIGKILL, res.stderr
        now = state(kb_dir)  # before any cleanup: what a reader sees right after the kill
        assert same(now, before) or same(now, after), f"in between after step {step}: {res.stderr}"
        seen.append("after" if same(now, after) else "before")
        reopened = KnowledgeBase.open(kb_dir)  # cleans up what the dead writer left
        assert leftovers(kb_dir) == [], f"after step {step}: {res.stderr}"
        assert same(state(kb_dir), after if seen[-1] == "after" else before)
        assert reopened.check() == []
    else:
        raise AssertionError("the command never completed")
    assert "before" in seen and "after" in seen, seen  # the kills did land on both sides of the commit
    return len(seen)


def test_add_dataset_killed_at_every_write_step_is_before_or_after(tmp_path):
    target = tmp_path / "target.parquet"
    make_long(n_series=2, length=1200).write_parquet(target)
    template = tmp_path / "template"
    seeded_kb(template)
    args = [sys.executable, "-m", "timetic.cli", "add-dataset", "--target", str(target), "--kb",
            str(tmp_path / "kb"), "--id", "d1", "--task", "short"]
    steps = kill_at_every_step(tmp_path, template, args)
    assert steps >= 7  # staging folder, 2 staged tables, manifest, commit, 2 moves, removal


CHILD = f"""
import sys, types
pkg = types.ModuleType("timetic"); pkg.__path__ = [{str(ROOT / "timetic")!r}]; sys.modules["timetic"] = pkg
from timetic.kb import KnowledgeBase
KnowledgeBase.open(sys.argv[1]).merge(KnowledgeBase.open(sys.argv[2]))
"""


def test_merge_killed_at_every_write_step_is_before_or_after(tmp_path):
    template = tmp_path / "template"
    seeded_kb(template)
    other = KnowledgeBase.create(tmp_path / "other")
    other.add_datasets(dataset_row("d9"))
    other.add_windows(windows("d9", 4, feature="other_feature"))
    other.add_models(pl.DataFrame({"model_id": ["m9"], "adapter": ["y"], "added": [DATE]}))
    other.add_observations(observations("d9", "m9", 4))
    steps = kill_at_every_step(
        tmp_path, template, [sys.executable, "-c", CHILD, str(tmp_path / "kb"), str(tmp_path / "other")]
    )
    assert steps >= 11  # 4 tables staged and moved


def test_single_table_write_killed_at_every_step(tmp_path):
    template = tmp_path / "template"
    seeded_kb(template)
    code = CHILD.replace(
        "KnowledgeBase.open(sys.argv[1]).merge(KnowledgeBase.open(sys.argv[2]))",
        "import polars as pl; KnowledgeBase.open(sys.argv[1]).add_models("
        "pl.DataFrame({'model_id': ['m5'], 'adapter': ['z'], 'added': ['2025-01-01']}))",
    )
    assert kill_at_every_step(tmp_path, template, [sys.executable, "-c", code, str(tmp_path / "kb")]) == 2


def test_committed_change_is_completed_without_losing_a_later_plain_write(tmp_path):
    """A transaction killed after its commit point, then a table written by a writer that knows no
    transactions (an older timetic): completing the change keeps both writers' rows."""
    template = tmp_path / "template"
    seeded_kb(template)
    kb_dir = tmp_path / "kb"
    shutil.copytree(template, kb_dir)
    code = CHILD.replace(
        "KnowledgeBase.open(sys.argv[1]).merge(KnowledgeBase.open(sys.argv[2]))",
        "import polars as pl\n"
        "with KnowledgeBase.open(sys.argv[1]).transaction() as tx:\n"
        "    tx.add_datasets(pl.DataFrame({'dataset_id': ['d1']}))\n"
        "    tx.add_windows(pl.DataFrame({'dataset_id': ['d1'], 'task': ['short'], 'item_id': ['a'], "
        "'window_start': [0]}))\n",
    )
    res = run_killed([sys.executable, "-c", code, str(kb_dir)], 5)  # 5: just committed
    assert res.returncode == -signal.SIGKILL and "committed" in res.stderr, res.stderr
    assert KnowledgeBase(kb_dir).datasets()["dataset_id"].to_list() == ["d0", "d1"]  # readers see it
    # an old writer: lock, read the table file, write it back with its rows, no recovery
    with filelock.FileLock(str(kb_dir / ".lock")):
        old = pl.read_parquet(kb_dir / "windows.parquet")
        pl.concat([old, windows("d2", 2)], how="diagonal").write_parquet(kb_dir / "windows.parquet")
    kb = KnowledgeBase.open(kb_dir)
    assert leftovers(kb_dir) == []
    got = kb.windows().group_by("dataset_id").len().sort("dataset_id")
    assert got.rows() == [("d0", 6), ("d1", 1), ("d2", 2)]


def test_failed_transaction_writes_nothing_and_leaves_no_lock(tmp_path):
    kb = seeded_kb(tmp_path / "kb")
    before = state(kb.path)
    with pytest.raises(RuntimeError):
        with kb.transaction() as tx:
            tx.add_datasets(dataset_row("d1"))
            raise RuntimeError("boom")
    with pytest.raises(TimeticInputError):
        with kb.transaction() as tx:
            tx.add_datasets(dataset_row("d1"))
            tx.add_windows(windows("d1", 2).with_columns(acf1=pl.lit("text")))
    assert same(state(kb.path), before) and leftovers(kb.path) == []
    with kb.transaction() as tx:
        assert tx.add_datasets(dataset_row("d1")) == 1
        assert tx.add_windows(windows("d1", 2)) == 2
    assert kb.stats()["windows_per_dataset"] == {"d0": 6, "d1": 2}
    assert kb.stats()["datasets_without_windows"] == [] and leftovers(kb.path) == []


def test_add_dataset_failure_leaves_no_lock_file(tmp_path):
    target = tmp_path / "short.parquet"
    make_long(n_series=1, length=100).write_parquet(target)
    res = run_killed([sys.executable, "-m", "timetic.cli", "add-dataset", "--target", str(target), "--kb",
                      str(tmp_path / "kb"), "--task", "short"], None)
    assert res.returncode == 2 and "too short" in res.stderr
    assert not (tmp_path / "kb").exists()  # the KB it created is removed again, lock file and all


# --------------------------------------------------------------------------------------------------
# stale files and locks
# --------------------------------------------------------------------------------------------------


def test_open_removes_stale_leftovers_but_keeps_a_live_writers(tmp_path):
    kb_dir = tmp_path / "kb"
    seeded_kb(kb_dir)
    before = state(kb_dir)
    strays = [kb_dir / ".windows.parquet.abc123.tmp", kb_dir / ".kb.json.x.tmp"]
    pending = kb_dir / ".txn.00000000000000000001-1.pending"
    pending.mkdir()
    (pending / "datasets.parquet").write_bytes(b"half a file")
    for f in strays:
        f.write_bytes(b"partial")

    # a live writer holds the lock (this process, another open file): everything is kept
    held = filelock.FileLock(str(kb_dir / ".lock"))
    with held:
        KnowledgeBase.open(kb_dir)
        assert sorted(leftovers(kb_dir)) == sorted([".lock", pending.name, *(f.name for f in strays)])
        problems = KnowledgeBase.open(kb_dir, clean=False)
        with pytest.warns(Warning, match="live process"):
            assert problems.check() == []  # its files are not reported while it is alive
    # the writer released the lock but left its file (as an older timetic does): stale now
    (kb_dir / ".lock").touch()
    KnowledgeBase.open(kb_dir)
    assert leftovers(kb_dir) == []
    assert same(state(kb_dir), before)


def test_lock_of_a_killed_process_is_stale(tmp_path):
    kb_dir = tmp_path / "kb"
    seeded_kb(kb_dir)
    code = (
        "import filelock, os, signal, sys\n"
        f"filelock.FileLock({str(kb_dir / '.lock')!r}).acquire()\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], timeout=60)
    assert res.returncode == -signal.SIGKILL and (kb_dir / ".lock").exists()
    kb = KnowledgeBase.open(kb_dir, clean=False)
    assert [p.kind for p in kb.check()] == ["stale-lock"]
    assert (kb_dir / ".lock").exists()  # check without repair writes nothing
    KnowledgeBase.open(kb_dir)
    assert leftovers(kb_dir) == []
    assert kb.add_observations(observations("d0", "m0", 7)) == 1 and leftovers(kb_dir) == []


# --------------------------------------------------------------------------------------------------
# kb check
# --------------------------------------------------------------------------------------------------


def broken_kb(path: Path) -> KnowledgeBase:
    kb = seeded_kb(path)
    kb.add_datasets(dataset_row("lonely"))  # registered, no windows, no observations
    kb.add_datasets(dataset_row("observed"))  # registered, no windows, but observed
    kb.add_observations(observations("observed", "m0", 2))
    kb.add_windows(windows("ghost", 3))  # windows of an unregistered dataset
    kb.add_observations(observations("d0", "unregistered-model", 2))
    dup = pl.read_parquet(path / "models.parquet")
    pl.concat([dup, dup]).write_parquet(path / "models.parquet")  # a duplicated key, written by hand
    (path / ".observations.parquet.zz.tmp").write_bytes(b"x")
    (path / ".txn.00000000000000000002-1.pending").mkdir()
    (path / ".lock").touch()
    return KnowledgeBase.open(path, clean=False)


def test_check_reports_every_kind_and_repair_fixes_the_safe_ones(tmp_path):
    kb = broken_kb(tmp_path / "kb")
    problems = kb.check()
    kinds = sorted(p.kind for p in problems)
    assert kinds == sorted(
        [
            "stale-lock",
            "unfinished-change",
            "stray-file",
            "duplicate-keys",
            "orphan-windows",
            "dataset-without-windows",  # 'lonely' (repairable)
            "dataset-without-windows",  # 'observed' (not: it has observations)
            "orphan-observations",  # the unregistered model
        ]
    ), problems
    assert all("\n" not in str(p) for p in problems)
    assert {p.kind for p in problems if not p.repairable} == {"dataset-without-windows", "orphan-observations"}

    n_obs = kb.observations().height
    repaired = kb.check(repair=True)
    assert sorted(p.kind for p in repaired) == kinds
    assert all(p.fixed == p.repairable for p in repaired)
    assert leftovers(kb.path) == []
    assert kb.models()["model_id"].to_list() == ["m0"]
    assert sorted(kb.datasets()["dataset_id"].to_list()) == ["d0", "observed"]
    assert kb.windows()["dataset_id"].unique().to_list() == ["d0"]
    assert kb.observations().height == n_obs  # observations are never dropped
    assert sorted(p.kind for p in kb.check()) == ["dataset-without-windows", "orphan-observations"]


def test_kb_check_cli(tmp_path):
    from timetic.cli import main

    runner = CliRunner()
    clean = seeded_kb(tmp_path / "clean")
    res = runner.invoke(main, ["kb", "check", "--kb", str(clean.path)])
    assert res.exit_code == 0 and res.output.strip().endswith("consistent"), res.output

    kb = broken_kb(tmp_path / "kb")
    res = runner.invoke(main, ["kb", "check", "--kb", str(kb.path)])
    assert res.exit_code == 1, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 8 and any(line.startswith("stale-lock:") for line in lines), lines
    assert (kb.path / ".lock").exists()  # nothing was written

    res = runner.invoke(main, ["kb", "check", "--kb", str(kb.path), "--repair"])
    assert res.exit_code == 1, res.output  # the observations of an unregistered model remain
    assert sum(line.startswith("repaired ") for line in res.output.splitlines()) == 6, res.output
    kb.add_models(pl.DataFrame({"model_id": ["unregistered-model"]}))
    kb.add_windows(windows("observed", 2))
    res = runner.invoke(main, ["kb", "check", "--kb", str(kb.path), "--repair"])
    assert res.exit_code == 0 and "consistent" in res.output, res.output

    res = runner.invoke(main, ["kb", "check", "--kb", str(tmp_path / "nowhere")])
    assert res.exit_code == 2 and "not a timetic knowledge base" in res.output


def test_readers_see_one_state_while_transactions_commit(tmp_path):
    """A reader racing a writer that adds a dataset and its windows together never sees the dataset
    without its windows (stats() reads all tables as one state)."""
    kb_dir = tmp_path / "kb"
    seeded_kb(kb_dir)
    code = CHILD.replace(
        "KnowledgeBase.open(sys.argv[1]).merge(KnowledgeBase.open(sys.argv[2]))",
        "import polars as pl\n"
        "kb = KnowledgeBase.open(sys.argv[1])\n"
        "for i in range(40):\n"
        "    with kb.transaction() as tx:\n"
        "        tx.add_datasets(pl.DataFrame({'dataset_id': [f'x{i}']}))\n"
        "        tx.add_windows(pl.DataFrame({'dataset_id': [f'x{i}'], 'task': ['short'], 'item_id': ['a'], "
        "'window_start': [0]}))\n",
    )
    child = subprocess.Popen([sys.executable, "-c", code, str(kb_dir)])
    reader = KnowledgeBase.open(kb_dir)
    checks = 0
    try:
        deadline = time.monotonic() + 60
        while child.poll() is None and time.monotonic() < deadline:
            s = reader.stats()
            assert s["datasets_without_windows"] == [] and s["unregistered_datasets"] == [], s
            checks += 1
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
    assert child.returncode == 0 and checks > 0
    assert reader.stats()["n_datasets"] == 41
    both = reader.tables("datasets", "windows")
    assert list(both) == ["datasets", "windows"] and both["windows"]["dataset_id"].n_unique() == 41
    with pytest.raises(TimeticInputError):
        reader.tables("nope")


def test_a_full_disk_during_a_transaction_changes_nothing_and_leaves_nothing(tmp_path, monkeypatch):
    import errno

    from timetic.errors import TimeticInputError

    kb_dir = tmp_path / "kb"
    kb = seeded_kb(kb_dir)
    before = state(kb_dir)
    real = pl.DataFrame.write_parquet
    calls = []

    def full(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(pl.DataFrame, "write_parquet", full)
    with pytest.raises(TimeticInputError, match="No space left on device.*nothing was changed"):
        with kb.transaction() as tx:
            tx.add_datasets(dataset_row("d1"))
            tx.add_windows(windows("d1", 3))
    monkeypatch.setattr(pl.DataFrame, "write_parquet", real)
    assert same(state(kb_dir), before) and leftovers(kb_dir) == []


def test_check_reports_impossible_scores_and_never_drops_them(tmp_path):
    """Writers refuse negative scores, but a file written by other means can hold them (or inf):
    check names the column and a cell, repair leaves the rows alone."""
    kb = seeded_kb(tmp_path / "kb")
    path = kb.path / "observations.parquet"
    obs = pl.read_parquet(path)
    obs = obs.with_columns(pl.when(pl.int_range(pl.len()) == 0).then(-1.0).otherwise(pl.col("ft_mase")).alias("ft_mase"),
                           pl.when(pl.int_range(pl.len()) == 1).then(float("inf")).otherwise(pl.col("zs_wql")).alias("zs_wql"),
                           pl.lit(float("nan")).alias("sn_wql"))  # NaN (undefined) is allowed
    obs.write_parquet(path)
    kb = KnowledgeBase.open(kb.path, clean=False)
    problems = [p for p in kb.check() if p.kind == "bad-scores"]
    assert len(problems) == 2 and not any(p.repairable for p in problems)
    text = " ".join(p.message for p in problems)
    assert "ft_mase below 0 or infinite" in text and "zs_wql below 0 or infinite" in text and "sn_wql" not in text
    assert "d0/" in text
    kb.check(repair=True)
    assert pl.read_parquet(path).height == obs.height
