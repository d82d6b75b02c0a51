"""Fast and quiet (issue 13): lazy imports, no third-party noise, progress only when asked for.

The CLI checks run in subprocesses, so that what is imported (``sys.modules``) and what reaches
stderr are the real thing, not what the test session already holds.
"""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "example_target.parquet"
#: libraries that only running a model (or a learner that needs one) may import.
MODEL_LIBRARIES = ("torch", "gluonts", "lightning", "transformers", "chronos", "tsfm_public", "fracast",
                   "tabpfn", "tabicl")


def _python(code: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300,
                          **kwargs)


def test_adapters_lists_every_adapter_without_importing_model_libraries():
    code = f"""
import json, sys
from timetic.cli import main
try:
    main(["adapters"], standalone_mode=False)
finally:
    print("IMPORTED=" + json.dumps([m for m in {MODEL_LIBRARIES!r} if m in sys.modules]))
"""
    res = _python(code)
    assert res.returncode == 0, res.stderr
    assert res.stderr == ""  # nothing the user did not ask for
    lines = res.stdout.splitlines()
    assert json.loads(lines[-1].removeprefix("IMPORTED=")) == []
    from timetic.adapters import FAMILIES, available_adapters

    listed = {line.split("\t")[0]: line.split("sizes: ")[1].split(", ") for line in lines[:-1]}
    assert sorted(listed) == [n for n in available_adapters() if not n.startswith("_test")]
    assert {"chronos-bolt", "chronos-2", "timesfm", "patchtst", "deepar", "tide"} <= set(listed)
    for name, sizes in listed.items():
        assert tuple(sizes) == FAMILIES[name][2]


def test_static_adapter_metadata_matches_the_classes():
    """FAMILIES (what `timetic adapters` prints without importing anything) agrees with the
    classes the family modules register."""
    from timetic.adapters import FAMILIES, adapter_sample_paths_kwarg, adapter_sizes, available_adapters, get_adapter
    from timetic.adapters import base

    for name in available_adapters():
        if name.startswith("_test"):
            continue
        cls = get_adapter(name)
        assert cls.name == name
        assert cls.__module__ == f"timetic.adapters.{FAMILIES[name][0]}"
        assert tuple(cls.sizes) == adapter_sizes(name) == FAMILIES[name][2]
        assert cls.sample_paths_kwarg == adapter_sample_paths_kwarg(name)
    # every class a loaded family module registered is in the static table
    shipped = {n for n, c in base._REGISTRY.items() if c.__module__.startswith("timetic.adapters.")}
    assert shipped <= set(FAMILIES)
    # and every family module is in it (a module left out would never be imported, so never register)
    folder = ROOT / "timetic" / "adapters"
    modules = {f.stem for f in folder.glob("*.py")} - {"__init__", "base", "hf_base", "torch_base"}
    assert modules == {module for module, _, _ in FAMILIES.values()}


def test_unknown_adapter_is_an_input_error_listing_the_names():
    from timetic.adapters import get_adapter
    from timetic.errors import TimeticInputError

    with pytest.raises(TimeticInputError, match="unknown adapter 'nope'; use one of .*patchtst"):
        get_adapter("nope")


def test_cli_and_package_import_no_heavy_library():
    """`timetic --help` imports click and timetic's own modules only; the package's public names
    still resolve (lazily)."""
    heavy = MODEL_LIBRARIES + ("pandas", "polars", "sklearn", "scipy")
    code = f"""
import json, sys
import timetic, timetic.cli
before = [m for m in {heavy!r} if m in sys.modules]
from timetic import Target, Task, TimeticWarning, load_target, sample_windows
print(json.dumps([before, Target.__module__, Task.__module__, "polars" in sys.modules, "torch" in sys.modules]))
"""
    res = _python(code)
    assert res.returncode == 0, res.stderr
    before, target_mod, task_mod, polars_now, torch_now = json.loads(res.stdout)
    assert before == []
    assert (target_mod, task_mod, polars_now, torch_now) == ("timetic.data", "timetic.tasks", True, False)
    res = subprocess.run([sys.executable, "-m", "timetic.cli", "--help"], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert res.returncode == 0 and "predict" in res.stdout and res.stderr == ""


def test_weight_free_predict_imports_no_learner_library(tiny_kb):
    """The default (stack) formulation, weight-free, fits and ranks without scikit-learn or the
    tabular learners module (the window formulation's): importing them cost about 0.5 CPU-s of a
    3 s predict. Fitting and ranking still work, and a ranking comes back."""
    code = f"""
import json, sys
from timetic.estimate import TimeTic
from timetic.kb import KnowledgeBase
est = TimeTic(KnowledgeBase.open({str(tiny_kb.path)!r}), zero_shot=False, seed=0).fit()
r = est.predict({str(EXAMPLE)!r}, task="short", n_windows=16)
print(json.dumps([r.height, [m for m in ("sklearn", "timetic.learners") if m in sys.modules]]))
"""
    res = _python(code, env={**os.environ, "TIMETIC_CACHE_DIR": "off"})
    assert res.returncode == 0, res.stderr
    height, imported = json.loads(res.stdout.strip().splitlines()[-1])
    assert height > 0 and imported == []


def test_a_fully_cached_predict_imports_no_model_library(tiny_kb, tmp_path):
    """With the fit and every candidate's zero-shot scores cached, predict in a fresh process
    imports neither torch nor a family's library (it costs seconds: ~5 of a 7 s predict; gluonts'
    metrics, which scoring uses, are light and may load)."""
    code = f"""
import json, sys
from timetic.estimate import TimeTic
from timetic.kb import KnowledgeBase
r = TimeTic(KnowledgeBase.open({str(tiny_kb.path)!r}), seed=0).predict({str(EXAMPLE)!r}, task="short", n_windows=12)
print(json.dumps([r.height, int(r["zero_shot_mase"].is_not_null().sum()),
                  [m for m in ("torch", "gluonts.torch", "lightning", "transformers", "chronos") if m in sys.modules]]))
"""
    env = {**os.environ, "TIMETIC_CACHE_DIR": str(tmp_path / "cache")}
    first, again = (_python(code, env=env) for _ in range(2))
    assert first.returncode == 0 and again.returncode == 0, first.stderr + again.stderr
    h1, zs1, imported1 = json.loads(first.stdout.strip().splitlines()[-1])
    h2, zs2, imported2 = json.loads(again.stdout.strip().splitlines()[-1])
    assert "torch" in imported1  # the first predict ran the models
    assert (h2, zs2) == (h1, zs1) and zs2 > 0 and imported2 == []


def test_gluonts_adapter_import_emits_no_json_warning():
    """gluonts' "Using `json`-module" UserWarning is silenced where it is raised; other warnings
    (timetic's own TimeticWarning, another UserWarning) still show."""
    pytest.importorskip("gluonts")
    # the control: gluonts on its own does warn here (else the check below proves nothing)
    control = _python("import gluonts.json", env={**os.environ, "PYTHONWARNINGS": "always"})
    if "Using `json`-module" not in control.stderr:
        pytest.skip("gluonts does not warn on this machine (orjson or ujson installed)")
    code = """
import warnings
import timetic.adapters.gluonts_models
from timetic.errors import TimeticWarning
warnings.warn("timetic-own-warning", TimeticWarning)
warnings.warn("another-user-warning", UserWarning)
"""
    res = _python(code, env={**os.environ, "PYTHONWARNINGS": "always"})
    assert res.returncode == 0, res.stderr
    assert "`json`-module" not in res.stderr
    assert "timetic-own-warning" in res.stderr and "another-user-warning" in res.stderr


def _predict_on_a_terminal(*extra: str) -> tuple[int, str, bytes]:
    """``timetic predict --no-zero-shot`` of the example with stderr on a pseudo-terminal (where
    progress shows); returns (exit status, stdout, what reached the terminal)."""
    master, slave = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k not in ("TTY_COMPATIBLE", "FORCE_COLOR", "NO_COLOR")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "timetic.cli", "predict", "--target", str(EXAMPLE), "--no-zero-shot",
         "--format", "json", *extra],
        stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL, cwd=ROOT, env=env,
    )
    os.close(slave)
    chunks: list[bytes] = []

    def drain() -> None:  # keep the pty's buffer from filling (a full one would block the child)
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:  # EIO: the child closed its end
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    stdout, _ = proc.communicate(timeout=600)
    reader.join(timeout=10)
    os.close(master)
    return proc.returncode, stdout.decode(), b"".join(chunks)


def test_predict_quiet_prints_nothing_on_stderr():
    code, stdout, terminal = _predict_on_a_terminal("--quiet")
    assert code == 0, terminal.decode(errors="replace")
    assert json.loads(stdout)["rankings"]
    assert terminal == b""


def test_predict_shows_progress_on_a_terminal_and_none_in_a_pipe():
    code, stdout, terminal = _predict_on_a_terminal()
    assert code == 0, terminal.decode(errors="replace")
    assert json.loads(stdout)["rankings"]
    assert b"loading the knowledge base" in terminal and b"ranking (short task)" in terminal
    # stderr a pipe (not a terminal): no progress either
    res = subprocess.run([sys.executable, "-m", "timetic.cli", "predict", "--target", str(EXAMPLE),
                          "--no-zero-shot", "--format", "json"], capture_output=True, text=True, cwd=ROOT,
                         timeout=600)
    assert res.returncode == 0 and res.stderr == ""
