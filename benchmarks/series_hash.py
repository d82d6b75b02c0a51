"""Fill (or refresh) the ``series_hash`` of a KB's registered datasets.

    python benchmarks/series_hash.py [--kb meta_features] [--max-series 24] [--max-length 20000]

``series_hash`` (:func:`timetic.kb.series_hash`) recognises a dataset's series under other names,
so ``verify`` leaves a KB dataset out of the prediction when a user's file holds the same series.
For every registered dataset of the KB, the dataset is loaded with build_kb's caps; its
``content_hash`` must equal the stored one (else the dataset is left alone and named), and only the
``series_hash`` column is written, where it is missing or differs. Needs the raw datasets (``TIMETIC_DATA_DIR``).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    from timetic.datasets import DATASETS, load_dataset
    from timetic.errors import TimeticWarning
    from timetic.kb import KnowledgeBase, content_hash, default_kb_path, series_hash

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kb", type=Path, default=default_kb_path())
    ap.add_argument("--max-series", type=int, default=24, help="build_kb.py's cap (default 24)")
    ap.add_argument("--max-length", type=int, default=20000, help="build_kb.py's cap (default 20000)")
    args = ap.parse_args(argv)
    kb = KnowledgeBase.open(args.kb)
    todo = kb.datasets()
    rows, skipped = [], []
    for dataset_id, stored, had in todo.select("dataset_id", "content_hash", "series_hash").iter_rows():
        if dataset_id not in DATASETS:
            skipped.append(f"{dataset_id} (not registered)")
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", TimeticWarning)
            target = load_dataset(dataset_id, max_series=args.max_series, max_length=args.max_length)
        if content_hash(target.frame) != stored:
            skipped.append(f"{dataset_id} (the registered data differs from what the KB holds)")
            continue
        digest = series_hash(target.frame)
        if digest != had:
            rows.append({"dataset_id": dataset_id, "series_hash": digest})
    if rows:
        kb.add_datasets(pl.DataFrame(rows))
    print(f"{args.kb}: series_hash written for {len(rows)} dataset(s)"
          + (f"; left alone: {', '.join(skipped)}" if skipped else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
