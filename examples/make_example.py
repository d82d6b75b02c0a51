"""Generate ``examples/example_target.parquet``: a small hourly target for the quickstart.

Six hourly series of 2,400 points (100 days) in the long layout (item_id, timestamp, target):

* ``load_a``, ``load_b``: electricity-load-like, daily and weekly seasonality, slow trend;
* ``traffic``: sharp daily peaks (rush hours), weekend dip, multiplicative noise;
* ``temperature``: smooth daily cycle plus an AR(1) weather component;
* ``sales``: low counts (Poisson) with a daily cycle, many zeros;
* ``sensor``: a random walk with level shifts and a short gap of missing values (NaN).

Usage: ``python examples/make_example.py [--seed 0] [--out examples/example_target.parquet]``.
Same seed -> byte-identical values.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl


def make_example(seed: int = 0, length: int = 2400) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    t = np.arange(length, dtype=np.float64)
    day = 2 * np.pi * t / 24
    week = 2 * np.pi * t / (24 * 7)
    weekend = ((t // 24) % 7 >= 5).astype(float)
    series = {}
    for k, name in enumerate(("load_a", "load_b")):
        level = 100 + 40 * k
        s = level * (1 + 0.002 * t / 24) + 25 * np.sin(day - 1.2) + 10 * np.sin(2 * day) + 8 * np.sin(week)
        series[name] = s - 12 * weekend + rng.normal(0, 4 + 2 * k, length)
    rush = np.exp(-((t % 24 - 8) ** 2) / 4) + 0.8 * np.exp(-((t % 24 - 17) ** 2) / 5)
    series["traffic"] = (200 + 800 * rush * (1 - 0.6 * weekend)) * rng.lognormal(0, 0.1, length)
    ar = np.zeros(length)
    for i in range(1, length):
        ar[i] = 0.97 * ar[i - 1] + rng.normal(0, 0.4)
    series["temperature"] = 12 + 6 * np.sin(day - 2.0) + ar + 3 * np.sin(2 * np.pi * t / length)
    series["sales"] = rng.poisson(np.clip(1.5 + 1.5 * np.sin(day - 1.0), 0.05, None)).astype(float)
    walk = np.cumsum(rng.normal(0, 1, length)) + 20 * (t > length * 0.4) - 15 * (t > length * 0.75)
    walk[1500:1512] = np.nan
    series["sensor"] = walk + 50
    ts = pd.date_range("2024-01-01", periods=length, freq="h")
    return pl.concat(
        pl.DataFrame({"item_id": [name] * length, "timestamp": ts, "target": values})
        for name, values in series.items()
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("example_target.parquet"))
    args = parser.parse_args()
    df = make_example(args.seed)
    df.write_parquet(args.out)
    print(f"wrote {args.out}: {df.get_column('item_id').n_unique()} series, {df.height} rows")


if __name__ == "__main__":
    main()
