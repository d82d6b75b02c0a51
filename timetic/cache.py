"""A small on-disk cache, so that a repeated predict skips work already done.

Two kinds of entries under ``TIMETIC_CACHE_DIR`` (default ``$XDG_CACHE_HOME/timetic`` or
``~/.cache/timetic``; set it to ``off`` to disable):

* ``zero_shot/``: ``.npy`` arrays of zero-shot scores, keyed by a sha256 of everything the scores
  depend on: the model (adapter, source path, the size and modification time of every file under
  it, its KB revision), the task (horizon, seasonality) and the exact window values;
* ``fitted/``: the fitted state of an estimator fitted on a whole knowledge base (``TimeTic.fit()``
  without a context), keyed by the estimator's parameters, the knowledge base (its class, its
  layers and exclusions, the size and modification time of every file in it) and timetic's own
  source files, so that any change to the KB or the code refits; the 16 most recent are kept.

Writes are atomic; an unreadable entry is recomputed.
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
    # size and modification time, plus inode and status-change time: a file replaced by one of the
    # same size whose mtime was restored (cp -p, rsync -a, tar) still counts as changed
    stats = [(f, f.stat()) for f in files]
    return ";".join(f"{f.relative_to(p) if f != p else f.name}:{st.st_size}:{st.st_mtime_ns}:{st.st_ino}:{st.st_ctime_ns}"
                    for f, st in stats)


def zero_shot_key(adapter: str, source_path: str, revision: str | None, horizon: int, seasonality: int,
                  context: np.ndarray, future: np.ndarray, settings: dict[str, Any] | None = None) -> str:
    """sha256 key of one model's zero-shot scores on one set of windows; context (n, C), future (n, H);
    ``settings``: the inference settings the model was loaded with (e.g. DeepAR's sample paths)."""
    h = hashlib.sha256()
    for part in ("zero-shot-v1", adapter, str(Path(source_path).resolve()), _files_signature(source_path),
                 revision or "", str(int(horizon)), str(int(seasonality)), repr(sorted((settings or {}).items()))):
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
    _write(kind, f"{key}.npy", lambda f: np.save(f, np.asarray(value), allow_pickle=False))


def _write(kind: str, name: str, dump: Any) -> Path | None:
    """Write ``kind/name`` atomically with ``dump(file)``; the folder, or None when the cache is
    off or the write failed (a read-only or full disk costs speed, not correctness)."""
    d = cache_dir()
    if d is None:
        return None
    folder = d / kind
    tmp = folder / f".{name}.{os.getpid()}.tmp"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            dump(f)
        os.replace(tmp, folder / name)
        return folder
    except Exception:  # noqa: BLE001 - unpicklable value, disk errors: skip the cache
        tmp.unlink(missing_ok=True)
        return None


def _source_signature() -> str:
    """Sizes and modification times of timetic's own source files (a code change refits)."""
    root = Path(__file__).resolve().parent
    return ";".join(f"{f.relative_to(root)}:{f.stat().st_size}:{f.stat().st_mtime_ns}"
                    for f in sorted(root.rglob("*.py")))


def fit_key(params: dict[str, Any], kb: Any) -> str | None:
    """sha256 key of an estimator fitted on the whole ``kb`` with ``params`` (its ``__init__``
    arguments but the KB); None when the KB has no folders to sign (e.g. an in-memory one)."""
    from timetic import __version__

    paths = getattr(kb, "paths", None) or ([kb.path] if getattr(kb, "path", None) is not None else [])
    if not paths:
        return None
    h = hashlib.sha256()
    parts = ["fitted-v1", __version__, f"{type(kb).__module__}.{type(kb).__qualname__}", repr(kb),
             repr(sorted((k, repr(v)) for k, v in params.items())), _source_signature()]
    parts += [f"{Path(p).resolve()}|{_files_signature(str(p))}" for p in paths]
    for part in parts:
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()


def get_object(key: str, kind: str = "fitted") -> Any | None:
    """A pickled entry (None when absent or unreadable)."""
    import pickle

    d = cache_dir()
    if d is None:
        return None
    try:
        with open(d / kind / f"{key}.pkl", "rb") as f:
            return pickle.load(f)
    except Exception:  # noqa: BLE001 - missing, truncated or from another version: refit
        return None


def put_object(key: str, value: Any, kind: str = "fitted") -> None:
    import pickle

    folder = _write(kind, f"{key}.pkl", lambda f: pickle.dump(value, f, protocol=pickle.HIGHEST_PROTOCOL))
    if folder is not None:
        _prune(folder, "*.pkl", MAX_OBJECTS)


#: fitted estimators kept (the most recently written); every KB change writes a new one.
MAX_OBJECTS = 16


def _prune(folder: Path, pattern: str, keep: int) -> None:
    """Delete all but the ``keep`` most recently modified entries."""
    entries = sorted(folder.glob(pattern), key=lambda f: f.stat().st_mtime_ns, reverse=True)
    for f in entries[keep:]:
        try:
            f.unlink()
        except OSError:
            pass
