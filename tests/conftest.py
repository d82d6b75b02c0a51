import numpy as np
import pandas as pd
import polars as pl
import pytest


def make_long(n_series: int = 3, length: int = 1200, freq: str = "h", seed: int = 0) -> pl.DataFrame:
    """A long-layout frame of seasonal random series."""
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(n_series):
        t = np.arange(length)
        y = 10 + np.sin(2 * np.pi * t / 24) * (i + 1) + rng.normal(0, 0.3, length).cumsum() * 0.1
        frames.append(
            pl.DataFrame(
                {"item_id": [f"s{i}"] * length, "timestamp": pd.date_range("2024-01-01", periods=length, freq=freq), "target": y}
            )
        )
    return pl.concat(frames)


@pytest.fixture
def long_frame() -> pl.DataFrame:
    return make_long()


@pytest.fixture(scope="session")
def tiny_kb(tmp_path_factory):
    """A small real knowledge base: 4 generated datasets x 4 tiny models (short task)."""
    from kbfactory import build_tiny_kb

    return build_tiny_kb(tmp_path_factory.mktemp("kb") / "kb")


@pytest.fixture(scope="session")
def tabpfn_checkpoint(tmp_path_factory):
    from checkpoints import build_tabpfn_v2_checkpoint

    return build_tabpfn_v2_checkpoint(tmp_path_factory.mktemp("tabpfn") / "tabpfn-v2-tiny.ckpt")


@pytest.fixture(scope="session")
def tabicl_checkpoint(tmp_path_factory):
    from checkpoints import build_tabicl_checkpoint

    return build_tabicl_checkpoint(tmp_path_factory.mktemp("tabicl") / "tabicl-tiny.ckpt")


def pytest_configure(config):
    """Tiny models on a 2-core machine: one torch thread is faster and steadier than two."""
    import torch

    torch.set_num_threads(1)


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    """Tests never read or write the user's zero-shot cache."""
    import os

    old = os.environ.get("TIMETIC_CACHE_DIR")
    os.environ["TIMETIC_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if old is None:
        os.environ.pop("TIMETIC_CACHE_DIR", None)
    else:
        os.environ["TIMETIC_CACHE_DIR"] = old
