"""Layered knowledge bases: a user KB over a base KB, read as one, the base never written.

A *user KB* is an ordinary KB folder (:class:`timetic.kb.KnowledgeBase`) whose ``kb.json`` also
names the KB it layers over::

    {"schema_version": 1, ..., "base": "shipped"}        # the KB shipped with timetic
    {"schema_version": 1, ..., "base": "/abs/path/kb"}   # any other KB folder (itself maybe a user KB)

Its tables hold only the user's rows (``timetic verify --kb-out DIR`` writes the verified target's
dataset row, windows and observations there). ``"shipped"`` is resolved on the machine that reads
the user KB (the checkout's ``meta_features/`` or the installed package's copy; ``TIMETIC_KB`` is
not consulted, so a user KB can itself be the default), so a user KB keeps working after a
re-install or a move of the checkout.

Reading (:func:`open_kb`, which ``timetic predict --kb``, ``report``, ``evaluate`` and ``kb
show|stats|export`` use): the chain base -> ... -> user KB is opened as one :class:`LayeredKB`,
whose every table is the union of the layers' tables deduplicated on the table's key; on a key
clash the upper layer's row wins (the whole row: a user's re-measured observation replaces the
base's). A base is opened without its clean-up (``KnowledgeBase.open(clean=False)``) and never
locked: reading a user KB writes nothing in its base, and a :class:`LayeredKB` refuses every write
(write to its top folder with ``KnowledgeBase.open(path)``, as ``timetic finetune --kb`` and
``add-*`` do).
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any, Iterable, Sequence

import polars as pl

from timetic.errors import TimeticInputError
from timetic.kb import KB_FILE, TABLES, KnowledgeBase, _column_order

#: kb.json entry naming the KB a user KB layers over.
BASE_KEY = "base"
#: its value for the KB shipped with timetic.
SHIPPED = "shipped"
#: longest chain of layers (a guard against cycles).
MAX_LAYERS = 8
_LAYER = "__timetic_layer__"


def shipped_kb_path() -> Path | None:
    """The knowledge base shipped with timetic (the checkout's ``meta_features/``, else the installed
    package's ``timetic/_kb``), ignoring ``TIMETIC_KB``; ``None`` when there is none."""
    from timetic import kb as kbmod

    here = Path(kbmod.__file__).resolve().parent
    for candidate in (here.parent / getattr(kbmod, "DEFAULT_KB_DIR", "meta_features"),
                      here / getattr(kbmod, "PACKAGED_KB_DIR", "_kb")):
        if (candidate / KB_FILE).exists():
            return candidate
    return None


def base_entry(base: str | Path) -> str:
    """What a user KB over ``base`` records in its ``kb.json``: ``"shipped"`` for the shipped KB,
    else the absolute path."""
    base = Path(base).resolve()
    shipped = shipped_kb_path()
    if shipped is not None and shipped.resolve() == base:
        return SHIPPED
    return str(base)


def _read_meta(path: Path) -> dict:
    try:
        meta = json.loads((path / KB_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def base_of(path: str | Path) -> Path | None:
    """The folder the KB in ``path`` layers over (its ``kb.json`` ``"base"``), or ``None``."""
    path = Path(path)
    entry = _read_meta(path).get(BASE_KEY)
    if not entry:
        return None
    if entry == SHIPPED:
        shipped = shipped_kb_path()
        if shipped is None:
            raise TimeticInputError(
                f"knowledge base {path} layers over the shipped knowledge base, which this installation "
                f"lacks; reinstall timetic with its KB or set {BASE_KEY!r} in {path / KB_FILE} to a KB folder"
            )
        return shipped
    base = Path(str(entry))
    if not base.is_absolute():
        base = path / base
    return base


def chain(path: str | Path) -> list[Path]:
    """The layers of the KB in ``path``, base-most first, ending with ``path``."""
    out = [Path(path)]
    seen = {Path(path).resolve()}
    while (base := base_of(out[0])) is not None:
        if base.resolve() in seen:
            raise TimeticInputError(
                f"knowledge base {out[0]} layers over {base}, which layers over it again (a cycle); "
                f"fix {BASE_KEY!r} in {out[0] / KB_FILE}"
            )
        if len(out) >= MAX_LAYERS:
            raise TimeticInputError(
                f"knowledge base {path} has more than {MAX_LAYERS} layers; merge some (timetic kb merge)"
            )
        if not (base / KB_FILE).is_file():
            raise TimeticInputError(
                f"knowledge base {out[0]} layers over {base}, which is not a knowledge base (missing or "
                f"moved); restore it, or set {BASE_KEY!r} in {out[0] / KB_FILE} to where it is now"
            )
        seen.add(base.resolve())
        out.insert(0, base)
    return out


def open_kb(path: str | Path | None = None, exclude_datasets: Iterable[str] = (), clean: bool = True) -> KnowledgeBase:
    """Open a KB for reading: a plain :class:`KnowledgeBase`, or a :class:`LayeredKB` when it layers
    over another (or when ``exclude_datasets`` is given). ``None``: the default KB
    (:func:`timetic.kb.default_kb_path`). ``clean``: let the top folder clean up after dead writers
    (:meth:`KnowledgeBase.open`); the bases never do."""
    from timetic.kb import default_kb_path

    path = Path(path) if path is not None else default_kb_path()
    layers = chain(path) if (path / KB_FILE).is_file() else [path]
    exclude = tuple(exclude_datasets)
    if len(layers) == 1 and not exclude:
        return KnowledgeBase.open(path, clean=clean)
    opened = [KnowledgeBase.open(p, clean=False) for p in layers[:-1]] + [KnowledgeBase.open(layers[-1], clean=clean)]
    return LayeredKB(opened, exclude_datasets=exclude)


def layers_of(kb: KnowledgeBase) -> list[KnowledgeBase]:
    """The layers of ``kb`` (itself alone for a plain KB), base-most first."""
    return list(kb.layers) if isinstance(kb, LayeredKB) else [kb]


def is_user_kb(path: str | Path) -> bool:
    """Whether ``path`` holds a KB that layers over another."""
    return bool(_read_meta(Path(path)).get(BASE_KEY))


def create_user_kb(path: str | Path, base: str | Path) -> KnowledgeBase:
    """Make a new, empty user KB in ``path`` layering over the KB in ``base``; returns it opened.

    Created whole or not at all: the KB is built in a hidden sibling folder that one rename puts in
    place. ``path`` must not exist or be an empty folder.
    """
    path = Path(path)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise TimeticInputError(f"cannot create a knowledge base in {path}: it is not an empty folder; pick another")
    if not (Path(base) / KB_FILE).is_file():
        raise TimeticInputError(f"the base {base} is not a knowledge base; pass a KB folder")
    parent = path.resolve().parent
    if not parent.is_dir():
        raise TimeticInputError(f"folder {parent} does not exist; create it first")
    staging = parent / f".{path.name}.{uuid.uuid4().hex[:8]}.creating"
    try:
        KnowledgeBase.create(staging)
        meta = json.loads((staging / KB_FILE).read_text())
        meta[BASE_KEY] = base_entry(base)
        tmp = staging / f".{KB_FILE}.tmp"
        tmp.write_text(json.dumps(meta, indent=2) + "\n")
        tmp.chmod(0o644)
        os.replace(tmp, staging / KB_FILE)
        if path.is_dir():
            path.rmdir()  # empty (checked above)
        os.rename(staging, path)
    except OSError as e:
        raise TimeticInputError(
            f"cannot create the knowledge base {path} ({e.strerror or type(e).__name__}); check the path "
            f"and permissions"
        ) from e
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return KnowledgeBase.open(path)


class LayeredKB(KnowledgeBase):
    """Read-only view of several KBs as one (see the module docstring).

    Args:
        layers: opened KBs, base-most first; on a key clash the later layer's row wins.
        exclude_datasets: dataset ids left out of every table (``timetic verify`` leaves the
            target out of the KB that predicts it).

    Attributes:
        layers: the KBs.
        path: the top layer's folder; ``meta``: its ``kb.json``.
    """

    def __init__(self, layers: Sequence[KnowledgeBase], exclude_datasets: Iterable[str] = ()):
        if not layers:
            raise TimeticInputError("a layered knowledge base needs at least one layer")
        super().__init__(layers[-1].path, lock_timeout=layers[-1].lock_timeout)
        self.layers = list(layers)
        self.meta = dict(layers[-1].meta)
        self.exclude_datasets = frozenset(exclude_datasets)

    def __repr__(self) -> str:
        shown = " <- ".join(str(k.path) for k in self.layers)
        return f"LayeredKB({shown!r}" + (f", exclude={sorted(self.exclude_datasets)}" if self.exclude_datasets else "") + ")"

    @property
    def paths(self) -> list[Path]:
        return [k.path for k in self.layers]

    # -- reading: union, dedupe, upper layer wins --------------------------------------------------

    def _load(self, name: str, query: Any = None) -> pl.DataFrame:
        spec = TABLES[name]
        frames = []
        for i, layer in enumerate(self.layers):
            df = layer._load(name)
            if name == "models" and df.height:
                df = _absolute_sources(df, layer.path)
            frames.append(df.with_columns(pl.lit(i, dtype=pl.Int32).alias(_LAYER)))
        key = list(spec.key)
        order = _column_order(spec, *frames)
        df = (
            pl.concat(frames, how="diagonal_relaxed")
            .sort([*key, _LAYER], maintain_order=True)
            .unique(subset=key, keep="last", maintain_order=True)
            .select(order)
        )
        if self.exclude_datasets and "dataset_id" in df.columns:
            df = df.filter(~pl.col("dataset_id").is_in(pl.Series(sorted(self.exclude_datasets), dtype=pl.Utf8).implode()))
        return (query(df.lazy()) if query is not None else df.lazy()).collect()

    def _state(self) -> tuple:
        return tuple(layer._state() for layer in self.layers)

    def _consistent(self, read: Any) -> Any:
        """``read()`` while no layer changed meanwhile (a few tries); never takes a lock (the base
        folders are not written, not even a lock file)."""
        for _ in range(5):
            before = self._state()
            result = read()
            if self._state() == before:
                return result
        return read()

    def stats(self) -> dict:
        out = super().stats()
        out["layers"] = [str(p) for p in self.paths]
        if self.exclude_datasets:
            out["excluded_datasets"] = sorted(self.exclude_datasets)
        return out

    def check(self, repair: bool = False) -> list:
        """:meth:`KnowledgeBase.check` of the top layer (which knows the ids of its bases)."""
        return self.layers[-1].check(repair=repair)

    # -- writing: refused ------------------------------------------------------------------------

    def _read_only(self, *args: Any, **kwargs: Any) -> Any:
        raise TimeticInputError(
            f"{self!r} is read as layers and is not written; write to the top folder alone "
            f"(KnowledgeBase.open({str(self.path)!r}))"
        )

    transaction = _read_only  # type: ignore[assignment]
    _upsert = _read_only  # type: ignore[assignment]
    merge = _read_only  # type: ignore[assignment]


def _absolute_sources(models: pl.DataFrame, root: Path) -> pl.DataFrame:
    """Model sources relative to the layer's folder made absolute (a layered KB has one ``path``,
    the top layer's, and a base's relative model folders are relative to the base)."""
    def fix(source: str | None) -> str | None:
        if not source or ":" in source.split("/")[0] or Path(source).is_absolute():
            return source
        return str((root / source).resolve()) if (root / source).exists() else source

    return models.with_columns(pl.Series("source", [fix(s) for s in models.get_column("source").to_list()], dtype=pl.Utf8))


def base_ids(kb: KnowledgeBase) -> dict[str, set[str]]:
    """``{"dataset_id": ..., "model_id": ...}`` registered in the KBs that ``kb`` layers over (empty
    sets for a KB that layers over nothing)."""
    base = base_of(kb.path)
    if base is None:
        return {"dataset_id": set(), "model_id": set()}
    below = open_kb(base, clean=False)
    return {
        "dataset_id": set(below.datasets().get_column("dataset_id").to_list()),
        "model_id": set(below.models().get_column("model_id").to_list()),
    }


__all__ = [
    "BASE_KEY",
    "SHIPPED",
    "LayeredKB",
    "base_entry",
    "base_of",
    "base_ids",
    "chain",
    "create_user_kb",
    "is_user_kb",
    "layers_of",
    "open_kb",
    "shipped_kb_path",
]
