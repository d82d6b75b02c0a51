"""How the benchmark scripts print their tables and write them under ``benchmarks/results/``."""

from __future__ import annotations

from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[1]


def tables() -> pl.Config:
    """A polars config that prints whole tables (every row and column, no shape line)."""
    return pl.Config(tbl_rows=-1, tbl_cols=-1, tbl_width_chars=200, tbl_hide_dataframe_shape=True)


def _shown(path: Path) -> str:
    """``path`` relative to the project root where it lies inside it, as a user would type it."""
    path = Path(path)
    return str(path.relative_to(ROOT)) if path.is_absolute() and ROOT in path.parents else str(path)


def write_result(out: Path, script: str, text: str, args: str = "", section: str | None = None) -> None:
    """Write ``text`` (a script's printed output) as a markdown file at ``out`` that names the command;
    with ``section``, append it to ``out`` under that heading instead of replacing the file."""
    command = f"`python benchmarks/{script} {args}--out {_shown(out)}`".replace("  ", " ")
    if section is not None:
        with Path(out).open("a") as f:
            f.write(f"\n## {section}\n\n{command} (appended)\n\n```\n{text}\n```\n")
        return
    Path(out).write_text(f"# benchmarks/{script} — output of one run\n\n{command}\n\n```\n{text}\n```\n")
