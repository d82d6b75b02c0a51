"""Time the fast feature backend against tsfresh's efficient set, both single-process.

    python benchmarks/features_speed.py [--windows 1000] [--length 512] [--seed 0]

Windows are a seeded mix of sine + trend + noise and random walks with 2 % missing values.
"""

from __future__ import annotations

import argparse
import sys
import time

from pathlib import Path

import numpy as np

try:
    from timetic.features import window_features
except ImportError:  # run from a checkout without installing the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from timetic.features import window_features

TARGET_RATIO = 20.0
PERIOD = 24


def make_windows(n_windows: int, length: int, seed: int) -> np.ndarray:
    """Seeded windows of shape (n_windows, length): half seasonal+trend+noise, half random walks."""
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    n_seasonal = n_windows // 2
    amp = rng.uniform(0.5, 3.0, (n_seasonal, 1))
    phase = rng.uniform(0, 2 * np.pi, (n_seasonal, 1))
    slope = rng.normal(0, 0.01, (n_seasonal, 1))
    seasonal = amp * np.sin(2 * np.pi * t / PERIOD + phase) + slope * t + rng.normal(0, 0.5, (n_seasonal, length))
    walks = np.cumsum(rng.normal(0, 1, (n_windows - n_seasonal, length)), axis=1)
    x = np.vstack([seasonal, walks])[rng.permutation(n_windows)]
    x[rng.random(x.shape) < 0.02] = np.nan
    return x


def timed(x: np.ndarray, backend: str) -> tuple[float, float, int]:
    """Wall-clock seconds, CPU seconds of this process (robust to a busy machine), columns."""
    wall, cpu = time.perf_counter(), time.process_time()
    df = window_features(x, PERIOD, backend=backend)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    assert np.isfinite(df.to_numpy()).all()
    return wall, cpu, df.width


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=1000)
    parser.add_argument("--length", type=int, default=512)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    x = make_windows(args.windows, args.length, args.seed)
    window_features(x[:4], PERIOD)  # warm-up: imports
    fast_s, fast_cpu, fast_n = timed(x, "fast")
    print(f"windows: {args.windows} x {args.length}")
    print(f"fast:    {fast_s:8.2f} s wall  {fast_cpu:8.2f} s cpu  {fast_n} features")
    try:
        import tsfresh  # noqa: F401
    except ImportError:
        print("tsfresh is not installed; skipped (pip install 'timetic[tsfresh]')")
        return 0
    window_features(x[:2, :32], PERIOD, backend="tsfresh")  # warm-up: imports
    tsf_s, tsf_cpu, tsf_n = timed(x, "tsfresh")
    ratio = tsf_s / fast_s
    print(f"tsfresh: {tsf_s:8.2f} s wall  {tsf_cpu:8.2f} s cpu  {tsf_n} features")
    print(f"ratio tsfresh / fast: {ratio:.1f}x wall, {tsf_cpu / fast_cpu:.1f}x cpu")
    met = "met" if ratio >= TARGET_RATIO else "NOT met"
    print(f"target >= {TARGET_RATIO:.0f}x faster: {met}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
