"""In-context estimation on a knowledge base built from tiny real models."""

import os

import numpy as np
import polars as pl
import pytest

from conftest import make_long
from timetic.data import load_target
from timetic.errors import TimeticInputError
from timetic.estimate import RANKING_COLUMNS, TimeTic
from timetic.estimate.core import TargetRows
from timetic.estimate.stack import StackedRanker

MODELS = ["chronos-bolt-tiny", "deepar-tiny", "patchtst-tiny", "timesfm-tiny"]


@pytest.fixture(scope="module")
def target():
    return load_target(make_long(3, 1200, seed=5), name="tgt")


def _check_ranking(r: pl.DataFrame, n_models: int) -> None:
    assert r.columns == list(RANKING_COLUMNS)
    assert r.height == n_models
    assert r["rank"].to_list() == list(range(1, n_models + 1))
    assert r["predicted_mase"].is_sorted()
    assert np.isfinite(r["predicted_mase"].to_numpy()).all()
    assert (r["lower_90"] <= r["predicted_mase"]).all() and (r["predicted_mase"] <= r["upper_90"]).all()
    assert abs(r["p_best"].sum() - 1.0) < 1e-9
    assert (r["expected_regret"] >= 0).all()


@pytest.mark.parametrize("learner", ["gp", "hgb"])
def test_predict_zero_shot_ranks_every_model(tiny_kb, target, learner):
    est = TimeTic(tiny_kb, learner=learner, seed=0)
    r = est.predict(target, task="short", n_windows=24)
    _check_ranking(r, 4)
    assert set(r["model_id"]) == set(MODELS)
    zs = r["zero_shot_mase"].to_numpy()
    assert np.isfinite(zs).all()
    gain = 1 - r["predicted_mase"].to_numpy() / zs
    np.testing.assert_allclose(r["predicted_gain"].to_numpy(), gain)
    assert ((r["p_improve"] >= 0) & (r["p_improve"] <= 1)).all()
    assert (r["negative_transfer"] == (r["p_improve"] < 0.5)).all()


def test_same_seed_same_ranking_and_models_subset(tiny_kb, target):
    a = TimeTic(tiny_kb, learner="gp", seed=3).predict(target, n_windows=16)
    b = TimeTic(tiny_kb, learner="gp", seed=3).predict(target, n_windows=16)
    assert a.equals(b)
    sub = TimeTic(tiny_kb, learner="gp").predict(target, models=["patchtst-tiny", "timesfm-tiny"], n_windows=16)
    _check_ranking(sub, 2)
    with pytest.raises(TimeticInputError, match="unknown model"):
        TimeTic(tiny_kb).predict(target, models=["nope"], n_windows=8)


def test_no_zero_shot_needs_no_weights(tiny_kb, target, monkeypatch):
    import timetic.adapters

    def boom(*a, **k):
        raise AssertionError("weights were loaded")

    monkeypatch.setattr(timetic.adapters, "load_model", boom)
    r = TimeTic(tiny_kb, learner="gp", zero_shot=False).predict(target, n_windows=16)
    _check_ranking(r, 4)
    assert r["zero_shot_mase"].null_count() == 4 and r["negative_transfer"].null_count() == 4


def test_fit_reads_only_the_given_context(tiny_kb):
    """A fold fitted without ds0 does not change when ds0's observed scores are perturbed."""
    from timetic.context import ContextTable

    est = TimeTic(tiny_kb, learner="hgb", seed=0)
    ctx = est.context_table()
    perturbed = ContextTable(
        ctx.meta.with_columns(
            pl.when(pl.col("dataset_id") == "ds0").then(pl.col("ft_mase") * 7.0).otherwise(pl.col("ft_mase")).alias("ft_mase")
        ),
        ctx.features, ctx.model, ctx.tasks, ctx.profile,
    )
    keep = ctx.meta["dataset_id"].to_numpy() != "ds0"
    a = TimeTic(tiny_kb, learner="hgb", seed=0).fit(ctx.mask(keep))
    b = TimeTic(tiny_kb, learner="hgb", seed=0).fit(perturbed.mask(keep))
    held = ctx.mask(~keep)
    assert a.features_ == b.features_
    np.testing.assert_array_equal(a.learner_.predict(a._X(held)).mean, b.learner_.predict(b._X(held)).mean)
    c = TimeTic(tiny_kb, learner="hgb", seed=0).fit(perturbed)  # with ds0 in the context, it changes
    assert not np.array_equal(a.learner_.predict(a._X(held)).mean, c.learner_.predict(c._X(held)).mean)


def test_explain_nearest_datasets(tiny_kb, target):
    from timetic.tasks import Task

    est = TimeTic(tiny_kb, learner="gp", zero_shot=False).fit()
    rows = est.target_rows(target, Task.preset("short", target.freq), MODELS, n_windows=16)
    ex = est.explain(rows, ["patchtst-tiny"], k=2)
    assert ex.height == 2 and (ex["distance"].diff().drop_nulls() >= 0).all()
    assert ex["observed_ft_mase"].is_not_null().all()


def test_empty_kb_is_a_clear_error(tmp_path, target):
    from timetic.kb import KnowledgeBase

    with pytest.raises(TimeticInputError, match="only 0 usable"):
        TimeTic(KnowledgeBase.create(tmp_path / "empty")).predict(target)


def test_foundation_learners_on_random_checkpoints(tiny_kb, target, tabpfn_checkpoint, tabicl_checkpoint):
    for name, path in (("tabpfn", tabpfn_checkpoint), ("tabicl", tabicl_checkpoint)):
        est = TimeTic(tiny_kb, learner=name, learner_kwargs={"model_path": str(path)}, seed=0)
        r = est.predict(target, n_windows=8)
        _check_ranking(r, 4)


def test_score_options_and_zero_shot_columns(tiny_kb, target):
    from timetic.tasks import Task

    est = TimeTic(tiny_kb, learner="hgb", seed=0).fit()
    rows = est.target_rows(target, Task.preset("short", target.freq), MODELS, n_windows=16)
    mean = est.rank(rows, MODELS)
    _check_ranking(mean, 4)
    est.score = "geomean"
    geo = est.rank(rows, MODELS)
    _check_ranking(geo, 4)
    m = dict(zip(mean["model_id"], mean["predicted_mase"]))
    g = dict(zip(geo["model_id"], geo["predicted_mase"]))
    assert all(m[k] >= g[k] * (1 - 1e-9) for k in MODELS)  # Jensen: mean of lognormals >= geometric mean
    est.score = "median"
    with pytest.raises(TimeticInputError, match="unknown score"):
        est.rank(rows, MODELS)
    for cols in ("window", "cell"):
        _check_ranking(TimeTic(tiny_kb, learner="hgb", zero_shot_columns=cols, seed=0).fit().rank(rows, MODELS), 4)
    with pytest.raises(TimeticInputError, match="zero_shot_columns"):
        TimeTic(tiny_kb, learner="hgb", zero_shot_columns="nope").fit()


def test_selection_options(tiny_kb):
    exact = TimeTic(tiny_kb, learner="hgb", n_features=5, selection_tol=None, seed=0).fit()
    assert len(exact.features_) == 5  # no early stop: exactly n_features, as published
    res = TimeTic(tiny_kb, learner="hgb", n_features=5, selection_target="residual", seed=0).fit()
    assert 1 <= len(res.features_) <= 5
    with pytest.raises(TimeticInputError, match="selection_target"):
        TimeTic(tiny_kb, learner="hgb", selection_target="nope").fit()


def test_missing_weights_window_method_ranks_weight_free_with_a_warning(tmp_path, tiny_kb):
    """Window method: a candidate whose weights are absent: warned, named, everything ranked weight-free."""
    import shutil
    import warnings

    from timetic.errors import TimeticWarning
    from timetic.kb import KnowledgeBase

    shutil.copytree(tiny_kb.path, tmp_path / "kb")
    kb = KnowledgeBase.open(tmp_path / "kb")
    first = kb.models().sort("model_id").head(1)
    kb.add_models(first.with_columns(pl.lit("weights:not-on-this-machine").alias("source")))
    est = TimeTic(kb, method="window", seed=0)
    candidates = est.fit().models_
    missing = est.missing_weights(candidates)
    assert list(missing) == [candidates[0]]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        twin = est._weight_free_twin(candidates)
    assert twin is not None and twin.zero_shot is False and est.zero_shot_used_ is False
    assert any(issubclass(w.category, TimeticWarning) and candidates[0] in str(w.message) for w in caught)
    assert TimeTic(kb, seed=0, zero_shot=False)._weight_free_twin(candidates) is None


def test_missing_weights_stack_ranks_everyone_with_imputed_zero_shot(tmp_path, tiny_kb, target):
    """Stack: the others keep their zero-shot scores; the model without weights is ranked too, its
    zero-shot input imputed, its interval at least as wide as its neighbours' would be."""
    import shutil

    from timetic.errors import TimeticWarning
    from timetic.kb import KnowledgeBase

    shutil.copytree(tiny_kb.path, tmp_path / "kb")
    kb = KnowledgeBase.open(tmp_path / "kb")
    first = kb.models().sort("model_id").head(1)
    kb.add_models(first.with_columns(pl.lit("weights:not-on-this-machine").alias("source")))
    est = TimeTic(kb, seed=0, k=2)
    with pytest.warns(TimeticWarning, match="imputed"):
        r = est.predict(target, n_windows=12)
    gone = first["model_id"][0]
    assert set(r["model_id"]) == set(MODELS) and est.zero_shot_used_ is True
    row = r.filter(pl.col("model_id") == gone).row(0, named=True)
    assert row["zero_shot_mase"] is None and row["p_improve"] is None and row["negative_transfer"] is None
    assert row["lower_90"] <= row["predicted_mase"] <= row["upper_90"]
    others = r.filter(pl.col("model_id") != gone)
    assert others["zero_shot_mase"].is_not_null().all()


def test_a_repeated_predict_reads_zero_shot_scores_from_the_cache(tiny_kb, target, monkeypatch, tmp_path):
    import timetic.adapters

    monkeypatch.setenv("TIMETIC_CACHE_DIR", str(tmp_path / "cache"))
    first = TimeTic(tiny_kb, seed=0).predict(target, n_windows=12)
    assert len(list((tmp_path / "cache" / "zero_shot").glob("*.npy"))) == len(MODELS)

    def no_models(*a, **k):
        raise AssertionError("the cache should have answered")

    monkeypatch.setattr(timetic.adapters, "load_model", no_models)
    again = TimeTic(tiny_kb, seed=0).predict(target, n_windows=12)
    assert again.equals(first)
    # other windows (another seed) are another key: the models must run
    with pytest.raises(AssertionError, match="cache should have answered"):
        TimeTic(tiny_kb, seed=1).predict(target, n_windows=12)
    monkeypatch.setenv("TIMETIC_CACHE_DIR", "off")
    with pytest.raises(AssertionError, match="cache should have answered"):
        TimeTic(tiny_kb, seed=0).predict(target, n_windows=12)


def test_observations_keep_the_fit_log(tiny_kb):
    """Every observation keeps its run's validation curve (for learning-curve features)."""
    import json

    log = json.loads(tiny_kb.observations().get_column("fit_log")[0])
    assert {"val_curve", "best_step", "steps_run", "stopped_early", "cpu_seconds"} <= set(log)
    assert log["cpu_seconds"]["finetune"] > 0


def test_zero_shot_pass_scores_an_even_subset_of_the_windows(tiny_kb, target, monkeypatch):
    """The models forecast ``zero_shot_windows`` of the sampled windows (spread over the sample);
    the others are NaN in the rows and the ranking uses the scored ones only."""
    from timetic.estimate.core import zero_shot_subset
    from timetic.tasks import Task

    idx = zero_shot_subset(100, 32)
    assert len(idx) == 32 and idx[0] == 0 and idx[-1] == 99 and np.all(np.diff(idx) > 0)
    assert np.array_equal(zero_shot_subset(10, 32), np.arange(10))
    assert np.array_equal(zero_shot_subset(10, None), np.arange(10))
    with pytest.raises(TimeticInputError, match="zero_shot_windows"):
        zero_shot_subset(10, 0)

    seen = []
    est = TimeTic(tiny_kb, seed=0, zero_shot_windows=6)
    real = est._zero_shot
    monkeypatch.setattr(est, "_zero_shot", lambda m, w, t: seen.append(len(w)) or real(m, w, t))
    task = Task.preset("short", target.freq)
    rows = est.fit().target_rows(target, task, MODELS, n_windows=20)
    assert seen == [6] * len(MODELS)
    assert rows.features.height == 20
    for m in MODELS:
        z = rows.zero_shot[m]
        assert z.shape == (20,) and np.isfinite(z).sum() == 6
    r = est.rank(rows, MODELS)
    expected = [np.nanmean(rows.zero_shot[m]) for m in r["model_id"]]
    np.testing.assert_allclose(r["zero_shot_mase"].to_numpy(), expected)
    # the window formulation reads the scored windows only
    w = TimeTic(tiny_kb, learner="gp", seed=0, zero_shot_windows=6).fit()
    assert w.rank(rows, MODELS)["n_windows"].to_list() == [6] * len(MODELS)


def test_zero_shot_sample_paths_reach_the_sampling_models_only(tiny_kb, target, monkeypatch, tmp_path):
    """``zero_shot_sample_paths``: DeepAR (quantiles of sampled paths) is loaded with that many
    paths in the zero-shot pass, the quantile models with no extra setting; the scores change with
    the paths, are cached per setting, and a bad value is one clear error."""
    import timetic.adapters as adapters
    from timetic.tasks import Task

    calls = []
    real = adapters.load_model
    monkeypatch.setattr(adapters, "load_model",
                        lambda source, adapter, **kw: calls.append((adapter, kw)) or real(source, adapter=adapter, **kw))
    task = Task.preset("short", target.freq)
    scores = {}
    for paths in (None, 7):
        monkeypatch.setenv("TIMETIC_CACHE_DIR", str(tmp_path / f"cache{paths}"))
        calls.clear()
        est = TimeTic(tiny_kb, seed=0, zero_shot_windows=6, zero_shot_sample_paths=paths).fit()
        rows = est.target_rows(target, task, MODELS, n_windows=20)
        assert dict(calls) == {"chronos-bolt": {}, "deepar": {} if paths is None else {"num_parallel_samples": 7},
                               "patchtst": {}, "timesfm": {}}
        scores[paths] = rows.zero_shot
    assert np.allclose(scores[None]["patchtst-tiny"], scores[7]["patchtst-tiny"], equal_nan=True)
    d0, d7 = scores[None]["deepar-tiny"], scores[7]["deepar-tiny"]
    assert np.isfinite(d7).sum() == 6 and not np.allclose(d0, d7, equal_nan=True)
    calls.clear()  # a repeat is served from the cache, per setting
    monkeypatch.setenv("TIMETIC_CACHE_DIR", str(tmp_path / "cacheNone"))
    TimeTic(tiny_kb, seed=0, zero_shot_windows=6, zero_shot_sample_paths=None).fit().target_rows(target, task, MODELS, 20)
    assert calls == []
    TimeTic(tiny_kb, seed=0, zero_shot_windows=6, zero_shot_sample_paths=7).fit().target_rows(target, task, MODELS, 20)
    assert calls == [("deepar", {"num_parallel_samples": 7})]
    calls.clear()
    TimeTic(tiny_kb, seed=0, zero_shot_windows=6, zero_shot_sample_paths=7).fit().target_rows(target, task, MODELS, 20)
    assert calls == []
    with pytest.raises(TimeticInputError, match="zero_shot_sample_paths must be >= 1"):
        TimeTic(tiny_kb, seed=0, zero_shot_sample_paths=0).fit().target_rows(target, task, MODELS, n_windows=20)


def test_learning_curve_probe_reproduces_the_kb_runs_and_ranks(tiny_kb, target):
    """``probe_steps``: the probe on a KB dataset is the first K steps of that dataset's KB run (same
    split, seed and schedule), the stack reads it, and bad settings are one clear error."""
    import json

    from kbfactory import synthetic_dataset
    from timetic.adapters import load_model
    from timetic.estimate.cells import probe_value
    from timetic.finetune import probe_curve, run_finetune
    from timetic.kb import resolve_model_source
    from timetic.recipe import Recipe
    from timetic.tasks import Task

    import dataclasses

    obs = tiny_kb.observations().filter((pl.col("dataset_id") == "ds1") & (pl.col("model_id") == "patchtst-tiny"))
    log = obs.get_column("fit_log")[0]
    assert set(dict(json.loads(log)["val_curve"])) == {0, 4}
    recipe = Recipe.from_dict(json.loads(obs.get_column("recipe")[0]))
    row = tiny_kb.models().filter(pl.col("model_id") == "patchtst-tiny")
    model = load_model(resolve_model_source(tiny_kb, row.get_column("source")[0]), adapter="patchtst")
    ds1 = load_target(synthetic_dataset(1), name="ds1")
    task1 = Task.preset("short", ds1.freq)
    # a run of 8 steps validated every 4: the probe of 4 steps is its curve's prefix
    full = run_finetune(model, ds1, task1, dataclasses.replace(recipe, steps=8, eval_every=4), max_eval_windows=12)
    curve = dict(full.provenance["val_curve"])
    v0, v4 = probe_curve(model, ds1, task1, recipe, 4)
    assert v0 == curve[0] and v4 == curve[4] and curve[8] != v4
    assert probe_value(json.dumps({"val_curve": [[0, v0], [4, v4]]}), 4) == pytest.approx(np.log(min(v4, v0) / v0))
    assert np.isnan(probe_value(log, 3)) and np.isnan(probe_value(None, 4)) and np.isnan(probe_value("{", 4))

    est = TimeTic(tiny_kb, seed=0, probe_steps=4).fit()
    assert "probe" in est.learner_.weights_
    task = Task.preset("short", target.freq)
    rows = est.target_rows(target, task, MODELS, n_windows=12)
    assert set(rows.probe) == set(MODELS) and all(p <= 0 for p in rows.probe.values())
    r = est.rank(rows, MODELS)
    _check_ranking(r, len(MODELS))
    # the probe moves the prediction: a candidate whose probe says "no gain" ranks no better
    worse = dict(rows.probe)
    worse[r["model_id"][0]] = 0.0
    moved = est.rank(TargetRows(**{**rows.__dict__, "probe": worse}), MODELS)
    assert not moved["predicted_mase"].equals(r["predicted_mase"])
    # P(fine-tuning helps) from the probe's classifier when the KB has both outcomes
    clf = est.learner_.helps_classifier_
    if clf is not None:
        gx = est.learner_.gain_inputs(est.learner_.priors_("short", est.cells_.features[0], MODELS),
                                      np.array([rows.probe[m] for m in MODELS]))
        expected = clf.predict_proba(est.learner_._helps_inputs(gx))[:, 1]
        got = dict(zip(r["model_id"], r["p_improve"]))
        assert np.all((0 <= expected) & (expected <= 1)) and all(0 <= got[m] <= 1 for m in MODELS)
    with pytest.raises(TimeticInputError, match="probe-steps"):
        TimeTic(tiny_kb, probe_steps=3).fit()
    with pytest.raises(TimeticInputError, match="probe"):
        TimeTic(tiny_kb, probe_steps=4, zero_shot=False).fit()


def test_a_task_the_kb_lacks_is_ranked_with_a_warning(tiny_kb, target):
    """tiny_kb holds short-task observations only: a medium ranking says where it comes from."""
    from timetic.errors import TimeticWarning

    est = TimeTic(tiny_kb, zero_shot=False, seed=0)
    with pytest.warns(TimeticWarning, match="no medium-task observations"):
        r = est.predict(target, task="medium", n_windows=8)
    assert r.height == len(MODELS)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", TimeticWarning)
        est.predict(target, task="short", n_windows=8)
    # observations on fewer than MIN_TASK_DATASETS datasets: ranked, with a warning that says so
    from timetic.estimate.core import MIN_TASK_DATASETS

    thin = TimeTic(tiny_kb, zero_shot=False, seed=0)
    ctx = thin.context_table()
    keep = ctx.meta.get_column("dataset_id").is_in(["ds0", "ds1"][: MIN_TASK_DATASETS - 1]).to_numpy()
    thin.fit(ctx.mask(keep))
    with pytest.warns(TimeticWarning, match="short-task observations on only 2 dataset"):
        thin.predict(target, task="short", n_windows=8)


def test_a_fit_on_the_whole_kb_is_cached_and_any_change_refits(tiny_kb, target, monkeypatch, tmp_path):
    """The fitted state of ``fit()`` on a whole KB is cached; other parameters, a changed KB file
    or a context passed in (evaluation folds) fit anew."""
    import os
    import shutil

    from timetic.kb import KnowledgeBase

    kbdir = tmp_path / "kb"
    shutil.copytree(tiny_kb.path, kbdir)
    monkeypatch.setenv("TIMETIC_CACHE_DIR", str(tmp_path / "cache"))
    kb = KnowledgeBase(kbdir)
    first = TimeTic(kb, seed=0, zero_shot=False).fit()
    ranking = first.predict(target, n_windows=12)
    assert len(list((tmp_path / "cache" / "fitted").glob("*.pkl"))) == 1

    calls = []
    real = TimeTic._fit
    monkeypatch.setattr(TimeTic, "_fit", lambda self, ctx: calls.append(1) or real(self, ctx))
    again = TimeTic(kb, seed=0, zero_shot=False).fit()
    assert calls == []
    assert again.predict(target, n_windows=12).equals(ranking)
    assert not hasattr(again, "twin_")  # predict-time state is not part of the cached fit
    TimeTic(kb, seed=0, zero_shot=False, k=3).fit()
    assert calls == [1]
    obs = kbdir / "observations.parquet"
    st = obs.stat()
    os.utime(obs, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    TimeTic(kb, seed=0, zero_shot=False).fit()
    assert calls == [1, 1]
    # a file replaced by another of the same size with its mtime restored (cp -p, rsync -a) refits
    st = obs.stat()
    replaced = obs.with_name("replaced.tmp")
    shutil.copyfile(obs, replaced)
    os.replace(replaced, obs)
    os.utime(obs, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert obs.stat().st_size == st.st_size and obs.stat().st_mtime_ns == st.st_mtime_ns
    TimeTic(kb, seed=0, zero_shot=False).fit()
    assert calls == [1, 1, 1]
    est = TimeTic(kb, seed=0, zero_shot=False)
    est.fit(est.context_table())
    assert calls == [1, 1, 1, 1]
    monkeypatch.setenv("TIMETIC_CACHE_DIR", "off")
    TimeTic(kb, seed=0, zero_shot=False).fit()
    assert calls == [1, 1, 1, 1, 1]


def test_the_fit_cache_keeps_only_the_most_recent_entries(tmp_path, monkeypatch):
    from timetic import cache

    monkeypatch.setenv("TIMETIC_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(cache, "MAX_OBJECTS", 3)
    for i in range(5):
        cache.put_object(f"k{i}", {"i": i})
        p = tmp_path / "fitted" / f"k{i}.pkl"
        os.utime(p, ns=(i * 10**9, i * 10**9))  # distinct, ordered modification times
    cache.put_object("k5", {"i": 5})
    kept = sorted(f.stem for f in (tmp_path / "fitted").glob("*.pkl"))
    assert kept == ["k3", "k4", "k5"]
    assert cache.get_object("k5") == {"i": 5} and cache.get_object("k0") is None


def test_a_model_added_without_observations_is_ranked_as_an_unseen_model(tmp_path, tiny_kb, target):
    """`timetic add-model` without fine-tuning anything: predict ranks the new model (stack) from
    its profile's nearest models and its zero-shot score, warns, and names it in the JSON info;
    the window formulation, which cannot tell it apart, leaves it out; names still checked."""
    import json
    import shutil

    from click.testing import CliRunner

    from timetic.adapters import get_adapter
    from timetic.cli import main
    from timetic.errors import TimeticWarning
    from timetic.kb import KnowledgeBase
    from timetic.record import add_model

    shutil.copytree(tiny_kb.path, tmp_path / "kb")
    kb = KnowledgeBase.open(tmp_path / "kb")
    folder = tmp_path / "kb" / "models" / "tide-new"
    get_adapter("tide").from_config("tiny", seed=3).save_pretrained(folder)
    add_model(kb, folder, "tide", "tide-new")
    assert "tide-new" in kb.models()["model_id"].to_list()
    assert "tide-new" not in kb.observations()["model_id"].to_list()

    est = TimeTic(kb, seed=0, k=2)
    with pytest.warns(TimeticWarning, match="no fine-tuning observations.*tide-new.*priors borrowed: tide-new from"):
        r = est.predict(target, n_windows=12)
    # no TiDE in this KB: it borrows from other families only as many as leave-one-family-out chose
    lenders = est.lenders(["tide-new"])["tide-new"]
    assert len(lenders) == est.learner_.other_family_neighbours_ and set(lenders) <= set(MODELS)
    assert set(r["model_id"]) == set(MODELS) | {"tide-new"}
    row = r.filter(pl.col("model_id") == "tide-new").row(0, named=True)
    assert row["zero_shot_mase"] is not None and np.isfinite(row["predicted_mase"])
    assert row["lower_90"] <= row["predicted_mase"] <= row["upper_90"]
    with pytest.warns(TimeticWarning, match="tide-new"):
        two = est.predict(target, models=["tide-new", MODELS[0]], n_windows=12)
    assert set(two["model_id"]) == {"tide-new", MODELS[0]}
    with pytest.raises(TimeticInputError, match="unknown model"):
        est.predict(target, models=["no-such-model"], n_windows=12)

    # the families are the KB models' adapters; families=False borrows by profile alone
    assert est.learner_.families_ == dict(kb.models().select("model_id", "adapter").iter_rows())
    legacy = TimeTic(kb, seed=0, k=2, families=False).fit().learner_
    assert legacy.families_ == {} and legacy.other_family_neighbours_ is None

    window = TimeTic(kb, method="window", seed=0)
    assert set(window.predict(target, n_windows=12)["model_id"]) == set(MODELS)
    with pytest.raises(TimeticInputError, match="unknown model"):
        window.predict(target, models=["tide-new"], n_windows=12)

    out, data = tmp_path / "rank.json", tmp_path / "tgt.parquet"
    make_long(3, 1200, seed=5).write_parquet(data)
    res = CliRunner().invoke(main, ["predict", "--target", str(data), "--kb", str(kb.path), "--windows", "8",
                                    "--format", "json", "--out", str(out), "-q"])
    assert res.exit_code == 0, res.output
    info = json.loads(out.read_text())["info"]
    assert info["unobserved"] == ["tide-new"]
    assert set(info["priors_from"]) == {"tide-new"} and set(info["priors_from"]["tide-new"]) <= set(MODELS)
    # the table's footer names them too
    table = CliRunner().invoke(main, ["predict", "--target", str(data), "--kb", str(kb.path), "--windows", "8", "-q"],
                               env={"COLUMNS": "400"})
    assert table.exit_code == 0, table.output
    lent = ", ".join(info["priors_from"]["tide-new"]) or "none"
    assert f"ranked as unseen models; priors from {lent} (tide-new)" in " ".join(table.output.split())
    # the stack says how many principal components its kNN prior chose neighbours over
    assert info["knn_components"] == "all" or info["knn_components"] in StackedRanker.COMPONENTS
    # and the cross prior's penalty, or null where the KB is too small for it (this tiny KB)
    assert "cross_alpha" in info
    assert info["cross_alpha"] is None or info["cross_alpha"] in StackedRanker.CROSS_ALPHAS
    # and the meta prior's components and penalty (weight-free only), or null where it is not read
    assert "meta_prior" in info
    assert info["meta_prior"] is None or info["meta_prior"]["components"] in StackedRanker.META_COMPONENTS


def test_task_all_ranks_the_tasks_the_series_are_long_enough_for(tiny_kb):
    """700 hourly points fit the short task (512 + 48 plus the evaluation span) but not medium
    (512 + 240) or long: ``task="all"`` ranks short and says so; naming medium is an error."""
    from timetic.errors import TimeticWarning

    short_only = load_target(make_long(2, 700, seed=1), name="s")
    est = TimeTic(tiny_kb, zero_shot=False, seed=0)
    with pytest.warns(TimeticWarning, match="too short for the medium and long tasks; ranked short only"):
        r = est.predict(short_only, task="all", n_windows=8)
    assert set(r["task"]) == {"short"}
    with pytest.raises(TimeticInputError, match="too short for task 'medium'.*use a shorter task"):
        est.predict(short_only, task="medium", n_windows=8)
    with pytest.raises(TimeticInputError, match="too short for task 'short'.*use longer series"):
        est.predict(load_target(make_long(1, 300, seed=1), name="t"), task="all", n_windows=8)


def test_zero_shot_scores_do_not_depend_on_the_unit(tiny_kb):
    """Values of 1e-6 (rates, probabilities) or 1e12 reach the models rescaled by a power of ten:
    the same zero-shot MASE as the same series in a comfortable unit."""
    frame = make_long(2, 1000, seed=4).with_columns(pl.col("target") * 0.5)  # scale ~5: not rescaled
    est = TimeTic(tiny_kb, seed=0)
    ref = est.predict(load_target(frame, name="u"), n_windows=8).sort("model_id")["zero_shot_mase"].to_numpy()
    for factor in (1e-6, 1e12):
        t = load_target(frame.with_columns(pl.col("target") * factor), name="u")
        got = est.predict(t, n_windows=8).sort("model_id")["zero_shot_mase"].to_numpy()
        np.testing.assert_allclose(got, ref, rtol=1e-4)


def test_power_of_ten_factors_leave_comfortable_values_alone():
    from timetic.data import power_of_ten_factors

    rows = np.array([[5.0, -5.0, np.nan], [3e-6, 3e-6, 3e-6], [2e9, 2e9, 2e9], [0.0, 0.0, 0.0],
                     [np.nan, np.nan, np.nan]])
    np.testing.assert_allclose(power_of_ten_factors(rows), [1.0, 1e6, 1e-9, 1.0, 1.0])


def test_a_renamed_target_column_passes_through_predict(tiny_kb):
    """``target=`` names the target column (a ``load_target`` option), as the errors advise."""
    frame = make_long(2, 1000, seed=2).rename({"target": "y"})
    r = TimeTic(tiny_kb, zero_shot=False).predict(frame, target="y", n_windows=8)
    assert r.height == 4


def test_a_live_estimator_refits_when_its_kb_changes(tiny_kb, target, tmp_path):
    """Observations added to the estimator's own KB (``verify(kb_out=...)``, ``finetune --kb``)
    reach the next predict of the same object; a fold fit (a context passed in) is kept."""
    import shutil

    import polars as pl

    from timetic.kb import KnowledgeBase

    kbdir = tmp_path / "kb"
    shutil.copytree(tiny_kb.path, kbdir)
    kb = KnowledgeBase(kbdir)
    est = TimeTic(kb, seed=0, zero_shot=False)
    before = est.predict(target, n_windows=12)
    obs = kb.observations()
    worse = obs.filter(pl.col("model_id") == before["model_id"][0]).with_columns(pl.col("ft_mase") * 50)
    kb.add_observations(worse)  # the same windows observed again (newest wins): the best model fails
    assert est._fitted_on_another_kb()
    after = est.predict(target, n_windows=12)
    assert not after.equals(before)
    assert after.equals(TimeTic(KnowledgeBase(kbdir), seed=0, zero_shot=False).predict(target, n_windows=12))
    fold = TimeTic(kb, seed=0, zero_shot=False)
    fold.fit(fold.context_table())
    assert not fold._fitted_on_another_kb()


def test_candidate_and_window_arguments_are_checked(tiny_kb, target):
    est = TimeTic(tiny_kb, zero_shot=False, seed=0)
    twice = est.predict(target, models=["patchtst-tiny", "patchtst-tiny", "timesfm-tiny"], n_windows=8)
    assert twice["model_id"].to_list().count("patchtst-tiny") == 1 and twice.height == 2
    assert est.predict(target, task=["short", "short"], n_windows=8).height == 4
    with pytest.raises(TimeticInputError, match="list of candidate models is empty"):
        est.predict(target, models=[], n_windows=8)
    with pytest.raises(TimeticInputError, match="whole number"):
        est.predict(target, n_windows=2.5)


def test_predict_says_when_the_target_is_a_kb_dataset(tiny_kb):
    """The tiny KB's ``ds2`` under other series names: predict warns that the ranking leans on the
    KB's own results for it; a target the KB has not seen gets no such warning."""
    import warnings

    from kbfactory import synthetic_dataset
    from timetic.errors import TimeticWarning

    renamed = synthetic_dataset(2).with_columns((pl.lit("y") + pl.col("item_id")).alias("item_id"))
    est = TimeTic(tiny_kb, zero_shot=False, seed=0)
    with pytest.warns(TimeticWarning, match="holds the series of the knowledge base's dataset 'ds2'"):
        est.predict(renamed, n_windows=8)
    with warnings.catch_warnings():
        warnings.simplefilter("error", TimeticWarning)
        est.predict(make_long(2, 1000, seed=11), n_windows=8)
