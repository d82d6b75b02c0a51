"""A small on-disk cache of zero-shot scores, so that a repeated predict skips the models.

Entries are ``.npy`` arrays under ``TIMETIC_CACHE_DIR`` (default ``$XDG_CACHE_HOME/timetic`` or
``~/.cache/timetic``; set it to ``off`` to disable), keyed by a sha256 of everything the scores
depend on: the model (adapter, source path, the size and modification time of every file under it,
its KB revision), the task (horizon, seasonality) and the exact window values. Writes are atomic;
an unreadable entry is recomputed.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np

#: environment variable of the cache folder (``off`` disables the cache).
CACHE_ENV = "TIMETIC_CACHE_DIR"


def cache_dir() -> Path | None:
    value = os.environ.get(CACHE_ENV)
    if value is not None:
        return None if value.strip().lower() in ("", "off", "0", "none") else Path(value).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "timetic"


def _files_signature(path: str) -> str:
    p = Path(path)
    if not p.exists():
        return f"missing:{path}"
    files = [p] if p.is_file() else sorted(f for f in p.rglob("*") if f.is_file())
    return ";".join(f"{f.relative_to(p) if f != p else f.name}:{f.stat().st_size}:{f.stat().st_mtime_ns}" for f in files)


def zero_shot_key(adapter: str, source_path: str, revision: str | None, horizon: int, seasonality: int,
                  context: np.ndarray, future: np.ndarray) -> str:
    """sha256 key of one model's zero-shot scores on one set of windows; context (n, C), future (n, H)."""
    h = hashlib.sha256()
    for part in ("zero-shot-v1", adapter, str(Path(source_path).resolve()), _files_signature(source_path),
                 revision or "", str(int(horizon)), str(int(seasonality))):
        h.update(part.encode())
        h.update(b"\0")
    for a in (context, future):
        a = np.ascontiguousarray(a, dtype=np.float64)
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def get(key: str, kind: str = "zero_shot") -> np.ndarray | None:
    d = cache_dir()
    if d is None:
        return None
    path = d / kind / f"{key}.npy"
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        return None


def put(key: str, value: Any, kind: str = "zero_shot") -> None:
    d = cache_dir()
    if d is None:
        return
    folder = d / kind
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{key}.{os.getpid()}.tmp.npy"
        np.save(tmp, np.asarray(value), allow_pickle=False)
        os.replace(tmp, folder / f"{key}.npy")
    except OSError:  # a read-only or full disk costs speed, not correctness
        return
