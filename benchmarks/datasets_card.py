"""Regenerate the markdown data card of the registered evaluation datasets.

    python benchmarks/datasets_card.py [--data-dir DIR] [--out FILE] [--static] [--details]

Loads every dataset of :data:`timetic.datasets.DATASETS` from the shared data folder (``$TIMETIC_DATA_DIR``
or ``../shared/datasets``), checks the loaded series count and length range against each spec's card,
and prints one markdown table row per dataset: name, domain, freq, series, lengths, supported tasks
(series supporting short / medium / long), source and licence. ``--details`` adds one bullet per
dataset with its parsing choices. ``--static`` prints the card values without reading any data
(the tasks column is then left out). Exits 1 when a loaded dataset disagrees with its card.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

try:
    from timetic import datasets as ds
except ImportError:  # run from a checkout without installing the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from timetic import datasets as ds


def _lengths(lo: int, hi: int) -> str:
    return f"{lo:,}" if lo == hi else f"{lo:,}-{hi:,}"


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|")


def card_rows(data_dir: Path | None, static: bool) -> tuple[list[dict], list[str]]:
    """One row per dataset, and the card mismatches found while loading."""
    rows, problems = [], []
    for name, spec in ds.DATASETS.items():
        row = {"spec": spec, "n_series": spec.n_series, "lengths": spec.lengths, "tasks": None}
        if not static:
            t0 = time.perf_counter()
            target = ds.load_dataset(name, data_dir)
            row["load_s"] = time.perf_counter() - t0
            lengths = target.lengths
            row["n_series"] = target.n_series
            row["lengths"] = (int(lengths.min()), int(lengths.max()))
            row["tasks"] = ds.supported_tasks(target)
            if (row["n_series"], row["lengths"]) != (spec.n_series, spec.lengths):
                problems.append(
                    f"{name}: loaded {row['n_series']} series, lengths {row['lengths']}; card says "
                    f"{spec.n_series} series, lengths {spec.lengths}"
                )
        rows.append(row)
    return rows, problems


def markdown(rows: list[dict], details: bool = False) -> str:
    with_tasks = rows and rows[0]["tasks"] is not None
    head = ["name", "domain", "freq", "series", "lengths"] + (["tasks (short / medium / long)"] if with_tasks else []) + ["source (repo @ commit : path)", "licence"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        s = r["spec"]
        cells = [f"`{s.name}`", s.domain, s.freq, str(r["n_series"]), _lengths(*r["lengths"])]
        if with_tasks:
            n = r["n_series"]
            cells.append(" / ".join(f"{r['tasks'][t]}/{n}" for t in ds.TASK_NAMES))
        cells += [s.source.replace("@", " @ ", 1).replace(":", " : ", 1), s.licence]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    n_domains = len({r["spec"].domain for r in rows})
    n_series = sum(r["n_series"] for r in rows)
    lines.append("")
    lines.append(f"{len(rows)} datasets, {n_series:,} series, {n_domains} domains.")
    if details:
        lines.append("")
        lines.append("Parsing choices:")
        lines.append("")
        for r in rows:
            lines.append(f"* `{r['spec'].name}`: {r['spec'].description}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", type=Path, default=None, help="folder of the files (default: ds.data_dir())")
    p.add_argument("--out", type=Path, default=None, help="also write the table to this file")
    p.add_argument("--static", action="store_true", help="card values only; read no data")
    p.add_argument("--details", action="store_true", help="add each dataset's parsing choices")
    args = p.parse_args(argv)
    rows, problems = card_rows(args.data_dir, args.static)
    text = markdown(rows, args.details)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    for msg in problems:
        print(f"card mismatch: {msg}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
