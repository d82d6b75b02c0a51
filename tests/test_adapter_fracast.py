"""Fracast-0 adapter: a tiny random-weight Fracast (W 256) and, briefly, the bundled weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("fracast")

from timetic.adapters import QUANTILE_LEVELS, available_adapters, get_adapter, load_model  # noqa: E402
from timetic.adapters.fracast import FracastAdapter, fracast_loss  # noqa: E402
from timetic.errors import TimeticInputError  # noqa: E402
from timetic.recipe import Recipe  # noqa: E402

from adaptertests import context, sine, single_thread  # noqa: E402,F401

Q = len(QUANTILE_LEVELS)
#: sha256 of the bundled fp32 weights (FRACAST.md).
FP32_SHA = "0d678f123f3d1f91c5065cca2b5d40eccc469360afc2381b27290486011ded2c"


@pytest.fixture(scope="module")
def tiny():
    return FracastAdapter.from_config("tiny", seed=0)


@pytest.fixture(scope="module")
def bundled():
    return load_model("fracast-0", adapter="fracast")


def _with_gaps(n: int = 4, C: int = 60) -> np.ndarray:
    x = context(n, C)
    x[1, :20] = np.nan
    x[2, 10:15] = np.nan
    x[3] = np.nan
    return x


def _state(a) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in a.model.state_dict().items()}


def test_registered_and_sizes(tiny):
    assert "fracast" in available_adapters() and get_adapter("fracast") is FracastAdapter
    assert tiny.num_parameters < 20_000 and tiny.depth == 6 and tiny.context_length == 256
    assert tiny.prediction_length == 24 and tiny.info()["adapter"] == "fracast"
    with pytest.raises(TimeticInputError):
        FracastAdapter.from_config("huge")
    f1 = FracastAdapter.from_config("tiny", seed=5).forecast(context(2, 40), 10)
    np.testing.assert_array_equal(f1, FracastAdapter.from_config("tiny", seed=5).forecast(context(2, 40), 10))
    assert not np.allclose(f1, FracastAdapter.from_config("tiny", seed=6).forecast(context(2, 40), 10))


@pytest.mark.parametrize("C", [30, 300])
def test_forecast_shapes_nan_and_sorted(tiny, C):
    x = _with_gaps(C=C)
    for h in (1, 24, 53):
        f = tiny.forecast(x, h, batch_size=3)
        assert f.shape == (len(x), Q, h) and f.dtype == np.float64
        assert np.isfinite(f).all()
        assert (np.diff(f, axis=1) >= 0).all()
    # the first native block does not depend on the total horizon; batching changes nothing
    np.testing.assert_allclose(tiny.forecast(x, 10), tiny.forecast(x, 53, batch_size=1)[..., :10], rtol=1e-6, atol=1e-6)
    with pytest.raises(TimeticInputError):
        tiny.forecast(x, 0)


def test_layer_embeddings(tiny):
    for C, T in ((40, 40), (300, 256)):
        x = _with_gaps(C=C)
        emb = tiny.layer_embeddings(x, batch_size=3)
        assert len(emb) == tiny.depth + 1
        for e in emb:
            assert e.dtype == torch.float32 and e.device.type == "cpu"
            assert e.shape == (len(x), T, 16) and torch.isfinite(e).all()
        for e1, e2 in zip(emb, tiny.layer_embeddings(x, batch_size=64)):
            torch.testing.assert_close(e1, e2, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(emb[0], emb[-1])


def test_save_load_roundtrip(tmp_path):
    a = FracastAdapter.from_config("tiny", seed=3)
    x = _with_gaps()
    before, emb = a.forecast(x, 30), a.layer_embeddings(x)
    a.save_pretrained(tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == {"config.json", "model.safetensors"}
    b = load_model(tmp_path, adapter="fracast")
    assert type(b) is FracastAdapter and b.source == str(tmp_path)
    assert (b.num_parameters, b.depth, b.context_length) == (a.num_parameters, a.depth, a.context_length)
    assert len(b.info()["weights_sha256"]) == 64
    np.testing.assert_array_equal(b.forecast(x, 30), before)
    for e1, e2 in zip(emb, b.layer_embeddings(x)):
        torch.testing.assert_close(e1, e2, rtol=0, atol=0)


def test_no_download_for_non_folder_strings(tmp_path, monkeypatch):
    import huggingface_hub

    def boom(*args, **kwargs):
        raise AssertionError("the adapter tried to download")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", boom)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    (tmp_path / "file.txt").write_text("x")
    for source in ("ztxtech/fracast-0", "fracast", "no/such/dir", str(tmp_path / "file.txt"), str(tmp_path)):
        with pytest.raises(TimeticInputError) as e:
            FracastAdapter.from_pretrained(source)
        assert "\n" not in str(e.value)
    with pytest.raises(TimeticInputError):
        FracastAdapter.from_pretrained("fracast-0", weights="int4")


def test_bundled_weights_match_the_package(bundled):
    from fracast import FracastModel

    assert bundled.num_parameters == 85_001 and bundled.depth == 10 and bundled.context_length == 2048
    assert bundled.info()["weights_sha256"] == FP32_SHA
    ref = FracastModel.from_pretrained(weights="fp32")
    x = np.stack([sine(300, 12.0), 3 * sine(300, 7.0) - 1]).astype(np.float32)
    x[0, 40:60] = np.nan
    ours = bundled.forecast(x, 60)
    theirs = np.moveaxis(ref.forecast(x, horizon=60), -1, 1)  # 2 blocks of 48
    np.testing.assert_allclose(ours, np.sort(theirs, axis=1), rtol=1e-5, atol=1e-5)
    emb = bundled.layer_embeddings(x[:1, -100:])
    assert len(emb) == 11 and all(e.shape == (1, 100, 64) for e in emb)


def test_finetune_changes_weights(tiny):
    before = _state(tiny)
    train = [sine(400), sine(150, phase=1.0)]
    train[0][50:60] = np.nan
    calls = []
    b = tiny.finetune(train, 10, Recipe(steps=2, batch_size=4, device="cpu", eval_every=None),
                      progress=lambda s, t: calls.append((s, t)))
    assert calls == [(1, 2), (2, 2)]
    assert b is not tiny and b.model is not tiny.model
    for k, v in _state(tiny).items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)
    after = _state(b)
    assert [k for k in after if not torch.equal(after[k], before[k])]
    assert all(torch.isfinite(v).all() for v in after.values())
    assert not b.model.training and b.finetune_info["steps_run"] == 2
    assert np.isfinite(b.forecast(context(2, 40), 30)).all()


def test_finetune_with_validation(tiny):
    x = context(2, 40)
    seen = []

    def validate(m) -> float:
        seen.append(m.model.training)
        return float(np.abs(m.forecast(x, 5)).mean())

    recipe = Recipe(steps=2, batch_size=2, device="cpu", eval_every=1, patience=5)
    b = tiny.finetune([sine(300)], 5, recipe, validate=validate)
    info = b.finetune_info
    assert info["validated"] and [s for s, _ in info["val_curve"]] == [0, 1, 2]
    assert seen == [False, False, False] and info["best_step"] in (0, 1, 2)

def test_pinball_loss():
    levels = torch.tensor(QUANTILE_LEVELS)
    q = torch.zeros(1, 3, Q)
    target = torch.tensor([[1.0, float("nan")]])
    # target above every quantile by 1: pinball = level, averaged over levels = 0.5
    torch.testing.assert_close(fracast_loss(q, target, levels), torch.tensor(0.5))


def test_bundled_weights_count_as_present(tmp_path):
    """A KB model with source ``fracast-0`` (the weights inside the package) is not "without
    weights" for predict: it runs zero-shot like a model with a local folder."""
    from timetic.estimate.core import _bundled_weights

    assert FracastAdapter.weights_available("fracast-0") and FracastAdapter.weights_available("bundled")
    assert not FracastAdapter.weights_available("ztxtech/fracast-0")  # a hub id: nothing is downloaded
    assert FracastAdapter.weights_available(str(tmp_path))  # an existing folder
    assert _bundled_weights("fracast", "fracast-0") and not _bundled_weights("fracast", "elsewhere")
    assert not _bundled_weights("no-such-family", "fracast-0")
