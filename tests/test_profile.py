"""Probe corpus, entropy estimators and entropy profiles (with a tiny test-only adapter:
:mod:`testmodels`)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from timetic.adapters import base as adapter_base
from timetic.errors import TimeticInputError
from timetic.probe import probe_corpus, probe_from_windows
from timetic.profile import (
    compute_profile,
    entropy_profile,
    knn_entropy,
    layer_entropy,
    renyi_entropy,
    resample_profile,
    standardize_tokens,
)

from adaptertests import single_thread  # noqa: F401  (autouse: one torch thread)
from testmodels import TRANSFORMER_NAME as NAME
from testmodels import PatchTransformerAdapter, real_adapters, tiny_real_adapter

# ---------------------------------------------------------------------------------------------
# probe


def test_probe_corpus_deterministic_and_varied():
    a = probe_corpus(64, 512, seed=0)
    assert a.shape == (64, 512) and np.isfinite(a).all()
    assert np.array_equal(a, probe_corpus(64, 512, seed=0))
    assert not np.array_equal(a, probe_corpus(64, 512, seed=1))
    # varied scales and levels, some non-negative integer count series
    std = a.std(axis=1)
    assert std.max() / std.min() > 100
    counts = a[7::8]
    assert (counts >= 0).all() and np.array_equal(counts, np.round(counts))
    assert probe_corpus(5, 3).shape == (5, 3)
    with pytest.raises(TimeticInputError):
        probe_corpus(0, 10)


def test_probe_from_windows():
    ctx = np.arange(200.0).reshape(100, 2)
    p = probe_from_windows(ctx, n=10, seed=0)
    assert p.shape == (10, 2)
    assert np.all(np.diff(p[:, 0]) > 0)  # original order
    assert np.array_equal(p, probe_from_windows(ctx, n=10, seed=0))
    assert probe_from_windows(ctx[:5], n=10).shape == (5, 2)


# ---------------------------------------------------------------------------------------------
# estimators


@pytest.mark.parametrize("d", [2, 3, 5, 8])
def test_knn_entropy_gaussian_analytic(d):
    rng = np.random.default_rng(d)
    a = rng.standard_normal((d, d))
    cov = a @ a.T + 0.5 * np.eye(d)
    x = rng.multivariate_normal(np.zeros(d), cov, size=5000)
    analytic = 0.5 * np.linalg.slogdet(2 * np.pi * np.e * cov)[1]
    assert knn_entropy(x, k=3) == pytest.approx(analytic, abs=0.05 * d + 0.05)
    # after standardisation (d <= 32: z-score only): the entropy of the correlation matrix
    sd = np.sqrt(np.diag(cov))
    corr = cov / np.outer(sd, sd)
    analytic_std = 0.5 * np.linalg.slogdet(2 * np.pi * np.e * corr)[1]
    assert layer_entropy(x, "knn") == pytest.approx(analytic_std, abs=0.05 * d + 0.05)


def test_knn_entropy_duplicates_finite():
    x = np.zeros((500, 4))
    x[:250] = np.random.default_rng(0).standard_normal((250, 4))
    assert np.isfinite(knn_entropy(x))
    assert np.isfinite(layer_entropy(np.ones((100, 8)), "knn"))
    assert layer_entropy(np.ones((100, 8)), "renyi") == 0.0


def test_renyi_orders_isotropic_above_low_rank():
    rng = np.random.default_rng(0)
    iso = rng.standard_normal((3000, 64))
    low = rng.standard_normal((3000, 2)) @ rng.standard_normal((2, 64)) + 1e-3 * rng.standard_normal((3000, 64))
    h_iso, h_low = layer_entropy(iso, "renyi"), layer_entropy(low, "renyi")
    assert h_iso == pytest.approx(math.log(32), abs=0.05)  # projected to 32 dims, isotropic
    assert h_low < math.log(2) + 0.05 < h_iso
    assert layer_entropy(iso, "knn") > layer_entropy(low, "knn")
    # raw estimator: isotropic in p dims -> log p
    assert renyi_entropy(rng.standard_normal((5000, 8))) == pytest.approx(math.log(8), abs=0.02)


def test_standardisation_width_invariant():
    rng = np.random.default_rng(1)
    values = [layer_entropy(rng.standard_normal((4000, d)) * rng.uniform(0.1, 10, d), "knn") for d in (32, 64, 256)]
    assert max(values) - min(values) < 0.5
    assert standardize_tokens(rng.standard_normal((100, 300))).shape == (100, 32)
    y = standardize_tokens(rng.standard_normal((100, 300)) * 1e6)
    assert np.mean(np.sum(y**2, axis=1)) == pytest.approx(32)


def test_layer_entropy_accepts_torch_and_respects_max_tokens(monkeypatch):
    import timetic.profile as prof

    seen = []
    real = prof.knn_entropy
    monkeypatch.setattr(prof, "knn_entropy", lambda y, k=3: seen.append(y.shape) or real(y, k))
    x = torch.randn(5000, 16)
    h = layer_entropy(x, "knn", max_tokens=700, seed=0)
    assert seen[-1] == (700, 16)
    assert h == layer_entropy(x.numpy(), "knn", max_tokens=700, seed=0)
    assert h != layer_entropy(x, "knn", max_tokens=700, seed=1)  # a different subsample
    with pytest.raises(TimeticInputError):
        layer_entropy(x, "shannon")


@pytest.mark.parametrize("depth", [1, 2, 5, 12, 30])
def test_resample_profile_linear_ramp(depth):
    raw = 3.0 + 2.0 * np.linspace(0, 1, depth + 1)
    out = resample_profile(raw, 6)
    assert out.shape == (6,)
    np.testing.assert_allclose(out, 3.0 + 2.0 * np.linspace(0, 1, 6))
    assert out[0] == raw[0] and out[-1] == raw[-1]
    assert resample_profile(np.sin(np.arange(depth + 1.0)), 9)[[0, -1]].tolist() == [0.0, math.sin(depth)]
    with pytest.raises(TimeticInputError):
        resample_profile(np.array([1.0]))


# ---------------------------------------------------------------------------------------------
# profiles of a model


@pytest.fixture(scope="module")
def small_probe():
    return probe_corpus(32, 64, seed=0)


def test_profile_shape_deterministic(small_probe):
    a = PatchTransformerAdapter.from_config(seed=0)
    r = compute_profile(a, small_probe, estimator="knn")
    assert r.raw.shape == (a.depth + 1,) and r.profile.shape == (6,)
    assert np.isfinite(r.raw).all()
    assert r.n_tokens.tolist() == [32 * 8] * 3 and r.widths.tolist() == [32] * 3
    again = entropy_profile(PatchTransformerAdapter.from_config(seed=0), small_probe, estimator="knn")
    np.testing.assert_array_equal(r.profile, again)
    assert json.dumps(r.to_dict())  # storable


def test_profile_differs_between_architectures(small_probe):
    a = entropy_profile(PatchTransformerAdapter.from_config(seed=0), small_probe, estimator="renyi")
    b = entropy_profile(PatchTransformerAdapter.from_config(seed=1), small_probe, estimator="renyi")
    c = entropy_profile(
        PatchTransformerAdapter.from_config(seed=0, d_model=48, n_layers=4), small_probe, estimator="renyi"
    )
    assert np.abs(a - b).max() > 1e-3
    assert np.abs(a - c).max() > 1e-3


def test_profile_default_probe_and_chunking():
    a = PatchTransformerAdapter.from_config(seed=0)
    calls = []
    r = compute_profile(
        a, None, estimator="renyi", max_tokens=100, batch_size=16, progress=lambda i, n: calls.append((i, n))
    )
    assert r.probe_shape == (64, a.context_length)  # default corpus at the model's context length
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert (r.n_tokens == 100).all()
    # a longer probe keeps its last C points
    long = probe_corpus(8, 200, seed=3)
    r1 = compute_profile(a, long, estimator="renyi")
    r2 = compute_profile(a, long[:, -a.context_length :], estimator="renyi")
    np.testing.assert_array_equal(r1.raw, r2.raw)


def test_profile_after_save_load(tmp_path, small_probe):
    a = PatchTransformerAdapter.from_config(seed=2)
    a.save_pretrained(tmp_path / "m")
    b = adapter_base.load_model(tmp_path / "m", adapter=NAME)
    np.testing.assert_array_equal(entropy_profile(a, small_probe), entropy_profile(b, small_probe))


@pytest.mark.parametrize("name", real_adapters() or ["(none)"])
def test_real_adapter_profile_smoke(name):
    a = tiny_real_adapter(name)
    probe = probe_corpus(8, min(int(a.context_length), 128), seed=0)
    for est in ("knn", "renyi"):
        r = compute_profile(a, probe, estimator=est)
        assert r.raw.shape == (a.depth + 1,)
        assert np.isfinite(r.profile).all()
