"""Content overlap between the zoo's pretraining corpus and the evaluation data.

    python benchmarks/zoo/overlap.py [--data-dir DIR] [--k 12]

Names are not enough (statsmodels' ``co2`` and the Mauna Loa CO2 file are the same measurements
under two names), so this compares *values*. Every numeric column of every raw file in the data
folder (CSV, the CSV members of zip files, the series of ``.rda`` files) is read as one sequence;
long-format files are read column-wise, which keeps each item's run contiguous. A corpus series
overlaps when it shares a run of ``k`` consecutive values with an evaluation sequence under
either test:

* **exact**: the values, rounded to 4 significant digits, are equal;
* **affine**: the run is z-normalised (level and scale removed, so a copy in other units or
  another index base is caught) and rounded to 0.02; runs with a near-zero spread, with fewer
  than ``k // 2`` distinct values, or with fewer than ``k // 4`` turning points are ignored
  (flat, intermittent or smooth monotone runs match by chance).

It prints every overlapping corpus source with the evaluation file it matches; the sources it
finds are excluded in :data:`corpus.EXCLUDED` (with the reason) so that the corpus itself never
depends on the data folder. Measurements of the same quantity that are not copies (e.g. weekly
vs monthly CO2 averages) cannot be found from values: :data:`corpus.EXCLUDED` also lists those,
found by reading the sources.
"""

from __future__ import annotations

import argparse
import io
import sys
import warnings
import zipfile
from collections import defaultdict
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
for p in (HERE, ROOT):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))


def _numeric_columns(df) -> list[tuple[str, np.ndarray]]:
    import pandas as pd

    out = []
    for col in df.columns:
        v = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=np.float64)
        if np.isfinite(v).sum() >= 16:
            out.append((str(col), v))
    return out


def eval_sequences(data_dir: Path) -> list[tuple[str, np.ndarray]]:
    """(label, values) for every numeric column of every raw file in ``data_dir``."""
    import pandas as pd

    seqs: list[tuple[str, np.ndarray]] = []
    for path in sorted(data_dir.iterdir()):
        try:
            if path.suffix == ".csv":
                df = pd.read_csv(path, encoding="latin-1", low_memory=False)
                if path.name.startswith("m4_"):  # one series per row
                    df = df.set_index(df.columns[0]).T
                seqs += [(f"{path.name}:{c}", v) for c, v in _numeric_columns(df)]
            elif path.suffix == ".zip":
                with zipfile.ZipFile(path) as z:
                    for member in z.namelist():
                        if member.endswith(".csv") and not member.startswith("__MACOSX"):
                            df = pd.read_csv(io.BytesIO(z.read(member)), encoding="latin-1", low_memory=False)
                            seqs += [(f"{path.name}/{member}:{c}", v) for c, v in _numeric_columns(df)]
            elif path.suffix == ".rda":
                import rdata

                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    converted = rdata.read_rda(str(path))
                stack = list(converted.items())
                while stack:
                    name, obj = stack.pop()
                    if isinstance(obj, dict):
                        stack += [(f"{name}.{k}", v) for k, v in obj.items()]
                        continue
                    if isinstance(obj, (list, tuple)):
                        stack += [(f"{name}[{i}]", v) for i, v in enumerate(obj)]
                        continue
                    try:
                        arr = np.asarray(obj.values if hasattr(obj, "to_numpy") else obj, dtype=np.float64)
                    except (TypeError, ValueError):
                        continue
                    arr = np.asarray(getattr(obj, "values", obj), dtype=np.float64)
                    arr = arr.reshape(arr.shape[0], -1) if arr.ndim > 1 else arr[:, None]
                    for j in range(arr.shape[1]):
                        seqs.append((f"{path.name}:{name}[{j}]", arr[:, j]))
        except Exception as e:  # noqa: BLE001 - report the file and go on
            print(f"  (could not read {path.name}: {type(e).__name__}: {e})")
    return seqs


def _runs(y: np.ndarray, k: int, mode: str) -> set[bytes]:
    """Keys of the runs of ``k`` consecutive finite values of ``y``."""
    y = np.asarray(y, dtype=np.float64)
    if len(y) < k:
        return set()
    w = np.lib.stride_tricks.sliding_window_view(y, k)
    w = w[np.isfinite(w).all(axis=1)]
    if not len(w):
        return set()
    if mode == "exact":
        mag = np.where(w == 0, 1.0, 10 ** np.floor(np.log10(np.abs(np.where(w == 0, 1.0, w)))))
        keys = np.round(w / mag, 3) * mag
        keep = np.array([len(np.unique(r)) >= k // 2 for r in w])
    else:
        sd = w.std(axis=1, keepdims=True)
        d = np.diff(w, axis=1)
        turns = (np.sign(d[:, 1:]) * np.sign(d[:, :-1]) < 0).sum(axis=1)
        keep = (sd[:, 0] > 1e-9 * (np.abs(w).mean(axis=1) + 1e-12)) & (turns >= k // 4) \
            & np.array([len(np.unique(r)) >= k // 2 for r in w])
        keys = np.round((w - w.mean(axis=1, keepdims=True)) / np.where(sd > 0, sd, 1.0) / 0.02)
    keys = keys[keep]
    return {r.tobytes() for r in np.ascontiguousarray(keys, dtype=np.float64)}


def find_overlaps(corpus: list[tuple[str, np.ndarray]], evals: list[tuple[str, np.ndarray]], k: int = 12) -> dict[str, set[str]]:
    """corpus source -> the evaluation sequences it shares a run with (module docstring)."""
    hits: dict[str, set[str]] = defaultdict(set)
    for mode in ("exact", "affine"):
        index: dict[bytes, str] = {}
        for label, y in evals:
            for key in _runs(y, k, mode):
                index.setdefault(key, label)
        for source, y in corpus:
            for key in _runs(y, k, mode):
                if key in index:
                    hits[source].add(f"{index[key]} ({mode})")
    return hits


def main(argv: list[str] | None = None) -> int:
    from corpus import real_series

    from timetic.datasets import data_dir

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--k", type=int, default=12)
    args = parser.parse_args(argv)
    folder = Path(args.data_dir) if args.data_dir else data_dir()
    evals = eval_sequences(folder)
    series, info, record = real_series()
    corpus = [(f"{d['source']}#{i}", s) for i, (s, d) in enumerate(zip(series, info))]
    print(f"{len(evals)} evaluation sequences in {folder}; {len(corpus)} real corpus series "
          f"(excluded before the check: {record.get('excluded', {})})")
    hits = find_overlaps(corpus, evals, args.k)
    if not hits:
        print(f"no corpus series shares a run of {args.k} values with the evaluation data")
        return 0
    for source, where in sorted(hits.items()):
        print(f"OVERLAP {source}: {', '.join(sorted(where))}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
