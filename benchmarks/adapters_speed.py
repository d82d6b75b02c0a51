"""Speed of every adapter at its tiny test size and its zoo sizes.

For each adapter and size: parameter count, forward (forecast) seconds per 64 windows, seconds
per 100 fine-tuning steps (batch 32) and entropy-profile seconds (64-series probe). Prints a table.

    python benchmarks/adapters_speed.py [--adapters a,b] [--sizes tiny,zoo-s,zoo-m] [--steps 100] [--threads 1]

Context length: each model's own; horizon 48 (hourly short task). Random weights (the timings do
not depend on the weights).
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    import torch

    from timetic.adapters import available_adapters, get_adapter
    from timetic.probe import probe_corpus
    from timetic.profile import compute_profile
    from timetic.recipe import Recipe

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapters", default=None)
    parser.add_argument("--sizes", default="tiny,zoo-s,zoo-m")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    names = args.adapters.split(",") if args.adapters else available_adapters()
    rng = np.random.default_rng(args.seed)
    corpus = probe_corpus(64, 2048, seed=args.seed)
    train = [corpus[i] for i in range(16)]
    H = 48
    print(f"torch threads {args.threads}; horizon {H}; fine-tuning {args.steps} steps, batch 32")
    header = f"{'adapter':<14}{'size':<8}{'params':>10}{'depth':>6}{'ctx':>6}{'fwd/64 s':>10}{'ft/100 s':>10}{'profile s':>10}"
    print(header)
    print("-" * len(header))
    for name in names:
        cls = get_adapter(name)
        for size in args.sizes.split(","):
            if size not in cls.sizes:
                continue
            model = cls.from_config(size, seed=args.seed)
            C = int(model.context_length)
            ctx = corpus[:64, -C:] + rng.normal(0, 0.01, (64, C))
            model.forecast(ctx[:2], H)  # warm-up
            t0 = time.perf_counter()
            model.forecast(ctx, H)
            fwd = time.perf_counter() - t0
            recipe = Recipe(steps=args.steps, batch_size=32, context_length=C, seed=args.seed, device="cpu")
            t0 = time.perf_counter()
            model.finetune(train, H, recipe)
            ft = (time.perf_counter() - t0) * 100 / max(args.steps, 1)
            t0 = time.perf_counter()
            compute_profile(model, seed=args.seed)
            prof = time.perf_counter() - t0
            print(f"{name:<14}{size:<8}{model.num_parameters:>10,}{model.depth:>6}{C:>6}{fwd:>10.2f}{ft:>10.2f}{prof:>10.2f}")


if __name__ == "__main__":
    main()
