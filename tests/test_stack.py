"""The ``stack`` formulation: priors, stacking weights, conformal residuals, and what it reads."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pytest
from scipy import stats

from timetic.estimate import TimeTic
from timetic.estimate.cells import Cells
from timetic.estimate.priors import Priors
from timetic.estimate.stack import StackedRanker, _conformal_quantiles

MODELS = np.array([f"m{g}" for g in range(6)])


def synthetic_cells(n: int = 16, zs_noise: float = 0.05, cluster_order: bool = False, seed: int = 0) -> Cells:
    """n datasets (one task). Without ``cluster_order``, fine-tuned = zero-shot + noise (the
    zero-shot ranking is right); with it, the model order is set by a feature (two clusters with
    opposite orders) and zero-shot is noise."""
    rng = np.random.default_rng(seed)
    G = len(MODELS)
    cluster = np.arange(n) % 2
    features = np.column_stack([cluster * 4.0 + rng.normal(0, 0.3, n), rng.normal(0, 1, (n, 3))])
    if cluster_order:
        order = np.where(cluster[:, None] == 0, np.arange(G)[None, :], np.arange(G)[::-1][None, :]) * 0.2
        log_ft = order + rng.normal(0, 0.02, (n, G))
        log_zs = rng.normal(0, 1.0, (n, G))
    else:
        log_zs = rng.normal(0, 0.5, (n, G)) + rng.normal(0, 0.3, (n, 1))
        log_ft = log_zs - 0.1 + rng.normal(0, zs_noise, (n, G))
    return Cells(np.array([f"d{i}" for i in range(n)]), np.array(["short"] * n), MODELS, log_ft, log_zs,
                 features, ["f0", "f1", "f2", "f3"])


def test_stack_trusts_zero_shot_when_it_is_right():
    cells = synthetic_cells()
    r = StackedRanker(zero_shot=True).fit(cells)
    w = r.weights_
    assert w["zero_shot"] > 0.8 and abs(w["knn"]) < 0.2
    test = synthetic_cells(seed=1)
    pred, _, ok = r.predict("short", test.features[0], list(MODELS), test.log_zs[0])
    assert ok.all()
    assert stats.spearmanr(pred, test.log_ft[0]).statistic > 0.9


def test_stack_trusts_knn_when_the_features_decide():
    cells = synthetic_cells(cluster_order=True)
    r = StackedRanker(zero_shot=True).fit(cells)
    assert r.weights_["knn"] > 0.7 and abs(r.weights_["zero_shot"]) < 0.1
    # weight-free: a target in cluster 0 and one in cluster 1 get opposite rankings
    wf = StackedRanker(zero_shot=False).fit(cells)
    a, _, _ = wf.predict("short", np.array([0.0, 0, 0, 0]), list(MODELS))
    b, _, _ = wf.predict("short", np.array([4.0, 0, 0, 0]), list(MODELS))
    assert stats.spearmanr(a, np.arange(6)).statistic > 0.9
    assert stats.spearmanr(b, np.arange(6)).statistic < -0.9


def test_residuals_are_out_of_fold():
    """A source cell's residuals come from priors without its dataset: a dataset unlike every
    other one gets large residuals, not the zero an in-sample kNN (its own cell) would give."""
    cells = synthetic_cells(cluster_order=True)
    odd = cells.log_ft.copy()
    odd[0] = odd[0][::-1] * 5
    cells = Cells(cells.datasets, cells.tasks, cells.models, odd, cells.log_zs, cells.features, cells.feature_names)
    r = StackedRanker(zero_shot=False).fit(cells)
    res = np.abs(r.residuals_)
    assert res[0].mean() > 5 * np.median(res[1:].mean(axis=1))


def test_new_model_borrows_priors_from_its_profile_neighbour():
    cells = synthetic_cells(cluster_order=True)
    profiles = {m: np.array([g, g ** 2], dtype=float) for g, m in enumerate(MODELS)}
    profiles["new"] = profiles["m5"] + 0.01
    p = Priors(k=3).fit(cells, profiles)
    v = p("short", cells.features[0], ["m5", "new", "m0"])
    nb = Priors(k=3, n_profile_neighbours=1).fit(cells, profiles)("short", cells.features[0], ["m5", "new"])
    assert nb.leaderboard[0] == pytest.approx(nb.leaderboard[1])
    assert nb.knn[0] == pytest.approx(nb.knn[1])
    assert np.isfinite(v.leaderboard).all()


def test_a_new_model_borrows_from_its_family_or_as_other_family_neighbours_says():
    cells = synthetic_cells(cluster_order=True)
    profiles = {m: np.array([g, g ** 2], dtype=float) for g, m in enumerate(MODELS)}
    families = {"m0": "a", "m1": "a", "m2": "b", "m3": "b", "m4": "c", "m5": "c"}
    profiles["sib"] = profiles["m5"] + 0.01  # nearest to m5 in profile, but of family "a"
    profiles["alien"] = profiles["m5"] + 0.01  # a family the KB lacks
    fam = {**families, "sib": "a", "alien": "z"}
    models = ["m0", "m1", "m5", "sib", "alien"]
    p = Priors(k=3, n_profile_neighbours=1, n_other_family_neighbours=0).fit(cells, profiles, fam)("short", cells.features[0], models)
    assert p.leaderboard[3] == pytest.approx(p.leaderboard[1])  # m1: the nearer of its family
    assert p.knn[3] == pytest.approx(p.knn[1])
    assert p.leaderboard[4] == 0.0 and p.knn[4] == 0.0  # borrows nothing: the mean
    one = Priors(k=3, n_profile_neighbours=1, n_other_family_neighbours=1).fit(cells, profiles, fam)("short", cells.features[0], models)
    assert one.leaderboard[4] == pytest.approx(one.leaderboard[2])  # m5, nearest of any family
    legacy = Priors(k=3, n_profile_neighbours=1).fit(cells, profiles)("short", cells.features[0], models)
    assert legacy.leaderboard[3] == pytest.approx(legacy.leaderboard[2])  # without families: m5


def test_other_family_neighbours_are_chosen_by_leave_one_family_out():
    # sibling pairs share a score; profiles find siblings; across families the profile either
    # carries the score (a smooth function of it) or says nothing about it
    rng = np.random.default_rng(0)
    n, G = 20, 8
    models = np.array([f"m{g}" for g in range(G)])
    families = {m: f"f{g // 2}" for g, m in enumerate(models)}
    for informative in (False, True):
        pos = np.arange(G // 2, dtype=float) if informative else rng.permutation(G // 2).astype(float)
        fam_score = np.linspace(-1, 1, G // 2)[None, :] + rng.normal(0, 0.05, (n, G // 2))
        log_ft = np.repeat(fam_score, 2, axis=1) + rng.normal(0, 0.01, (n, G))
        cells = Cells(np.array([f"d{i}" for i in range(n)]), np.array(["short"] * n), models, log_ft,
                      log_ft + rng.normal(0, 0.3, (n, G)), rng.normal(0, 1, (n, 2)), ["f0", "f1"])
        profiles = {m: np.array([pos[g // 2], 0.01 * g]) for g, m in enumerate(models)}
        r = StackedRanker(zero_shot=False, inputs=("leaderboard",), scale="log").fit(cells, profiles, families)
        assert set(r.other_family_neighbour_scores_) == set(StackedRanker.OTHER_FAMILY_NEIGHBOURS)
        if informative:  # the nearest other family's score places a model well
            assert r.other_family_neighbours_ >= 1
            assert r.other_family_neighbour_scores_[1] > r.other_family_neighbour_scores_[0]
        else:
            assert r.other_family_neighbours_ == 0
    # without families, or fixed, nothing is chosen
    assert StackedRanker(zero_shot=False).fit(cells, profiles).other_family_neighbours_ is None
    fixed = StackedRanker(zero_shot=False, other_family_neighbours=2).fit(cells, profiles, families)
    assert fixed.other_family_neighbours_ == 2 and fixed.other_family_neighbour_scores_ == {}
    with pytest.raises(ValueError, match="other_family_neighbours"):
        StackedRanker(zero_shot=False, other_family_neighbours="some").fit(cells, profiles, families)


def test_new_model_weights_are_fitted_for_the_situation_of_the_new_models():
    rng = np.random.default_rng(2)
    n, models = 24, np.array([f"m{g}" for g in range(8)])
    families = {m: f"f{g // 2}" for g, m in enumerate(models)}
    fam_score = np.array([0.8, -0.5, 0.2, -0.9]) + rng.normal(0, 0.1, (n, 4))  # steady family levels
    log_ft = np.repeat(fam_score, 2, axis=1) + rng.normal(0, 0.05, (n, 8))
    cells = Cells(np.array([f"d{i}" for i in range(n)]), np.array(["short"] * n), models, log_ft,
                  log_ft + rng.normal(0, 0.5, (n, 8)), rng.normal(0, 1, (n, 2)), ["f0", "f1"])
    # profiles find siblings but are unrelated to the levels across families
    profiles = {m: np.array([(3 * (g // 2)) % 4, 0.01 * g], dtype=float) for g, m in enumerate(models)}
    kw = dict(inputs=("zero_shot", "leaderboard"), scale="log", task_weights=None, new_model_weights=True)
    sib = StackedRanker(**kw).fit(cells, {**profiles, "new": profiles["m0"]}, {**families, "new": "f0"})
    assert set(sib.ridge_new_) == {"kin"} and sib.situation("new", models) == "kin"
    alien = StackedRanker(**kw).fit(cells, {**profiles, "new": profiles["m0"]}, {**families, "new": "f9"})
    assert set(alien.ridge_new_) == {"other"} and alien.situation("new", models) == "other"
    assert alien.other_family_neighbours_ == 0
    # a sibling's borrowed leaderboard is its family's level: it is trusted over the noisy zero-shot
    assert sib.ridge_new_["kin"].pooled_.w_[1] > sib.ridge_new_["kin"].pooled_.w_[0]
    # a new family's borrowed priors are the mean: its rank follows its own zero-shot score
    cand = ["m0", "m2", "m4", "m6", "new"]
    zs = np.array([0.8, -0.5, 0.2, -0.9, 0.0])
    for z_new, place in ((-2.0, 0), (2.0, 4)):
        pred, _, _ = alien.predict("short", cells.features[0], cand, log_zs=np.r_[zs[:4], z_new])
        assert np.argsort(np.argsort(pred))[4] == place
    # its interval comes from the residuals of KB models predicted as new models of a new family
    assert set(alien.residuals_new_) == {"other"}
    pools = alien.new_model_pools("short", cand, nearest=np.inf)
    assert set(pools) == {4}
    R_new = alien.residuals_new_["other"]
    np.testing.assert_allclose(np.sort(pools[4]), np.sort(R_new[np.isfinite(R_new)]))
    auto = StackedRanker(**{**kw, "new_model_weights": "auto"}).fit(cells, {**profiles, "new": profiles["m0"]},
                                                                      {**families, "new": "f9"})
    assert auto.new_model_pools("short", cand, nearest=0.0) == {}  # a KB dataset: the known weights
    assert set(auto.new_model_pools("short", cand, nearest=np.inf)) == {4}
    R = alien.residual_matrix("short", cand)
    lo, hi = alien.intervals(R, pools=pools)
    lo0, hi0 = alien.intervals(R)
    assert (lo[:4], hi[:4]) == (pytest.approx(lo0[:4]), pytest.approx(hi0[:4]))
    # borrowing nothing, a new family is predicted worse than the KB models are: a wider interval
    assert hi[4] - lo[4] > hi0[4] - lo0[4]
    S = alien.joint_residuals(R, 200, 0, pools=pools)
    assert np.isin(S[:, 4], pools[4]).all()
    # m0's sibling (the worst family) is placed near m0 although its zero-shot score is the best
    pred, _, _ = sib.predict("short", cells.features[0], cand, log_zs=np.r_[zs[:4], -2.0])
    assert abs(pred[4] - pred[0]) < abs(pred[4] - pred[3])


def test_profile_neighbours_are_chosen_by_leave_one_model_out_on_the_source_cells():
    # three sibling pairs: siblings share a profile and a score, the pairs differ and sit far apart
    rng = np.random.default_rng(0)
    n = 12
    pair_score = rng.normal(0, 1, (n, 3))
    log_ft = np.repeat(pair_score, 2, axis=1) + rng.normal(0, 0.01, (n, 6))
    cells = Cells(np.array([f"d{i}" for i in range(n)]), np.array(["short"] * n), MODELS, log_ft,
                  log_ft + 0.1, rng.normal(0, 1, (n, 2)), ["f0", "f1"])
    base = {0: np.array([0.0, 0.0]), 1: np.array([5.0, 1.0]), 2: np.array([1.0, 5.0])}
    profiles = {m: base[g // 2] + 0.01 * g for g, m in enumerate(MODELS)}
    auto = StackedRanker(zero_shot=False).fit(cells, profiles)
    assert auto.profile_neighbours_ == 1
    assert auto.profile_neighbour_scores_[1] > auto.profile_neighbour_scores_[2] + 0.2
    # a new model with m4's profile borrows m4's (or m5's) priors, not the mean of three models
    profiles["new"] = profiles["m4"]
    auto = StackedRanker(zero_shot=False).fit(cells, profiles)
    pred, _, _ = auto.predict("short", cells.features[0], ["m0", "m2", "m4", "new"])
    assert abs(pred[3] - pred[2]) < 0.1 * np.ptp(pred[:3])
    fixed = StackedRanker(zero_shot=False, profile_neighbours=3).fit(cells, profiles)
    assert fixed.profile_neighbours_ == 3 and fixed.profile_neighbour_scores_ == {}
    # without profiles there is nothing to choose from: the default
    assert StackedRanker(zero_shot=False).fit(cells).profile_neighbours_ == 2
    with pytest.raises(ValueError, match="profile_neighbours"):
        StackedRanker(zero_shot=False, profile_neighbours="many").fit(cells, profiles)


def test_conformal_quantiles_cover_new_draws():
    rng = np.random.default_rng(0)
    hits = []
    for _ in range(400):
        r = rng.standard_t(3, 20)
        lo, hi = _conformal_quantiles(r, 0.05)
        new = rng.standard_t(3, 50)
        hits.append(((new >= lo) & (new <= hi)).mean())
    assert 0.88 <= np.mean(hits) <= 0.97


# -- through TimeTic ---------------------------------------------------------------------------


def test_stack_fit_reads_only_the_given_context(tiny_kb):
    """The held-out dataset's scores cannot change what the estimator predicts for it."""
    from timetic.context import ContextTable
    from timetic.evaluate import held_out_rows

    ctx = TimeTic(tiny_kb).context_table()
    keep = ctx.meta["dataset_id"].to_numpy() != "ds0"
    perturbed = ContextTable(
        ctx.meta.with_columns(
            pl.when(pl.col("dataset_id") == "ds0").then(pl.col("ft_mase") * 7.0).otherwise(pl.col("ft_mase")).alias("ft_mase")
        ),
        ctx.features, ctx.model, ctx.tasks, ctx.profile,
    )
    a = TimeTic(tiny_kb, k=2).fit(ctx.mask(keep))
    b = TimeTic(tiny_kb, k=2).fit(perturbed.mask(keep))
    models = sorted(set(ctx.meta["model_id"].to_list()))
    rows, _ = held_out_rows(ctx, "ds0", "short", models)
    ra, rb = a.rank(rows, models), b.rank(rows, models)
    assert ra.equals(rb)
    # the choices made inside fit (k, inputs, prior scale) are the same too
    assert a.learner_.choice_scores_ == b.learner_.choice_scores_
    assert (a.learner_.scale_, a.learner_.input_names_) == (b.learner_.scale_, b.learner_.input_names_)
    assert (a.learner_.cross_alpha_, a.learner_.cross_alpha_scores_) == (b.learner_.cross_alpha_, b.learner_.cross_alpha_scores_)
    # ... while its own scores do change a fit that sees them
    c = TimeTic(tiny_kb, k=2).fit(perturbed)
    assert not c.rank(rows, models).equals(ra)


def test_weight_free_rankings_depend_on_the_target():
    """Clearly different targets get different weight-free rankings from the shipped KB."""
    est = TimeTic.from_kb(zero_shot=False)
    n = 1500
    ts = pd.date_range("2024-01-01", periods=n, freq="h")
    t = np.arange(n)
    rng = np.random.default_rng(0)
    orders = []
    for y in (10 + 3 * np.sin(2 * np.pi * t / 24) + rng.normal(0, 0.2, n), 100 + np.cumsum(rng.normal(0, 1, n))):
        r = est.predict(pl.DataFrame({"item_id": ["a"] * n, "timestamp": ts, "target": y}))
        orders.append(r.get_column("model_id").to_list())
        assert r.get_column("lower_90").is_not_null().all()
    assert orders[0] != orders[1]


def test_stack_ranks_with_intervals_and_probabilities(tiny_kb):
    from timetic.evaluate import held_out_rows

    est = TimeTic(tiny_kb, k=2)
    ctx = est.context_table()
    keep = ctx.meta["dataset_id"].to_numpy() != "ds1"
    est.fit(ctx.mask(keep))
    models = sorted(set(ctx.meta["model_id"].to_list()))
    rows, _ = held_out_rows(ctx, "ds1", "short", models)
    r = est.rank(rows, models)
    assert r.height == len(models)
    assert r["p_best"].sum() == pytest.approx(1.0)
    assert (r["lower_90"] <= r["predicted_mase"]).all() and (r["predicted_mase"] <= r["upper_90"]).all()
    assert r["p_improve"].is_between(0, 1).all()
    assert r["rank"].to_list() == list(range(1, len(models) + 1))


def test_gain_model_flags_the_model_fine_tuning_hurts():
    cells = synthetic_cells()
    log_ft = cells.log_zs - 0.2 + np.random.default_rng(3).normal(0, 0.03, cells.log_zs.shape)
    log_ft[:, 0] = cells.log_zs[:, 0] + 0.2  # fine-tuning m0 always hurts
    cells = Cells(cells.datasets, cells.tasks, cells.models, log_ft, cells.log_zs, cells.features, cells.feature_names)
    r = StackedRanker(zero_shot=True).fit(cells)
    _, p, _ = r.predict("short", cells.features[0], list(MODELS), cells.log_zs[0])
    g = r.predict_gain(p)
    assert g[0] > 0.1 and (g[1:] < -0.1).all()
    R = r.residual_matrix("short", list(MODELS), gain=True)
    helps = r.p_below(R, g, np.zeros(len(MODELS)))
    assert helps[0] < 0.1 and (helps[1:] > 0.9).all()


def test_ties_mark_coin_flips():
    from timetic.estimate.core import ties

    rng = np.random.default_rng(0)
    a = rng.normal(0, 1, 4000)
    scores = np.column_stack([a, a + 0.01 + rng.normal(0, 1, 4000), a + 5])
    point = scores.mean(axis=0)
    assert ties(scores, point).tolist() == [False, True, False]


def test_a_frequency_absent_from_the_kb_is_named():
    from timetic.errors import TimeticWarning

    from pathlib import Path

    # KB v1 (meta_features_v1/) has no monthly dataset
    est = TimeTic.from_kb(Path(__file__).resolve().parents[1] / "meta_features_v1", zero_shot=False)
    n = 240
    y = 100 + 10 * np.sin(2 * np.pi * np.arange(n) / 12) + np.arange(n)
    frame = pl.DataFrame({"item_id": ["a"] * n, "timestamp": pd.date_range("2000-01-01", periods=n, freq="MS"),
                          "target": y})
    with pytest.warns(TimeticWarning, match="no dataset at the target's frequency 'MS'"):
        est.predict(frame)


def test_readme_states_the_stack_defaults():
    """The README's description of the default estimator is what the code does."""
    import inspect
    from pathlib import Path

    from timetic.estimate.core import TIE_CONFIDENCE

    text = " ".join((Path(__file__).resolve().parents[1] / "README.md").read_text().split())
    sig = inspect.signature(TimeTic.__init__).parameters
    pri = inspect.signature(Priors.__init__).parameters
    stk = inspect.signature(StackedRanker.__init__).parameters
    assert sig["k"].default == 5 and "the 5 KB datasets nearest" in text
    assert sig["alpha"].default == 1.0 and "A separate gain model (ridge, penalty 1," in text
    assert sig["stack_weights"].default == stk["weights"].default == "spearman"
    assert "chosen on a simplex grid (step 0.1) to maximise the mean within-dataset Spearman" in text
    assert sig["zs_scale"].default == stk["zs_scale"].default == "match"
    assert "with every input on the log scale or as within-dataset ranks" in text
    assert sig["zero_shot_windows"].default == 32 and "runs zero-shot on 32 of them" in text
    assert sig["zero_shot_sample_paths"].default == 50 and "draws 50 sample paths per window" in text
    assert pri["clip"].default == 5.0 and "clipped at ±5 SD" in text
    assert sig["profile_neighbours"].default == stk["profile_neighbours"].default == "auto"
    assert StackedRanker.PROFILE_NEIGHBOURS == (1, 2, 3) and "how many (1, 2 or 3) is chosen at fit time" in text
    assert stk["min_model_residuals"].default == 10 and "when it has at least 10" in text
    assert TIME_TIE == TIE_CONFIDENCE and "fewer than 60% of the samples" in text
    assert sig["gain_length"].default is True and stk["length"].default is True
    assert sig["gain_zs_rank"].default is True and stk["zs_rank"].default is True
    assert "and on the candidate's zero-shot rank among the KB's models" in text
    assert sig["helps_model"].default == stk["helps"].default == "logistic"
    assert "a logistic regression on the same inputs, fitted on the KB cells' out-of-fold inputs, gives P(fine-tuning helps)" in text
    assert "on log10 of the mean series length over the task's context + horizon" in text
    assert "recalibrated by a temperature fitted on the KB's own cells" in text
    assert inspect.signature(TimeTic.predict).parameters["n_windows"].default == 128 and "(128 by default" in text
    from timetic.estimate.core import MIN_TASK_DATASETS
    from timetic.estimate.stack import P_BEST_FLOOR

    assert sig["stack_task_weights"].default == stk["task_weights"].default == 8
    assert "a task (horizon) with at least 8 KB datasets gets its own weights" in text
    assert MIN_TASK_DATASETS == 3 and "so is a task observed on fewer than 3 datasets" in text
    assert P_BEST_FLOOR == 1 / 400 and "p ∝ (p + 1/400)^a" in text
    assert sig["meta"].default == stk["meta"].default == "auto"
    assert StackedRanker.META_COMPONENTS == (2, 3, 5, 8) and StackedRanker.META_ALPHAS == (2.0, 5.0, 20.0)
    assert "its number of components (2, 3, 5 or 8) and penalty (2, 5 or 20) are chosen at fit time" in text
    assert StackedRanker.CROSS_ALPHAS == (1.0, 2.0, 5.0, 10.0, 20.0) and "its penalty (1, 2, 5, 10 or 20)" in text


TIME_TIE = 0.6


def test_seasonal_naive_is_shown_and_a_hopeless_target_says_so():
    from dataclasses import replace

    from timetic.evaluate import held_out_rows
    from timetic.report import naive_verdict

    est = TimeTic.from_kb(zero_shot=False)
    n = 1500
    t = np.arange(n)
    frame = pl.DataFrame({"item_id": ["a"] * n, "timestamp": pd.date_range("2024-01-01", periods=n, freq="h"),
                          "target": 10 + 3 * np.sin(2 * np.pi * t / 24) + np.random.default_rng(0).normal(0, 0.3, n)})
    r = est.predict(frame)
    assert r["naive_mase"].is_not_null().all() and r["naive_mase"].n_unique() == 1
    assert 0.5 < r["naive_mase"][0] < 2.0  # seasonal naive on a noisy cycle: MASE near 1
    assert r["p_beats_naive"].is_between(0, 1).all()
    # the same target rows against a seasonal naive that is far better / far worse than every model
    ctx = est.context_table()
    models = est.models_
    rows, _ = held_out_rows(ctx, "etth1", "short", models)
    good = est.rank(replace(rows, naive=np.full(rows.features.height, 1e-3)), models)
    bad = est.rank(replace(rows, naive=np.full(rows.features.height, 1e3)), models)
    assert good["p_beats_naive"].max() == 0.0 and bad["p_beats_naive"].min() == 1.0
    assert "No candidate is likely to beat seasonal naive" in naive_verdict(good)
    assert naive_verdict(bad) is None


def test_rank_weights_pick_the_input_that_orders_the_cells():
    """``weights="spearman"``: the simplex point whose weighted sum ranks the cells best, then a
    least-squares scale; an input that orders every cell wins over noise and over a scaled copy of
    the target's magnitudes that orders nothing."""
    from timetic.estimate.stack import _RankWeights

    rng = np.random.default_rng(0)
    X_rows, y_rows = [], []
    for _ in range(30):
        y = rng.normal(size=8)
        good = y + 0.05 * rng.normal(size=8)
        noise = rng.normal(size=8)
        X_rows.append(np.column_stack([noise, good]))
        y_rows.append(y)
    rw = _RankWeights().fit(X_rows, y_rows)
    assert rw.w_[1] >= 0.9 and abs(rw.w_.sum() - 1) < 1e-9 and (rw.w_ >= 0).all()
    assert 0.5 < rw.scale_ < 1.5
    np.testing.assert_allclose(rw.predict(X_rows[0]), X_rows[0] @ (rw.scale_ * rw.w_))


def test_task_weights_let_each_horizon_trust_its_own_best_input():
    """``task_weights``: a task with enough cells gets its own stacking weights (input 0 orders
    the short cells, input 1 the medium ones); a task with fewer cells, and ``None``, fall back
    to the weights fitted on every cell."""
    from timetic.estimate.stack import _TaskWeights

    rng = np.random.default_rng(1)
    X_rows, y_rows, tasks = [], [], []
    for task, n, col in (("short", 20, 0), ("medium", 12, 1), ("long", 4, 1)):
        for _ in range(n):
            y = rng.normal(size=8)
            X = rng.normal(size=(8, 2))
            X[:, col] = y + 0.05 * rng.normal(size=8)
            X_rows.append(X)
            y_rows.append(y)
            tasks.append(task)
    tw = _TaskWeights(min_cells=8).fit(X_rows, y_rows, tasks)
    assert set(tw.by_task_) == {"short", "medium"}
    short, medium = tw.by_task_["short"].w_, tw.by_task_["medium"].w_
    assert short[0] >= 0.9 and medium[1] >= 0.9
    np.testing.assert_allclose(tw.coef_for("long"), tw.pooled_.coef_)
    assert 0.1 < tw.pooled_.w_[0] < 0.9  # the pooled weights mix both inputs
    np.testing.assert_allclose(tw.predict(X_rows[0], "short"), X_rows[0] @ tw.by_task_["short"].coef_)
    assert _TaskWeights(min_cells=None).fit(X_rows, y_rows, tasks).by_task_ == {}
    # what predict reports: the weights that rank the task (pooled ones for `weights_`)
    from timetic.estimate.stack import StackedRanker

    ranker = StackedRanker()
    ranker.states_ = [{"input_names_": ["zero_shot", "knn"], "ridge_": tw}]
    assert list(ranker.weights_for("short").values()) == pytest.approx(list(tw.by_task_["short"].coef_))
    assert list(ranker.weights_for("long").values()) == pytest.approx(list(tw.pooled_.coef_))
    assert ranker.weights_ == ranker.weights_for(None)


def test_frozen_linear_models_predict_as_scikit_learn_and_unpickle_without_it():
    """The fitted ranker keeps its linear models as plain coefficients (``_Linear``): the same
    predictions and probabilities as scikit-learn's, and a pickled ranker loads in a process that
    never imports ``sklearn.linear_model`` (what every cached predict pays for otherwise)."""
    import pickle
    import subprocess
    import sys

    from sklearn.linear_model import LogisticRegression, Ridge

    from timetic.estimate.stack import _Linear

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = X @ np.array([0.5, -1.0, 0.2]) + 0.3 + rng.normal(0, 0.1, 60)
    for ridge in (Ridge(alpha=1.0), Ridge(alpha=1.0, fit_intercept=False)):
        ridge.fit(X, y)
        assert np.allclose(_Linear.of(ridge).predict(X), ridge.predict(X))
    clf = LogisticRegression().fit(X, (y > 0.3).astype(int))
    assert np.allclose(_Linear.of(clf).predict_proba(X), clf.predict_proba(X))
    assert np.allclose(_Linear.of(clf).predict_proba(X * 1e6)[:, 1], clf.predict_proba(X * 1e6)[:, 1])
    with pytest.raises(AttributeError):
        _Linear.of(Ridge().fit(X, y)).predict_proba(X)

    cells = synthetic_cells()
    ranker = StackedRanker(zero_shot=True).fit(cells)
    blob = pickle.dumps(ranker)
    code = ("import pickle, sys; r = pickle.loads(sys.stdin.buffer.read()); "
            "print(r.__class__.__name__, 'sklearn.linear_model' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], input=blob, capture_output=True, check=True).stdout.decode()
    assert out.split() == ["StackedRanker", "False"]


def test_gain_model_reads_how_long_the_series_are():
    """Fine-tuning helps where there is much to train on: the gain model reads log10(series length
    / window length), so a short-series target gets a lower P(fine-tuning helps) than a long one
    with the same priors; ``length=False`` cannot tell them apart."""
    base = synthetic_cells(n=20)
    log_len = np.linspace(0.2, 2.5, 20)[np.random.default_rng(5).permutation(20)]
    gain = np.where(log_len > 1.2, -0.3, 0.15)[:, None]
    log_ft = base.log_zs + gain + np.random.default_rng(6).normal(0, 0.03, base.log_zs.shape)
    cells = Cells(base.datasets, base.tasks, base.models, log_ft, base.log_zs, base.features,
                  base.feature_names, log_len=log_len)
    r = StackedRanker(zero_shot=True).fit(cells)
    _, p, _ = r.predict("short", cells.features[0], list(MODELS), cells.log_zs[0])
    short, long_ = r.predict_gain(p, log_len=0.3), r.predict_gain(p, log_len=2.4)
    assert (short > 0).all() and (long_ < -0.1).all()
    R = r.residual_matrix("short", list(MODELS), gain=True)
    assert (r.p_helps(R, short) < 0.5).all() and (r.p_helps(R, long_) > 0.5).all()
    # unknown length: the source cells' mean, between the two
    assert (short > r.predict_gain(p)).all() and (r.predict_gain(p) > long_).all()
    off = StackedRanker(zero_shot=True, length=False).fit(cells)
    _, p0, _ = off.predict("short", cells.features[0], list(MODELS), cells.log_zs[0])
    assert np.array_equal(off.predict_gain(p0, log_len=0.3), off.predict_gain(p0, log_len=2.4))


def test_context_and_target_rows_carry_series_and_window_length(tiny_kb):
    from timetic.data import load_target
    from timetic.estimate.cells import build_cells
    from timetic.tasks import Task

    est = TimeTic(tiny_kb, k=2)
    ctx = est.context_table()
    ds = tiny_kb.datasets()
    want = dict(zip(ds["dataset_id"], ds["total_length"] / ds["n_series"]))
    got = ctx.meta.group_by("dataset_id").agg(pl.col("series_length").first(), pl.col("window_length").first())
    for d, length, window in got.iter_rows():
        assert length == pytest.approx(want[d])
        freq = ds.filter(pl.col("dataset_id") == d)["freq"][0]
        assert window == Task.preset("short", freq).window_length
    cells = build_cells(ctx)
    assert np.isfinite(cells.log_len).all()
    n = 700
    frame = pl.DataFrame({"item_id": ["a"] * n + ["b"] * (n // 2),
                          "timestamp": list(pd.date_range("2024-01-01", periods=n, freq="h"))
                          + list(pd.date_range("2024-01-01", periods=n // 2, freq="h")),
                          "target": np.sin(np.arange(n + n // 2) / 4.0) + 3.0})
    target = load_target(frame)
    task = Task.preset("short", target.freq)
    rows = TimeTic(tiny_kb, zero_shot=False).target_rows(target, task, [], n_windows=8)
    assert rows.series_length == pytest.approx(n * 0.75) and rows.window_length == task.window_length


def test_p_best_temperature_flattens_and_keeps_the_order():
    from timetic.estimate.stack import _tempered

    p = np.array([0.6, 0.3, 0.1, 0.0])
    same = _tempered(p, 1.0)
    assert same.sum() == pytest.approx(1.0) and np.allclose(same, p, atol=0.01)
    flat = _tempered(p, 0.35)
    assert flat.sum() == pytest.approx(1.0)
    assert list(np.argsort(-flat)) == [0, 1, 2, 3] and flat[0] < p[0] and flat[3] > 0


def test_p_best_is_recalibrated_on_the_shipped_kb():
    """The joint residual samples are overconfident about the best model (on KB v2 a mean P(best)
    of 0.47 was right 19% of the time); the fitted temperature flattens them (< 1), and predict's
    P(best) still sums to 1."""
    est = TimeTic.from_kb().fit()
    a = est.learner_.best_temperature_
    assert 0 < a < 1
    n = 1200
    ts = pd.date_range("2024-01-01", periods=n, freq="h")
    y = 10 + 3 * np.sin(2 * np.pi * np.arange(n) / 24) + np.random.default_rng(0).normal(0, 0.3, n)
    r = TimeTic.from_kb(zero_shot=False).predict(pl.DataFrame({"item_id": ["a"] * n, "timestamp": ts, "target": y}))
    assert r["p_best"].sum() == pytest.approx(1.0)
    assert r["p_best"].max() < 0.5


def test_models_new_to_the_kb_get_weights_fitted_for_borrowed_priors():
    # known models: a fixed per-model level makes the leaderboard nearly perfect; profiles carry no
    # information about it, so a new model's borrowed leaderboard is noise and its own zero-shot
    # score (noisy but its own) is what ranks it
    rng = np.random.default_rng(1)
    n, models = 30, np.array([f"m{g}" for g in range(8)])
    log_ft = np.linspace(-1, 1, 8) + rng.normal(0, 0.05, (n, 8))
    cells = Cells(np.array([f"d{i}" for i in range(n)]), np.array(["short"] * n), models, log_ft,
                  log_ft + rng.normal(0, 0.4, (n, 8)), rng.normal(0, 1, (n, 2)), ["f0", "f1"])
    profiles = {m: rng.normal(0, 1, 4) for m in models}
    profiles["new"] = rng.normal(0, 1, 4)
    kw = dict(inputs=("zero_shot", "leaderboard"), scale="log", task_weights=None)
    fitted = StackedRanker(**kw, new_model_weights=True).fit(cells, profiles)
    known = fitted.ridge_.pooled_.w_
    new = fitted.ridge_new_["kin"].pooled_.w_  # families unknown: a new model borrows as a sibling would
    assert known[1] > known[0]  # the leaderboard wins for known models
    assert new[0] > new[1]  # the zero-shot score wins for new ones
    # without a model new to the KB nothing extra is fitted
    assert StackedRanker(**kw, new_model_weights=True).fit(cells, {m: profiles[m] for m in models}).ridge_new_ is None
    # with them, a new model's own (far best) zero-shot score lifts it further than without
    off = StackedRanker(**kw, new_model_weights=False).fit(cells, profiles)
    assert off.ridge_new_ is None
    cand = list(models[:4]) + ["new"]
    zs = np.array([0.0, 0.1, 0.2, 0.3, -2.0])  # the new model's zero-shot is far the best
    on_pred, _, _ = fitted.predict("short", cells.features[0], cand, log_zs=zs)
    off_pred, _, _ = off.predict("short", cells.features[0], cand, log_zs=zs)
    assert on_pred[4] - on_pred[:4].min() < off_pred[4] - off_pred[:4].min()
    # "auto" (default): the new weights for a target that is not one of the KB's datasets, the
    # known models' weights for one that is (the borrowed rows the new weights were fitted on
    # never include the target's own dataset)
    auto = StackedRanker(**kw).fit(cells, profiles)
    assert auto.new_model_weights == "auto" and auto.ridge_new_ is not None
    assert auto.is_kb_dataset("short", 0.0) and not auto.is_kb_dataset("short", np.inf)
    at_kb, _, _ = auto.predict("short", cells.features[0], cand, log_zs=zs)
    np.testing.assert_allclose(at_kb, off_pred)
    far = cells.features[0] + 0.5 * (cells.features[1] - cells.features[0])  # between two KB datasets
    assert not auto.is_kb_dataset("short", float(auto.priors_("short", far, cand).distance[0]))
    np.testing.assert_allclose(auto.predict("short", far, cand, log_zs=zs)[0],
                               fitted.predict("short", far, cand, log_zs=zs)[0])
    assert not np.allclose(auto.predict("short", far, cand, log_zs=zs)[0], off.predict("short", far, cand, log_zs=zs)[0])
    # weight-free: "auto" fits no new-model weights (they ranked worse there on KB v2)
    assert StackedRanker(**{**kw, "inputs": ("leaderboard", "knn")}, zero_shot=False).fit(cells, profiles).ridge_new_ is None


def test_gain_model_reads_the_zero_shot_rank():
    """The candidates best at zero-shot gain least from fine-tuning (on KB v2 fine-tuning
    helped in 64 % of the cells of a dataset's best-quarter zero-shot models, 91 % of its worst): with
    ``zs_rank`` the gain model and the logistic P(fine-tuning helps) read each candidate's zero-shot
    rank among the candidates; without it they cannot tell the best from the worst."""
    from timetic.estimate.stack import _centred_rank

    base = synthetic_cells(n=20, seed=4)
    rank = np.argsort(np.argsort(base.log_zs, axis=1), axis=1)  # 0 = best zero-shot in the cell
    gain = np.where(rank <= 1, 0.1, -0.3)
    log_ft = base.log_zs + gain + np.random.default_rng(7).normal(0, 0.03, base.log_zs.shape)
    cells = Cells(base.datasets, base.tasks, base.models, log_ft, base.log_zs, base.features, base.feature_names)
    r = StackedRanker(zero_shot=True).fit(cells)
    assert r.helps == "logistic" and r.helps_classifier_ is not None and r.helps_calibration_ is None
    log_zs = np.linspace(-1.0, 1.0, len(MODELS))  # m0 best, m5 worst
    _, p, _ = r.predict("short", cells.features[0], list(MODELS), log_zs)
    g = r.predict_gain(p, log_zs=log_zs)
    assert g[0] > g[-1] + 0.2
    X = r.gain_inputs(p, log_zs=log_zs)
    np.testing.assert_allclose(X[:, -1], _centred_rank(log_zs, len(MODELS)))
    helps = r.p_helps(r.residual_matrix("short", list(MODELS), gain=True), g, X)
    assert helps[0] < 0.5 < helps[-1]
    off = StackedRanker(zero_shot=True, zs_rank=False, helps="residuals").fit(cells)
    _, p0, _ = off.predict("short", cells.features[0], list(MODELS), log_zs)
    assert np.array_equal(off.predict_gain(p0, log_zs=log_zs), off.predict_gain(p0, log_zs=log_zs[::-1]))
    assert off.helps_classifier_ is None and off.helps_calibration_ is not None


def test_centred_rank_scales_ranks_of_the_finite_entries():
    from timetic.estimate.stack import _centred_rank

    np.testing.assert_allclose(_centred_rank(np.array([3.0, 1.0, np.nan, 2.0]), 4), [0.5, -0.5, 0.0, 0.0])
    np.testing.assert_allclose(_centred_rank(np.array([1.0, 1.0, 2.0]), 3), [-0.25, -0.25, 0.5])
    assert not _centred_rank(np.array([np.nan, 1.0]), 2).any() and not _centred_rank(None, 3).any()
    with pytest.raises(ValueError, match="helps"):
        StackedRanker(helps="flag")


def test_zero_shot_rank_is_among_all_kb_models_whatever_the_candidates():
    """``--models a,b`` must not turn the better of two into "the best": the KB models left out take
    their zero-shot scores imputed from the nearest source cells, so a candidate keeps its rank."""
    from timetic.estimate.stack import _centred_rank

    r = StackedRanker(zero_shot=True).fit(synthetic_cells(n=20, seed=4))
    feats = synthetic_cells(n=20, seed=4).features[0]
    p = r.priors_("short", feats, list(MODELS))
    log_zs = 0.3 + p.zero_shot_knn  # a target whose scores the imputation reproduces
    full = r.zs_ranks("short", feats, list(MODELS), log_zs)
    np.testing.assert_allclose(full, _centred_rank(log_zs, len(MODELS)))
    pick = [1, 4]
    sub = r.zs_ranks("short", feats, list(MODELS[pick]), log_zs[pick])
    np.testing.assert_allclose(sub, full[pick])
    assert sorted(_centred_rank(log_zs[pick], 2)) == [-0.5, 0.5]  # what ranking among the two would say
    g_sub = r.predict_gain(r.priors_("short", feats, list(MODELS[pick])), log_zs=log_zs[pick], zs_rank=sub)
    np.testing.assert_allclose(g_sub, r.predict_gain(p, log_zs=log_zs, zs_rank=full)[pick])


def test_average_ranks_is_scipys_rankdata():
    """The stacking fit's numpy ranking gives scipy.stats.rankdata's ranks (ties averaged, NaN
    omitted and kept NaN) along any axis."""
    from scipy.stats import rankdata

    from timetic.estimate.priors import average_ranks

    rng = np.random.default_rng(0)
    for _ in range(200):
        shape = tuple(rng.integers(1, 7, size=rng.integers(1, 4)))
        a = rng.integers(0, 4, size=shape).astype(float)  # many ties
        a[rng.random(shape) < 0.2] = np.nan
        a[rng.random(shape) < 0.05] = np.inf
        for axis in range(a.ndim):
            np.testing.assert_allclose(average_ranks(a, axis=axis), rankdata(a, axis=axis, nan_policy="omit"))
    assert average_ranks(np.array([])).shape == (0,)


@pytest.mark.parametrize("zero_shot", [True, False])
def test_prediction_does_not_hinge_on_the_other_candidates(zero_shot):
    """``--models a,b``: the inputs are centred over all the KB's models (those not listed take
    their zero-shot scores imputed from the nearest source cells), so a candidate's predicted
    score is the one it gets in the full ranking; centred over the two candidates alone it moves."""
    cells = synthetic_cells(n=20, seed=4, cluster_order=not zero_shot)  # weight-free: the priors rank
    r = StackedRanker(zero_shot=zero_shot).fit(cells)
    feats = cells.features[0] + 0.1
    p = r.priors_("short", feats, list(MODELS))
    log_zs = 0.3 + p.zero_shot_knn if zero_shot else None  # scores the imputation reproduces
    full, ok = r.predict_in_kb("short", feats, list(MODELS), log_zs)
    assert ok.all()
    np.testing.assert_allclose(full, r.predict("short", feats, list(MODELS), log_zs)[0])  # all listed: predict
    pick = [1, 4]
    sub_zs = None if log_zs is None else log_zs[pick]
    sub, ok = r.predict_in_kb("short", feats, list(MODELS[pick]), sub_zs)
    assert ok.all()
    np.testing.assert_allclose(sub, full[pick])
    alone = r.predict("short", feats, list(MODELS[pick]), sub_zs)[0]  # centred over the two
    assert not np.allclose(alone, full[pick])


def _signal_and_noise_cells(n: int = 30, seed: int = 0) -> Cells:
    """Datasets in two clusters with opposite model orders; the cluster shows in 8 correlated
    meta-features, 100 more are independent noise (so over all 108 the distances are mostly noise)."""
    rng = np.random.default_rng(seed)
    G = len(MODELS)
    cluster = np.arange(n) % 2
    signal = cluster[:, None] * 1.0 + rng.normal(0, 0.4, (n, 8))
    features = np.column_stack([signal, rng.normal(0, 1, (n, 100))])
    order = np.where(cluster[:, None] == 0, np.arange(G)[None, :], np.arange(G)[::-1][None, :]) * 0.2
    log_ft = order + rng.normal(0, 0.02, (n, G))
    return Cells(np.array([f"d{i}" for i in range(n)]), np.array(["short"] * n), MODELS, log_ft,
                 log_ft + rng.normal(0, 1.0, (n, G)), features, [f"f{j}" for j in range(108)])


def test_knn_neighbours_over_principal_components():
    """With ``components`` the kNN prior's neighbours are the nearest over the first principal
    components of the standardised meta-features: where the signal lives in a few correlated
    features among many noisy ones, they find the target's cluster; the out-of-domain distance
    (``nearest``) stays the one over every feature."""
    cells = _signal_and_noise_cells()
    rel = cells.log_ft - cells.log_ft.mean(axis=1, keepdims=True)
    hits = {}
    for n in (1, None):
        right = []
        for d in range(len(cells.datasets)):
            keep = np.arange(len(cells.datasets)) != d
            pri = Priors(k=3, components=n).fit(cells.take(keep))
            p = pri("short", cells.features[d], list(MODELS))
            right.append(stats.spearmanr(p.knn, rel[d]).statistic)
            rows, full = pri.distances("short", cells.features[d])
            assert p.nearest == pytest.approx(full.min())
            assert p.nearest_id == cells.take(keep).datasets[rows[np.argmin(full)]]
        hits[n] = np.mean(right)
    assert hits[1] > 0.9 and hits[1] > hits[None] + 0.2
    # "auto" chooses on the source cells alone, by leave-one-dataset-out
    r = StackedRanker(zero_shot=False, inputs=("knn",), scale="log").fit(cells)
    assert r.components_ in (2, 3, 5) and set(r.component_scores_) == set(StackedRanker.COMPONENTS)
    assert r.component_scores_[r.components_] > r.component_scores_[None]
    assert StackedRanker(zero_shot=False, components=None).fit(cells).components_ is None
    with pytest.raises(ValueError, match="components"):
        StackedRanker(components="pca").fit(cells)


def _zero_shot_signature_cells(n: int = 40, seed: int = 0) -> Cells:
    """n datasets of two kinds that the meta-features (noise) cannot tell apart but the models'
    zero-shot scores can: on kind 1 model m0 is the best zero-shot; the fine-tuned order of the
    models is ascending on kind 0 and descending on kind 1, and no model's own zero-shot score
    says where it ends (the others' zero-shot scores are noise)."""
    rng = np.random.default_rng(seed)
    G = len(MODELS)
    kind = np.arange(n) % 2
    log_zs = rng.normal(0, 0.3, (n, G))
    log_zs[:, 0] = np.where(kind == 1, -1.0, 1.0) + rng.normal(0, 0.1, n)
    order = np.where(kind[:, None] == 0, np.arange(G)[None, :], np.arange(G)[::-1][None, :]) * 0.2
    log_ft = order + rng.normal(0, 0.02, (n, G))
    return Cells(np.array([f"d{i}" for i in range(n)]), np.array(["short"] * n), MODELS, log_ft, log_zs,
                 rng.normal(0, 1, (n, 4)), ["f0", "f1", "f2", "f3"])


def test_cross_prior_reads_every_models_zero_shot_score():
    """The ``cross`` prior predicts each model's fine-tuned score from *all* the models' zero-shot
    ranks: where one model's zero-shot score tells the kind of dataset (and the kind decides the
    fine-tuned order), it ranks held-out datasets right while kNN over the meta-features (noise)
    and the zero-shot ranking cannot; the stack trusts it; weight-free does not read it."""
    cells = _zero_shot_signature_cells()
    rel = cells.log_ft - cells.log_ft.mean(axis=1, keepdims=True)
    rho = {"cross": [], "knn": [], "zero_shot": []}
    for d in range(len(cells.datasets)):
        keep = np.arange(len(cells.datasets)) != d
        p = Priors(k=3).fit(cells.take(keep))("short", cells.features[d], list(MODELS), log_zs=cells.log_zs[d])
        rho["cross"].append(stats.spearmanr(p.cross, rel[d]).statistic)
        rho["knn"].append(stats.spearmanr(p.knn, rel[d]).statistic)
        rho["zero_shot"].append(stats.spearmanr(cells.log_zs[d], rel[d]).statistic)
    assert np.mean(rho["cross"]) > 0.9
    assert np.mean(rho["knn"]) < 0.5 and np.mean(rho["zero_shot"]) < 0.5
    # without zero-shot scores there is no cross prior, nor with fewer than 4 source cells per
    # regression input (6 models' ranks + length + one task: 32 cells)
    assert Priors(k=3).fit(cells)("short", cells.features[0], list(MODELS)).cross is None
    few = cells.take(np.arange(31))
    assert Priors(k=3).fit(few)("short", cells.features[0], list(MODELS), log_zs=cells.log_zs[0]).cross is None
    assert StackedRanker(zero_shot=True).fit(few).cross_alpha_ is None
    assert "cross" not in StackedRanker(zero_shot=True).fit(few).weights_
    r = StackedRanker(zero_shot=True).fit(cells)
    assert r.cross_alpha_ in StackedRanker.CROSS_ALPHAS and set(r.cross_alpha_scores_) == set(StackedRanker.CROSS_ALPHAS)
    assert r.weights_["cross"] > r.weights_["knn"] and r.weights_["cross"] > abs(r.weights_["zero_shot"])
    test = _zero_shot_signature_cells(n=8, seed=1)
    for i in range(8):
        pred, _, ok = r.predict("short", test.features[i], list(MODELS), test.log_zs[i])
        assert stats.spearmanr(pred, test.log_ft[i]).statistic > 0.9
    wf = StackedRanker(zero_shot=False).fit(cells)
    assert "cross" not in wf.weights_ and wf.cross_alpha_ is None
    assert StackedRanker(zero_shot=True, cross_alpha=3.0).fit(cells).cross_alpha_ == 3.0
    with pytest.raises(ValueError, match="cross_alpha"):
        StackedRanker(cross_alpha="best").fit(cells)


def _latent_direction_cells(n: int = 40, seed: int = 0) -> Cells:
    """n datasets along a latent u ~ U(-1, 1) that sets every model's relative fine-tuned score
    (model g: u * (g - 2.5)), shown in 15 correlated meta-features among 60 of pure noise, over
    three tasks; the zero-shot scores are noise."""
    rng = np.random.default_rng(seed)
    G = len(MODELS)
    u = rng.uniform(-1, 1, n)
    features = np.column_stack([u[:, None] + rng.normal(0, 0.15, (n, 15)), rng.normal(0, 1, (n, 60))])
    tasks = ("short", "medium", "long")
    rows = [(i, t) for i in range(n) for t in tasks]
    idx = np.array([i for i, _ in rows])
    log_ft = u[idx, None] * (np.arange(G)[None, :] - 2.5) * 0.3 + rng.normal(0, 0.02, (len(rows), G))
    return Cells(np.array([f"d{i}" for i in idx]), np.array([t for _, t in rows]), MODELS, log_ft,
                 rng.normal(0, 1.0, (len(rows), G)), features[idx], [f"f{j}" for j in range(75)],
                 log_len=np.full(len(rows), 1.0))


def test_meta_prior_regresses_on_the_principal_components():
    """The ``meta`` prior (weight-free) regresses every model's relative fine-tuned score on a few
    principal components of the meta-features: where the model order moves along one direction
    hidden among 60 noise features, it ranks held-out datasets right, better than the kNN prior
    over every feature; the weight-free stack chooses its components and penalty by leave
    one dataset out and trusts it; with zero-shot scores it is read only with ``meta=True``."""
    cells = _latent_direction_cells()
    rel = cells.log_ft - cells.log_ft.mean(axis=1, keepdims=True)
    rho = {"meta": [], "knn": []}
    for d in np.unique(cells.datasets):
        keep = cells.datasets != d
        pri = Priors(k=3, meta_components=2).fit(cells.take(keep))
        for c in np.flatnonzero(~keep):
            p = pri(cells.tasks[c], cells.features[c], list(MODELS), log_len=1.0)
            rho["meta"].append(stats.spearmanr(p.meta, rel[c]).statistic)
            rho["knn"].append(stats.spearmanr(p.knn, rel[c]).statistic)
    assert np.mean(rho["meta"]) > 0.95 and np.mean(rho["meta"]) > np.mean(rho["knn"])
    # not fitted without components, nor with fewer than 4 cells per input (2 + length + 3 tasks: 24)
    assert Priors(k=3).fit(cells)("short", cells.features[0], list(MODELS)).meta is None
    few = cells.take(np.arange(23))
    assert Priors(k=3, meta_components=2).fit(few)("short", cells.features[0], list(MODELS)).meta is None
    # a model new to the KB borrows from its profile neighbours
    profiles = {m: np.full(4, float(g)) for g, m in enumerate(MODELS)} | {"new": np.full(4, 5.1)}
    pri = Priors(k=3, meta_components=2, n_profile_neighbours=1).fit(cells, profiles)
    m = pri.meta("short", cells.features[0], list(MODELS) + ["new"], 1.0)
    assert m[-1] == pytest.approx(m[-2])
    wf = StackedRanker(zero_shot=False).fit(cells)
    assert wf.meta_ in [(n, a) for n in StackedRanker.META_COMPONENTS for a in StackedRanker.META_ALPHAS]
    assert len(wf.meta_scores_) == len(StackedRanker.META_COMPONENTS) * len(StackedRanker.META_ALPHAS)
    assert wf.weights_["meta"] > wf.weights_["knn"]
    test = _latent_direction_cells(n=6, seed=1)
    rhos = [stats.spearmanr(wf.predict("short", test.features[i], list(MODELS), log_len=1.0)[0], test.log_ft[i]).statistic
            for i in range(0, 18, 3)]
    assert np.mean(rhos) > 0.8  # (a dataset with u near 0 has nearly tied models)
    off = StackedRanker(zero_shot=False, meta=False).fit(cells)
    assert off.meta_ is None and "meta" not in off.weights_
    assert StackedRanker(zero_shot=True)._choose_meta(cells)[0] is None
    assert StackedRanker(zero_shot=True, meta=True)._choose_meta(cells)[0] is not None
    with pytest.raises(ValueError, match="meta"):
        StackedRanker(meta="on")


def test_simplex_grid_lists_every_weight_vector_in_lexicographic_order():
    """The rank-weight search's grid: every vector of non-negative multiples of 1/n summing to one,
    in lexicographic order of the numerators (the order breaks ties between grid points)."""
    from itertools import product

    from timetic.estimate.stack import _simplex_grid

    for m, n in [(1, 10), (2, 3), (3, 10), (6, 10)]:
        expected = np.array([c for c in product(range(n + 1), repeat=m) if sum(c) == n], dtype=float) / n
        np.testing.assert_array_equal(_simplex_grid(m, n), expected)
