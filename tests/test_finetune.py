"""Scoring, the GIFT-Eval style split and the fine-tuning runner (with a tiny test-only adapter:
:mod:`testmodels`)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import polars as pl
import pytest
import torch

from timetic.adapters import QUANTILE_LEVELS
from timetic.data import load_target
from timetic.errors import TimeticInputError
from timetic.adapters import get_adapter
from timetic.finetune import TABLE_COLUMNS, FinetuneResult, run_finetune, split_series, split_validation
from timetic.kb import recipe_hash
from timetic.recipe import FAMILY_LEARNING_RATES, Recipe
from timetic.scoring import score_windows
from timetic.tasks import Task, test_length

from adaptertests import single_thread  # noqa: F401  (autouse: one torch thread)
from testmodels import MLP_NAME as NAME
from testmodels import PatchMLPAdapter, real_adapters, tiny_real_adapter

TASK = Task(freq="h", horizon=12, context_length=48, seasonality=24, name="short")


def _target(n_series=4, length=400, seed=0, nan=False):
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(n_series):
        t = np.arange(length + 37 * i)  # different lengths
        y = 10 + (i + 1) * np.sin(2 * np.pi * t / 24 + i) + rng.normal(0, 0.1, len(t))
        if nan:
            y[rng.choice(len(t), 20, replace=False)] = np.nan
        frames.append(
            pl.DataFrame(
                {"item_id": f"s{i}", "timestamp": pd.date_range("2024-01-01", periods=len(t), freq="h"), "target": y}
            )
        )
    return load_target(pl.concat(frames), name="sines")


# ---------------------------------------------------------------------------------------------
# scoring


def test_score_windows_hand_calculation():
    levels = (0.1, 0.5, 0.9)
    context = np.array([[1.0, 3.0, 2.0, 4.0]])  # m = 1: |3-1|, |2-3|, |4-2| -> scale 5/3
    future = np.array([[5.0, 3.0]])
    q = np.array([[[4.0, 2.0], [5.0, 4.0], [7.0, 6.0]]])  # (1, 3, 2)
    out = score_windows(context, future, q, levels, seasonality=1)
    mase = np.mean([abs(5 - 5), abs(3 - 4)]) / (5 / 3)
    assert out["mase"][0] == pytest.approx(mase)

    def ql(y, f, a):
        return 2 * abs((y - f) * ((f >= y) - a))

    wql = np.mean([sum(ql(y, f, a) for y, f in zip(future[0], q[0, j])) / 8.0 for j, a in enumerate(levels)])
    assert out["wql"][0] == pytest.approx(wql)
    # seasonal scale, m = 2: |2-1|, |4-3| -> 1
    assert score_windows(context, future, q, levels, 2)["mase"][0] == pytest.approx(0.5)


def test_score_windows_nan_handling():
    levels = QUANTILE_LEVELS
    n, H = 4, 3
    ctx = np.tile(np.array([1.0, 2.0, np.nan, 4.0, 5.0]), (n, 1))
    ctx[2] = 7.0  # constant context: scale 0
    fut = np.full((n, H), 2.0)
    fut[0, 1] = np.nan  # one missing future point
    fut[1] = np.nan  # nothing observed
    fut[3] = 0.0  # sum |y| = 0
    q = np.broadcast_to(np.linspace(1, 3, 9)[None, :, None], (n, 9, H)).copy()
    q[0, :, 1] = np.nan  # forecast NaN only where the truth is missing: fine
    out = score_windows(ctx, fut, q, levels, seasonality=1)
    assert out["mase"][0] == pytest.approx(0.0) and np.isfinite(out["wql"][0])
    # window 0 equals the same window without its missing point
    one = score_windows(ctx[:1], fut[:1, [0, 2]], q[:1][..., [0, 2]], levels, 1)
    assert out["wql"][0] == pytest.approx(one["wql"][0])
    assert np.isnan(out["mase"][1]) and np.isnan(out["wql"][1])
    assert np.isnan(out["mase"][2]) and np.isfinite(out["wql"][2])
    assert np.isfinite(out["mase"][3]) and np.isnan(out["wql"][3])
    bad = q.copy()
    bad[0, 0, 0] = np.nan  # a NaN forecast at an observed point -> NaN, not silently skipped
    assert np.isnan(score_windows(ctx, fut, bad, levels, 1)["mase"][0])
    with pytest.raises(TimeticInputError):
        score_windows(ctx, fut, q[:, :4], levels[:4], 1)  # no median


# ---------------------------------------------------------------------------------------------
# split


def test_split_never_overlaps():
    target = _target()
    train, w = split_series(target, TASK, max_eval_windows=1000)
    series = dict(zip(target.item_ids, target.series()))
    lengths = {i: len(s) for i, s in series.items()}
    train_len = dict(zip(target.item_ids, [len(t) for t in train]))
    assert w.context.shape == (len(w), TASK.context_length) and w.future.shape == (len(w), TASK.horizon)
    expected = sum(test_length(L, TASK) // TASK.horizon for L in lengths.values())
    assert len(w) == expected
    for k in range(len(w)):
        i, s = w.item_ids[k], int(w.starts[k])
        L = lengths[i]
        assert s >= train_len[i] == L - test_length(L, TASK) == w.test_starts[k]  # future after train
        assert s + TASK.horizon <= L  # inside the test span
        np.testing.assert_array_equal(w.future[k], series[i][s : s + TASK.horizon])
        np.testing.assert_array_equal(w.context[k], series[i][s - TASK.context_length : s])
    for i in series:  # non-overlapping, tiling the test span from its start
        st = np.sort(w.starts[w.item_ids == i])
        assert st[0] == train_len[i]
        assert (np.diff(st) == TASK.horizon).all()
    for i, t in zip(target.item_ids, train):
        np.testing.assert_array_equal(t, series[i][: train_len[i]])


def test_split_cap_spread_and_deterministic():
    target = _target(n_series=4)
    _, full = split_series(target, TASK, max_eval_windows=1000)
    _, w = split_series(target, TASK, max_eval_windows=7, seed=3)
    _, w2 = split_series(target, TASK, max_eval_windows=7, seed=3)
    assert len(w) == 7 < len(full)
    np.testing.assert_array_equal(w.starts, w2.starts)
    np.testing.assert_array_equal(w.item_ids, w2.item_ids)
    per_series = pl.Series(w.item_ids.astype(str)).value_counts().get_column("count").to_list()
    assert sorted(per_series) == [1, 2, 2, 2]
    # a subset of the full set of windows
    full_keys = set(zip(full.item_ids, full.starts))
    assert set(zip(w.item_ids, w.starts)) <= full_keys
    with pytest.raises(TimeticInputError):
        split_series(target, TASK, max_eval_windows=0)


def test_split_long_context_pads_with_nan():
    target = _target(n_series=1, length=120)
    task = Task(freq="h", horizon=12, context_length=24, seasonality=24)
    train, w = split_series(target, task, context_length=200)
    assert w.context.shape[1] == 200
    assert np.isnan(w.context[0, : 200 - int(w.starts[0])]).all()
    assert np.isfinite(w.context[0, 200 - int(w.starts[0]) :]).all()


# ---------------------------------------------------------------------------------------------
# runner


def test_run_finetune_table_provenance_parquet(tmp_path):
    target = _target(nan=True)
    adapter = PatchMLPAdapter.from_config(seed=0)
    before = {k: v.clone() for k, v in adapter.model.state_dict().items()}
    stages = []
    recipe = Recipe(steps=4, batch_size=8, learning_rate=1e-3, seed=1, device="cpu")
    res = run_finetune(adapter, target, TASK, recipe, max_eval_windows=10, model_id="tiny-mlp",
                       progress=lambda s, i, n: stages.append(s))
    t = res.table
    assert t.columns == list(TABLE_COLUMNS) and t.height == 10
    assert t.get_column("dataset").unique().to_list() == ["sines"]
    assert t.get_column("model").unique().to_list() == ["tiny-mlp"]
    assert t.get_column("adapter").unique().to_list() == [NAME]
    assert t.get_column("task").unique().to_list() == ["short"]
    for c in ("zs_mase", "ft_mase", "zs_wql", "ft_wql"):
        assert np.isfinite(t.get_column(c).to_numpy()).all()
    assert not np.allclose(t.get_column("zs_mase").to_numpy(), t.get_column("ft_mase").to_numpy())
    assert {"zero-shot", "fine-tune", "evaluate"} <= set(stages)
    assert stages.count("fine-tune") == 4
    # the adapter given is unchanged, the result holds the fine-tuned one
    for k, v in adapter.model.state_dict().items():
        assert torch.equal(v, before[k])
    assert res.adapter is not adapter
    p = res.provenance
    assert set(p["wall_seconds"]) == set(p["cpu_seconds"]) == {"zero_shot", "finetune", "evaluate"}
    assert all(v > 0 for v in p["cpu_seconds"].values())
    assert {"torch", "gluonts", "numpy", "python", "timetic"} <= set(p["versions"])
    assert p["hardware"]["device"] == "cpu" and p["seed"] == 1 and p["context_length"] == 48
    # fine-tuning run: validated (Recipe() has v2's schedule), curve starts at step 0
    assert p["recipe_name"] == "custom" and p["recipe_hash"] == recipe.hash == recipe_hash(recipe.to_json())
    assert p["validation"] == "early-stopping" and p["max_steps"] == 4 and p["steps_run"] == 4
    assert [k for k, _ in p["val_curve"]] == [0, 4] and p["best_step"] in (0, 4)
    assert p["n_val_windows"] > 0 and p["n_val_series"] == 4 and p["stopped_early"] is False
    assert p["learning_rate"] == 1e-3
    assert p["date"].endswith("+00:00")
    s = res.summary()
    assert s["n_windows"] == 10 and s["n_mase"] == 10
    assert s["gain_mase"] == pytest.approx((s["zs_mase"] - s["ft_mase"]) / s["zs_mase"])
    # parquet roundtrip, atomic (no temp file left behind)
    path = res.write_parquet(tmp_path / "ft.parquet")
    assert [f.name for f in tmp_path.iterdir()] == ["ft.parquet"]
    back = FinetuneResult.read_parquet(path)
    assert back.table.equals(t)
    assert back.recipe == recipe
    assert back.provenance == json.loads(json.dumps(p))
    raw = pl.read_parquet(path)
    assert json.loads(raw.get_column("recipe")[0])["steps"] == 4
    with pytest.raises(TimeticInputError):
        FinetuneResult.read_parquet(tmp_path / "missing.parquet")


def test_run_finetune_deterministic_and_learns():
    target = _target(n_series=3)
    recipe = Recipe(steps=60, batch_size=16, learning_rate=3e-3, seed=0, device="cpu", patience=None)
    a = run_finetune(PatchMLPAdapter.from_config(seed=0), target, TASK, recipe, max_eval_windows=12)
    b = run_finetune(PatchMLPAdapter.from_config(seed=0), target, TASK, recipe, max_eval_windows=12)
    assert a.table.equals(b.table)
    s = a.summary()
    assert s["ft_mase"] < 0.8 * s["zs_mase"] and s["ft_wql"] < s["zs_wql"]


@pytest.mark.parametrize("name", real_adapters() or ["(none)"])
def test_real_adapter_finetune_smoke(name, tmp_path):
    adapter = tiny_real_adapter(name)
    recipe = Recipe(steps=2, batch_size=4, device="cpu", eval_every=1, val_windows=4)
    res = run_finetune(adapter, _target(n_series=2), TASK, recipe, max_eval_windows=4)
    assert res.table.height == 4
    p = res.provenance
    assert p["validation"] == "early-stopping" and p["n_val_windows"] == 4
    assert [k for k, _ in p["val_curve"]] == list(range(p["steps_run"] + 1))
    assert np.isfinite(res.table.select("zs_mase", "ft_mase", "zs_wql", "ft_wql").to_numpy()).all()
    res.write_parquet(tmp_path / "r.parquet")


# ---------------------------------------------------------------------------------------------
# recipe v1 / v2

#: the recipe JSON of every row of KB v1 (meta_features_v1/observations.parquet).
V1_JSON = (
    '{"batch_size": 32, "context_length": null, "device": "auto", "grad_clip": 1.0, "learning_rate": 0.0001, '
    '"optimizer": "AdamW", "seed": 0, "steps": 40, "weight_decay": 0.01}'
)


def test_recipe_v1_json_roundtrip_and_hash_stable(tmp_path):
    v1 = Recipe.named("v1")
    old = Recipe.from_dict(json.loads(V1_JSON))  # written before the v2 fields existed
    assert old == v1 and not v1.validates and v1.steps == 40 and v1.learning_rate == 1e-4
    assert v1.to_json() == V1_JSON
    assert v1.hash == recipe_hash(V1_JSON) == "aeab0b13e3c6e14a"  # the shipped KB's recipe_hash
    assert v1.learning_rate_for("deepar") == 1e-4
    v2 = Recipe.named("v2")
    assert v2.validates and (v2.steps, v2.eval_every, v2.patience, v2.val_windows) == (400, 25, 4, 64)
    assert v2.learning_rates == FAMILY_LEARNING_RATES and v2.learning_rate_for("no-such-family") == 1e-4
    assert v2.hash == recipe_hash(v2.to_json()) == Recipe.from_dict(json.loads(v2.to_json())).hash
    assert len({v1.hash, v2.hash, Recipe().hash}) == 3 and len(v2.hash) == 16
    reordered = json.loads(v2.to_json())
    reordered["learning_rates"] = dict(reversed(list(reordered["learning_rates"].items())))
    assert Recipe.from_dict(reordered).hash == v2.hash
    assert Recipe.from_dict({**json.loads(v2.to_json()), "patience": 5}).hash != v2.hash
    # every recipe reads back equal to itself, including odd mixes
    for r in (v1, v2, Recipe(), Recipe(name="v1", eval_every=5), Recipe(name="v2", eval_every=None),
              Recipe(learning_rates={"deepar": 3e-4})):
        assert Recipe.from_dict(json.loads(r.to_json())) == r
        assert hash(r) == hash(Recipe.from_dict(r.to_dict()))
    # a hand-written file with a name gets v2's schedule for what it leaves out
    assert Recipe.from_dict({"name": "mine", "learning_rate": 1e-3}).validates
    path = tmp_path / "r.json"
    path.write_text(V1_JSON)
    assert Recipe.load(path) == v1 == Recipe.load("v1") and Recipe.load(None) == v2
    with pytest.raises(TimeticInputError):
        Recipe.named("v3")
    with pytest.raises(TimeticInputError):
        Recipe(patience=0)


def test_v1_recipe_reproduces_old_behaviour():
    """v1: no validation split, the whole training parts, the last step's weights."""
    target = _target(n_series=3)
    recipe = dataclasses.replace(Recipe.named("v1"), steps=5, batch_size=8, learning_rate=1e-3, device="cpu")
    adapter = PatchMLPAdapter.from_config(seed=0)
    res = run_finetune(adapter, target, TASK, recipe, max_eval_windows=6)
    p = res.provenance
    assert p["validation"] == "off" and p["val_curve"] == [] and p["n_val_windows"] == 0
    assert p["steps_run"] == p["best_step"] == 5 and not p["stopped_early"] and p["recipe_name"] == "v1"
    train, w = split_series(target, TASK, 6, seed=recipe.seed)
    assert p["n_train_points"] == sum(len(t) for t in train)
    plain = adapter.finetune(train, TASK.horizon, dataclasses.replace(recipe, context_length=TASK.context_length))
    np.testing.assert_array_equal(res.adapter.forecast(w.context, 12), plain.forecast(w.context, 12))
    assert json.loads(res.to_frame().get_column("recipe")[0]) == json.loads(
        json.dumps({**json.loads(V1_JSON), "steps": 5, "batch_size": 8, "learning_rate": 1e-3, "device": "cpu"})
    )


# ---------------------------------------------------------------------------------------------
# validation split


def test_validation_windows_end_of_training_part_never_test_span():
    target = _target(n_series=4)
    train, w = split_series(target, TASK, max_eval_windows=1000)
    series = dict(zip(target.item_ids, target.series()))
    ids = np.asarray(target.item_ids, dtype=object)
    fit, val = split_validation(train, TASK, 1000, context_length=48, item_ids=ids)
    H, C = TASK.horizon, 48
    assert len(val) == sum(min(test_length(len(t), TASK), len(t) - C - H) // H for t in train)
    test_start = {i: int(t) for i, t in zip(w.item_ids, w.test_starts)}
    for i, t, f in zip(ids, train, fit):
        s = val.starts[val.item_ids == i]
        assert len(s) > 0 and len(f) == s.min() == val.test_starts[val.item_ids == i][0]
        assert s.max() + H == len(t) <= test_start[i]  # the last window ends where training ends
        assert (np.diff(np.sort(s)) == H).all()  # tiling the end
        np.testing.assert_array_equal(f, series[i][: len(f)])  # fine-tuning data precede validation
    for k in range(len(val)):
        i, s = val.item_ids[k], int(val.starts[k])
        assert s + H <= test_start[i]  # never the test span
        np.testing.assert_array_equal(val.future[k], series[i][s : s + H])
        np.testing.assert_array_equal(val.context[k], series[i][s - C : s])
    # cap: equal share per series, always the last windows of a series; seeded
    fit5, v5 = split_validation(train, TASK, 5, seed=1, item_ids=ids)
    assert len(v5) == 5 and sorted(np.unique(v5.item_ids, return_counts=True)[1]) == [1, 1, 1, 2]
    for i, t, f in zip(ids, train, fit5):
        s = v5.starts[v5.item_ids == i]
        assert s.max() + H == len(t) and len(f) == s.min()
    # a series too short to keep C + H points besides a validation window gives none (kept whole)
    short = [train[0][: C + H + H - 1], train[1]]
    fit_s, v_s = split_validation(short, TASK, 1000)
    assert set(v_s.item_ids.tolist()) == {1} and len(fit_s[0]) == len(short[0])
    fit_n, v_n = split_validation(short[:1], TASK, 1000)
    assert len(v_n) == 0 and len(fit_n[0]) == len(short[0])


def test_no_series_long_enough_trains_full_cap():
    task = Task(freq="h", horizon=12, context_length=200, seasonality=24, name="short")
    target = _target(n_series=1, length=240)  # training part 216: >= C + H, < C + 2H
    res = run_finetune(PatchMLPAdapter.from_config(seed=0), target, task,
                       Recipe(steps=3, batch_size=4, device="cpu"), max_eval_windows=4)
    p = res.provenance
    assert p["validation"].startswith("none") and p["steps_run"] == 3 and p["val_curve"] == []


# ---------------------------------------------------------------------------------------------
# best checkpoint and early stopping


def _train_series(n=3, length=600):
    rng = np.random.default_rng(0)
    t = np.arange(length)
    return [10 + 3 * np.sin(2 * np.pi * t / 24 + i) + rng.normal(0, 0.2, length) for i in range(n)]


def _state(adapter):
    net = adapter.network if hasattr(adapter, "network") else adapter.model
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


@pytest.mark.parametrize("name", [NAME, "chronos-bolt", "deepar", "tide"])
def test_adapters_honour_early_stopping(name):
    """Every family: validation at step 0 and every eval_every steps on the current weights, stop
    after `patience` evaluations without improvement, restore the best (here: the start)."""
    a = PatchMLPAdapter.from_config(seed=0) if name == NAME else tiny_real_adapter(name)
    train = _train_series()
    ctx = np.stack([s[-64:] for s in train])
    before, zs = _state(a), a.forecast(ctx, 12)
    seen = []

    def flat(m):  # never improves on step 0; records the forecasts the weights give
        seen.append(m.forecast(ctx, 12))
        return 1.0

    recipe = Recipe(steps=100, eval_every=2, patience=2, batch_size=4, learning_rate=1e-2, device="cpu")
    calls = []
    b = a.finetune(train, 12, recipe, progress=lambda s, t: calls.append(s), validate=flat)
    info = b.finetune_info
    assert info["steps_run"] == 4 and info["stopped_early"] and info["best_step"] == 0
    assert [k for k, _ in info["val_curve"]] == [0, 2, 4] and calls == [1, 2, 3, 4]
    assert not np.allclose(seen[0], seen[1])  # validation saw the trained weights
    after = _state(b)
    assert all(torch.equal(before[k], after[k].to(before[k].device)) for k in before)
    np.testing.assert_array_equal(b.forecast(ctx, 12), zs)
    # improving validation: the last checkpoint is kept, and validating does not change training
    losses = iter([5.0, 4.0, 3.0])
    c = a.finetune(train, 12, dataclasses.replace(recipe, steps=4), validate=lambda m: next(losses))
    d = a.finetune(train, 12, dataclasses.replace(recipe, steps=4, eval_every=None))
    assert c.finetune_info["best_step"] == 4 and not c.finetune_info["stopped_early"]
    assert d.finetune_info["validated"] is False and d.finetune_info["steps_run"] == 4
    np.testing.assert_array_equal(c.forecast(ctx, 12), d.forecast(ctx, 12))


def test_step0_checkpoint_kept_when_training_hurts():
    """A huge learning rate wrecks a model that has learnt: fine-tuned == zero-shot."""
    target = _target(n_series=3)
    good = run_finetune(PatchMLPAdapter.from_config(seed=0), target, TASK,
                        Recipe(steps=60, batch_size=16, learning_rate=3e-3, device="cpu", patience=None),
                        max_eval_windows=12).adapter
    res = run_finetune(good, target, TASK, Recipe(steps=20, eval_every=5, patience=2, batch_size=16,
                                                  learning_rate=10.0, device="cpu"), max_eval_windows=12)
    p = res.provenance
    assert p["best_step"] == 0 and p["stopped_early"] and p["steps_run"] == 10
    assert p["val_curve"][1][1] is None or p["val_curve"][1][1] > p["val_curve"][0][1]
    t = res.table
    assert t.get_column("ft_mase").equals(t.get_column("zs_mase"))
    assert t.get_column("ft_wql").equals(t.get_column("zs_wql"))


def test_early_stopping_stops_before_cap_when_validation_plateaus():
    target = _target(n_series=3)
    recipe = Recipe(steps=400, eval_every=5, patience=3, batch_size=16, learning_rate=3e-3, device="cpu")
    res = run_finetune(PatchMLPAdapter.from_config(seed=0), target, TASK, recipe, max_eval_windows=12)
    p = res.provenance
    assert p["stopped_early"] and p["steps_run"] < 400
    curve = [v for _, v in p["val_curve"]]
    assert p["steps_run"] == p["val_curve"][-1][0] and len(curve) == p["steps_run"] // 5 + 1
    best = int(np.argmin(curve))
    assert p["best_step"] == p["val_curve"][best][0] and p["best_val"] == curve[best]
    assert len(curve) - 1 - best == 3  # patience evaluations after the best, then stop
    s = res.summary()
    assert s["ft_mase"] < 0.5 * s["zs_mase"]


def test_seasonal_naive_scores_recorded_and_old_files_read(tmp_path):
    from timetic.scoring import score_windows, seasonal_naive

    target = _target()
    res = run_finetune(PatchMLPAdapter.from_config(seed=0), target, TASK, Recipe(steps=1, batch_size=8, seed=0,
                       device="cpu"), max_eval_windows=6)
    _, windows = split_series(target, TASK, 6, seed=0)
    sn = score_windows(windows.context, windows.future, seasonal_naive(windows.context, TASK.horizon,
                       TASK.seasonality, 3), (0.1, 0.5, 0.9), TASK.seasonality)
    np.testing.assert_allclose(res.table.get_column("sn_mase").to_numpy(), sn["mase"])
    # last season repeated: a context [1..8] with m = 4 forecasts 5 6 7 8 5 6
    np.testing.assert_array_equal(seasonal_naive(np.arange(1.0, 9.0)[None], 6, 4, 2)[0, 0], [5, 6, 7, 8, 5, 6])
    # files written before the seasonal-naive columns existed read back with nulls
    path = res.write_parquet(tmp_path / "r.parquet")
    old = tmp_path / "old.parquet"
    pl.read_parquet(path).drop("sn_mase", "sn_wql").write_parquet(old)
    back = FinetuneResult.read_parquet(old)
    assert back.table.get_column("sn_mase").null_count() == back.table.height
