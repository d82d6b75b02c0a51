"""The CLI end to end: features, profile, finetune (--kb), kb commands, add-*, predict."""

import json
import shutil

import polars as pl
import pytest
from click.testing import CliRunner

from conftest import make_long
from timetic.cli import main

EXAMPLE = "examples/example_target.parquet"


@pytest.fixture(scope="module")
def runner():
    return CliRunner()


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from timetic.adapters import get_adapter

    path = tmp_path_factory.mktemp("models") / "patchtst-tiny"
    get_adapter("patchtst").from_config("tiny", seed=1).save_pretrained(path)
    return path


def test_features_on_example(runner, tmp_path):
    out = tmp_path / "f.parquet"
    res = runner.invoke(main, ["features", "--target", EXAMPLE, "--task", "all", "--windows", "32", "--out", str(out)])
    assert res.exit_code == 0, res.output
    df = pl.read_parquet(out)
    feats = df.drop("task", "window", "item_id", "start")
    assert df.height == 96 and feats.width >= 40
    assert all(feats[c].is_finite().all() for c in feats.columns)


def test_profile_and_finetune_commands(runner, tmp_path, tiny_model):
    prof = tmp_path / "p.json"
    res = runner.invoke(main, ["profile", str(tiny_model), "--adapter", "patchtst", "--length", "6", "--out", str(prof)])
    assert res.exit_code == 0, res.output
    assert len(json.loads(prof.read_text())["profile"]) == 6
    recipe = tmp_path / "recipe.json"
    recipe.write_text(json.dumps({"steps": 3, "batch_size": 8}))
    out = tmp_path / "r.parquet"
    kb = tmp_path / "kb"
    res = runner.invoke(main, ["finetune", "--model", str(tiny_model), "--adapter", "patchtst", "--dataset", EXAMPLE,
                               "--task", "short", "--recipe", str(recipe), "--max-eval-windows", "6",
                               "--out", str(out), "--kb", str(kb)])
    assert res.exit_code == 0, res.output
    assert "MASE zero-shot" in res.output and "recorded 6 new observations" in res.output
    assert pl.read_parquet(out).height == 6
    # re-adding the same results is idempotent
    res = runner.invoke(main, ["add-observation", str(out), "--kb", str(kb)])
    assert res.exit_code == 0 and "recorded 0 new" in res.output, res.output
    stats = json.loads(runner.invoke(main, ["kb", "stats", "--kb", str(kb)]).output)
    assert stats["n_observations"] == 6 and stats["n_models"] == 1


def test_kb_commands_and_merge(runner, tmp_path, tiny_kb):
    res = runner.invoke(main, ["kb", "show", "--kb", str(tiny_kb.path)])
    assert res.exit_code == 0 and "patchtst-tiny" in res.output, res.output
    exp = tmp_path / "export"
    assert runner.invoke(main, ["kb", "export", "--kb", str(tiny_kb.path), "--out", str(exp)]).exit_code == 0
    assert (exp / "observations.csv").exists()
    other = tmp_path / "other"
    data = tmp_path / "d.parquet"
    make_long(2, 1200, seed=9).write_parquet(data)
    assert runner.invoke(main, ["kb", "init", str(other)]).exit_code == 0
    res = runner.invoke(main, ["add-dataset", "--target", str(data), "--kb", str(other), "--id", "extra", "--task", "short"])
    assert res.exit_code == 0, res.output
    merged = tmp_path / "merged"
    shutil.copytree(tiny_kb.path, merged)
    res = runner.invoke(main, ["kb", "merge", str(other), "--kb", str(merged)])
    assert res.exit_code == 0, res.output
    stats = json.loads(runner.invoke(main, ["kb", "stats", "--kb", str(merged)]).output)
    assert stats["n_datasets"] == 5


def test_add_model_command(runner, tmp_path, tiny_model):
    kb = tmp_path / "kb"
    res = runner.invoke(main, ["add-model", str(tiny_model), "--adapter", "patchtst", "--kb", str(kb),
                               "--pretraining-datasets", "m3,tourism"])
    assert res.exit_code == 0, res.output
    from timetic.kb import KnowledgeBase

    m = KnowledgeBase.open(kb).models()
    assert m["pretraining_datasets"][0].to_list() == ["m3", "tourism"] and len(m["profile_renyi"][0]) == 6
    from timetic.zoo import folder_revision

    assert m["revision"][0] == folder_revision(tiny_model) and m["revision"][0].startswith("sha256:")
    # the same id from other weights would take over the id's observations: refused, KB unchanged
    other = tmp_path / "patchtst-other"
    from timetic.adapters import get_adapter

    get_adapter("patchtst").from_config("tiny", seed=2).save_pretrained(other)
    before = (kb / "models.parquet").read_bytes()
    res = runner.invoke(main, ["add-model", str(other), "--adapter", "patchtst", "--kb", str(kb), "--id", "patchtst-tiny"])
    assert res.exit_code == 2 and "already in the knowledge base" in res.output, res.output
    assert (kb / "models.parquet").read_bytes() == before
    # the same model again is fine (its row is recomputed)
    res = runner.invoke(main, ["add-model", str(tiny_model), "--adapter", "patchtst", "--kb", str(kb)])
    assert res.exit_code == 0, res.output


def test_failed_writes_leave_no_knowledge_base_behind(runner, tmp_path, tiny_model):
    new = tmp_path / "new"
    res = runner.invoke(main, ["add-model", str(tiny_model), "--adapter", "nosuch", "--kb", str(new)])
    assert res.exit_code == 2 and not new.exists(), res.output
    short = tmp_path / "short.parquet"
    make_long(1, 40).write_parquet(short)
    empty = tmp_path / "empty"
    empty.mkdir()
    res = runner.invoke(main, ["add-dataset", "--target", str(short), "--kb", str(empty)])
    assert res.exit_code == 2 and empty.is_dir() and not any(empty.iterdir()), res.output
    # a folder with other files is not turned into a KB
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "a.txt").write_text("x")
    res = runner.invoke(main, ["add-model", str(tiny_model), "--adapter", "patchtst", "--kb", str(notes)])
    assert res.exit_code == 2 and "not a timetic knowledge base" in res.output
    assert sorted(p.name for p in notes.iterdir()) == ["a.txt"]


@pytest.mark.parametrize("learner", ["gp", "hgb", "tabpfn", "tabicl"])
def test_predict_every_learner(runner, tmp_path, tiny_kb, learner, monkeypatch, tabpfn_checkpoint, tabicl_checkpoint):
    monkeypatch.setenv("TIMETIC_TABPFN_MODEL", str(tabpfn_checkpoint))
    monkeypatch.setenv("TIMETIC_TABICL_MODEL", str(tabicl_checkpoint))
    out = tmp_path / "rank.json"
    res = runner.invoke(main, ["predict", "--target", EXAMPLE, "--kb", str(tiny_kb.path), "--learner", learner,
                               "--windows", "8", "--format", "json", "--out", str(out)])
    assert res.exit_code == 0, res.output
    doc = json.loads(out.read_text())
    assert doc["schema_version"] == 1 and doc["info"]["learner"] == learner
    assert [r["rank"] for r in doc["rankings"]] == [1, 2, 3, 4]


def test_predict_table_csv_and_no_zero_shot(runner, tiny_kb):
    res = runner.invoke(main, ["predict", "--target", EXAMPLE, "--kb", str(tiny_kb.path), "--windows", "8"])
    assert res.exit_code == 0, res.output
    assert "predicted fine-tuned MASE" in res.output and "nearest source datasets" in res.output
    res = runner.invoke(main, ["predict", "--target", EXAMPLE, "--kb", str(tiny_kb.path), "--windows", "8",
                               "--no-zero-shot", "--format", "csv"])
    assert res.exit_code == 0, res.output
    lines = res.output.strip().splitlines()
    assert lines[0].startswith("task,rank,model_id") and len(lines) == 5


def test_predict_out_suffix_picks_the_format(runner, tiny_kb, tmp_path):
    base = ["predict", "--target", EXAMPLE, "--kb", str(tiny_kb.path), "--windows", "8", "--no-zero-shot", "-q"]
    res = runner.invoke(main, [*base, "--out", str(tmp_path / "r.json")])
    assert res.exit_code == 0, res.output
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["schema_version"] == 1 and doc["info"]["windows_used"] == {"short": {"sampled": 8, "zero_shot": 0}}
    assert doc["info"]["frequency_in_kb"] is True  # hourly, as the tiny KB's datasets
    half_hourly = tmp_path / "m.parquet"
    make_long(2, 1500, freq="30min").write_parquet(half_hourly)
    res = runner.invoke(main, [*base[:2], str(half_hourly), *base[3:], "--out", str(tmp_path / "m.json")])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "m.json").read_text())["info"]["frequency_in_kb"] is False
    res = runner.invoke(main, [*base, "--out", str(tmp_path / "r2.json"), "--format", "csv"])
    assert res.exit_code == 2 and "ends in .json but --format is csv" in res.output
    assert not (tmp_path / "r2.json").exists()


def test_cli_errors_exit_2(runner, tmp_path, tiny_kb):
    cases = [
        (["predict", "--target", EXAMPLE, "--kb", str(tmp_path / "nokb")], "not a timetic knowledge base"),
        (["predict", "--target", EXAMPLE, "--kb", str(tiny_kb.path), "--models", "x"], "unknown model"),
        (["profile", str(tmp_path / "missing"), "--adapter", "patchtst"], "neither a local directory"),
        (["profile", "org/model", "--adapter", "nope"], "unknown adapter"),
        (["add-observation", str(tmp_path / "none.parquet"), "--kb", str(tmp_path / "kb2")], "not found"),
    ]
    for args, expected in cases:
        res = runner.invoke(main, args)
        assert res.exit_code == 2, (args, res.output)
        assert expected in res.output, (args, res.output)


def test_report_is_self_contained_html(runner, tmp_path, tiny_kb):
    import base64
    import xml.etree.ElementTree as ET

    out = tmp_path / "report.html"
    res = runner.invoke(main, ["report", "--target", EXAMPLE, "--kb", str(tiny_kb.path), "--windows", "8",
                               "--task", "short", "--out", str(out)])
    assert res.exit_code == 0, res.output
    text = out.read_text(encoding="utf-8")
    root = ET.fromstring(text.split("\n", 1)[1])  # well-formed (XHTML-style) after the doctype
    imgs = root.findall(".//img")
    assert len(imgs) == 2  # the ranking plot and the feature plot
    for img in imgs:
        src = img.get("src")
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    rows = root.findall(".//table")[0].findall(".//tbody/tr")
    assert len(rows) == 4  # one per model of the tiny KB
    assert "nearest source datasets" in text.lower() and "Target features" in text
    assert "http://" not in text and "https://" not in text  # nothing to fetch
    # the run's warnings are in the page, not only on stderr
    res = runner.invoke(main, ["report", "--target", EXAMPLE, "--kb", str(tiny_kb.path), "--windows", "8",
                               "--task", "all", "--no-zero-shot", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "no medium-task observations" in res.output
    page = out.read_text(encoding="utf-8")
    assert '<div class="warn">' in page and "no medium-task observations" in page


def test_finetune_takes_the_target_column_options(runner, tmp_path, tiny_model):
    data = tmp_path / "d.csv"
    make_long(1, 900, seed=3).rename({"timestamp": "Date", "target": "y"}).drop("item_id").write_csv(data)
    recipe = tmp_path / "recipe.json"
    recipe.write_text(json.dumps({"steps": 2, "batch_size": 8}))
    res = runner.invoke(main, ["finetune", "--model", str(tiny_model), "--adapter", "patchtst", "--dataset", str(data),
                               "--timestamp-col", "Date", "--target-col", "y", "--recipe", str(recipe),
                               "--max-eval-windows", "2", "--out", str(tmp_path / "r.parquet")])
    assert res.exit_code == 0, res.output
    assert pl.read_parquet(tmp_path / "r.parquet").height == 1  # one 48-step window in the final 10%


def test_add_model_takes_the_kbs_own_source_forms(runner, tmp_path):
    from timetic.kb import KnowledgeBase, default_kb_path

    kb = tmp_path / "kb"
    res = runner.invoke(main, ["add-model", "zoo:v2/tide-s", "--adapter", "tide", "--kb", str(kb)])
    assert res.exit_code == 0, res.output
    row = KnowledgeBase.open(kb).models().row(0, named=True)
    shipped = KnowledgeBase.open(default_kb_path()).models().filter(pl.col("model_id") == "tide-s").row(0, named=True)
    assert (row["model_id"], row["source"], row["revision"]) == ("tide-s", "zoo:v2/tide-s", shipped["revision"])
    res = runner.invoke(main, ["add-model", "zoo:v2/nope", "--adapter", "tide", "--kb", str(tmp_path / "k2")])
    assert res.exit_code == 2 and "does not exist" in res.output and not (tmp_path / "k2").exists()


def test_add_dataset_again_keeps_its_notes_and_warns_about_twins(runner, tmp_path):
    from timetic.kb import KnowledgeBase

    data = tmp_path / "d.parquet"
    make_long(2, 1200, seed=9).write_parquet(data)
    kb = tmp_path / "kb"
    args = ["add-dataset", "--target", str(data), "--kb", str(kb), "--task", "short"]
    assert runner.invoke(main, [*args, "--id", "a", "--source", "https://x", "--licence", "CC-BY"]).exit_code == 0
    res = runner.invoke(main, [*args, "--id", "a"])  # again, without the notes
    assert res.exit_code == 0, res.output
    row = KnowledgeBase.open(kb).datasets().row(0, named=True)
    assert (row["source"], row["licence"]) == ("https://x", "CC-BY")
    res = runner.invoke(main, [*args, "--id", "b"])
    assert res.exit_code == 0 and "holds the same series already as 'a'" in res.output, res.output
