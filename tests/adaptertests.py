"""Helpers shared by the adapter test modules: one torch thread, toy data, common checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from timetic.adapters import get_adapter, load_model
from timetic.errors import TimeticInputError


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    """Tiny models run fastest on one thread; with 2 threads on a busy 2-core machine torch's
    thread pool thrashes (measured 15-35x slower). Import it into a test module to use it there."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def tiny_fixture(names: list[str]):
    """A module-scoped fixture ``tiny``: the tiny random-weight model (seed 0) of each name."""

    @pytest.fixture(scope="module", params=names)
    def tiny(request):
        return get_adapter(request.param).from_config("tiny", seed=0)

    return tiny


def context(n: int = 4, C: int = 40, seed: int = 0) -> np.ndarray:
    """(n, C) noisy seasonal series (period 12) around 10 with random amplitudes."""
    rng = np.random.default_rng(seed)
    t = np.arange(C)
    return 10 + np.sin(2 * np.pi * t / 12)[None, :] * rng.uniform(1, 3, (n, 1)) + rng.normal(0, 0.2, (n, C))


def sine(length: int, period: float = 16.0, phase: float = 0.0) -> np.ndarray:
    """A noiseless sine around 5 (amplitude 2)."""
    return 5.0 + 2.0 * np.sin(2 * np.pi * np.arange(length) / period + phase)


def check_zoo_sizes(name: str) -> tuple:
    """The named sizes of a family: "tiny" < 150k parameters, zoo-s 300k-700k, zoo-m 0.8M-1.5M
    and deeper than zoo-s, unknown sizes refused. Returns the (tiny, zoo-s, zoo-m) adapters."""
    cls = get_adapter(name)
    assert cls.sizes == ("tiny", "zoo-s", "zoo-m")
    tiny, s, m = (cls.from_config(size) for size in cls.sizes)
    assert tiny.num_parameters < 150_000
    assert 300_000 <= s.num_parameters <= 700_000
    assert 800_000 <= m.num_parameters <= 1_500_000
    assert m.depth > s.depth
    with pytest.raises(TimeticInputError):
        cls.from_config("huge")
    return tiny, s, m


def check_save_load(name: str, path, x: np.ndarray) -> tuple:
    """Save a tiny model (seed 3) to ``path`` and load it back: same class, size, forecasts and
    layer embeddings (exactly), ``source`` the directory. Returns (saved, loaded) adapters."""
    a = get_adapter(name).from_config("tiny", seed=3)
    before = a.forecast(x, 20)
    emb_before = a.layer_embeddings(x)
    a.save_pretrained(path)
    b = load_model(path, adapter=name)
    assert type(b) is type(a) and b.source == str(path)
    assert (b.num_parameters, b.depth, b.context_length) == (a.num_parameters, a.depth, a.context_length)
    np.testing.assert_array_equal(b.forecast(x, 20), before)
    for e1, e2 in zip(emb_before, b.layer_embeddings(x)):
        torch.testing.assert_close(e1, e2, rtol=0, atol=0)
    return a, b
