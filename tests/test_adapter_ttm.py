"""TinyTimeMixer (granite-tsfm) adapter: tiny random-weight models, plus one check of the real
TTM-R2 512-96 weights where the shared weights folder is present."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("tsfm_public")

from timetic.adapters import QUANTILE_LEVELS, get_adapter, load_model  # noqa: E402
from timetic.adapters.ttm import (  # noqa: E402
    ENV_VAR,
    TTMAdapter,
    file_sha256,
    pretrained_path,
    ttm_loss,
    weights_dir,
)
from timetic.errors import TimeticInputError  # noqa: E402
from timetic.recipe import Recipe  # noqa: E402

from adaptertests import check_save_load, check_zoo_sizes, single_thread  # noqa: E402,F401

Q = len(QUANTILE_LEVELS)
#: sha256 of model.safetensors of the TTM-R2 512-96 weights (from the weights folder's README).
R2_SHA256 = "a706726a7eb01bbcb42994b7dcb3c06ea9557898dbae8d480eb04fe8ccb89710"


@pytest.fixture(scope="module")
def tiny() -> TTMAdapter:
    return TTMAdapter.from_config("tiny", seed=0)


def _contexts(n: int = 5, length: int = 600, seed: int = 0) -> np.ndarray:
    """(n, length) daily-seasonal series around 10 with leading, inner, last and all missing values."""
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    x = 10 + 3 * np.sin(2 * np.pi * t / 24)[None, :] + rng.normal(0, 0.3, (n, length))
    x[1, : length // 3] = np.nan
    x[2, 10:25] = np.nan
    x[3, -1] = np.nan
    x[4] = np.nan
    return x


def _sine(length: int, period: int = 24) -> np.ndarray:
    t = np.arange(length)
    return 5 + 3 * np.sin(2 * np.pi * t / period) + np.random.default_rng(1).normal(0, 0.05, length)


def _state(adapter) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in adapter.model.state_dict().items()}


def test_registered_sizes_and_info():
    assert get_adapter("ttm") is TTMAdapter
    tiny, s, m = check_zoo_sizes("ttm")
    assert tiny.context_length == s.context_length == m.context_length == 512
    assert tiny.prediction_length == m.prediction_length == 96
    assert m.num_parameters == 805_280 and m.depth == 9  # the released R2 512-96 architecture
    info = tiny.info()
    assert info["adapter"] == "ttm" and info["depth"] == tiny.depth and info["weights_sha256"] == ""


@pytest.mark.parametrize("length", [100, 512, 700])
def test_forecast_shapes_horizons_and_missing(tiny, length):
    x = _contexts(length=length)
    for h in (1, 40, 96, 200):
        f = tiny.forecast(x, h, batch_size=3)
        assert f.shape == (len(x), Q, h) and f.dtype == np.float64
        assert np.isfinite(f).all()
        # a point forecaster: all nine levels are the point forecast
        np.testing.assert_array_equal(f, np.repeat(f[:, 4:5], Q, axis=1))
    # the first block does not depend on the total horizon (96 = one pass; 200 = rolled out)
    long = tiny.forecast(x, 200)
    np.testing.assert_allclose(tiny.forecast(x, 40), long[..., :40], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(tiny.forecast(x, 96), long[..., :96], rtol=1e-6, atol=1e-6)
    with pytest.raises(TimeticInputError):
        tiny.forecast(x, 0)


def test_long_context_keeps_last_512_and_short_is_padded(tiny):
    x = _contexts(length=700)[:4]
    np.testing.assert_array_equal(tiny.forecast(x, 50), tiny.forecast(x[:, -512:], 50))
    values, mask = tiny._inputs(x[:, -100:])
    assert values.shape == mask.shape == (4, 512, 1)
    assert (mask[:, :412] == 0).all() and (mask[0, 412:] == 1).all()
    # padding is the mean of the observed values: 0 after the model's own standardisation
    obs = x[0, -100:]
    torch.testing.assert_close(values[0, :412, 0], torch.full((412,), float(obs.mean())))
    # rolling out: the forecast does not change scale (random weights, but standardised)
    f = tiny.forecast(x[:1], 300)
    assert np.abs(f).max() < 1e3


def test_layer_embeddings(tiny):
    x = _contexts(length=300)
    emb = tiny.layer_embeddings(x, batch_size=2)
    assert len(emb) == tiny.depth + 1 == 5
    cfg = tiny.model.config
    widths = [cfg.d_model] * 3 + [cfg.decoder_d_model] * 2  # input, 2 encoder levels, adapter, decoder
    for e, d in zip(emb, widths):
        assert e.dtype == torch.float32 and e.device.type == "cpu"
        assert e.shape == (len(x), 8, d)
        assert torch.isfinite(e).all()
    for e1, e2 in zip(emb, tiny.layer_embeddings(x, batch_size=64)):
        torch.testing.assert_close(e1, e2, rtol=1e-4, atol=1e-5)
    # the hooks capture exactly the model's own hidden states (finer levels reshaped back)
    values, mask = tiny._inputs(x)
    with torch.no_grad():
        out = tiny.model(past_values=values, past_observed_mask=mask, output_hidden_states=True)
    # hidden_states: 0 input, 1 reshape, 2 level-1 layer, 3 reshape, 4 level-0 input, 5 reshape,
    # 6 level-0 layer, 7 reshape, 8 adapter, 9 decoder layer
    for e, i in zip(emb, [0, 2, 6, 8, 9]):
        h = out.hidden_states[i][:, 0]
        torch.testing.assert_close(e, h.reshape(len(x), -1, e.shape[-1]), rtol=1e-4, atol=1e-5)


def test_save_load_roundtrip_and_sha(tmp_path):
    a, b = check_save_load("ttm", tmp_path, _contexts())
    files = {p.name for p in tmp_path.iterdir()}
    assert {"config.json", "model.safetensors"} <= files
    assert not any(f.endswith((".bin", ".pt", ".pkl")) for f in files)
    assert b.info()["weights_sha256"] == file_sha256(tmp_path / "model.safetensors")
    assert len(b.weights_sha256) == 64


def test_determinism():
    x = _contexts()
    f1 = TTMAdapter.from_config("tiny", seed=7).forecast(x, 30)
    f2 = TTMAdapter.from_config("tiny", seed=7).forecast(x, 30)
    f3 = TTMAdapter.from_config("tiny", seed=8).forecast(x, 30)
    np.testing.assert_array_equal(f1, f2)
    assert not np.allclose(f1, f3)


def test_finetune_returns_new_adapter(tiny):
    before = _state(tiny)
    train = [_sine(800), _sine(80)]
    train[0][50:60] = np.nan
    calls = []
    recipe = Recipe(steps=3, batch_size=4, device="cpu")
    b = tiny.finetune(train, 150, recipe, progress=lambda s, t: calls.append((s, t)))  # H > 96
    assert calls == [(1, 3), (2, 3), (3, 3)]
    assert b is not tiny and b.model is not tiny.model
    for k, v in _state(tiny).items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)
    changed = [k for k, v in _state(b).items() if not torch.equal(v, before[k])]
    assert changed
    assert all(torch.isfinite(v).all() for v in _state(b).values())
    assert not b.model.training and b.device == "cpu"
    assert np.isfinite(b.forecast(_contexts(), 150)).all()
    c = tiny.finetune(train, 150, recipe)  # same recipe seed -> same weights
    for k, v in _state(b).items():
        torch.testing.assert_close(_state(c)[k], v, rtol=0, atol=0)


def test_finetune_learns_a_sine(tiny):
    series = _sine(2400)
    C, P = tiny.context_length, tiny.prediction_length
    starts = range(1000, 2400 - C - P, 70)  # evaluation windows after the training part
    ctx = np.stack([series[s : s + C] for s in starts])
    fut = np.stack([series[s + C : s + C + P] for s in starts])

    def loss(m) -> float:
        m.model.eval()
        with torch.no_grad():
            return float(m._loss(torch.tensor(ctx, dtype=torch.float32), torch.tensor(fut, dtype=torch.float32)))

    def error(m) -> float:
        return float(np.abs(m.forecast(ctx, P)[:, 4] - fut).mean())

    b = tiny.finetune([series[:1000]], P, Recipe(steps=30, batch_size=16, learning_rate=3e-3, device="cpu"))
    assert loss(b) < 0.5 * loss(tiny)
    assert error(b) < 0.5 * error(tiny)


def test_loss_is_the_models_mse():
    a = TTMAdapter.from_config("tiny")
    torch.manual_seed(0)
    ctx, fut = np.random.default_rng(0).normal(size=(4, 512)), torch.randn(4, 96)
    values, mask = a._inputs(ctx)
    with torch.no_grad():
        out = a.model(past_values=values, past_observed_mask=mask, future_values=fut[..., None])
        pred = out.prediction_outputs[..., 0]
        # with unit scale ours is the library's MSE; ours divides by the window's scale
        torch.testing.assert_close(ttm_loss(pred, torch.ones(4, 1), fut), out.loss)
        ours = ttm_loss(pred, out.scale[..., 0], fut)
        torch.testing.assert_close(ours, (((pred - fut) / out.scale[..., 0]) ** 2).mean())
        fut[1, 5:] = float("nan")
        assert torch.isfinite(ttm_loss(pred, out.scale[..., 0], fut[:, :10]))


def test_hub_id_offline_raises(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for hub_id in ("timetic-test/no-such-model", "ibm-granite/granite-timeseries-ttm-r2"):
        with pytest.raises(TimeticInputError) as e:
            load_model(hub_id, adapter="ttm")
        msg = str(e.value)
        assert "local" in msg and "dir" in msg.lower()


def test_wrong_family_and_unsupported_variants(tmp_path):
    pytest.importorskip("transformers")
    get_adapter("patchtst").from_config("tiny").save_pretrained(tmp_path / "p")
    with pytest.raises(TimeticInputError, match="tinytimemixer"):
        load_model(tmp_path / "p", adapter="ttm")
    with pytest.raises(TimeticInputError, match="channel mixing"):
        TTMAdapter.from_config("tiny", decoder_mode="mix_channel")
    with pytest.raises(TimeticInputError):
        TTMAdapter.from_config("huge")


def test_weights_dir(monkeypatch, tmp_path):
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    assert weights_dir() == tmp_path and pretrained_path() == tmp_path / "ttm-r2-512-96"
    monkeypatch.delenv(ENV_VAR)
    assert weights_dir().name == "weights" and weights_dir().parent.name == "shared"


def test_real_ttm_r2_weights():
    path = pretrained_path()
    if not (path / "model.safetensors").is_file():
        pytest.skip(f"TTM-R2 weights not found in {path} (set ${ENV_VAR})")
    a = load_model(path, adapter="ttm")
    assert a.num_parameters == 805_280 and a.depth == 9
    assert a.info()["weights_sha256"] == R2_SHA256
    t = np.arange(600)
    x = 10 + 3 * np.sin(2 * np.pi * t / 24)[None, :] + np.random.default_rng(0).normal(0, 0.2, (2, 600))
    f = a.forecast(x, 48)
    assert f.shape == (2, Q, 48) and np.isfinite(f).all()
    truth = 10 + 3 * np.sin(2 * np.pi * np.arange(600, 648) / 24)
    assert np.abs(f[:, 4] - truth).mean() < 0.5  # a clean daily cycle is easy
    emb = a.layer_embeddings(x)
    assert [e.shape[1:] for e in emb] == [(8, 192)] * 7 + [(8, 128)] * 3
    # the distinct hidden states listed in the weights README
    values, mask = a._inputs(x)
    with torch.no_grad():
        out = a.model(past_values=values, past_observed_mask=mask, output_hidden_states=True)
    for e, i in zip(emb, [0, 2, 3, 7, 8, 12, 13, 15, 16, 17]):
        h = out.hidden_states[i][:, 0]
        torch.testing.assert_close(e, h.reshape(len(x), -1, e.shape[-1]), rtol=1e-4, atol=1e-5)


def test_model_row_records_weights_sha(tmp_path):
    from timetic.profile import probe_corpus
    from timetic.record import model_row

    TTMAdapter.from_config("tiny", seed=1).save_pretrained(tmp_path)
    a = load_model(tmp_path, adapter="ttm")
    probe = probe_corpus(8, 128, seed=0)
    row = model_row(a, "ttm-tiny", str(tmp_path), probe=probe, length=3)
    assert row["revision"][0] == "sha256:" + file_sha256(tmp_path / "model.safetensors")
    assert model_row(a, "ttm-tiny", str(tmp_path), revision="v1", probe=probe, length=3)["revision"][0] == "v1"
