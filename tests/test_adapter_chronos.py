"""Chronos-Bolt and Chronos-2 adapters on tiny random-weight models (no download)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pytest.importorskip("chronos")

from timetic.adapters import QUANTILE_LEVELS, get_adapter, load_model  # noqa: E402
from timetic.adapters.chronos import Chronos2Adapter, ChronosBoltAdapter  # noqa: E402
from timetic.errors import TimeticInputError  # noqa: E402
from timetic.recipe import Recipe  # noqa: E402

from adaptertests import check_save_load, check_zoo_sizes, tiny_fixture  # noqa: E402
from adaptertests import context as _context  # noqa: E402
from adaptertests import sine as _sine  # noqa: E402

NAMES = ["chronos-bolt", "chronos-2"]
tiny = tiny_fixture(NAMES)


def test_registered():
    assert get_adapter("chronos-bolt") is ChronosBoltAdapter
    assert get_adapter("chronos-2") is Chronos2Adapter


@pytest.mark.parametrize("name", NAMES)
def test_sizes(name):
    _, s, m = check_zoo_sizes(name)
    assert s.model.config.d_model == m.model.config.d_model  # zoo sizes differ in depth only
    assert s.context_length == m.context_length == 512


@pytest.mark.parametrize("name", NAMES)
def test_save_load_roundtrip(name, tmp_path):
    check_save_load(name, tmp_path, _context())
    assert (tmp_path / "config.json").is_file()
    assert (tmp_path / "model.safetensors").is_file()
    assert not list(tmp_path.glob("*.bin")) and not list(tmp_path.glob("*.pt"))


@pytest.mark.parametrize("name", NAMES)
def test_saved_checkpoint_loads_in_chronos(name, tmp_path):
    """The saved directory is a regular checkpoint of the library (family format)."""
    from chronos import BaseChronosPipeline, Chronos2Pipeline, ChronosBoltPipeline

    get_adapter(name).from_config("tiny").save_pretrained(tmp_path)
    pipeline = BaseChronosPipeline.from_pretrained(tmp_path)
    expected = ChronosBoltPipeline if name == "chronos-bolt" else Chronos2Pipeline
    assert isinstance(pipeline, expected)


def test_wrong_family_checkpoint(tmp_path):
    ChronosBoltAdapter.from_config("tiny").save_pretrained(tmp_path)
    with pytest.raises(TimeticInputError, match="not a chronos-2 checkpoint"):
        load_model(tmp_path, adapter="chronos-2")
    with pytest.raises(TimeticInputError, match="config.json"):
        load_model(tmp_path / "..", adapter="chronos-bolt")


@pytest.mark.parametrize("name", NAMES)
def test_hub_id_offline(name, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub_id = "amazon/chronos-bolt-small" if name == "chronos-bolt" else "amazon/chronos-2"
    with pytest.raises(TimeticInputError, match=r"local.dir"):
        load_model(hub_id + "-not-cached-xyz", adapter=name)


def test_layer_embeddings(tiny):
    x = _context(n=5, C=40)
    x[0, :7] = np.nan
    x[1, 20] = np.nan
    embs = tiny.layer_embeddings(x, batch_size=2)
    assert len(embs) == tiny.depth + 1
    d = tiny.model.config.d_model
    patches = int(np.ceil(40 / 16))
    for e in embs:
        assert e.dtype == torch.float32 and e.device.type == "cpu"
        assert e.shape[0] == 5 and e.shape[2] == d
        assert torch.isfinite(e).all()
    if tiny.name == "chronos-bolt":
        n_enc = tiny.model.config.num_layers
        assert [e.shape[1] for e in embs[: n_enc + 1]] == [patches + 1] * (n_enc + 1)  # + [REG]
        assert [e.shape[1] for e in embs[n_enc + 1 :]] == [1] * tiny.model.config.num_decoder_layers
    else:
        assert all(e.shape[1] == patches + 2 for e in embs)  # + [REG] + one future patch
    # batching does not change the result; layers differ from each other
    again = tiny.layer_embeddings(x, batch_size=64)
    for e1, e2 in zip(embs, again):
        torch.testing.assert_close(e1, e2, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(embs[0], embs[1])


def test_layer_embeddings_long_context_truncated(tiny):
    C = tiny.context_length
    x = _context(n=2, C=3 * C)
    long = tiny.layer_embeddings(x)
    short = tiny.layer_embeddings(x[:, -C:])
    for e1, e2 in zip(long, short):
        torch.testing.assert_close(e1, e2)


@pytest.mark.parametrize("short_horizon", [True, False])
def test_forecast_shapes(tiny, short_horizon):
    H = 5 if short_horizon else tiny.prediction_length + 13  # beyond one forward pass
    x = _context(n=3, C=40)
    q = tiny.forecast(x, H, batch_size=2)
    assert q.shape == (3, len(QUANTILE_LEVELS), H) and q.dtype == np.float64
    assert np.isfinite(q).all()
    assert (np.diff(q, axis=1) >= 0).all()
    if not short_horizon:
        # the first native block is the one forward pass of a request of the native length
        P = tiny.prediction_length
        np.testing.assert_allclose(tiny.forecast(x, P), q[..., :P], rtol=1e-5, atol=1e-5)


def test_forecast_missing_and_odd_lengths(tiny):
    x = _context(n=4, C=40)
    x[0, ::3] = np.nan
    x[1, :] = np.nan  # all missing
    x[2, -5:] = np.inf  # treated as missing
    for context in (x, x[:, -3:], np.tile(x, (1, 5))):  # shorter than a patch; longer than native
        q = tiny.forecast(context, 20)
        assert q.shape == (4, 9, 20)
        assert np.isfinite(q).all()
        assert (np.diff(q, axis=1) >= 0).all()
    # longer than the native context: left-truncated
    C = tiny.context_length
    long = _context(n=2, C=C + 30)
    np.testing.assert_allclose(tiny.forecast(long, 8), tiny.forecast(long[:, -C:], 8), rtol=1e-5, atol=1e-5)


def test_forecast_batch_independent(tiny):
    x = _context(n=5, C=40)
    np.testing.assert_allclose(
        tiny.forecast(x, 10, batch_size=2), tiny.forecast(x, 10, batch_size=64), rtol=1e-5, atol=1e-5
    )


@pytest.mark.parametrize("name", NAMES)
def test_determinism(name):
    cls = get_adapter(name)
    x = _context()
    a, b, c = cls.from_config("tiny", seed=7), cls.from_config("tiny", seed=7), cls.from_config("tiny", seed=8)
    np.testing.assert_array_equal(a.forecast(x, 20), b.forecast(x, 20))
    assert not np.allclose(a.forecast(x, 20), c.forecast(x, 20))
    for e1, e2 in zip(a.layer_embeddings(x), b.layer_embeddings(x)):
        assert torch.equal(e1, e2)
    recipe = Recipe(steps=3, batch_size=4, learning_rate=1e-3, seed=1, device="cpu")
    train = [_sine(200)]
    fa, fb = a.finetune(train, 10, recipe), b.finetune(train, 10, recipe)
    np.testing.assert_array_equal(fa.forecast(x, 10), fb.forecast(x, 10))


@pytest.mark.parametrize("name", NAMES)
def test_overrides(name):
    cls = get_adapter(name)
    a = cls.from_config("tiny", context_length=32, num_layers=3)
    assert a.context_length == 32
    assert a.model.config.num_layers == 3


@pytest.mark.parametrize("name", NAMES)
def test_finetune_changes_copy_only(name):
    a = get_adapter(name).from_config("tiny", seed=0)
    state = {k: v.clone() for k, v in a.model.state_dict().items()}
    calls = []
    new = a.finetune(
        [_sine(150), _sine(30)],
        horizon=a.prediction_length + 10,  # longer than the native output: Bolt caps, Chronos-2 extends
        recipe=Recipe(steps=3, batch_size=4, learning_rate=1e-3, device="cpu"),
        progress=lambda i, n: calls.append((i, n)),
    )
    assert calls == [(1, 3), (2, 3), (3, 3)]
    assert new is not a and new.model is not a.model
    for k, v in a.model.state_dict().items():
        assert torch.equal(v, state[k]), k  # original untouched
    changed = [k for k, v in new.model.state_dict().items() if not torch.equal(v, state[k])]
    assert changed
    assert not new.model.training and new.device == "cpu"
    q = new.forecast(_context(), 12)
    assert q.shape == (4, 9, 12) and np.isfinite(q).all()


def test_chronos2_finetune_extends_output_patches(tmp_path):
    a = Chronos2Adapter.from_config("tiny")
    native = a.prediction_length
    new = a.finetune([_sine(300)], 3 * native, Recipe(steps=1, batch_size=2, device="cpu"))
    assert a.prediction_length == native
    assert new.prediction_length == 3 * native
    new.save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["chronos_config"]["max_output_patches"] * 16 == 3 * native
    assert load_model(tmp_path, adapter="chronos-2").prediction_length == 3 * native


@pytest.mark.parametrize("name", NAMES)
def test_finetune_learns_sine(name):
    a = get_adapter(name).from_config("tiny", seed=0)
    H = 16
    C = a.context_length
    train = [_sine(400, phase=p) for p in (0.0, 1.0, 2.0)]
    test = np.stack([_sine(C + H, phase=p) for p in (0.5, 1.5, 2.5, 3.0)])
    ctx, fut = test[:, :C], test[:, C:]

    def eval_loss(adapter) -> float:
        with torch.no_grad():
            adapter.model.eval()
            c, f = (torch.tensor(v, dtype=torch.float32) for v in (ctx, fut))
            return float(adapter._loss(c, f))

    def median_mae(adapter) -> float:
        return float(np.abs(adapter.forecast(ctx, H)[:, 4] - fut).mean())

    recipe = Recipe(steps=40, batch_size=16, learning_rate=1e-2, seed=0, device="cpu")
    new = a.finetune(train, H, recipe)
    assert eval_loss(new) < 0.5 * eval_loss(a)
    assert median_mae(new) < 0.5 * median_mae(a)
