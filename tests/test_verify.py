"""timetic verify: fine-tune the top-k predicted models on the target with the KB's recipe, score
them on its held-out span, compare; observations go to a user KB layered over the KB (resumable)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

from kbfactory import synthetic_dataset
from timetic.cli import main
from timetic.data import load_target
from timetic.errors import TimeticInputError
from timetic.estimate import TimeTic
from timetic.kb import KB_FILE, KnowledgeBase
from timetic.layers import open_kb
from timetic.verify import VERIFY_COLUMNS, VerifyResult

import timetic.verify as verify_mod


def fingerprint(folder: Path) -> dict[str, tuple[str, int]]:
    return {str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def tiny_target():
    """Three hourly series of 800 points: one held-out 48-step window each (short task)."""
    return load_target(synthetic_dataset(1, n_series=3, length=800, seed=7), name="mine")


@pytest.fixture(scope="module")
def target_file(tmp_path_factory, tiny_target):
    path = tmp_path_factory.mktemp("target") / "mine.parquet"
    tiny_target.frame.write_parquet(path)
    return path


@pytest.fixture
def base(tmp_path, tiny_kb):
    """A private copy of the session's tiny KB (tests may not change the shared one)."""
    path = tmp_path / "base"
    shutil.copytree(tiny_kb.path, path)
    return path


def never_run(*args, **kwargs):
    raise AssertionError("a cell was fine-tuned again")


def test_verify_end_to_end_with_a_user_kb(base, tmp_path, tiny_target):
    before = fingerprint(base)
    out = tmp_path / "mine_kb"
    plans = []
    res = TimeTic(open_kb(base), seed=0).verify(tiny_target, top_k=2, kb_out=out,
                                                on_plan=lambda p: plans.append((p, p.describe(), out.exists())))
    t = res.table
    assert t.columns == list(VERIFY_COLUMNS) and t.height == 2
    assert t.get_column("predicted_rank").to_list() == [1, 2]
    assert sorted(t.get_column("observed_rank").to_list()) == [1, 2]
    assert t.get_column("status").to_list() == ["run", "run"]
    assert t.get_column("n_windows").to_list() == [3, 3]
    for r in t.iter_rows(named=True):
        assert r["inside_90"] == (r["lower_90"] <= r["observed_mase"] <= r["upper_90"])
    # the observed score is the KB's quantity: the mean fine-tuned MASE over the cell's windows
    stored = KnowledgeBase.open(out).observations()
    for r in t.iter_rows(named=True):
        rows = stored.filter(pl.col("model_id") == r["model_id"])
        assert r["observed_mase"] == pytest.approx(rows.get_column("ft_mase").mean())
        assert r["observed_zs_mase"] == pytest.approx(rows.get_column("zs_mase").mean())
    # provenance of every new observation
    kb_recipe = KnowledgeBase.open(base).observations().get_column("recipe_hash").unique().to_list()
    assert stored.get_column("recipe_hash").unique().to_list() == kb_recipe  # the KB's primary recipe
    assert stored.get_column("source").unique().to_list() == ["verify"]
    for col in ("recipe", "versions", "hardware", "date", "fit_log"):
        assert stored.get_column(col).null_count() == 0 and (stored.get_column(col).str.len_chars() > 0).all(), col
    assert stored.get_column("seed").unique().to_list() == [0]
    assert (stored.get_column("wall_time_s") > 0).all()
    assert "torch" in json.loads(stored.get_column("versions")[0])
    # the user KB: the target's dataset row and windows, no model rows; layered over the base
    user = KnowledgeBase.open(out)
    assert user.datasets().get_column("dataset_id").to_list() == ["mine"]
    assert user.windows(dataset_id="mine").height == 3 and user.models().height == 0
    assert json.loads((out / KB_FILE).read_text())["base"] == str(base.resolve())
    assert user.check() == []
    assert fingerprint(base) == before
    # the plan came before the work, with an estimate from the KB's times of the same model and task
    plan, text, written = plans[0]
    assert not written  # nothing written before the plan
    obs = KnowledgeBase.open(base).observations()
    expected = sum(
        obs.filter((pl.col("model_id") == m) & (pl.col("task") == "short"))
        .group_by("dataset_id").agg(pl.col("wall_time_s").first()).get_column("wall_time_s").median()
        for m in t.get_column("model_id")
    )
    assert plan.estimate_s == pytest.approx(expected) and plan.estimate_s > 0
    assert "about" in text and "recipe custom" in text and all(m in text for m in t.get_column("model_id"))
    s = res.summary()[0]
    assert s["n_intervals"] == 2 and s["predicted_best"] == t.get_column("model_id")[0]
    assert s["best_match"] == (t.filter(pl.col("observed_rank") == 1).get_column("model_id")[0] == s["predicted_best"])


def test_observed_score_equals_the_runner_on_the_kb_recipe(base, tmp_path, tiny_target):
    """What verify reports is what the KB grid's runner measures for the same model and recipe."""
    from timetic.adapters import load_model
    from timetic.finetune import run_finetune
    from timetic.kb import resolve_model_source
    from timetic.recipe import Recipe
    from timetic.tasks import Task

    kb = open_kb(base)
    res = TimeTic(kb, seed=0).verify(tiny_target, top_k=1)
    m = res.table.get_column("model_id")[0]
    row = kb.models().filter(pl.col("model_id") == m).row(0, named=True)
    recipe = Recipe.from_dict(json.loads(kb.observations(model_id=m).get_column("recipe")[0]))
    direct = run_finetune(load_model(resolve_model_source(kb, row["source"]), adapter=row["adapter"]),
                          tiny_target, Task.preset("short", "h"), recipe)
    assert res.table.get_column("observed_mase")[0] == pytest.approx(direct.summary()["ft_mase"], rel=1e-6)


def test_rerun_resumes_from_the_user_kb_with_the_same_predictions(base, tmp_path, tiny_target, monkeypatch):
    out = tmp_path / "mine_kb"
    first = TimeTic(open_kb(base), seed=0).verify(tiny_target, top_k=2, kb_out=out)
    monkeypatch.setenv("TIMETIC_CACHE_DIR", "off")  # only the user KB can resume it
    monkeypatch.setattr(verify_mod, "_run_cell", never_run)
    n_before = KnowledgeBase.open(out).observations().height
    # read as the default would: the user KB over its base; the target's own rows are left out
    again = TimeTic(open_kb(out), seed=0).verify(tiny_target, top_k=2, kb_out=out)
    assert again.table.get_column("status").to_list() == ["kb-out", "kb-out"]
    assert again.info["excluded"] == ["mine"]
    cols = ["model_id", "predicted_mase", "lower_90", "upper_90", "observed_mase"]
    assert again.table.select(cols).equals(first.table.select(cols))
    assert KnowledgeBase.open(out).observations().height == n_before


def _interrupt_second_cell(monkeypatch) -> list[str]:
    """Make verify's second fine-tuning cell raise KeyboardInterrupt; returns the cells called."""
    real = verify_mod._run_cell
    calls: list[str] = []

    def interrupted(cell, *args, **kwargs):
        calls.append(cell.model_id)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(cell, *args, **kwargs)

    monkeypatch.setattr(verify_mod, "_run_cell", interrupted)
    return calls


def test_an_interrupted_run_continues_where_it_stopped(base, tmp_path, tiny_target, monkeypatch):
    monkeypatch.setenv("TIMETIC_CACHE_DIR", "off")
    out = tmp_path / "mine_kb"
    real = verify_mod._run_cell
    calls = _interrupt_second_cell(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        TimeTic(open_kb(base), seed=0).verify(tiny_target, top_k=2, kb_out=out)
    kept = KnowledgeBase.open(out).observations().get_column("model_id").unique().to_list()
    assert kept == [calls[0]]
    monkeypatch.setattr(verify_mod, "_run_cell", real)
    res = TimeTic(open_kb(base), seed=0).verify(tiny_target, top_k=2, kb_out=out)
    status = dict(zip(res.table.get_column("model_id"), res.table.get_column("status")))
    assert status == {calls[0]: "kb-out", calls[1]: "run"}
    assert sorted(KnowledgeBase.open(out).observations().get_column("model_id").unique().to_list()) == sorted(calls)


def test_without_a_user_kb_the_cache_resumes(base, tmp_path, tiny_target, monkeypatch):
    monkeypatch.setenv("TIMETIC_CACHE_DIR", str(tmp_path / "cache"))
    first = TimeTic(open_kb(base), seed=0).verify(tiny_target, top_k=1)
    assert first.table.get_column("status").to_list() == ["run"]
    monkeypatch.setattr(verify_mod, "_run_cell", never_run)
    again = TimeTic(open_kb(base), seed=0).verify(tiny_target, top_k=1)
    assert again.table.get_column("status").to_list() == ["cache"]
    assert again.table.get_column("observed_mase").to_list() == first.table.get_column("observed_mase").to_list()
    # other settings are other cells: fewer windows is not the same measurement
    with pytest.raises(AssertionError, match="fine-tuned again"):
        TimeTic(open_kb(base), seed=0).verify(tiny_target, top_k=1, max_eval_windows=2)


def test_stored_rows_of_other_windows_are_not_taken_as_done(base, tmp_path, tiny_target, monkeypatch):
    monkeypatch.setenv("TIMETIC_CACHE_DIR", "off")
    out = tmp_path / "mine_kb"
    TimeTic(open_kb(base), seed=0).verify(tiny_target, top_k=1, kb_out=out, max_eval_windows=2)
    res = TimeTic(open_kb(base), seed=0).verify(tiny_target, top_k=1, kb_out=out)
    assert res.table.get_column("status").to_list() == ["run"] and res.table.get_column("n_windows")[0] == 3


def test_a_target_already_in_the_kb_is_left_out_of_its_prediction(base, tiny_kb):
    """Verifying on a KB dataset predicts it from the other datasets only (no leak)."""
    from kbfactory import synthetic_dataset as make

    ds0 = load_target(make(0), name="ds0")
    res = TimeTic(open_kb(base), seed=0, zero_shot=False).verify(ds0, top_k=1, max_eval_windows=2)
    assert res.info["excluded"] == ["ds0"]
    without = open_kb(base, exclude_datasets=["ds0"])
    ranking = TimeTic(without, seed=0, zero_shot=False).predict(ds0)
    top = ranking.row(0, named=True)
    got = res.table.row(0, named=True)
    assert got["model_id"] == top["model_id"] and got["predicted_mase"] == pytest.approx(top["predicted_mase"])
    leaky = TimeTic(open_kb(base), seed=0, zero_shot=False).predict(ds0)
    assert not leaky.get_column("predicted_mase").equals(ranking.get_column("predicted_mase"))


def test_summary_counts_coverage_best_and_regret():
    table = pl.DataFrame({
        "task": ["short"] * 3, "predicted_rank": [1, 2, 3], "model_id": ["a", "b", "c"], "adapter": ["x"] * 3,
        "predicted_mase": [1.0, 1.1, 1.2], "lower_90": [0.9, 0.9, None], "upper_90": [1.1, 1.3, None],
        "observed_mase": [1.2, 1.0, 1.1], "observed_zs_mase": [1.3, 1.3, 1.3], "observed_gain": [0.1, 0.2, 0.15],
        "inside_90": [False, True, None], "observed_rank": [3, 1, 2], "n_windows": [3, 3, 3],
        "status": ["run"] * 3, "seconds": [1.0] * 3,
    })
    res = VerifyResult(table=table, observations=pl.DataFrame(), info={})
    s = res.summary()[0]
    assert (s["predicted_best"], s["observed_best"], s["best_match"]) == ("a", "b", False)
    assert (s["inside"], s["n_intervals"], s["n_models"]) == (1, 2, 3)
    assert s["regret_of_predicted_best"] == pytest.approx(0.2)
    line = res.summary_lines()[0]
    assert "? no" in line and "cover 1/2" in line and "+20.0%" in line
    doc = json.loads(res.to_json())
    assert doc["summary"][0]["best_match"] is False and len(doc["verified"]) == 3


# ---------------------------------------------------------------------------------------------
# the command


def test_cli_verify_then_predict_reads_both(base, tmp_path, target_file):
    runner = CliRunner()
    out = tmp_path / "mine_kb"
    before = fingerprint(base)
    res = runner.invoke(main, ["verify", "--target", str(target_file), "--kb", str(base), "--top-k", "1",
                               "--kb-out", str(out), "--format", "json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["info"]["kb_out"] == str(out) and doc["info"]["recipe"]["hash"] == doc["info"]["recipe"]["kb_hash"]
    assert len(doc["verified"]) == 1 and doc["verified"][0]["status"] == "run"
    assert isinstance(doc["summary"][0]["best_match"], bool)
    assert "fine-tuning" in res.stderr and "about" in res.stderr  # the time estimate, before the work
    res = runner.invoke(main, ["predict", "--target", str(target_file), "--kb", str(out), "--format", "json", "-q"])
    assert res.exit_code == 0, res.output
    info = json.loads(res.stdout)["info"]
    assert info["kb_layers"] == [str(base), str(out)]
    # a rerun (the user KB is the default --kb then) resumes, and the table says so
    res = runner.invoke(main, ["verify", "--target", str(target_file), "--top-k", "1", "--kb-out", str(out), "-q"])
    assert res.exit_code == 0, res.output
    assert "kb-out" in res.stdout and "predicted best" in res.stdout and res.stderr.strip() == ""
    assert fingerprint(base) == before


def test_cli_csv_and_out_file(base, tmp_path, target_file):
    out = tmp_path / "v.csv"
    res = CliRunner().invoke(main, ["verify", "--target", str(target_file), "--kb", str(base), "--top-k", "1",
                                    "--max-windows", "2", "--format", "csv", "--out", str(out), "-q"])
    assert res.exit_code == 0, res.output
    df = pl.read_csv(out)
    assert df.columns == list(VERIFY_COLUMNS) and df.height == 1 and df.get_column("n_windows")[0] == 2


def assert_one_line_error(res, *expected: str) -> None:
    assert res.exit_code == 2, (res.exit_code, res.output)
    assert "Traceback" not in res.output
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, res.stderr
    assert ";" in errors[0]
    for text in expected:
        assert text in errors[0], errors[0]


def test_cli_bad_input_is_one_line_exit_2_and_writes_nothing(base, tmp_path, target_file, tiny_target):
    runner = CliRunner()
    before = fingerprint(base)
    new = tmp_path / "new_kb"
    common = ["verify", "--target", str(target_file), "--kb", str(base)]
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "todo.txt").write_text("mine")
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    other_base = tmp_path / "other"
    shutil.copytree(base, other_base)
    over_other = tmp_path / "over_other"
    from timetic.layers import create_user_kb

    create_user_kb(over_other, other_base)
    other_data = tmp_path / "ds0.parquet"
    load_target(synthetic_dataset(2, n_series=2, length=800, seed=3)).frame.write_parquet(other_data)
    cases = [
        (common + ["--top-k", "0", "--kb-out", str(new)], ["--top-k"]),
        (common + ["--max-windows", "0", "--kb-out", str(new)], ["--max-windows"]),
        (common + ["--models", "nope", "--kb-out", str(new)], ["unknown model", "nope"]),
        (["verify", "--target", str(tmp_path / "missing.parquet"), "--kb", str(base), "--kb-out", str(new)], []),
        (common + ["--kb-out", str(a_file)], ["is a file"]),
        (common + ["--kb-out", str(notes)], ["no knowledge base"]),
        (common + ["--kb-out", str(base)], ["layers over nothing"]),
        (common + ["--kb-out", str(over_other)], ["layers over", "not over"]),
        (common + ["--kb-out", str(tmp_path / "no" / "such" / "kb")], ["does not exist"]),
        (["verify", "--target", str(other_data), "--kb", str(base), "--dataset-id", "ds0", "--kb-out", str(new)],
         ["ds0", "--dataset-id"]),
        (common + ["--out", str(tmp_path), "--kb-out", str(new)], ["directory"]),
        (["verify", "--target", str(target_file), "--kb", str(tmp_path / "nokb"), "--kb-out", str(new)],
         ["not a timetic knowledge base"]),
    ]
    over_before = fingerprint(over_other)
    for args, expected in cases:
        res = runner.invoke(main, args)
        assert_one_line_error(res, *expected)
        assert not new.exists(), args
    assert sorted(p.name for p in notes.iterdir()) == ["todo.txt"]
    assert fingerprint(base) == before and fingerprint(over_other) == over_before


def test_verify_over_the_shipped_kb_never_writes_it(tmp_path, monkeypatch):
    """Over the real shipped KB (a zoo model, two fine-tuning steps): the user KB records
    ``"base": "shipped"``, the shipped files keep their bytes and mtimes, and predict reads both."""
    from timetic.layers import shipped_kb_path
    from timetic.recipe import Recipe

    monkeypatch.setenv("TIMETIC_CACHE_DIR", "off")
    shipped = shipped_kb_path()
    before = fingerprint(shipped)
    out = tmp_path / "mine_kb"
    quick = Recipe(name="test", steps=2, batch_size=4, eval_every=None, val_windows=None)
    with pytest.warns(UserWarning, match="another recipe"):
        res = TimeTic(open_kb(shipped), zero_shot=False).verify(
            "examples/example_target.parquet", top_k=1, kb_out=out, max_eval_windows=2, recipe=quick)
    assert res.table.get_column("n_windows").to_list() == [2] and res.info["recipe"]["hash"] == quick.hash
    assert json.loads((out / KB_FILE).read_text())["base"] == "shipped"
    res = CliRunner().invoke(main, ["predict", "--target", "examples/example_target.parquet", "--kb", str(out),
                                    "--no-zero-shot", "--format", "json", "-q"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["info"]["kb_layers"] == [str(shipped), str(out)]
    assert fingerprint(shipped) == before


def test_cli_interrupt_keeps_what_was_measured_and_says_how_to_continue(base, tmp_path, target_file, monkeypatch):
    monkeypatch.setenv("TIMETIC_CACHE_DIR", "off")
    calls = _interrupt_second_cell(monkeypatch)
    out = tmp_path / "mine_kb"
    args = ["verify", "--target", str(target_file), "--kb", str(base), "--top-k", "2", "--kb-out", str(out)]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 130, res.output
    assert "interrupted: 1 of 2 model(s) measured" in res.stderr and "run the same command again" in res.stderr
    assert KnowledgeBase.open(out).observations().get_column("model_id").unique().to_list() == calls[:1]


def test_a_kb_dataset_under_other_series_names_is_left_out_and_not_recorded_twice(base, tmp_path):
    """The KB's ``ds1`` with renamed series: verify leaves ``ds1`` out of the prediction (its
    observations would be the answer) and will not record the series a second time; the exact
    same frame under another id is recorded under the KB's id."""
    from timetic.errors import TimeticWarning

    frame = synthetic_dataset(1)
    renamed = load_target(frame.with_columns((pl.lit("x") + pl.col("item_id")).alias("item_id")), name="renamed")
    est = TimeTic(open_kb(base), seed=0)
    res = est.verify(renamed, top_k=1)
    assert "ds1" in res.info["excluded"]
    with pytest.raises(TimeticInputError, match="as dataset 'ds1' under other series names"):
        est.verify(renamed, top_k=1, kb_out=tmp_path / "u1")
    assert not (tmp_path / "u1").exists()
    with pytest.warns(TimeticWarning, match="in the knowledge base already as 'ds1'"):
        est.verify(load_target(frame, name="copy"), top_k=1, kb_out=tmp_path / "u2", dataset_id="copy")
    assert KnowledgeBase.open(tmp_path / "u2").datasets().get_column("dataset_id").to_list() == ["ds1"]
