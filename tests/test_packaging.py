"""Packaging (issue 14): the wheel ships the default KB and the zoo, tabpfn is an optional extra,
``timetic finetune`` defaults to the KB's recipe, build_kb's target files take predict's target
options, and the piped table keeps every header and model id whole.

The wheel itself is installed and run by ``.ci/wheel_check.sh`` (called from ``.ci/run``); here it
is built and its contents checked.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from timetic.cli import main
from timetic.errors import TimeticInputError
from timetic.kb import DEFAULT_KB_DIR, KB_FILE, KnowledgeBase, default_kb_path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "example_target.parquet"

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = None


def _pyproject() -> dict:
    if tomllib is None:
        pytest.skip("tomllib needs Python >= 3.11")
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _hook_function(name: str):
    """A function of hatch_build.py without importing hatchling (only the build has it)."""
    tree = ast.parse((ROOT / "hatch_build.py").read_text())
    funcs = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name]
    module = ast.Module(body=[n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))
                              and "hatchling" not in ast.unparse(n)] + funcs, type_ignores=[])
    ns: dict = {}
    exec(compile(module, "hatch_build.py", "exec"), ns)
    return ns[name]


# -- the default KB: one constant, shipped in the wheel ------------------------------------------


def test_build_hook_reads_the_default_kb_constant():
    assert _hook_function("default_kb_dir")(ROOT) == DEFAULT_KB_DIR
    assert (ROOT / DEFAULT_KB_DIR / KB_FILE).is_file()
    config = _pyproject()["tool"]["hatch"]["build"]["targets"]["wheel"]
    assert config["hooks"]["custom"]["path"] == "hatch_build.py"


def test_build_hook_ships_only_the_kb_files(tmp_path):
    kb = KnowledgeBase.create(tmp_path / "kb")
    for junk in (".lock", "x.parquet.tmp", "notes.txt"):
        (kb.path / junk).write_text("x")
    (kb.path / ".txn.1.pending").mkdir()
    names = [p.name for p in _hook_function("kb_files")(kb.path)]
    assert "kb.json" in names and all(n == "kb.json" or n.endswith(".parquet") or n == "README.md" for n in names)
    assert not any(n.startswith(".") for n in names)


def test_default_kb_path(monkeypatch, tmp_path):
    monkeypatch.delenv("TIMETIC_KB", raising=False)
    assert default_kb_path() == ROOT / DEFAULT_KB_DIR
    monkeypatch.setenv("TIMETIC_KB", str(tmp_path))
    assert default_kb_path() == tmp_path
    monkeypatch.delenv("TIMETIC_KB")
    import timetic.kb as kbmod

    monkeypatch.setattr(kbmod, "DEFAULT_KB_DIR", "no-such-kb")
    monkeypatch.setattr(kbmod, "PACKAGED_KB_DIR", "no-such-kb")
    with pytest.raises(TimeticInputError, match="TIMETIC_KB"):
        default_kb_path()


def test_from_kb_without_a_path_opens_the_default_kb(monkeypatch):
    from timetic.estimate import TimeTic

    monkeypatch.delenv("TIMETIC_KB", raising=False)
    assert TimeTic.from_kb().kb.path == default_kb_path()


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The project's wheel, built as pip builds it for a user (build isolation, hatchling)."""
    out = tmp_path_factory.mktemp("dist")
    res = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(ROOT)],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    (whl,) = out.glob("timetic-*.whl")
    return whl


def test_wheel_ships_the_default_kb_and_the_zoo_it_needs(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    kb = ROOT / DEFAULT_KB_DIR
    shipped = {n.removeprefix("timetic/_kb/") for n in names if n.startswith("timetic/_kb/")}
    assert shipped == {p.name for p in kb.iterdir() if p.name in ("kb.json", "README.md") or p.suffix == ".parquet"}
    # every zoo model the default KB names, with its weights
    for source in KnowledgeBase.open(kb).models().get_column("source"):
        if source.startswith("zoo:"):
            folder = f"timetic/zoo/{source[4:]}/"
            assert any(n.startswith(folder) and n.endswith((".safetensors", ".pt", ".bin", ".json")) for n in names), source
    assert not any(n.startswith(("meta_features", "tests/", "benchmarks/", "logs/")) for n in names)
    assert not any("/." in n for n in names)  # no lock or staging files
    with zipfile.ZipFile(wheel) as z:
        meta = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    requires = [line for line in meta.splitlines() if line.startswith("Requires-Dist:")]
    tabpfn = [r for r in requires if re.match(r"Requires-Dist: tabpfn\b", r)]
    assert tabpfn and all("extra ==" in r for r in tabpfn), requires  # only as an extra
    assert any("tabpfn" in r and "extra == 'tabpfn'" in r.replace('"', "'") for r in requires), requires


def test_ci_runs_the_wheel_check():
    run = (ROOT / ".ci" / "run").read_text()
    check = ROOT / ".ci" / "wheel_check.sh"
    assert "bash .ci/wheel_check.sh" in run and check.is_file()
    text = check.read_text()
    assert "--no-deps" in text and "predict" in text and 'cd "$work/user"' in text


# -- tabpfn: an optional extra ------------------------------------------------------------------


def test_tabpfn_is_an_extra_in_dev():
    project = _pyproject()["project"]
    assert not any(d.startswith("tabpfn") for d in project["dependencies"])
    extras = project["optional-dependencies"]
    assert any(d.startswith("tabpfn") for d in extras["tabpfn"])
    assert any(d.startswith("tabpfn") for d in extras["dev"])


def test_tabpfn_imports_are_lazy():
    for path in (ROOT / "timetic").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in tree.body:  # module level
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                mods = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                assert not any(m.split(".")[0] in ("tabpfn", "tabicl") for m in mods), f"{path}: {ast.unparse(node)}"


@pytest.mark.parametrize("package", ["tabpfn", "tabicl"])
def test_missing_learner_package_is_one_line_naming_the_extra(monkeypatch, tmp_path, package):
    from timetic.learners import get_learner

    ckpt = tmp_path / "model.ckpt"
    ckpt.write_bytes(b"x")
    monkeypatch.setitem(sys.modules, package, None)  # as if not installed
    with pytest.raises(TimeticInputError) as err:
        get_learner(package, model_path=ckpt)
    msg = str(err.value)
    assert "\n" not in msg and f'pip install "timetic[{package}]"' in msg
    # the import itself (past check_ready) says the same
    from timetic.learners import TabICLLearner, TabPFNLearner

    cls = {"tabpfn": TabPFNLearner, "tabicl": TabICLLearner}[package]
    with pytest.raises(TimeticInputError, match=re.escape(f'timetic[{package}]')):
        cls(model_path=ckpt)._regressor(str(ckpt))


def test_predict_without_tabpfn_says_which_extra(monkeypatch, tmp_path):
    ckpt = tmp_path / "tabpfn-v2-regressor.ckpt"
    ckpt.write_bytes(b"x")
    monkeypatch.setitem(sys.modules, "tabpfn", None)
    monkeypatch.setenv("TIMETIC_TABPFN_MODEL", str(ckpt))
    res = CliRunner().invoke(main, ["predict", "--target", str(EXAMPLE), "--no-zero-shot", "--quiet",
                                    "--learner", "tabpfn"])
    assert res.exit_code == 2, res.output
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and 'pip install "timetic[tabpfn]"' in lines[0], res.output


# -- timetic finetune: the KB's recipe by default ----------------------------------------------


def test_finetune_defaults_to_the_kbs_recipe(monkeypatch, tmp_path):
    from timetic.cli import _kb_recipe
    from timetic.estimate import TimeTic
    from timetic.recipe import DEFAULT_RECIPE, Recipe

    option = next(p for p in main.commands["finetune"].params if p.name == "recipe_path")
    assert option.default == "kb"
    monkeypatch.delenv("TIMETIC_KB", raising=False)
    kb = KnowledgeBase.open(default_kb_path())
    primary = TimeTic(kb).recipe_hash(kb)
    assert _kb_recipe(None).hash == primary == Recipe.from_kb(kb).hash
    assert Recipe.named("v2").hash == primary  # the shipped KB v2 was built with recipe v2
    # a --kb with observations of another recipe: that KB's
    other = KnowledgeBase.create(tmp_path / "other")
    v2 = Recipe.named("v2")
    obs = kb.observations().head(3).with_columns(recipe=pl.lit(v2.to_json()), recipe_hash=pl.lit(v2.hash))
    other.add_observations(obs)
    assert _kb_recipe(other.path) == v2
    # an empty or new --kb: the default KB's; no KB at all: DEFAULT_RECIPE
    assert _kb_recipe(tmp_path / "new").hash == primary
    monkeypatch.setenv("TIMETIC_KB", str(tmp_path / "nothing-here"))
    assert _kb_recipe(None) == Recipe.named(DEFAULT_RECIPE)


def test_finetune_command_runs_the_kbs_recipe(monkeypatch, tmp_path):
    """End to end up to the runner: the recipe ``timetic finetune`` hands it, by default."""
    from timetic.adapters import get_adapter

    monkeypatch.delenv("TIMETIC_KB", raising=False)
    model = tmp_path / "patchtst-tiny"
    get_adapter("patchtst").from_config("tiny", seed=0).save_pretrained(model)
    seen = {}

    def fake_run_finetune(model, target, task, recipe, **kwargs):
        seen["recipe"] = recipe
        raise TimeticInputError("stopped by the test")

    import timetic.finetune

    monkeypatch.setattr(timetic.finetune, "run_finetune", fake_run_finetune)
    res = CliRunner().invoke(main, ["finetune", "--model", str(model), "--adapter", "patchtst", "--dataset",
                                    str(EXAMPLE), "--out", str(tmp_path / "r.parquet")])
    assert "stopped by the test" in res.output, res.output
    kb = KnowledgeBase.open(default_kb_path())
    assert seen["recipe"].hash == kb.observations().get_column("recipe_hash").mode()[0]


# -- build_kb.py: predict's target options for --dataset-files --------------------------------


def _build_kb():
    spec = importlib.util.spec_from_file_location("build_kb_packaging", ROOT / "benchmarks" / "build_kb.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _parser_flags(mod) -> set[str]:
    return {s for a in mod.build_parser()._actions for s in a.option_strings}


def test_build_kb_has_every_target_option_of_predict():
    flags = _parser_flags(_build_kb())
    target_flags = {s for p in main.commands["predict"].params if p.name in (
        "freq", "layout", "item_id_col", "timestamp_col", "target_col") for s in p.opts}
    assert len(target_flags) == 5
    assert target_flags <= flags, target_flags - flags
    assert {"--dataset-files", "--max-series", "--max-length"} <= flags


def _wide_file(path: Path, n_series: int = 3, length: int = 600) -> Path:
    import numpy as np
    import pandas as pd

    t = np.arange(length)
    df = pl.DataFrame({"when": pd.date_range("2024-01-01", periods=length, freq="h"),
                       **{f"s{i}": 10 + np.sin(2 * np.pi * t / 24) * (i + 1) + 0.01 * t for i in range(n_series)}})
    df.write_csv(path)
    return path


def test_load_file_target_applies_options_and_caps(tmp_path):
    from timetic.grid import load_cell_target, load_file_target

    f = _wide_file(tmp_path / "wide.csv")
    full = load_file_target(str(f), "wide", layout="wide", timestamp="when", freq="h")
    assert full.n_series == 3 and list(full.lengths) == [600, 600, 600] and full.freq == "h"
    capped = load_file_target(str(f), "wide", max_series=2, max_length=250, layout="wide", timestamp="when")
    assert capped.n_series == 2 and list(capped.lengths) == [250, 250]
    assert capped.frame.get_column("timestamp").max() == full.frame.get_column("timestamp").max()  # the last points
    # the grid's workers load a file cell the same way
    cell = {"dataset": "wide", "dataset_file": str(f), "max_series": 2, "max_length": 250,
            "load_options": {"layout": "wide", "timestamp": "when"}}
    assert load_cell_target(cell).frame.equals(capped.frame)
    with pytest.raises(TimeticInputError):
        load_file_target(str(f), "wide", timestamp="when", layout="wide", max_length=0)


def test_build_kb_dataset_files_honour_caps_and_target_options(tmp_path, capsys):
    from timetic.adapters import get_adapter

    f = _wide_file(tmp_path / "wide.csv", length=900)
    model = tmp_path / "patchtst-tiny"
    get_adapter("patchtst").from_config("tiny", seed=0).save_pretrained(model)
    kb = tmp_path / "kb"
    build = _build_kb()
    build.main(["--kb", str(kb), "--dataset-files", str(f), "--model-dirs", f"patchtst-tiny=patchtst:{model}",
                "--tasks", "short", "--layout", "wide", "--timestamp-col", "when", "--freq", "h",
                "--max-series", "2", "--max-length", "700", "--limit", "0", "--workers", "1"])
    row = KnowledgeBase.open(kb).datasets().row(0, named=True)
    assert row["n_series"] == 2 and row["total_length"] == 1400 and row["freq"] == "h"
    assert "first 2 series, last 700 points" in row["source"]
    # target options without --dataset-files are refused
    with pytest.raises(SystemExit):
        build.main(["--kb", str(tmp_path / "kb2"), "--layout", "wide"])


# -- the piped table -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def long_id_kb(tmp_path_factory) -> tuple[Path, list[str]]:
    """A copy of the default KB whose model ids are long (as hub ids are)."""
    src = default_kb_path()
    dst = tmp_path_factory.mktemp("longkb") / "kb"
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".lock", ".txn.*"))
    models = pl.read_parquet(dst / "models.parquet")
    rename = {m: f"some-organisation/{m}-finetuned-long-identifier" for m in models.get_column("model_id")}
    for table in ("models", "observations"):
        df = pl.read_parquet(dst / f"{table}.parquet")
        df.with_columns(pl.col("model_id").replace_strict(rename)).write_parquet(dst / f"{table}.parquet")
    return dst, list(rename.values())


HEADERS = ("rank", "model", "adapter", "pred. MASE", "90% interval", "zero-shot", "gain", "P(improve)", "P(best)",
           "E[regret]", "P(<naive)")


def test_piped_table_keeps_every_header_and_model_id_whole(long_id_kb):
    kb, ids = long_id_kb
    res = CliRunner().invoke(main, ["predict", "--target", str(EXAMPLE), "--kb", str(kb), "--no-zero-shot",
                                    "--quiet", "--no-explain"])
    assert res.exit_code == 0, res.output
    header_line = next(line for line in res.output.splitlines() if line.startswith("┃"))
    cells = [c.strip() for c in header_line.strip("┃").split("┃")]
    assert cells == list(HEADERS), header_line  # each header whole, on one line
    for model_id in ids:
        assert f" {model_id} " in res.output, model_id
    assert "…" not in res.output


def test_piped_table_of_the_example_is_unchanged_in_width():
    res = CliRunner().invoke(main, ["predict", "--target", str(EXAMPLE), "--no-zero-shot", "--quiet"])
    assert res.exit_code == 0, res.output
    from timetic.report import PIPED_WIDTH

    assert max(len(line) for line in res.output.splitlines()) <= PIPED_WIDTH
    header_line = next(line for line in res.output.splitlines() if line.startswith("┃"))
    assert [c.strip() for c in header_line.strip("┃").split("┃")] == list(HEADERS)
