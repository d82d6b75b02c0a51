"""GluonTS adapters (DeepAR, TiDE) on tiny random-weight predictors (no download, no data)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pytest.importorskip("gluonts.torch")
pytest.importorskip("lightning")

from timetic.adapters import QUANTILE_LEVELS, get_adapter, load_model  # noqa: E402
from timetic.adapters.gluonts_models import (  # noqa: E402
    CONFIG_FILE,
    GLUONTS_FILES,
    DeepARAdapter,
    TiDEAdapter,
)
from timetic.errors import TimeticInputError  # noqa: E402
from timetic.recipe import Recipe  # noqa: E402

from adaptertests import check_save_load, check_zoo_sizes, single_thread, tiny_fixture  # noqa: E402,F401
from adaptertests import context as _context  # noqa: E402
from adaptertests import sine as _sine  # noqa: E402

NAMES = ["deepar", "tide"]
tiny = tiny_fixture(NAMES)


def test_registered():
    assert get_adapter("deepar") is DeepARAdapter
    assert get_adapter("tide") is TiDEAdapter


@pytest.mark.parametrize("name", NAMES)
def test_sizes(name):
    _, s, m = check_zoo_sizes(name)
    assert s.context_length == m.context_length == (512 if name == "tide" else 128 + 167)
    assert s.prediction_length == m.prediction_length == 48


@pytest.mark.parametrize("name", NAMES)
def test_save_load_roundtrip(name, tmp_path):
    check_save_load(name, tmp_path, _context())
    for f in (*GLUONTS_FILES, CONFIG_FILE):
        assert (tmp_path / f).is_file()
    # gluonts' own format: JSON + a state dict of tensors only (loads with weights_only=True)
    state = torch.load(tmp_path / "prediction-net-state.pt", weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    assert json.loads((tmp_path / CONFIG_FILE).read_text())["adapter"] == name


def test_load_wrong_family_and_bad_dirs(tmp_path):
    DeepARAdapter.from_config("tiny").save_pretrained(tmp_path / "d")
    with pytest.raises(TimeticInputError, match="deepar"):
        load_model(tmp_path / "d", adapter="tide")
    (tmp_path / "empty").mkdir()
    with pytest.raises(TimeticInputError, match="save_pretrained"):
        load_model(tmp_path / "empty", adapter="deepar")
    # a predictor.json naming a class outside gluonts is refused before gluonts imports it
    p = tmp_path / "d" / "predictor.json"
    p.write_text(p.read_text().replace('"builtins.int"', '"os.system"', 1))
    with pytest.raises(TimeticInputError, match="os.system"):
        load_model(tmp_path / "d", adapter="deepar")


@pytest.mark.parametrize("name", NAMES)
def test_hub_id_offline(name, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(TimeticInputError, match=r"local.dir"):
        load_model("timetic-test/no-such-gluonts-model", adapter=name)


def test_layer_embeddings(tiny):
    x = _context(n=5, C=30)
    x[1, 3:9] = np.nan
    x[2] = np.nan
    emb = tiny.layer_embeddings(x, batch_size=2)
    assert len(emb) == tiny.depth + 1
    for e in emb:
        assert e.dtype == torch.float32 and e.device.type == "cpu"
        assert e.ndim == 3 and e.shape[0] == 5
        assert torch.isfinite(e).all()
    if tiny.name == "deepar":  # tokens = the LSTM's unroll steps; LSTM width after the input
        assert all(e.shape[1] == tiny.unroll_length for e in emb)
        assert all(e.shape[2] == tiny.config["hidden_size"] for e in emb[1:])
    else:  # one token per dense block, the last decoder block as the future steps
        assert all(e.shape[1] == 1 for e in emb[:-1])
        assert emb[-1].shape[1:] == (tiny.prediction_length, tiny.config["decoder_output_dim"])
    # batching does not change embeddings
    for e1, e2 in zip(emb, tiny.layer_embeddings(x, batch_size=64)):
        torch.testing.assert_close(e1, e2)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_deepar_embeddings_match_stacked_lstm():
    a = DeepARAdapter.from_config("tiny", seed=1)
    x = _context(n=3, C=50).astype(np.float32)
    batch = next(a._batches(a.predictor, x, 8))
    emb = a._embed_batch(batch)
    with torch.no_grad():
        full, _ = a.network.model.rnn(emb[0])
    torch.testing.assert_close(emb[-1], full)


@pytest.mark.parametrize("horizon", [5, 16, 37])
def test_forecast_shapes(tiny, horizon):
    x = _context(n=3, C=50)
    f = tiny.forecast(x, horizon)
    assert f.shape == (3, len(QUANTILE_LEVELS), horizon) and f.dtype == np.float64
    assert np.isfinite(f).all()
    assert (np.diff(f, axis=1) >= 0).all()
    assert abs(np.median(f[:, 4]) - 10) < 50  # scaled to the data


def test_forecast_missing_and_odd_lengths(tiny):
    for C in (8, tiny.context_length, tiny.context_length + 40):
        x = _context(n=4, C=C)
        x[0, : C // 2] = np.nan
        x[1, -1] = np.nan
        x[2] = np.nan
        x[3, 1] = np.inf
        f = tiny.forecast(x, 20, batch_size=3)
        assert f.shape == (4, 9, 20)
        assert np.isfinite(f).all()
        assert (np.diff(f, axis=1) >= 0).all()
    assert tiny.forecast(np.empty((0, 10)), 5).shape == (0, 9, 5)
    with pytest.raises(TimeticInputError):
        tiny.forecast(_context(), 0)


def test_tide_unrolls_with_median():
    a = TiDEAdapter.from_config("tiny", seed=2)
    H = a.prediction_length
    x = _context(n=2, C=50)
    long = a.forecast(x, 2 * H)
    first = a.forecast(x, H)
    np.testing.assert_allclose(long[..., :H], first)
    # the second chunk is the forecast from the context extended by the first chunk's median
    ext = np.concatenate([x, first[:, 4]], axis=1)[:, -a.context_length :].astype(np.float32)
    second = np.sort(a._quantiles(a.predictor, ext, H, 64), axis=1)
    np.testing.assert_allclose(long[..., H:], second)


@pytest.mark.parametrize("name", NAMES)
def test_determinism(name):
    cls = get_adapter(name)
    x = _context()
    a, b = cls.from_config("tiny", seed=5), cls.from_config("tiny", seed=5)
    np.testing.assert_array_equal(a.forecast(x, 20), b.forecast(x, 20))
    np.testing.assert_array_equal(a.forecast(x, 20), a.forecast(x, 20))
    assert not np.array_equal(a.forecast(x, 20), cls.from_config("tiny", seed=6).forecast(x, 20))
    # forecasting leaves the global torch RNG alone
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    a.forecast(x, 7)
    torch.testing.assert_close(torch.rand(3), expected)


@pytest.mark.parametrize("name", NAMES)
def test_overrides(name):
    a = get_adapter(name).from_config("tiny", context_length=32, prediction_length=8)
    assert a.config["context_length"] == 32 and a.prediction_length == 8
    assert a.context_length == (32 if name == "tide" else 32 + 23)  # DeepAR: + largest lag - 1
    assert a.forecast(_context(C=50), 10).shape == (4, 9, 10)


@pytest.mark.parametrize("name", NAMES)
def test_finetune_changes_copy_only(name):
    a = get_adapter(name).from_config("tiny", seed=0)
    before = {k: v.clone() for k, v in a.network.state_dict().items()}
    x = _context()
    f_before = a.forecast(x, 10)
    calls = []
    train = [_sine(200, phase=p) for p in (0.0, 1.0)] + [_sine(10)]  # one series too short
    recipe = Recipe(steps=3, batch_size=8, learning_rate=1e-3, device="cpu")
    b = a.finetune(train, 10, recipe, progress=lambda s, t: calls.append((s, t)))
    assert b is not a and isinstance(b, type(a))
    assert calls == [(1, 3), (2, 3), (3, 3)]
    assert len(b.train_losses) == 3
    for k, v in a.network.state_dict().items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)
    assert any(not torch.equal(v, before[k]) for k, v in b.network.state_dict().items())
    np.testing.assert_array_equal(a.forecast(x, 10), f_before)
    # same recipe -> same weights
    c = a.finetune(train, 10, recipe)
    for k, v in b.network.state_dict().items():
        torch.testing.assert_close(v, c.network.state_dict()[k], rtol=0, atol=0)
    # zero steps: an unchanged copy
    z = a.finetune(train, 10, Recipe(steps=0, device="cpu"))
    np.testing.assert_array_equal(z.forecast(x, 10), f_before)


def test_finetune_rejects_unusable_data():
    a = DeepARAdapter.from_config("tiny")
    with pytest.raises(TimeticInputError, match="training data"):
        a.finetune([np.full(50, np.nan), np.array([1.0])], 8, Recipe(steps=2, device="cpu"))


@pytest.mark.parametrize("name", NAMES)
def test_finetune_learns_sine(name):
    a = get_adapter(name).from_config("tiny", seed=0)
    H = a.prediction_length
    train = [_sine(400, phase=p) for p in (0.0, 0.7, 1.9)]
    ctx = np.stack([s[-H - 64 : -H] for s in train])
    fut = np.stack([s[-H:] for s in train])
    recipe = Recipe(steps=40, batch_size=16, learning_rate=3e-3, device="cpu", seed=1)
    b = a.finetune(train, H, recipe)
    losses = np.array(b.train_losses)
    assert losses[-8:].mean() < losses[:8].mean()
    err_before = np.abs(a.forecast(ctx, H)[:, 4] - fut).mean()
    err_after = np.abs(b.forecast(ctx, H)[:, 4] - fut).mean()
    assert err_after < 0.5 * err_before


def test_tide_forecast_batch_independent():
    """TiDE's quantiles are analytic: windows do not depend on the rest of their batch."""
    a = TiDEAdapter.from_config("tiny", seed=4)
    x = _context(n=5, C=50)
    x[2] = np.nan
    np.testing.assert_allclose(a.forecast(x, 20, batch_size=2), a.forecast(x, 20, batch_size=64), rtol=1e-4, atol=1e-4)
