"""The README's numbers and defaults are the code's (issue 14): each test reads a README sentence
and compares it with the constant or default it describes, so a change on either side fails here."""

from __future__ import annotations

import importlib.util
import inspect
import re
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _paragraphs() -> list[str]:
    return [p for p in re.split(r"\n\s*\n", README) if p.strip()]


def _option_default(command: str, name: str):
    from timetic.cli import main

    return next(p for p in main.commands[command].params if p.name == name).default


def _one(pattern: str) -> re.Match:
    found = list(re.finditer(pattern, README, flags=re.S))
    assert len(found) == 1, f"README should say this once: {pattern} (found {len(found)})"
    return found[0]


def test_window_defaults():
    from timetic.characterize import dataset_features
    from timetic.estimate import TimeTic
    from timetic.windows import DEFAULT_WINDOWS, MAX_WINDOWS, sample_windows

    assert int(_one(r"`sample_windows\(target, task, n_windows=(\d+), seed=0\)`").group(1)) == DEFAULT_WINDOWS
    m = _one(r"Defaults: (\d+) windows per task for `sample_windows`, `dataset_features` and\s+`timetic features "
             r"--windows`; (\d+) for `timetic predict` / `report --windows` and\s+`TimeTic.predict\(n_windows=...\)`;"
             r" at most (\d+)\.")
    full, predict, cap = (int(g) for g in m.groups())
    assert full == DEFAULT_WINDOWS == inspect.signature(sample_windows).parameters["n_windows"].default
    assert full == inspect.signature(dataset_features).parameters["n_windows"].default
    assert full == _option_default("features", "n_windows")
    assert predict == _option_default("predict", "n_windows") == _option_default("report", "n_windows")
    assert predict == inspect.signature(TimeTic.predict).parameters["n_windows"].default
    assert predict == inspect.signature(TimeTic.predict_detailed).parameters["n_windows"].default
    assert cap == MAX_WINDOWS
    assert int(_one(r"The target's windows are sampled \((\d+) by default, seeded\)").group(1)) == predict


def test_finetune_recipe_default():
    from timetic.cli import _kb_recipe
    from timetic.recipe import DEFAULT_RECIPE, Recipe

    assert _option_default("finetune", "recipe_path") == "kb"
    assert "`--recipe kb` (the default) is the knowledge base's own recipe" in README
    assert "[--recipe kb|v1|v2|FILE]" in README
    m = _one(r"else the default\s+KB, else `(\w+)`\), so that a result compares with the KB's — with the shipped KB "
             r"that is `(\w+)`\.")
    fallback, shipped = m.groups()
    assert fallback == DEFAULT_RECIPE
    assert _kb_recipe(None) == Recipe.named(shipped)
    v1_hash = _one(r"\(recipe hash `([0-9a-f]{16})`, as in").group(1)
    assert v1_hash == Recipe.named("v1").hash
    assert "`benchmarks/build_kb.py` and `Recipe.load(None)` default to `v2`" in README
    assert Recipe.load(None).name == "v2"


def test_build_kb_caps():
    spec = importlib.util.spec_from_file_location("build_kb_readme", ROOT / "benchmarks" / "build_kb.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    m = _one(r"`--max-series` \(default (\d+)\) and\s+`--max-length` \(default (\d+)\) cap every dataset")
    assert (int(m.group(1)), int(m.group(2))) == (mod.DEFAULT_MAX_SERIES, mod.DEFAULT_MAX_LENGTH)


def test_cpu_torch_command_names_the_pinned_torch():
    m = _one(r"pip install torch==([\d.]+) --index-url https://download\.pytorch\.org/whl/cpu")
    version = m.group(1)
    ci = (ROOT / ".ci" / "run").read_text()
    assert f'"torch=={version}"' in ci
    for line in re.findall(r"pip install torch==([\d.]+) -e", README):
        assert line == version
    pyproject = (ROOT / "pyproject.toml").read_text()
    lo, hi = re.search(r'"torch>=([\d.]+),<=([\d.]+)"', pyproject).groups()
    key = lambda v: tuple(int(x) for x in v.split("."))  # noqa: E731
    assert key(lo) <= key(version) <= key(hi)


def test_shared_paths_come_with_their_settings():
    """``../shared/...`` exists only in the development workspace: wherever the README names such a
    folder, the same paragraph names the setting that replaces it."""
    settings = {"../shared/datasets": "TIMETIC_DATA_DIR", "../shared/weights": "TIMETIC_WEIGHTS_DIR"}
    for para in _paragraphs():
        for path, setting in settings.items():
            if path in para:
                assert setting in para, para
        if "../shared/" in para and not any(p in para for p in settings):
            assert "not part of the" in para or "development workspace" in para, para


def test_python_api_uses_the_default_kb(monkeypatch):
    block = _one(r"## Python API\n\n```python\n(.*?)```").group(1)
    assert "TimeTic.from_kb()" in block and "default_kb_path()" in block
    assert '"meta_features"' not in block  # a path that exists only in a checkout
    from timetic.estimate import TimeTic
    from timetic.kb import default_kb_path

    monkeypatch.delenv("TIMETIC_KB", raising=False)
    assert TimeTic.from_kb().kb.path == default_kb_path()


def test_learner_extras_named():
    tomllib = pytest.importorskip("tomllib")

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for name in ("tabpfn", "tabicl"):
        assert f'pip install "timetic[{name}]"' in README
        assert name in extras


@pytest.mark.parametrize("name", ["TIMETIC_DATA_DIR", "TIMETIC_WEIGHTS_DIR", "TIMETIC_KB"])
def test_settings_named_in_the_readme_exist_in_the_code(name):
    assert name in README
    assert any(name in p.read_text() for p in (ROOT / "timetic").rglob("*.py"))


def test_output_schema_lists_the_ranking_columns_in_order():
    from timetic.estimate import RANKING_COLUMNS

    m = _one(r"\*\*Output schema\*\* \(CSV columns and JSON `rankings` entries, in order\): `([^`]+)`")
    assert [c.strip() for c in " ".join(m.group(1).split()).split(",")] == list(RANKING_COLUMNS)


def test_shipped_kb_contents_are_the_readmes():
    """Models, datasets and cells per task of the shipped KB's primary recipe, as the README says."""
    import polars as pl

    from timetic.estimate import TimeTic
    from timetic.kb import KnowledgeBase, default_kb_path

    m = _one(r"\*\*The shipped KB is `meta_features/` \(KB v2\)\*\*: the (\d+) models of `timetic/zoo/v2` and "
             r"TTM-R2 ×\s+(\d+) real datasets, complete for the short task \((\d+) cells.*?the medium task \((\d+) "
             r"cells on the (\d+) datasets.*?the long task \((\d+) cells on the (\d+) datasets")
    kb = KnowledgeBase.open(default_kb_path())
    obs = kb.observations(recipe_hash=TimeTic(kb).recipe_hash(kb))
    cells = obs.select("dataset_id", "model_id", "task").unique()
    per_task = {t: g for (t,), g in cells.group_by("task")}
    zoo = kb.models().filter(pl.col("source").str.starts_with("zoo:v2/")).height
    assert (zoo, obs["dataset_id"].n_unique()) == (int(m[1]), int(m[2]))
    assert "ttm-r2" in set(kb.models()["model_id"])
    assert per_task["short"].height == int(m[3])
    assert (per_task["medium"].height, per_task["medium"]["dataset_id"].n_unique()) == (int(m[4]), int(m[5]))
    assert (per_task["long"].height, per_task["long"]["dataset_id"].n_unique()) == (int(m[6]), int(m[7]))


def test_p_best_temperatures_and_profile_neighbours_are_the_shipped_kbs():
    from timetic.estimate import TimeTic
    from timetic.kb import KnowledgeBase, default_kb_path

    m = _one(r"p ∝ \(p \+ 1/400\)\^a, `a` ([0-9.]+) with\s+zero-shot scores and ([0-9.]+) without on KB v2")
    kb = KnowledgeBase.open(default_kb_path())
    stack = TimeTic(kb).fit().learner_
    assert stack.best_temperature_ == pytest.approx(float(m[1]))
    n = _one(r"every\s+number\s+scores\s+within-cell\s+Spearman\s+([0-9.]+),\s+so\s+one\)")
    assert stack.profile_neighbours_ == 1
    assert [f"{stack.profile_neighbour_scores_[k]:.2f}" for k in (1, 2, 3)] == [n[1]] * 3
    o = _one(r"mean\s+within-cell\s+Spearman\s+([0-9.]+),\s+([0-9.]+)\s+and\s+([0-9.]+)\s+for\s+one,\s+two\s+and\s+"
             r"three\s+neighbours\s+against\s+([0-9.]+)\s+at\s+the\s+mean")
    assert stack.other_family_neighbours_ == 0
    assert [f"{stack.other_family_neighbour_scores_[k]:.3f}" for k in (1, 2, 3, 0)] == [o[1], o[2], o[3], o[4]]
    f = _one(r"is\s+of\s+its\s+own\s+family\s+for\s+([0-9]+)\s+of\s+the\s+([0-9]+)\s+zoo\s+models")
    from timetic.estimate.priors import profile_distances

    fam, prof = stack.families_, TimeTic(kb)._profiles()
    zoo = [g for g in prof if sum(fam[o] == fam[g] for o in prof) > 1]  # the models with a sibling
    ids = list(prof)
    P = np.vstack([prof[g] for g in ids])
    hits = 0
    for i, g in enumerate(ids):
        if g in zoo:
            others = [j for j in range(len(ids)) if j != i]
            hits += fam[ids[others[int(np.argmin(profile_distances(P[others], P[i])))]]] == fam[g]
    assert (hits, len(zoo)) == (int(f[1]), int(f[2]))
    assert TimeTic(kb, zero_shot=False).fit().learner_.best_temperature_ == pytest.approx(float(m[2]))
    c = _one(r"([0-9]+) on the shipped KB, mean within-dataset Spearman ([0-9.]+) against ([0-9.]+) over all "
             r"([0-9]+)\s+features")
    assert stack.components_ == int(c[1]) and len(stack.priors_.cells_.feature_names) == int(c[4])
    assert [f"{stack.component_scores_[k]:.3f}" for k in (stack.components_, None)] == [c[2], c[3]]


def test_window_split_agreement_is_the_shipped_kbs():
    """The README's split-half figures are ``benchmarks/realism.py``'s on the shipped KB."""
    import polars as pl

    spec = importlib.util.spec_from_file_location("realism_readme", ROOT / "benchmarks" / "realism.py")
    realism = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(realism)
    from timetic.kb import KnowledgeBase, default_kb_path

    m = _one(r"rank the models with ρ ([0-9.]+) / ([0-9.]+) / ([0-9.]+) on average \(short /\s+medium / long; "
             r"([0-9.]+) / ([0-9.]+) / ([0-9.]+) stepped up to all windows")
    from timetic.estimate import TimeTic

    kb = KnowledgeBase.open(default_kb_path())
    split = realism.window_split_reliability(kb.observations(recipe_hash=TimeTic(kb).recipe_hash(kb)))
    split = split.filter(pl.col("rho_half").is_not_nan())
    got = [split.filter(pl.col("task") == t)[f"rho_{k}"].mean() for k in ("half", "full")
           for t in ("short", "medium", "long")]
    assert [f"{v:.3f}" for v in got] == [m[i] for i in range(1, 7)]
    m = _one(r"exactly would score only\s+about ([0-9.]+) / ([0-9.]+) / ([0-9.]+) \(the square root")
    bound = [realism.attainable_rho(split.filter(pl.col("task") == t)["rho_full"].to_numpy())
             for t in ("short", "medium", "long")]
    assert [f"{v:.3f}" for v in bound] == [m[i] for i in range(1, 4)]
    assert _one(r"that bound's mean \(([0-9.]+)\)")[1] == f"{np.mean(bound):.3f}"


def test_model_scale_range_is_the_readmes():
    from timetic.data import MODEL_SCALE_RANGE

    m = _one(r"whose mean \|value\| lies outside ([0-9.e]+) to ([0-9.e]+) reaches them")
    assert (float(m[1]), float(m[2])) == MODEL_SCALE_RANGE


def test_helps_by_zero_shot_rank_is_the_shipped_kbs():
    """The README's shares of cells helped by fine-tuning, by zero-shot rank quarter, are
    ``benchmarks/helps_flag.py``'s on the shipped KB."""
    spec = importlib.util.spec_from_file_location("helps_flag_readme", ROOT / "benchmarks" / "helps_flag.py")
    helps_flag = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(helps_flag)
    from timetic.kb import default_kb_path

    m = _one(r"fine-tuning helped in ([0-9]+)% of the KB v2\s+cells of a dataset's\s+best-quarter zero-shot "
             r"models and in ([0-9]+)% of its worst quarter's")
    cells, _ = helps_flag.load_cells(Path(default_kb_path()))
    table = dict(helps_flag.by_zs_rank(cells).select("zero-shot rank", "helps").iter_rows())
    assert (f"{100 * table['best quarter']:.0f}", f"{100 * table['worst quarter']:.0f}") == (m[1], m[2])


def test_family_borrowing_figures_are_the_benchmarks():
    """The README's figures for borrowing by family are benchmarks/results/summary.parquet's
    (written by benchmarks/evaluate.py with RESULTS.md): the defaults against ``*-families=off``,
    and the new-model weights against ``stack-new-model-weights=*``."""
    import polars as pl

    summary = pl.read_parquet(ROOT / "benchmarks" / "results" / "summary.parquet")

    def get(scenario: str, method: str, task: str = "mean", metric: str = "spearman") -> float:
        row = summary.filter((pl.col("scenario") == scenario) & (pl.col("method") == method) & (pl.col("task") == task))
        return float(row[metric][0])

    num = r"(−?[0-9.]+)"
    arrow = r"\s+→\s+"
    m = _one(r"this\s+lifts\s+both\s+unseen\s+from\s+" + num + r"\s+to\s+" + num + r"\s+\(short\s+" + num + arrow + num
             + r",\s+medium\s+" + num + arrow + num + r",\s+long\s+" + num + arrow + num + r";\s+τ_w\s+" + num + arrow
             + num + r",\s+regret\s+" + num + r"\s+%" + arrow + num + r"\s+%\),\s+unseen\s+model\s+from\s+" + num
             + r"\s+to\s+" + num + r"\s+\(τ_w\s+" + num + arrow + num + r"\s+and\s+regret\s+" + num + r"\s+%" + arrow
             + num + r"\s+%,\s+within\s+noise\)\s+and\s+weight-free\s+unseen\s+model\s+from\s+" + num + r"\s+to\s+"
             + num + r"\s+\(regret\s+" + num + r"\s+%" + arrow + num + r"\s+%\)\.\s+Weight-free\s+both\s+unseen\s+"
             + r"falls\s+from\s+" + num + r"\s+to\s+" + num)
    v = [float(x.replace("−", "-")) for x in m.groups()]
    bu, um = "both-unseen", "unseen-model"
    want = [get(bu, "stack-families=off"), get(bu, "timetic")]
    for t in ("short", "medium", "long"):
        want += [get(bu, "stack-families=off", t), get(bu, "timetic", t)]
    want += [get(bu, "stack-families=off", metric="weighted_tau"), get(bu, "timetic", metric="weighted_tau"),
             100 * get(bu, "stack-families=off", metric="regret"), 100 * get(bu, "timetic", metric="regret"),
             get(um, "stack-families=off"), get(um, "timetic"),
             get(um, "stack-families=off", metric="weighted_tau"), get(um, "timetic", metric="weighted_tau"),
             100 * get(um, "stack-families=off", metric="regret"), 100 * get(um, "timetic", metric="regret"),
             get(um, "weight-free-families=off"), get(um, "weight-free"),
             100 * get(um, "weight-free-families=off", metric="regret"), 100 * get(um, "weight-free", metric="regret"),
             get(bu, "weight-free-families=off"), get(bu, "weight-free")]
    regrets = {10, 11, 16, 17, 20, 21}  # percentages with one decimal; the rest with three
    for i, (said, measured) in enumerate(zip(v, want, strict=True)):
        assert said == pytest.approx(measured, abs=0.051 if i in regrets else 0.0006), (i, said, measured)
    # the new-model weights: the default ("auto") against the known models' weights and "always"
    w = _one(r"raises\s+both\s+unseen\s+from\s+" + num + r"\s+\(the\s+known\s+models'\s+weights.*?to\s+" + num
             + r"\s+\(short\s+/\s+medium\s+/\s+long\s+" + num + arrow + num + r",\s+" + num + arrow + num + r",\s+"
             + num + arrow + num + r";\s+regret\s+" + num + r"\s+%" + arrow + num + r"\s+%\)\s+and\s+leaves\s+unseen"
             r"\s+model\s+at\s+" + num + r";\s+using\s+them\s+always\s+\(`new_model_weights=True`\)\s+gives\s+" + num
             + r"\s+both\s+unseen\s+but\s+" + num + r"\s+unseen\s+model")
    off, always = "stack-new-model-weights=off", "stack-new-model-weights=always"
    want = [get(bu, off), get(bu, "timetic")]
    for t in ("short", "medium", "long"):
        want += [get(bu, off, t), get(bu, "timetic", t)]
    want += [100 * get(bu, off, metric="regret"), 100 * get(bu, "timetic", metric="regret"), get(um, "timetic"),
             get(bu, always), get(um, always)]
    for i, (said, measured) in enumerate(zip([float(x) for x in w.groups()], want, strict=True)):
        assert said == pytest.approx(measured, abs=0.051 if i in (8, 9) else 0.0006), (i, said, measured)
