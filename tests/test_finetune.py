"""Scoring, the GIFT-Eval style split and the fine-tuning runner (with a tiny test-only adapter:
:mod:`testmodels`)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import polars as pl
import pytest
import torch

from timetic.adapters import QUANTILE_LEVELS
from timetic.data import load_target
from timetic.errors import TimeticInputError
from timetic.finetune import TABLE_COLUMNS, FinetuneResult, run_finetune, split_series
from timetic.recipe import Recipe
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
    assert set(p["wall_seconds"]) == {"zero_shot", "finetune", "evaluate"}
    assert {"torch", "gluonts", "numpy", "python", "timetic"} <= set(p["versions"])
    assert p["hardware"]["device"] == "cpu" and p["seed"] == 1 and p["context_length"] == 48
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
    recipe = Recipe(steps=60, batch_size=16, learning_rate=3e-3, seed=0, device="cpu")
    a = run_finetune(PatchMLPAdapter.from_config(seed=0), target, TASK, recipe, max_eval_windows=12)
    b = run_finetune(PatchMLPAdapter.from_config(seed=0), target, TASK, recipe, max_eval_windows=12)
    assert a.table.equals(b.table)
    s = a.summary()
    assert s["ft_mase"] < 0.8 * s["zs_mase"] and s["ft_wql"] < s["zs_wql"]


@pytest.mark.parametrize("name", real_adapters() or ["(none)"])
def test_real_adapter_finetune_smoke(name, tmp_path):
    adapter = tiny_real_adapter(name)
    recipe = Recipe(steps=2, batch_size=4, device="cpu")
    res = run_finetune(adapter, _target(n_series=2), TASK, recipe, max_eval_windows=4)
    assert res.table.height == 4
    assert np.isfinite(res.table.select("zs_mase", "ft_mase", "zs_wql", "ft_wql").to_numpy()).all()
    res.write_parquet(tmp_path / "r.parquet")
