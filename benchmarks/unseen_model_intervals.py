"""How sure to be of a model the KB has no observation of? Interval coverage of held-out models.

    python benchmarks/unseen_model_intervals.py [--kb meta_features] [--out benchmarks/results/unseen_model_intervals.md]

`timetic predict` ranks a model the KB holds a profile of but no fine-tuning observation (added
with ``timetic add-model``) as an *unseen model*. Its 90% interval comes from the conformal
residuals of the other models (it has none of its own). Are those honest for a model whose
priors are borrowed from its profile neighbours? The unseen-model scenario answers: each model in
turn is left out of the KB, and its prediction on every dataset (from the fold without it) is
compared with what it really scored after fine-tuning. Two interval rules, in the same folds:

* ``pooled`` (what predict does): the other models' residuals as they are;
* ``widened``: the same, scaled so that the held-out model's interval is as wide as the least
  sure observed model's (a conservative rule that was tried and measured here).

With zero-shot scores (the default) and weight-free (``--no-zero-shot``). Printed: coverage of
the observed mean fine-tuned MASE per task and overall, median log-width, and the Spearman ρ of
the rankings assembled from held-out predictions (the same for both rules).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _report import write_result  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    from timetic.estimate import TimeTic
    from timetic.evaluate import evaluate
    from timetic.kb import KnowledgeBase, default_kb_path

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kb", type=Path, default=default_kb_path())
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    kb = KnowledgeBase.open(args.kb)

    class Widened(TimeTic):
        """The held-out model's residuals scaled to the widest observed model's interval."""

        def _rank_stack(self, rows, candidates):
            r = super()._rank_stack(rows, candidates)
            unseen = pl.col("model_id").is_in(list(getattr(self, "unobserved_models_", [])))
            w = (pl.col("upper_90") / pl.col("lower_90")).log()
            widest = r.filter(~unseen).select(w.max()).item()
            if widest is None or not r.filter(unseen).height:
                return r
            f = pl.when(unseen & (w < widest) & (w > 0)).then(widest / w).otherwise(1.0)
            mid = pl.col("predicted_mase").log()
            return r.with_columns(
                (mid + (pl.col("lower_90").log() - mid) * f).exp().alias("lower_90"),
                (mid + (pl.col("upper_90").log() - mid) * f).exp().alias("upper_90"),
            )

    t0 = time.time()
    res = evaluate(kb, scenarios=("unseen-model",), baselines=False, seed=0, make_estimator={
        "pooled": lambda: TimeTic(kb, seed=0), "widened": lambda: Widened(kb, seed=0),
        "weight-free pooled": lambda: TimeTic(kb, seed=0, zero_shot=False),
        "weight-free widened": lambda: Widened(kb, seed=0, zero_shot=False)})
    took = time.time() - t0
    p = res.predictions.filter(pl.col("lower_90").is_not_nan())
    cov = (pl.col("observed") >= pl.col("lower_90")) & (pl.col("observed") <= pl.col("upper_90"))
    width = (pl.col("upper_90") / pl.col("lower_90")).log()
    per_task = (p.group_by("method", "task").agg(cov.mean().round(3).alias("coverage"),
                                                 width.median().round(3).alias("median log-width"), pl.len())
                .sort("method", "task"))
    overall = (p.group_by("method").agg(cov.mean().round(3).alias("coverage"), pl.len())
               .join(res.rows.group_by("method").agg(pl.col("spearman").mean().round(3)), on="method").sort("method"))
    with pl.Config(tbl_rows=-1, tbl_hide_dataframe_shape=True, tbl_width_chars=120):
        text = f"{args.kb.name}: unseen-model scenario, {took:.0f} s\n{per_task}\n{overall}"
    print(text)
    if args.out:
        write_result(args.out, "unseen_model_intervals.py", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
