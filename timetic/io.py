"""Small file helpers: atomic writes (temp file in the same folder, fsync, rename)."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import polars as pl

from timetic.errors import TimeticInputError


def check_output_path(path: str | Path) -> Path:
    """Raise :class:`TimeticInputError` unless ``path`` can be written as a file.

    Commands call it before their work, so that a bad ``--out`` fails at once, not after it.
    """
    path = Path(path)
    if path.is_dir():
        raise TimeticInputError(
            f"output path {path} is a directory; give a file name, e.g. {path / ('out' + (path.suffix or '.csv'))}"
        )
    if not path.parent.exists():
        raise TimeticInputError(f"output folder {path.parent} does not exist; create it first")
    if not path.parent.is_dir():
        raise TimeticInputError(f"output folder {path.parent} is a file, not a folder; choose another output path")
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise TimeticInputError(f"output folder {path.parent} is not writable; choose another output path")
    return path


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success fsync it and rename it over ``path``.

    On any error the temporary file is removed and ``path`` keeps its previous content. A
    ``path`` that cannot be a file (a directory, in a missing or read-only folder) raises
    :class:`TimeticInputError` before anything is written.
    """
    path = check_output_path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise TimeticInputError(
            f"cannot write in {path.parent} ({e.strerror or type(e).__name__}); choose another output path"
        ) from e
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as f:
            os.fsync(f.fileno())
        # mkstemp makes 0600 files: keep an existing file's mode, else follow the user's umask
        tmp_path.chmod(path.stat().st_mode & 0o7777 if path.exists() else _umask_mode())
        os.replace(tmp_path, path)
        _fsync_dir(path.parent)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _umask_mode() -> int:
    """0o666 less the process umask: the mode ``open()`` would give a new file."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_table(df: pl.DataFrame, path: str | Path) -> Path:
    """Write ``df`` atomically as parquet, CSV or JSON (by extension)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".parquet", ".csv", ".json"):
        raise TimeticInputError(
            f"unknown output format {suffix or '(none)'!r} for {path.name}; use .parquet, .csv or .json"
        )
    with atomic_path(path) as tmp:
        if suffix == ".parquet":
            df.write_parquet(tmp)
        elif suffix == ".csv":
            df.write_csv(tmp)
        else:
            df.write_json(tmp)
    return path
