"""Is P(best) calibrated? The stack's P(best) with and without its temperature recalibration.

    python benchmarks/calibration.py [--kb meta_features] [--out benchmarks/results/calibration.md]

``timetic predict`` reports P(best), each candidate's probability of being the best model after
fine-tuning. It starts as the frequency with which a candidate is best in joint samples (the
predictions plus whole residual vectors of the KB's cells); those frequencies were overconfident
(RESULTS.md's reliability table: a mean P(best) of 0.47 was right 19-22 % of the time), so the
stack fits a temperature ``a`` on the KB's own cells (``StackedRanker._fit_best_temperature``) and
reports p ∝ (p_raw + 1/400)^a. This script runs the unseen-dataset scenario (``timetic.evaluate``,
default estimator with and without zero-shot scores) with the temperature and with ``a = 1`` (the
raw frequencies) and prints the Brier score against the base rate 1/G and a reliability table.
The temperature is fitted inside each fold, on the training datasets only.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _report import tables, write_result  # noqa: E402

BINS = ((0.0, 0.2), (0.2, 0.4), (0.4, 0.6), (0.6, 1.01))


def p_best_table(kb_path: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(Brier table, reliability table) of P(best) with and without the temperature."""
    from timetic.estimate import TimeTic
    from timetic.estimate.stack import StackedRanker
    from timetic.evaluate import evaluate
    from timetic.kb import KnowledgeBase

    import shutil
    import tempfile

    snapshot = Path(tempfile.mkdtemp(prefix="timetic-kb-")) / kb_path.name  # both runs read the same KB,
    shutil.copytree(kb_path, snapshot, ignore=shutil.ignore_patterns(".lock"))  # even while a grid adds to it
    kb = KnowledgeBase(snapshot)
    makers = {"timetic": lambda: TimeTic(kb, seed=0), "weight-free": lambda: TimeTic(kb, seed=0, zero_shot=False)}
    fitted = StackedRanker._fit_best_temperature
    brier, reliability = [], []
    for variant in ("temperature (default)", "raw frequencies (a = 1)"):
        if variant.startswith("raw"):
            StackedRanker._fit_best_temperature = lambda self, cells, **kw: 1.0
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = evaluate(kb, scenarios=("unseen-dataset",), make_estimator=makers, baselines=False)
        finally:
            StackedRanker._fit_best_temperature = fitted
        p = res.predictions.with_columns(
            (pl.col("observed") == pl.col("observed").min().over("method", "dataset_id", "task"))
            .cast(pl.Float64).alias("y"),
            pl.len().over("method", "dataset_id", "task").alias("G"),
        )
        for (method,), g in p.group_by("method", maintain_order=True):
            y, q, G = g["y"].to_numpy(), g["p_best"].to_numpy(), g["G"].to_numpy()
            brier.append({"method": method, "P(best)": variant, "predictions": len(y),
                          "Brier": round(float(np.mean((q - y) ** 2)), 4),
                          "base rate 1/G": round(float(np.mean((1.0 / G - y) ** 2)), 4)})
            for lo, hi in BINS:
                k = (q >= lo) & (q < hi)
                reliability.append({"method": method, "P(best)": variant, "bin": f"{lo:.1f}-{min(hi, 1.0):.1f}",
                                    "n": int(k.sum()), "mean p": round(float(q[k].mean()), 3) if k.any() else None,
                                    "observed": round(float(y[k].mean()), 3) if k.any() else None})
    shutil.rmtree(snapshot.parent, ignore_errors=True)
    return pl.DataFrame(brier), pl.DataFrame(reliability)


def main(argv: list[str] | None = None) -> int:
    from timetic.kb import default_kb_path

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kb", type=Path, default=default_kb_path())
    ap.add_argument("--out", type=Path, default=None, help="also write the tables (markdown) here")
    args = ap.parse_args(argv)
    t0 = time.time()
    brier, reliability = p_best_table(args.kb)
    from timetic.estimate import TimeTic

    a = {zs: TimeTic.from_kb(args.kb, zero_shot=zs).fit().learner_.best_temperature_ for zs in (True, False)}
    with tables():
        text = (f"{args.kb.name}: unseen dataset, {time.time() - t0:.0f} s\n{brier}\n{reliability}\n"
                f"temperature fitted on the whole KB: {a[True]:g} with zero-shot scores, {a[False]:g} weight-free")
    print(text)
    if args.out:
        write_result(args.out, "calibration.py", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
