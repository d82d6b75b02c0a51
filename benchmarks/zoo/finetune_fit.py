"""Does a zoo model fit its fine-tuning data? Chronos-Bolt against the others (issue 11, section 3).

    python benchmarks/zoo/finetune_fit.py [--target examples/example_target.parquet] [--what families|bolt|all]

Fine-tunes zoo models on a target's training part with the adapters' own training step (the
model's loss through ``Adapter._loss``, every parameter, AdamW, gradient clipping at 1, batch 32,
no early stopping) and prints, per run, the loss on one fixed batch of 64 training windows
(model in eval mode) every 100 steps, and the mean MASE of the median forecast on 8 held-out
windows per series (the last 8 x H points, never trained on) before and after. Horizon 24,
context 512, seasonality 24 (hourly), seed 0, one torch thread.

``--what families``: chronos-bolt-s and chronos-2-s at their chosen rate (1e-3), patchtst-s at its
(1e-4), 300 steps. ``--what bolt``: chronos-bolt-s with dropout off, at 1e-2 and 1e-4, and for
1,000 steps. Output: benchmarks/zoo/FINDINGS.md, "Why Chronos-Bolt barely moves".
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

H, C, S, N_TEST = 24, 512, 24, 8


def split(path: Path) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """(training series, test contexts (n, C), test futures (n, H)): the last N_TEST x H points of
    every series are held out, in N_TEST consecutive windows."""
    df = pl.read_parquet(path)
    item, ts, y = df.columns[:3]
    train, ctx, fut = [], [], []
    for _, g in df.group_by(item, maintain_order=True):
        s = g.sort(ts).get_column(y).to_numpy().astype(float)
        cut = len(s) - N_TEST * H
        train.append(s[:cut])
        for k in range(N_TEST):
            e = cut + k * H
            ctx.append(s[max(0, e - C):e])
            fut.append(s[e:e + H])
    width = max(len(c) for c in ctx)
    ctx = [np.concatenate([np.full(width - len(c), np.nan), c]) for c in ctx]
    return train, np.array(ctx), np.array(fut)


def run(model: str, adapter: str, lr: float, data, steps: int = 300, dropout: bool = True) -> str:
    import torch

    from timetic.adapters import load_model
    from timetic.adapters.base import sample_training_windows
    from timetic.scoring import score_windows

    train, test_ctx, test_fut = data

    def mase(ad) -> float:
        q = ad.forecast(test_ctx, H)
        return float(np.nanmean(score_windows(test_ctx, test_fut, q, ad.quantile_levels, S)["mase"]))

    base = load_model(ROOT / "timetic" / "zoo" / "v2" / model, adapter=adapter)
    before = mase(base)
    new = base._copy()
    new._prepare_finetune(H)
    h = new._max_train_horizon(H)
    fc, ff = (torch.as_tensor(x, dtype=torch.float32)
              for x in sample_training_windows(train, C, h, 64, np.random.default_rng(123)))
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    opt = torch.optim.AdamW(new.model.parameters(), lr=lr, weight_decay=0.0)

    def fixed_loss() -> float:
        new.model.eval()
        with torch.no_grad():
            return float(new._loss(fc, ff))

    curve = [fixed_loss()]
    t0 = time.time()
    for step in range(1, steps + 1):
        new.model.train(dropout)
        ctx, fut = sample_training_windows(train, C, h, 32, rng)
        loss = new._loss(torch.as_tensor(ctx, dtype=torch.float32), torch.as_tensor(fut, dtype=torch.float32))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(new.model.parameters(), 1.0)
        opt.step()
        if step % 100 == 0:
            curve.append(fixed_loss())
    new.model.eval()
    after = mase(new)
    return (f"{model:<15} lr={lr:<7g} steps={steps:<5} dropout={'on' if dropout else 'off':<4} "
            f"fixed-batch loss {curve[0]:.3f} -> {curve[-1]:.3f} ({curve[-1] / curve[0] - 1:+.1%})  "
            f"held-out MASE {before:.3f} -> {after:.3f}  [{time.time() - t0:.0f} s]")


def main() -> None:
    import torch

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--target", type=Path, default=ROOT / "examples" / "example_target.parquet")
    p.add_argument("--what", choices=("families", "bolt", "all"), default="all")
    args = p.parse_args()
    torch.set_num_threads(1)
    data = split(args.target)
    runs = []
    if args.what in ("families", "all"):
        runs += [("chronos-bolt-s", "chronos-bolt", 1e-3, {}), ("chronos-2-s", "chronos-2", 1e-3, {}),
                 ("patchtst-s", "patchtst", 1e-4, {})]
    if args.what in ("bolt", "all"):
        runs += [("chronos-bolt-s", "chronos-bolt", 1e-3, {"dropout": False}),
                 ("chronos-bolt-s", "chronos-bolt", 1e-2, {}), ("chronos-bolt-s", "chronos-bolt", 1e-4, {}),
                 ("chronos-bolt-s", "chronos-bolt", 1e-3, {"steps": 1000})]
    print(f"target {args.target.name}: {len(data[0])} series, {len(data[1])} held-out windows, H={H}, C={C}")
    for model, adapter, lr, kw in runs:
        print(run(model, adapter, lr, data, **kw), flush=True)


if __name__ == "__main__":
    main()
