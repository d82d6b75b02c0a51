"""TimesFM and PatchTST adapters (transformers classes) on tiny random-weight models."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("transformers")

from timetic.adapters import QUANTILE_LEVELS, get_adapter, load_model  # noqa: E402
from timetic.adapters.patchtst import PatchTSTAdapter, patchtst_loss  # noqa: E402
from timetic.adapters.timesfm import TimesFmAdapter, timesfm_loss  # noqa: E402
from timetic.errors import TimeticInputError  # noqa: E402
from timetic.recipe import Recipe  # noqa: E402

from adaptertests import check_save_load, check_zoo_sizes, single_thread  # noqa: E402,F401

NAMES = ["timesfm", "patchtst"]
Q = len(QUANTILE_LEVELS)


def _native(adapter) -> int:
    return adapter.horizon_length if isinstance(adapter, TimesFmAdapter) else adapter.prediction_length


def _contexts(n: int = 5, length: int = 48, seed: int = 0) -> np.ndarray:
    """(n, length) seasonal series with missing values: leading, inner and an all-missing row."""
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    x = 10 + 3 * np.sin(2 * np.pi * t / 12)[None, :] + rng.normal(0, 0.3, (n, length))
    x[1, :20] = np.nan
    x[2, 10:15] = np.nan
    x[3, -1] = np.nan
    x[4] = np.nan
    return x


def _sine(length: int = 800, period: int = 12) -> np.ndarray:
    t = np.arange(length)
    return 5 + 3 * np.sin(2 * np.pi * t / period) + np.random.default_rng(1).normal(0, 0.05, length)


def _state(adapter) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in adapter.model.state_dict().items()}


@pytest.mark.parametrize("name", NAMES)
def test_registered_and_sizes(name):
    tiny, s, m = check_zoo_sizes(name)
    assert s.context_length == m.context_length == 512
    info = tiny.info()
    assert info["adapter"] == name and info["depth"] == tiny.depth


@pytest.mark.parametrize("name", NAMES)
def test_save_load_roundtrip(name, tmp_path):
    check_save_load(name, tmp_path, _contexts())
    files = {p.name for p in tmp_path.iterdir()}
    assert {"config.json", "model.safetensors"} <= files
    assert not any(f.endswith((".bin", ".pt", ".pkl")) for f in files)
    assert (tmp_path / "model.safetensors").stat().st_size < 1_000_000


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("length", [20, 64, 100])
def test_layer_embeddings(name, length):
    a = get_adapter(name).from_config("tiny")
    x = _contexts(length=length)
    emb = a.layer_embeddings(x, batch_size=2)
    assert len(emb) == a.depth + 1
    cfg = a.model.config
    d = cfg.hidden_size if name == "timesfm" else cfg.d_model
    tokens = {e.shape[1] for e in emb}
    assert len(tokens) == 1
    for e in emb:
        assert e.dtype == torch.float32 and e.device.type == "cpu"
        assert e.shape[0] == len(x) and e.shape[2] == d
        assert torch.isfinite(e).all()
    # batching does not change the result
    for e1, e2 in zip(emb, a.layer_embeddings(x, batch_size=64)):
        torch.testing.assert_close(e1, e2, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("length", [10, 64, 150])
def test_forecast_shapes_and_quantiles(name, length):
    a = get_adapter(name).from_config("tiny")
    native = _native(a)
    x = _contexts(length=length)
    for h in (1, native // 2, native, 2 * native + 3):
        f = a.forecast(x, h, batch_size=3)
        assert f.shape == (len(x), Q, h) and f.dtype == np.float64
        assert np.isfinite(f).all()
        assert (np.diff(f, axis=1) >= 0).all()
    # the first native block does not depend on the total horizon
    long = a.forecast(x, 2 * native + 3)
    np.testing.assert_allclose(a.forecast(x, native // 2), long[..., : native // 2], rtol=1e-5, atol=1e-5)
    with pytest.raises(TimeticInputError):
        a.forecast(x, 0)


@pytest.mark.parametrize("name", NAMES)
def test_determinism(name):
    cls = get_adapter(name)
    x = _contexts()
    f1 = cls.from_config("tiny", seed=7).forecast(x, 30)
    f2 = cls.from_config("tiny", seed=7).forecast(x, 30)
    f3 = cls.from_config("tiny", seed=8).forecast(x, 30)
    np.testing.assert_array_equal(f1, f2)
    assert not np.allclose(f1, f3)


@pytest.mark.parametrize("name", NAMES)
def test_finetune_returns_new_adapter(name):
    a = get_adapter(name).from_config("tiny")
    before = _state(a)
    train = [_sine(300), _sine(40)]
    train[0][50:60] = np.nan
    calls = []
    b = a.finetune(train, 10, Recipe(steps=3, batch_size=4, device="cpu"), progress=lambda s, t: calls.append((s, t)))
    assert calls == [(1, 3), (2, 3), (3, 3)]
    assert b is not a and b.model is not a.model
    after_a = _state(a)
    for k in before:
        torch.testing.assert_close(after_a[k], before[k], rtol=0, atol=0)
    changed = [k for k, v in _state(b).items() if not torch.equal(v, before[k])]
    assert changed
    assert all(torch.isfinite(v).all() for v in _state(b).values())
    assert not b.model.training and b.device == "cpu"
    # same recipe seed -> same weights
    c = a.finetune(train, 10, Recipe(steps=3, batch_size=4, device="cpu"))
    for k, v in _state(b).items():
        torch.testing.assert_close(_state(c)[k], v, rtol=0, atol=0)


@pytest.mark.parametrize("name", NAMES)
def test_finetune_learns_a_sine(name):
    a = get_adapter(name).from_config("tiny")
    native = _native(a)
    series = _sine(800)
    C = a.context_length
    starts = range(500, 800 - C - native, 7)
    ctx = np.stack([series[s : s + C] for s in starts])
    fut = np.stack([series[s + C : s + C + native] for s in starts])

    def error(m) -> float:
        return float(np.abs(m.forecast(ctx, native)[:, QUANTILE_LEVELS.index(0.5)] - fut).mean())

    def loss(m) -> float:
        with torch.no_grad():
            return float(m._loss(torch.tensor(ctx, dtype=torch.float32), torch.tensor(fut, dtype=torch.float32)))

    b = a.finetune([series[:500]], native, Recipe(steps=40, batch_size=16, learning_rate=3e-3, device="cpu"))
    assert loss(b) < loss(a)
    assert error(b) < 0.5 * error(a)


@pytest.mark.parametrize("name", NAMES)
def test_hub_id_offline_raises(name, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(TimeticInputError) as e:
        load_model("timetic-test/no-such-model", adapter=name)
    msg = str(e.value)
    assert "local" in msg and "dir" in msg.lower()


def test_wrong_family_directory(tmp_path):
    TimesFmAdapter.from_config("tiny").save_pretrained(tmp_path / "tfm")
    with pytest.raises(TimeticInputError, match="timesfm"):
        load_model(tmp_path / "tfm", adapter="patchtst")
    (tmp_path / "empty").mkdir()
    with pytest.raises(TimeticInputError, match="config.json"):
        load_model(tmp_path / "empty", adapter="timesfm")


def test_timesfm_loss_is_the_models_loss():
    a = TimesFmAdapter.from_config("tiny")
    torch.manual_seed(0)
    ctx, fut = torch.randn(4, 64), torch.randn(4, a.horizon_length)
    out = a.model(past_values=list(ctx), freq=[0] * 4, future_values=fut)
    ours = timesfm_loss(out.full_predictions, fut, list(a.model.config.quantiles))
    torch.testing.assert_close(ours, out.loss)
    # missing targets are skipped, not propagated
    fut[0, :3] = float("nan")
    assert torch.isfinite(timesfm_loss(out.full_predictions, fut, list(a.model.config.quantiles)))


def test_patchtst_loss_is_the_models_loss():
    a = PatchTSTAdapter.from_config("tiny")
    torch.manual_seed(0)
    ctx, fut = np.random.default_rng(0).normal(size=(4, 64)), torch.randn(4, a.prediction_length)
    values, mask = a._inputs(ctx)
    out = a.model(past_values=values, past_observed_mask=mask, future_values=fut[..., None])
    torch.testing.assert_close(patchtst_loss(a.model, out, fut), out.loss)
    fut[1, 5:] = float("nan")
    assert torch.isfinite(patchtst_loss(a.model, out, fut[:, :10]))


@pytest.mark.parametrize(
    "overrides",
    [{"distribution_output": "normal"}, {"loss": "mse"}, {"num_input_channels": 2}],
)
def test_patchtst_head_variants(overrides):
    a = PatchTSTAdapter.from_config("tiny", **overrides)
    x = _contexts()
    f = a.forecast(x, 40)
    assert f.shape == (len(x), Q, 40) and np.isfinite(f).all() and (np.diff(f, axis=1) >= 0).all()
    np.testing.assert_array_equal(f, a.forecast(x, 40))
    b = a.finetune([_sine(200)], 8, Recipe(steps=2, batch_size=4, device="cpu"))
    assert np.isfinite(b.forecast(x, 8)).all()


def test_timesfm_other_quantile_levels():
    a = TimesFmAdapter.from_config("tiny", quantiles=[0.05, 0.25, 0.5, 0.75, 0.95])
    f = a.forecast(_contexts(), 20)
    assert f.shape == (5, Q, 20) and np.isfinite(f).all() and (np.diff(f, axis=1) >= 0).all()
