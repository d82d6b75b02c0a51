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
