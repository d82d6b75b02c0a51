"""The grid builder on a tiny grid: local process pool and a local Ray instance, resumable."""

import importlib.util
import sys
from pathlib import Path

import pytest

from kbfactory import synthetic_dataset
from timetic.adapters import get_adapter
from timetic.kb import KnowledgeBase

ROOT = Path(__file__).resolve().parents[1]


def _module():
    spec = importlib.util.spec_from_file_location("build_kb", ROOT / "benchmarks" / "build_kb.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["build_kb"] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def grid_inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("grid")
    files = []
    for k in range(2):
        f = root / f"gds{k}.parquet"
        synthetic_dataset(k, n_series=2, length=1000).write_parquet(f)
        files.append(str(f))
    dirs = []
    for name in ("tide", "patchtst"):
        d = root / f"{name}-tiny"
        get_adapter(name).from_config("tiny", seed=0).save_pretrained(d)
        dirs.append(f"{name}-tiny={name}:{d}")
    return files, dirs


def _args(kb, files, dirs, *extra):
    return ["--kb", str(kb), "--dataset-files", ",".join(files), "--model-dirs", ",".join(dirs),
            "--tasks", "short", "--steps", "2", "--max-eval-windows", "4", *extra]


def test_local_grid_is_resumable(tmp_path, grid_inputs, capsys):
    files, dirs = grid_inputs
    build = _module()
    kb = tmp_path / "kb"
    build.main(_args(kb, files, dirs, "--workers", "1", "--limit", "2"))
    k = KnowledgeBase.open(kb)
    assert k.observations().select("dataset_id", "model_id").unique().height == 2
    build.main(_args(kb, files, dirs, "--workers", "1"))
    out = capsys.readouterr().out
    assert "2 cells to run" in out  # only the remaining half
    stats = KnowledgeBase.open(kb).stats()
    assert stats["n_cells"] == 4 and stats["n_models"] == 2 and stats["n_datasets"] == 2
    build.main(_args(kb, files, dirs, "--workers", "1"))
    assert "0 cells to run" in capsys.readouterr().out


def test_ray_grid(tmp_path, grid_inputs, capsys):
    pytest.importorskip("ray")
    files, dirs = grid_inputs
    build = _module()
    kb = tmp_path / "kb"
    build.main(_args(kb, files, dirs, "--executor", "ray", "--workers", "2"))
    stats = KnowledgeBase.open(kb).stats()
    assert stats["n_cells"] == 4 and stats["n_observations"] > 0


def test_benchmark_scripts_default_to_the_shipped_kb():
    """``build_kb.py`` and ``evaluate.py`` with no ``--kb`` read the KB that predict ships with (the
    README's "regenerate RESULTS.md" command has no ``--kb``), not KB v1."""
    from timetic.kb import default_kb_path

    assert _module().build_parser().parse_args([]).kb == default_kb_path()
    import subprocess

    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "evaluate.py"), "--help"],
                         capture_output=True, text=True, check=True).stdout
    assert "default: the shipped one" in out
    src = (ROOT / "benchmarks" / "evaluate.py").read_text()
    assert 'default=default_kb_path()' in src and 'default=ROOT / "meta_features_v1")' not in src


def test_a_zoo_model_from_another_zoo_generation_is_refused(tmp_path, grid_inputs):
    """KB v1 has no weight revisions; its models' sources (``zoo:<id>``) still keep ``--zoo v2``
    weights (``zoo:v2/<id>``) out of it."""
    import polars as pl

    files, _ = grid_inputs
    kb = KnowledgeBase.open_or_create(tmp_path / "kb")
    v1 = KnowledgeBase.open(ROOT / "meta_features_v1").models().filter(pl.col("model_id") == "tide-s")
    assert v1["source"][0] == "zoo:tide-s" and v1["revision"][0] == ""
    kb.add_models(v1)
    args = ["--kb", str(tmp_path / "kb"), "--dataset-files", files[0], "--models", "tide-s", "--tasks", "short",
            "--steps", "2", "--max-eval-windows", "4", "--workers", "1"]
    with pytest.raises(SystemExit, match="built from zoo:tide-s, not zoo:v2/tide-s"):
        _module().main([*args, "--zoo", "v2"])
    assert KnowledgeBase.open(tmp_path / "kb").observations().height == 0
