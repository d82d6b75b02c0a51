"""Evaluation harness on the tiny knowledge base: scenarios, baselines, metrics, no leakage."""

import shutil

import numpy as np
import polars as pl
import pytest

from timetic.estimate import TimeTic
from timetic.evaluate import SCENARIOS, bootstrap_ci, evaluate, ranking_metrics
from timetic.kb import KnowledgeBase


def _benchmark(name: str):
    """The script ``benchmarks/<name>.py`` as a module (benchmarks/ is not a package)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ranking_metrics_known_values():
    true = np.array([1.0, 2.0, 3.0, 4.0])
    perfect = ranking_metrics(true, true * 10)
    assert perfect == pytest.approx({"spearman": 1.0, "weighted_tau": 1.0, "top1": 1.0, "top3": 1.0, "regret": 0.0})
    reverse = ranking_metrics(true, -true)
    assert reverse["spearman"] == -1.0 and reverse["top1"] == 0.0 and reverse["regret"] == 3.0
    lo, hi = bootstrap_ci(np.array([0.1, 0.5, 0.9]), np.array(["a", "b", "c"]))
    assert 0.1 <= lo <= 0.5 <= hi <= 0.9


def test_unseen_dataset_with_baselines(tiny_kb):
    res = evaluate(tiny_kb, ["unseen-dataset"], lambda: TimeTic(tiny_kb, learner="hgb"))
    methods = set(res.rows["method"])
    assert methods == {"timetic", "zero-shot", "leaderboard", "knn", "random"}
    assert res.rows.filter(pl.col("method") == "timetic").height == 4  # one per held-out dataset
    s = res.summary(n_boot=200)
    assert ((s["spearman"] >= -1) & (s["spearman"] <= 1)).all()
    assert (s["spearman_lo"] <= s["spearman"]).all() and (s["spearman"] <= s["spearman_hi"]).all()
    assert (s["regret"] >= 0).all()


@pytest.mark.parametrize("scenario", ["unseen-model", "few-shot"])
def test_other_scenarios_run(tiny_kb, scenario):
    res = evaluate(tiny_kb, [scenario], lambda: TimeTic(tiny_kb, learner="hgb"), few_shot_windows=5, baselines=False)
    assert res.rows.height >= 4 and set(res.rows["scenario"]) == {scenario}
    assert scenario in SCENARIOS


def test_held_out_scores_do_not_leak(tiny_kb, tmp_path):
    """Perturbing the held-out dataset's observed fine-tuned scores changes its ground truth but
    not the fold's predictions for it."""
    copy = tmp_path / "kb"
    shutil.copytree(tiny_kb.path, copy)
    kb2 = KnowledgeBase.open(copy)
    obs = kb2.observations()
    kb2.add_observations(obs.filter(pl.col("dataset_id") == "ds1").with_columns(pl.col("ft_mase") * 5.0))
    a = evaluate(tiny_kb, ["unseen-dataset"], lambda: TimeTic(tiny_kb, learner="hgb"), baselines=False)
    b = evaluate(kb2, ["unseen-dataset"], lambda: TimeTic(kb2, learner="hgb"), baselines=False)
    pa = a.predictions.filter(pl.col("dataset_id") == "ds1").sort("model_id")
    pb = b.predictions.filter(pl.col("dataset_id") == "ds1").sort("model_id")
    np.testing.assert_allclose(pa["predicted"].to_numpy(), pb["predicted"].to_numpy())
    np.testing.assert_allclose(pb["observed"].to_numpy(), 5.0 * pa["observed"].to_numpy())
    # other folds see ds1's perturbed scores in their context, so their predictions move
    qa = a.predictions.filter(pl.col("dataset_id") == "ds0").sort("model_id")["predicted"].to_numpy()
    qb = b.predictions.filter(pl.col("dataset_id") == "ds0").sort("model_id")["predicted"].to_numpy()
    assert not np.allclose(qa, qb)


def test_both_unseen_leaves_whole_groups_out(tiny_kb):
    models = tiny_kb.models()["model_id"].to_list()
    groups = {m: ("g0" if i % 2 == 0 else "g1") for i, m in enumerate(sorted(models))}
    fits = []

    class Counting(TimeTic):
        def fit(self, context=None):
            fits.append(sorted(set(context.meta["model_id"].to_list())))
            return super().fit(context)

    res = evaluate(tiny_kb, ["both-unseen"], lambda: Counting(tiny_kb, learner="hgb"), baselines=False,
                   model_groups=groups)
    n_datasets = tiny_kb.datasets().height
    assert len(fits) == 2 * n_datasets  # one refit per (dataset, group), not per (dataset, model)
    for seen in fits:  # a fit never sees a member of the group it predicts
        assert set(seen) in ({m for m in models if groups[m] == "g0"}, {m for m in models if groups[m] == "g1"})
    assert res.rows.height >= 1 and set(res.rows["scenario"]) == {"both-unseen"}


def test_each_method_reads_its_own_context(tiny_kb):
    """A method's fold predictions do not depend on which other methods run beside it (each reads
    the context its own profile estimator builds)."""
    both = evaluate(tiny_kb, ["unseen-dataset"], {
        "knn": lambda: TimeTic(tiny_kb, learner="hgb", profile="knn"),
        "renyi": lambda: TimeTic(tiny_kb, learner="hgb", profile="renyi"),
    }, baselines=False)
    alone = evaluate(tiny_kb, ["unseen-dataset"], {"renyi": lambda: TimeTic(tiny_kb, learner="hgb", profile="renyi")},
                     baselines=False)
    a = both.predictions.filter(pl.col("method") == "renyi").sort("dataset_id", "task", "model_id")
    b = alone.predictions.sort("dataset_id", "task", "model_id")
    np.testing.assert_allclose(a["predicted"].to_numpy(), b["predicted"].to_numpy())


def test_fit_rejects_a_context_of_another_profile(tiny_kb):
    from timetic.errors import TimeticInputError

    ctx = TimeTic(tiny_kb, profile="knn").context_table()
    with pytest.raises(TimeticInputError, match="profiles"):
        TimeTic(tiny_kb, learner="hgb", profile="renyi").fit(ctx)


def test_noise_ceiling_reports_the_regret_of_one_seeds_best_judged_by_another():
    realism = _benchmark("realism")
    ft = {0: {"a": 1.0, "b": 1.1, "c": 1.2}, 1: {"a": 1.05, "b": 1.0, "c": 1.3}}
    cells = pl.DataFrame([{"dataset_id": "d", "task": "short", "model_id": m, "seed": s, "ft": v}
                          for s, row in ft.items() for m, v in row.items()])
    out = realism.noise_ceiling(cells, n_boot=10)
    # seed 0 picks a (1.05 under seed 1: +5%), seed 1 picks b (1.1 under seed 0: +10%)
    assert out["ceiling_regret_short"] == pytest.approx(0.075)
    assert out["ceiling_top1_short"] == 0.0 and out["ceiling_rho_short"] == pytest.approx(0.5)


def test_noise_ceiling_ci_does_not_depend_on_row_order():
    realism = _benchmark("realism")
    rng = np.random.default_rng(0)
    cells = pl.DataFrame([{"dataset_id": f"d{d}", "task": "short", "model_id": m, "seed": s,
                           "ft": float(rng.uniform(0.5, 2.0))}
                          for d in range(12) for s in (0, 1) for m in "abcde"])
    a = realism.noise_ceiling(cells, n_boot=200)
    b = realism.noise_ceiling(cells.reverse(), n_boot=200)
    c = realism.noise_ceiling(cells.sample(fraction=1.0, shuffle=True, seed=3), n_boot=200)
    assert a["ceiling_ci_short"] == b["ceiling_ci_short"] == c["ceiling_ci_short"]


def _window_obs(cells: dict[str, np.ndarray]) -> pl.DataFrame:
    """Observations of cells {dataset: (windows, models) fine-tuned MASE}, task short."""
    return pl.DataFrame([{"dataset_id": d, "task": "short", "model_id": f"m{j}", "item_id": "s",
                          "window_start": i, "ft_mase": float(X[i, j])}
                         for d, X in cells.items() for i in range(X.shape[0]) for j in range(X.shape[1])])


def test_window_split_reliability_tells_consistent_windows_from_noise():
    realism = _benchmark("realism")
    rng = np.random.default_rng(0)
    consistent = np.arange(1.0, 7.0)[None, :] * rng.uniform(0.5, 2.0, (20, 1)) + rng.normal(0, 0.01, (20, 6))
    obs = _window_obs({"consistent": consistent, "noise": rng.uniform(0.5, 2.0, (60, 6)),
                       "one": rng.uniform(0.5, 2.0, (1, 6))})
    out = {r["dataset_id"]: r for r in realism.window_split_reliability(obs).iter_rows(named=True)}
    assert out["consistent"]["rho_half"] == pytest.approx(1.0) and out["consistent"]["rho_full"] == pytest.approx(1.0)
    assert abs(out["noise"]["rho_half"]) < 0.3 and out["noise"]["n_windows"] == 60
    assert np.isnan(out["one"]["rho_half"]) and out["one"]["n_windows"] == 1
    r = out["noise"]["rho_half"]
    assert out["noise"]["rho_full"] == pytest.approx(2 * r / (1 + r))  # Spearman-Brown
    shuffled = realism.window_split_reliability(obs.sample(fraction=1.0, shuffle=True, seed=1))
    assert shuffled.equals(realism.window_split_reliability(obs))  # row order does not matter


def test_accuracy_by_truth_reliability_groups_cells_by_their_split_half_rho():
    evaluate_script = _benchmark("evaluate")
    rows = pl.DataFrame([{"scenario": "unseen-dataset", "method": m, "dataset_id": d, "task": "short",
                          "spearman": v, "weighted_tau": v, "top1": 1.0, "regret": 0.1}
                         for d, v in (("a", 0.2), ("b", 0.4), ("c", 0.9)) for m in ("timetic", "zero-shot")])
    split = pl.DataFrame({"dataset_id": ["a", "b", "c"], "task": ["short"] * 3, "rho_full": [float("nan"), 0.3, 0.85]})
    text = evaluate_script.by_truth_reliability(rows, split, methods=("timetic",))
    lines = [x for x in text.splitlines() if x.startswith("| ") and "timetic" in x]
    assert [x.split(" | ")[:4] for x in lines] == [["| one window (no split)", "1", "timetic", "0.200"],
                                                  ["| below 0.5", "1", "timetic", "0.400"],
                                                  ["| 0.8 and above", "1", "timetic", "0.900"]]


def test_per_dataset_ci_does_not_depend_on_row_order():
    evaluate_script = _benchmark("evaluate")
    rng = np.random.default_rng(0)
    pred = pl.DataFrame([{"method": "timetic", "dataset_id": f"d{d}", "task": t, "model_id": f"m{m}",
                          "observed": float(rng.uniform(0.5, 2)), "predicted": float(rng.uniform(0.5, 2))}
                         for d in range(4) for t in ("short", "medium", "long") for m in range(6)])
    a = evaluate_script.per_dataset_ci(pred, "timetic", n_boot=30)
    b = evaluate_script.per_dataset_ci(pred.sample(fraction=1.0, shuffle=True, seed=1), "timetic", n_boot=30)
    assert a.equals(b)


def test_benchmark_results_name_their_command_and_append_sections(tmp_path):
    report = _benchmark("_report")
    out = tmp_path / "r.md"
    report.write_result(out, "x.py", "TABLE 1")
    report.write_result(out, "x.py", "TABLE 2", args="--stack ", section="More")
    text = out.read_text()
    assert text.startswith("# benchmarks/x.py — output of one run\n")
    assert f"`python benchmarks/x.py --out {out}`" in text and "TABLE 1" in text
    assert text.index("## More") > text.index("TABLE 1")
    assert f"`python benchmarks/x.py --stack --out {out}` (appended)" in text and text.rstrip().endswith("```")
    report.write_result(out, "x.py", "TABLE 3")
    assert "TABLE 1" not in out.read_text() and "TABLE 3" in out.read_text()


def test_results_reliability_table_shows_every_bin_of_either_probability():
    ev = _benchmark("evaluate")
    rng = np.random.default_rng(0)
    rows = []
    for d in range(6):
        for m in range(4):
            obs = 1.0 + rng.random()
            rows.append({"scenario": "unseen-dataset", "method": "timetic", "dataset_id": f"d{d}", "task": "short",
                         "model_id": f"m{m}", "predicted": obs, "observed": obs, "lower_90": obs - 1, "upper_90": obs + 1,
                         "p_best": 0.1 + 0.05 * m,  # P(best) only in the two lowest bins
                         "p_improve": 0.45 + 0.15 * m,  # P(helps) in the upper bins
                         "observed_zs": obs * (1.2 if m else 0.9)})
    cal = ev.calibration(pl.DataFrame(rows))
    wf = ev.calibration(pl.DataFrame(rows))
    lines = [x for x in ev.calibration_section(cal, wf) if x.startswith("| 0.") and "–" in x.split("|")[1]]
    bins = [x.split("|")[1].strip() for x in lines]
    assert bins == ["0.0–0.2", "0.2–0.4", "0.4–0.6", "0.6–0.8", "0.8–1.0"]
    upper = {x.split("|")[1].strip(): x for x in lines}["0.8–1.0"]
    assert upper.split("|")[2].strip() == "0" and upper.split("|")[5].strip() == "6"


def test_no_information_reference_of_held_out_model_scenarios_is_negative_by_construction():
    from timetic.evaluate import EvalResult

    ev = _benchmark("evaluate")
    quality = {"a1": 1.0, "a2": 1.1, "b1": 1.5, "b2": 1.6, "c1": 2.0}  # a fixed order on every dataset
    rows = [{"scenario": s, "method": "timetic", "dataset_id": f"d{d}", "task": "short", "model_id": m,
             "predicted": 1.0, "observed": q * (1 + 0.01 * d)}
            for s in ("unseen-model", "both-unseen") for d in range(4) for m, q in quality.items()]
    res = EvalResult(pl.DataFrame(), pl.DataFrame(rows))
    um = ev.add_no_information(res, "unseen-model")
    assert um.height == 4 and um["spearman"].to_list() == pytest.approx([-1.0] * 4)  # the mean of the others falls as a model improves
    groups = {m: m[0] for m in quality}
    bu = ev.add_no_information(res, "both-unseen", groups)
    assert bu.height == 4 and (bu["spearman"] < 0).all()
    assert ev.add_no_information(res, "few-shot").height == 0
    # regret is on the MASE scale: the reference picks the worst model here (c1: 2.0 against 1.0)
    assert um["regret"].to_list() == pytest.approx([1.0] * 4)


def test_attainable_rho_is_the_mean_square_root_of_the_clipped_reliabilities():
    realism = _benchmark("realism")
    assert realism.attainable_rho(np.array([0.81, 0.25, np.nan, -0.2, 1.3])) == pytest.approx((0.9 + 0.5 + 0 + 1) / 4)
    assert np.isnan(realism.attainable_rho(np.array([np.nan])))


def test_rerun_replaces_only_the_named_methods():
    """``evaluate.py --resume --rerun M`` keeps a cached scenario's other methods' rows and
    predictions, replaces M's, keeps the methods' order, the full run's wall time and KB hash,
    and appends a method the cached run lacked."""
    ev = _benchmark("evaluate")
    from timetic.evaluate import EvalResult

    def rows(methods, value):
        return pl.DataFrame({"scenario": "s", "method": methods, "dataset_id": "d", "task": "short",
                             "spearman": [value] * len(methods)})

    old = EvalResult(rows(["a", "b", "c"], 0.1).with_columns(pl.lit(99.0).alias("wall_s"), pl.lit("h").alias("kb_hash")),
                     rows(["a", "b", "c"], 0.1).rename({"spearman": "predicted"}))
    new = EvalResult(rows(["b", "new"], 0.5), rows(["b", "new"], 0.5).rename({"spearman": "predicted"}))
    out = ev._merged(old, new, ["b", "new"])
    assert out.rows["method"].to_list() == ["a", "b", "c", "new"]
    assert out.rows["spearman"].to_list() == [0.1, 0.5, 0.1, 0.5]
    assert out.rows["wall_s"].to_list() == [99.0] * 4 and set(out.rows["kb_hash"]) == {"h"}
    assert out.predictions["predicted"].to_list() == [0.1, 0.5, 0.1, 0.5]
    # the methods each scenario runs
    makers = {k: None for k in ("timetic", "weight-free", "stack-k=3", *ev.NEW_MODEL_METHODS)}
    assert ev._scenario_methods("unseen-dataset", makers) == ["timetic", "weight-free", "stack-k=3"]
    assert ev._scenario_methods("few-shot", makers) == ["timetic", "weight-free"]
    assert set(ev._scenario_methods("both-unseen", makers)) == {"timetic", "weight-free", *ev.NEW_MODEL_METHODS}


def test_rerun_runs_are_recorded_with_the_scenario_cache(tmp_path):
    """Every ``--rerun`` run on a scenario cache is kept beside it (RESULTS.md lists them in any
    later report), for the cache's KB observations only."""
    ev = _benchmark("evaluate")
    cache = tmp_path / "scenario-s.parquet"
    assert ev._reruns(cache, "h") == []
    ev._add_rerun(cache, "h", ["b", "a"], 12.3)
    ev._add_rerun(cache, "h", ["c"], 4.0)
    assert ev._reruns(cache, "h") == [{"methods": ["a", "b"], "seconds": 12}, {"methods": ["c"], "seconds": 4}]
    assert ev._reruns(cache, "other observations") == []
    ev._add_rerun(cache, "other observations", ["d"], 1.0)  # a cache of other observations starts afresh
    assert ev._reruns(cache, "other observations") == [{"methods": ["d"], "seconds": 1}]


def test_truth_from_judges_a_rerun_on_the_full_runs_windows(tiny_kb, tmp_path):
    """The ground truth and target rows come from the first method's context (with zero-shot
    scores: only windows that have a valid one); ``truth_from`` lets a run of a weight-free method
    alone be judged on those windows, as it was in the run with every method."""
    copy = tmp_path / "kb"
    shutil.copytree(tiny_kb.path, copy)
    kb2 = KnowledgeBase.open(copy)
    obs = kb2.observations()
    m0 = sorted(obs["model_id"].unique())[0]
    bad = obs.filter((pl.col("dataset_id") == "ds1") & (pl.col("model_id") == m0))
    bad = bad.sort("item_id", "window_start").head(bad.height // 2)
    kb2.add_observations(bad.with_columns(pl.lit(1e9).alias("zs_mase"), pl.col("ft_mase") * 3.0))
    both = {"timetic": lambda: TimeTic(kb2, learner="hgb"), "weight-free": lambda: TimeTic(kb2, zero_shot=False)}
    full = evaluate(kb2, ["unseen-dataset"], both, baselines=False)
    alone = evaluate(kb2, ["unseen-dataset"], {"weight-free": both["weight-free"]}, baselines=False,
                     truth_from=both["timetic"])
    plain = evaluate(kb2, ["unseen-dataset"], {"weight-free": both["weight-free"]}, baselines=False)
    cols = ["dataset_id", "task", "model_id"]
    a = full.predictions.filter(pl.col("method") == "weight-free").sort(cols)
    b = alone.predictions.sort(cols)
    c = plain.predictions.sort(cols)
    np.testing.assert_allclose(a["observed"].to_numpy(), b["observed"].to_numpy())
    np.testing.assert_allclose(a["predicted"].to_numpy(), b["predicted"].to_numpy())
    assert not np.allclose(a["observed"].to_numpy(), c["observed"].to_numpy())  # all windows
