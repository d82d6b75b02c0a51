"""The knowledge base (KB): what timetic has measured, stored as a folder of parquet tables.

A KB is a folder holding ``kb.json`` (``{"schema_version", "created", "timetic_version"}``) and four
parquet tables, read and written with polars (no pickle anywhere):

* ``datasets.parquet`` (:data:`DATASETS_SCHEMA`, key ``dataset_id``): where each dataset comes
  from, its size and a content hash of its target (:func:`content_hash`).
* ``windows.parquet`` (:data:`WINDOWS_SCHEMA` plus any number of Float64 feature columns, key
  ``dataset_id, task, item_id, window_start``): meta-features of sampled windows. Feature sets may
  differ between datasets; a window lacks the features it was not given (null).
* ``models.parquet`` (:data:`MODELS_SCHEMA`, key ``model_id``): candidate models, their size and
  profiles, and what they were pretrained on (for contamination flags).
* ``observations.parquet`` (:data:`OBSERVATIONS_SCHEMA`, key ``dataset_id, model_id, task,
  recipe_hash, item_id, window_start``): zero-shot and fine-tuned errors of a model on a window.

Writes (``add_*``, :meth:`KnowledgeBase.merge`, :meth:`KnowledgeBase.transaction`) are *upserts*:
the incoming rows are validated against the table's schema, then, under a file lock (``DIR/.lock``),
the table is read, combined with them, deduplicated on its key, sorted by key and written
atomically. Adding the same rows twice leaves the table unchanged, and concurrent writers queue on
the lock.

A change to one table replaces its file by an atomic rename (temporary file in the same folder,
fsync, rename). A change to several tables (``add-dataset``: datasets and windows; ``merge``) is a
*transaction*: the new tables are written into a staging folder ``DIR/.txn.<id>.pending``, which one
rename turns into ``DIR/.txn.<id>.commit`` (the commit point); then each staged file is renamed over
its table and the folder is removed. Readers take no lock and read a table from a committed folder
while it is still there, so they see every table either before or after the change; a writer killed
before the commit point leaves the KB as it was, one killed after it leaves a change that the next
writer (or :meth:`KnowledgeBase.open`) completes. :meth:`KnowledgeBase.stats` and
:meth:`KnowledgeBase.check` read all tables as one consistent state.

``.lock`` exists only while a writer holds it (it is removed on release); one left by a dead
process, the temporary files and staging folders of dead writers are removed by the next writer and
by :meth:`KnowledgeBase.open` (a lock held by a live process is kept, and so are its files).
:meth:`KnowledgeBase.check` (``timetic kb check``) reports inconsistencies across tables and
repairs what can be repaired safely.

Which row wins on a key clash:

* ``add_*``: the incoming row (the last write wins). Columns the incoming frame does not have keep
  their stored values, so ``add_windows`` with new feature columns extends windows already stored,
  and re-adding a model without ``added`` keeps its original ``added`` date.
* :meth:`KnowledgeBase.merge`: the newer row by ``added`` (datasets, models) or ``date``
  (observations), compared as ISO text; on a tie, and for windows, the other KB's row.

"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import struct
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import filelock
import numpy as np
import polars as pl

from timetic.errors import TimeticInputError
from timetic.io import _fsync_dir, atomic_path, write_table

SCHEMA_VERSION = 1
"""Version of the KB layout this timetic reads and writes."""

KB_FILE = "kb.json"
LOCK_FILE = ".lock"
DEFAULT_LOCK_TIMEOUT = 600.0
"""Seconds a writer waits for the KB lock before giving up."""

TXN_PREFIX = ".txn."
"""Staging folders of multi-table changes: ``.txn.<id>.pending`` (being written) and
``.txn.<id>.commit`` (committed, being applied)."""
_PENDING = ".pending"
_COMMITTED = ".commit"
_TXN_MANIFEST = "txn.json"

KILL_ENV = "TIMETIC_TEST_KILL_AFTER_WRITE_STEP"
"""Test hook: with this set to N, a process writing a KB kills itself (SIGKILL) right after its N-th
write step (each file written, renamed or removed), to prove a killed writer never leaves a KB
between two states."""
_write_steps = 0


def _write_step(what: str) -> None:
    """Count a write step; SIGKILL this process after step ``$TIMETIC_TEST_KILL_AFTER_WRITE_STEP``."""
    global _write_steps
    target = os.environ.get(KILL_ENV)
    if not target:
        return
    _write_steps += 1
    if _write_steps == int(target):
        sys.stderr.write(f"timetic: killed after write step {_write_steps} ({what})\n")
        sys.stderr.flush()
        os.kill(os.getpid(), signal.SIGKILL)

DATASETS_SCHEMA = pl.Schema(
    {
        "dataset_id": pl.Utf8,
        "content_hash": pl.Utf8,
        "series_hash": pl.Utf8,
        "freq": pl.Utf8,
        "n_series": pl.Int64,
        "total_length": pl.Int64,
        "source": pl.Utf8,
        "licence": pl.Utf8,
        "domain": pl.Utf8,
        "added": pl.Utf8,
    }
)

WINDOWS_SCHEMA = pl.Schema(
    {
        "dataset_id": pl.Utf8,
        "task": pl.Utf8,
        "item_id": pl.Utf8,
        "window_start": pl.Int64,
    }
)
"""Key columns of ``windows.parquet``; every other column is a Float64 meta-feature."""

MODELS_SCHEMA = pl.Schema(
    {
        "model_id": pl.Utf8,
        "adapter": pl.Utf8,
        "source": pl.Utf8,
        "revision": pl.Utf8,
        "num_parameters": pl.Int64,
        "depth": pl.Int64,
        "profile_knn": pl.List(pl.Float64),
        "profile_renyi": pl.List(pl.Float64),
        "profile_raw_knn": pl.List(pl.Float64),
        "pretraining_corpus": pl.Utf8,
        "pretraining_datasets": pl.List(pl.Utf8),
        "added": pl.Utf8,
    }
)

OBSERVATIONS_SCHEMA = pl.Schema(
    {
        "dataset_id": pl.Utf8,
        "model_id": pl.Utf8,
        "task": pl.Utf8,
        "recipe_hash": pl.Utf8,
        "item_id": pl.Utf8,
        "window_start": pl.Int64,
        "horizon": pl.Int64,
        "zs_mase": pl.Float64,
        "ft_mase": pl.Float64,
        "zs_wql": pl.Float64,
        "ft_wql": pl.Float64,
        "sn_mase": pl.Float64,
        "sn_wql": pl.Float64,
        "recipe": pl.Utf8,
        "seed": pl.Int64,
        "versions": pl.Utf8,
        "hardware": pl.Utf8,
        "wall_time_s": pl.Float64,
        "date": pl.Utf8,
        "fit_log": pl.Utf8,
        "source": pl.Utf8,
    }
)


@dataclass(frozen=True)
class TableSpec:
    """Layout of one KB table.

    Attributes:
        name: table name (``"observations"``); the file is ``name + ".parquet"``.
        schema: the fixed columns and their dtypes (key columns first).
        key: columns that identify a row.
        timestamp: ISO-text column that says how new a row is (``None``: the table has none).
        extra_float: whether further Float64 columns are allowed (windows' meta-features).
        optional: schema columns that files written before they existed may lack (read as null).
    """

    name: str
    schema: pl.Schema
    key: tuple[str, ...]
    timestamp: str | None = None
    extra_float: bool = False
    optional: tuple[str, ...] = ()

    @property
    def filename(self) -> str:
        return f"{self.name}.parquet"

    @property
    def required(self) -> tuple[str, ...]:
        """Columns an added frame must have (the key)."""
        return self.key


TABLES: dict[str, TableSpec] = {
    "datasets": TableSpec("datasets", DATASETS_SCHEMA, ("dataset_id",), timestamp="added", optional=("series_hash",)),
    "windows": TableSpec(
        "windows", WINDOWS_SCHEMA, ("dataset_id", "task", "item_id", "window_start"), extra_float=True
    ),
    "models": TableSpec("models", MODELS_SCHEMA, ("model_id",), timestamp="added"),
    "observations": TableSpec(
        "observations",
        OBSERVATIONS_SCHEMA,
        ("dataset_id", "model_id", "task", "recipe_hash", "item_id", "window_start"),
        timestamp="date",
        optional=("sn_mase", "sn_wql", "fit_log", "source"),
    ),
}
"""The KB tables by name, in the order they are written."""

_FILE_MODE = 0o644
_ISO_FORMAT = "%Y-%m-%dT%H:%M:%S%.6f+00:00"
_SRC = "__timetic_src__"


# --------------------------------------------------------------------------------------------------
# hashes
# --------------------------------------------------------------------------------------------------


def recipe_hash(recipe_json: str | dict | Any) -> str:
    """Short (16 hex digits) sha256 of a recipe, insensitive to key order and whitespace.

    Args:
        recipe_json: the recipe as JSON text, a dict, or an object with ``to_json()``
            (:class:`timetic.recipe.Recipe`).
    """
    if hasattr(recipe_json, "to_json") and not isinstance(recipe_json, (str, dict)):
        recipe_json = recipe_json.to_json()
    if isinstance(recipe_json, str):
        try:
            recipe_json = json.loads(recipe_json)
        except json.JSONDecodeError as e:
            raise TimeticInputError(f"recipe is not valid JSON ({e.msg}); pass the recipe's JSON text") from e
    canonical = json.dumps(recipe_json, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _canonical(frame: pl.DataFrame | Any, what: str = "content_hash") -> pl.DataFrame:
    """A target's long frame reduced to ``item_id`` (text), ``timestamp`` (UTC nanoseconds, Int64)
    and ``target`` (Float64, null as NaN), sorted by item and time (see :func:`content_hash`)."""
    if not isinstance(frame, pl.DataFrame) and hasattr(frame, "frame"):
        frame = frame.frame
    frame = _to_polars(frame, "target")
    missing = [c for c in ("item_id", "timestamp", "target") if c not in frame.columns]
    if missing:
        raise TimeticInputError(
            f"{what} needs a long frame with item_id, timestamp and target columns, "
            f"it misses {', '.join(missing)}; pass target.frame from timetic.load_target"
        )
    ts = frame.get_column("timestamp")
    if ts.dtype == pl.Date:
        ts = ts.cast(pl.Datetime("ns"))
    if not isinstance(ts.dtype, pl.Datetime):
        raise TimeticInputError(
            f"{what} needs a datetime timestamp column, got {ts.dtype}; parse the timestamps first"
        )
    if ts.dtype.time_zone is not None:
        ts = ts.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
    return (
        pl.DataFrame(
            {
                "item_id": frame.get_column("item_id").cast(pl.Utf8),
                "timestamp": ts.dt.epoch("ns"),
                "target": frame.get_column("target").cast(pl.Float64).fill_null(float("nan")),
            }
        )
        .sort("item_id", "timestamp", nulls_last=False)
    )


def _canonical_values(canon: pl.DataFrame) -> np.ndarray:
    values = canon.get_column("target").to_numpy().astype("<f8") + 0.0  # -0.0 -> 0.0
    values[np.isnan(values)] = np.nan  # one NaN bit pattern
    return values


def content_hash(frame: pl.DataFrame | Any) -> str:
    """sha256 (hex) of a target's canonical long frame, the same across runs and machines.

    The frame is reduced to ``item_id`` (text), ``timestamp`` (UTC nanoseconds) and ``target``
    (float64, null counted as NaN), sorted by item and time; the hash covers the column names,
    lengths and little-endian values, so it does not depend on column order, row order, dtype
    widths or the parquet writer.

    Args:
        frame: a long polars (or pandas) frame with ``item_id``, ``timestamp`` and ``target``
            columns, or a :class:`timetic.data.Target`.
    """
    canon = _canonical(frame)
    h = hashlib.sha256(b"timetic-content-hash-v1")
    h.update(struct.pack("<Q", canon.height))
    items = canon.get_column("item_id")
    _hash_block(h, "item_id.null", items.is_null().to_numpy().astype(np.uint8))
    _hash_block(h, "item_id.len", items.str.len_bytes().fill_null(0).to_numpy().astype("<u4"))
    _hash_block(h, "item_id", (items.fill_null("").str.join("").item() or "").encode())
    stamps = canon.get_column("timestamp")
    _hash_block(h, "timestamp.null", stamps.is_null().to_numpy().astype(np.uint8))
    _hash_block(h, "timestamp", stamps.fill_null(0).to_numpy().astype("<i8"))
    _hash_block(h, "target", _canonical_values(canon))
    return h.hexdigest()


def series_hash(frame: pl.DataFrame | Any) -> str:
    """sha256 (hex) of a target's series whatever they are named: each series' timestamps and values
    (canonical as in :func:`content_hash`) hashed alone, the digests sorted and hashed, so a file
    that holds a KB dataset's series under other names (``0``, ``y``) is still recognised. One pass
    over the data (10,000 series: milliseconds)."""
    if not isinstance(frame, pl.DataFrame) and hasattr(frame, "frame"):
        frame = frame.frame
    frame = _to_polars(frame, "target")
    if "item_id" not in frame.columns:
        frame = frame.with_columns(pl.lit("0").alias("item_id"))
    canon = _canonical(frame, "series_hash")
    items = canon.get_column("item_id").fill_null("\0").to_numpy()
    stamps = canon.get_column("timestamp").fill_null(0).to_numpy().astype("<i8")
    values = _canonical_values(canon)
    cuts = np.flatnonzero(items[1:] != items[:-1]) + 1 if len(items) else np.array([], dtype=int)
    bounds = zip(np.r_[0, cuts], np.r_[cuts, len(items)]) if len(items) else []
    digests = sorted(
        hashlib.sha256(b"timetic-series-v1" + struct.pack("<Q", b - a) + stamps[a:b].tobytes()
                       + values[a:b].tobytes()).digest()
        for a, b in bounds
    )
    h = hashlib.sha256(b"timetic-series-hash-v1")
    h.update(struct.pack("<Q", len(digests)))
    for d in digests:
        h.update(d)
    return h.hexdigest()


def _hash_block(h: "hashlib._Hash", name: str, data: np.ndarray | bytes) -> None:
    raw = data if isinstance(data, bytes) else np.ascontiguousarray(data).tobytes()
    h.update(name.encode() + b"\0")
    h.update(struct.pack("<Q", len(raw)))
    h.update(raw)


# --------------------------------------------------------------------------------------------------
# validation of incoming frames
# --------------------------------------------------------------------------------------------------


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def _to_polars(df: Any, what: str) -> pl.DataFrame:
    if isinstance(df, pl.DataFrame):
        return df
    if isinstance(df, pl.LazyFrame):
        return df.collect()
    try:
        if type(df).__module__.startswith("pandas"):
            return pl.from_pandas(df)
        return pl.DataFrame(df)
    except Exception as e:  # noqa: BLE001 - any construction failure is the caller's input
        raise TimeticInputError(
            f"cannot read the {what} rows as a table ({type(df).__name__}); pass a polars DataFrame"
        ) from e


def _cast_column(s: pl.Series, dtype: pl.DataType, table: str) -> pl.Series:
    """Cast ``s`` to ``dtype`` without losing information, or raise a one-line error."""
    src = s.dtype
    if src == dtype:
        return s
    if dtype == pl.Utf8 and (src == pl.Date or isinstance(src, pl.Datetime)):
        if src == pl.Date:
            s = s.cast(pl.Datetime("us"))
        elif s.dtype.time_zone is not None:
            s = s.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
        return s.dt.to_string(_ISO_FORMAT)
    if dtype == pl.Int64 and src.is_float():
        finite = s.drop_nulls()
        if (finite.is_nan() | (finite != finite.floor())).any():
            raise TimeticInputError(
                f"column {s.name} of the {table} rows has non-integer values, "
                f"it must hold whole numbers; fix the column"
            )
    textual = src in (pl.Null, pl.Boolean, pl.Categorical) or src.is_numeric()
    if dtype == pl.Utf8 and not textual:
        raise TimeticInputError(
            f"column {s.name} of the {table} rows has type {src}, expected text; "
            f"convert it to strings (JSON text for nested values)"
        )
    try:
        return s.cast(dtype, strict=True)
    except Exception as e:  # noqa: BLE001 - polars raises several exception types for casts
        raise TimeticInputError(
            f"column {s.name} of the {table} rows has type {src}, which cannot become {dtype}; "
            f"fix the column type"
        ) from e


#: the observations' score columns (MASE and WQL, scaled errors: >= 0 or NaN where undefined).
SCORE_COLUMNS = ("zs_mase", "ft_mase", "zs_wql", "ft_wql", "sn_mase", "sn_wql")


def _conform(df: Any, spec: TableSpec) -> tuple[pl.DataFrame, set[str]]:
    """Validate and cast incoming rows to ``spec``.

    Returns the frame with every schema column (absent ones null, key columns first) and the set of
    columns the caller supplied.
    """
    df = _to_polars(df, spec.name)
    if spec.name == "observations" and "recipe_hash" not in df.columns and "recipe" in df.columns:
        recipes = _cast_column(df.get_column("recipe"), pl.Utf8, spec.name)
        mapping = {r: recipe_hash(r) for r in recipes.drop_nulls().unique().to_list()}
        df = df.with_columns(recipe_hash=recipes.replace_strict(mapping, default=None, return_dtype=pl.Utf8))
    supplied = set(df.columns)
    missing = [c for c in spec.required if c not in supplied]
    if missing:
        raise TimeticInputError(
            f"the {spec.name} rows miss required column(s) {', '.join(missing)}; "
            f"add them (required: {', '.join(spec.required)})"
        )
    extra = [c for c in df.columns if c not in spec.schema]
    if extra and not spec.extra_float:
        raise TimeticInputError(
            f"the {spec.name} rows have unknown column(s) {', '.join(extra)}; "
            f"drop or rename them (known: {', '.join(spec.schema.names())})"
        )
    columns: list[pl.Series] = []
    for name, dtype in spec.schema.items():
        if name in supplied:
            columns.append(_cast_column(df.get_column(name), dtype, spec.name))
        else:
            columns.append(pl.Series(name, [None] * df.height, dtype=dtype))
    for name in extra:
        s = df.get_column(name)
        if not (s.dtype.is_numeric() or s.dtype in (pl.Boolean, pl.Null)):
            raise TimeticInputError(
                f"window feature column {name} has type {s.dtype}, features must be numeric; "
                f"drop it or convert it to numbers"
            )
        columns.append(s.cast(pl.Float64))
    out = pl.DataFrame(columns)
    null_keys = [c for c in spec.key if out.get_column(c).null_count()]
    if null_keys:
        raise TimeticInputError(
            f"the {spec.name} rows have missing values in key column(s) {', '.join(null_keys)}; fill them"
        )
    if spec.name == "observations":  # scaled errors: NaN (undefined) is fine, below 0 is impossible
        negative = [c for c in SCORE_COLUMNS if c in supplied and (out.get_column(c) < 0).any()]
        if negative:
            raise TimeticInputError(
                f"the observations have negative {', '.join(negative)} (scaled errors are >= 0); "
                "check the run that produced them"
            )
    return out, supplied


def _column_order(spec: TableSpec, *frames: pl.DataFrame) -> list[str]:
    cols = list(spec.schema.names())
    for f in frames:
        cols += [c for c in f.columns if c not in cols and c != _SRC]
    return cols


def _combine(
    current: pl.DataFrame, incoming: pl.DataFrame, spec: TableSpec, supplied: set[str], by_time: bool
) -> tuple[pl.DataFrame, int]:
    """Upsert ``incoming`` into ``current``; return the new table and the number of new keys.

    ``by_time=False``: the incoming row wins a key clash. ``by_time=True``: the row with the later
    ``spec.timestamp`` wins, the incoming one on a tie. Columns not in ``supplied`` keep their
    current values for keys already stored.
    """
    key = list(spec.key)
    incoming = incoming.unique(subset=key, keep="last", maintain_order=True)
    kept = [c for c in current.columns if c not in supplied and c not in key]
    if kept and current.height:
        incoming = incoming.drop([c for c in kept if c in incoming.columns]).join(
            current.select(key + kept), on=key, how="left"
        )
    if spec.timestamp:
        incoming = incoming.with_columns(pl.col(spec.timestamp).fill_null(pl.lit(_now_iso())))
    n_new = incoming.join(current.select(key), on=key, how="anti").height
    order = _column_order(spec, current, incoming)
    combined = pl.concat(
        [
            current.with_columns(pl.lit(0, pl.Int8).alias(_SRC)),
            incoming.with_columns(pl.lit(1, pl.Int8).alias(_SRC)),
        ],
        how="diagonal",
    )
    sort_by = key + ([spec.timestamp] if by_time and spec.timestamp else []) + [_SRC]
    combined = (
        combined.sort(sort_by, nulls_last=False, maintain_order=True)
        .unique(subset=key, keep="last", maintain_order=True)
        .select(order)
    )
    return combined, n_new


def _one_of(column: str, values: str | Sequence[str] | None) -> pl.Expr | None:
    if values is None:
        return None
    if isinstance(values, str):
        return pl.col(column) == values
    return pl.col(column).is_in(list(values))


# --------------------------------------------------------------------------------------------------
# the knowledge base
# --------------------------------------------------------------------------------------------------


class KnowledgeBase:
    """A timetic knowledge base folder.

    Use :meth:`create`, :meth:`open` or :meth:`open_or_create` rather than the constructor (which
    checks nothing).

    Args:
        path: the KB folder.
        lock_timeout: seconds a writer waits for the KB lock (another writer) before it gives up.

    Attributes:
        path: the KB folder.
        meta: the content of ``kb.json``.
    """

    def __init__(self, path: str | Path, lock_timeout: float = DEFAULT_LOCK_TIMEOUT):
        self.path = Path(path)
        self.lock_timeout = lock_timeout
        self.meta: dict = {}

    def __repr__(self) -> str:
        return f"KnowledgeBase({str(self.path)!r})"

    # -- opening ------------------------------------------------------------------------------------

    @classmethod
    def create(
        cls, path: str | Path, exist_ok: bool = False, lock_timeout: float = DEFAULT_LOCK_TIMEOUT
    ) -> "KnowledgeBase":
        """Make a new, empty KB in ``path`` (created if needed) and return it opened.

        Raises :class:`TimeticInputError` when ``path`` already holds a KB (unless ``exist_ok``, which
        opens it instead) or holds KB tables with rows but no ``kb.json``.
        """
        path = Path(path)
        try:
            path.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as e:
            raise TimeticInputError(
                f"cannot create a knowledge base at {path}: it is a file; pick a folder"
            ) from e
        except OSError as e:
            raise TimeticInputError(
                f"cannot create knowledge base folder {path} ({e.strerror}); check the path and permissions"
            ) from e
        kb = cls(path, lock_timeout=lock_timeout)
        with kb._locked():
            if (path / KB_FILE).exists():
                if not exist_ok:
                    raise TimeticInputError(
                        f"a knowledge base already exists in {path}; open it, or pick another folder"
                    )
            else:
                for spec in TABLES.values():
                    f = path / spec.filename
                    if f.exists() and _has_rows(f):
                        raise TimeticInputError(
                            f"{path} holds knowledge base table {spec.filename} with rows but no {KB_FILE}; "
                            f"restore {KB_FILE} from a backup or move the tables away"
                        )
                kb._recover()
                for spec in TABLES.values():
                    _write_parquet(pl.DataFrame(schema=spec.schema), path / spec.filename)
                meta = {
                    "schema_version": SCHEMA_VERSION,
                    "created": _now_iso(),
                    "timetic_version": _timetic_version(),
                }
                with atomic_path(path / KB_FILE) as tmp:
                    tmp.write_text(json.dumps(meta, indent=2) + "\n")
                    tmp.chmod(_FILE_MODE)
        return cls.open(path, lock_timeout=lock_timeout)

    @classmethod
    def open(
        cls, path: str | Path, lock_timeout: float = DEFAULT_LOCK_TIMEOUT, clean: bool = True
    ) -> "KnowledgeBase":
        """Open an existing KB, checking ``kb.json``, the schema version and every table's columns.

        Only the tables' parquet footers are read here; a table damaged further in is reported by
        the reader that hits it.

        With ``clean`` (the default), what dead writers left is cleaned up first when nobody holds
        the lock: a stale ``.lock``, temporary files, uncommitted staging folders (removed) and
        committed ones (completed). A KB that a live process is writing, or a read-only folder, is
        opened as it is.
        """
        path = Path(path)
        meta_path = path / KB_FILE
        if not meta_path.is_file():
            where = (
                f"{path} has no {KB_FILE}"
                if path.is_dir()
                else f"{path} is not a folder" if path.exists() else f"{path} does not exist"
            )
            raise TimeticInputError(
                f"not a timetic knowledge base: {where}; "
                f"create one with `timetic kb init {path}` or pass --kb"
            )
        try:
            meta = json.loads(meta_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise TimeticInputError(
                f"knowledge base file {meta_path} is not valid JSON; restore it from a backup or rebuild"
            ) from e
        except OSError as e:
            raise TimeticInputError(f"cannot read {meta_path} ({e.strerror}); check permissions") from e
        if not isinstance(meta, dict) or "schema_version" not in meta:
            raise TimeticInputError(
                f"knowledge base file {meta_path} has no schema_version; restore it from a backup or rebuild"
            )
        version = meta["schema_version"]
        if version != SCHEMA_VERSION:
            raise TimeticInputError(
                f"knowledge base {path} has schema version {version}, this timetic reads {SCHEMA_VERSION}; "
                f"rebuild or migrate it"
            )
        kb = cls(path, lock_timeout=lock_timeout)
        kb.meta = meta
        if clean:
            kb._clean_leftovers()
        for spec in TABLES.values():
            kb._check_table(spec)
        return kb

    @classmethod
    def open_or_create(cls, path: str | Path, lock_timeout: float = DEFAULT_LOCK_TIMEOUT) -> "KnowledgeBase":
        """Open the KB in ``path``, creating an empty one first if there is none."""
        if (Path(path) / KB_FILE).is_file():
            return cls.open(path, lock_timeout=lock_timeout)
        return cls.create(path, exist_ok=True, lock_timeout=lock_timeout)

    def _check_table(self, spec: TableSpec) -> None:
        f = self._table_file(spec.name)
        if not f.is_file():
            raise TimeticInputError(
                f"knowledge base table {spec.filename} is missing from {self.path}; "
                f"restore it from a backup or rebuild"
            )
        try:
            schema = pl.read_parquet_schema(f)
        except Exception as e:  # noqa: BLE001 - any read failure means a broken file
            self._broken(spec, _short(e), e)
        problems = []
        for name, dtype in spec.schema.items():
            if name not in schema:
                if name not in spec.optional:
                    problems.append(f"missing column {name}")
            elif schema[name] != dtype:
                problems.append(f"column {name} is {schema[name]}, expected {dtype}")
        for name, dtype in schema.items():
            if name in spec.schema:
                continue
            if not spec.extra_float:
                problems.append(f"unexpected column {name}")
            elif dtype != pl.Float64:
                problems.append(f"feature column {name} is {dtype}, expected Float64")
        if problems:
            self._broken(spec, "; ".join(problems[:3]) + (" ..." if len(problems) > 3 else ""))

    def _broken(self, spec: TableSpec, why: str, cause: BaseException | None = None) -> None:
        raise TimeticInputError(
            f"knowledge base table {spec.filename} in {self.path} is broken ({why}); "
            f"restore it from a backup or rebuild"
        ) from cause

    # -- low-level table access ---------------------------------------------------------------------

    @contextmanager
    def _locked(self, timeout: float | None = None) -> Iterator[None]:
        """Hold the KB's writer lock (``DIR/.lock``), removing the lock file when done.

        The file is removed while still held, so no ``.lock`` stays behind; a process waiting on the
        removed file finds it unlinked once it gets it and tries again (filelock checks this).
        """
        lock_path = self.path / LOCK_FILE
        wait = self.lock_timeout if timeout is None else timeout
        lock = filelock.FileLock(str(lock_path), timeout=wait)
        try:
            lock.acquire()
        except filelock.Timeout as e:
            raise TimeticInputError(
                f"knowledge base {self.path} is busy: another writer held its lock "
                f"for {wait:g} s; "
                f"wait for it to finish or raise the lock timeout"
            ) from e
        try:
            yield
        finally:
            try:
                lock_path.unlink()
            except OSError:
                pass
            lock.release()

    def _table_file(self, name: str) -> Path:
        """The file holding table ``name`` now: its staged copy in a committed transaction that is
        still being applied, else ``DIR/<name>.parquet``."""
        filename = TABLES[name].filename
        for folder in sorted(self.path.glob(f"{TXN_PREFIX}*{_COMMITTED}"), reverse=True):
            staged = folder / filename
            if staged.is_file():
                return staged
        return self.path / filename

    def _scan_file(self, name: str, f: Path) -> pl.LazyFrame:
        spec = TABLES[name]
        lf = pl.scan_parquet(f)
        if spec.optional:
            try:
                have = lf.collect_schema().names()
            except Exception:  # noqa: BLE001 - missing / broken file: _load reports it
                return lf
            lf = lf.with_columns(pl.lit(None, dtype=spec.schema[c]).alias(c) for c in spec.optional if c not in have)
            lf = lf.select(_column_order(spec, pl.DataFrame(schema=lf.collect_schema())))
        return lf

    def _load(self, name: str, query: Any = None) -> pl.DataFrame:
        """Read table ``name`` (``query``: a function LazyFrame -> LazyFrame applied first)."""
        spec = TABLES[name]
        for attempt in range(10):
            f = self._table_file(name)
            try:
                lf = self._scan_file(name, f)
                return (query(lf) if query is not None else lf).collect()
            except Exception as e:  # noqa: BLE001 - a failing read means a moved, missing or broken table
                if f.parent != self.path and not f.is_file() and attempt < 9:
                    continue  # a committing writer renamed the staged file into place: read it there
                if not (self.path / spec.filename).is_file():
                    self._check_table(spec)  # raises the "missing" message
                self._broken(spec, _short(e), e)
                raise  # unreachable
        raise AssertionError("unreachable")

    def _read(self, name: str) -> pl.DataFrame:
        return self._load(name)

    def _state(self) -> tuple:
        """What identifies the current version of every table (file, inode, size, mtime)."""
        state = []
        for name in TABLES:
            f = self._table_file(name)
            try:
                st = f.stat()
                state.append((str(f), st.st_ino, st.st_size, st.st_mtime_ns))
            except OSError:
                state.append((str(f), None))
        return tuple(state)

    def _consistent(self, read: Any) -> Any:
        """``read()`` on one consistent version of all tables: repeated while a writer changed a table
        during it; after a few tries under the lock (if the folder allows one)."""
        for _ in range(5):
            before = self._state()
            try:
                result = read()
            except TimeticInputError:
                if self._state() != before:
                    continue
                raise
            if self._state() == before:
                return result
        try:
            with self._locked():
                return read()
        except OSError:  # a read-only folder has no concurrent writers
            return read()

    # -- leftovers of dead writers ------------------------------------------------------------------

    def _temp_files(self) -> list[Path]:
        names = [spec.filename for spec in TABLES.values()] + [KB_FILE]
        return sorted(tmp for name in names for tmp in self.path.glob(f".{name}.*.tmp"))

    def _txn_folders(self) -> list[Path]:
        return sorted(p for p in self.path.glob(f"{TXN_PREFIX}*") if p.name != TXN_PREFIX)

    def _clean_leftovers(self) -> None:
        """Recover from dead writers if there is anything to do and nobody holds the lock."""
        if not ((self.path / LOCK_FILE).exists() or self._txn_folders() or self._temp_files()):
            return
        try:
            with self._locked(timeout=0):
                self._recover()
        except Exception:  # noqa: BLE001 - a live writer holds the lock, or the folder is read-only: leave it
            pass

    def _recover(self) -> list[str]:
        """Complete committed transactions and remove what dead writers left (call with the lock
        held: no live writer has any files then). Returns one line per thing done."""
        done = []
        for folder in self._txn_folders():
            if folder.name.endswith(_COMMITTED) and folder.is_dir():
                tables = self._apply(folder)
                done.append(f"completed the committed change {folder.name} ({', '.join(tables) or 'cleanup only'})")
            else:
                _remove(folder)
                done.append(f"removed the unfinished change {folder.name} (its writer died before committing)")
        if done:
            _fsync_dir(self.path)
        for tmp in self._temp_files():
            try:
                tmp.unlink()
            except OSError:
                continue
            done.append(f"removed the temporary file {tmp.name} of a dead writer")
        return done

    # -- writing ------------------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator["Transaction"]:
        """Change several tables at once: readers see all of the changes or none of them.

        ::

            with kb.transaction() as tx:
                tx.add_datasets(rows)
                tx.add_windows(windows)

        The KB lock is held for the whole block (so no other writer, nor ``kb.add_*`` of this
        process, may write meanwhile); the changes are applied when the block ends without an
        exception, and discarded otherwise.
        """
        with self._locked():
            self._recover()
            tx = Transaction(self)
            yield tx
            self._commit(tx)

    def _commit(self, tx: "Transaction") -> list[str]:
        """Write the tables ``tx`` changed: one by an atomic rename, several as a transaction."""
        changed = [
            (name, table) for name, (base, table) in tx._tables.items() if not table.equals(base)
        ]
        if len(changed) == 1:
            name, table = changed[0]
            try:
                _write_parquet(table, self.path / TABLES[name].filename)
            except OSError as e:
                raise TimeticInputError(
                    f"could not write to the knowledge base {self.path} ({e.strerror or e}); nothing was "
                    "changed: free space or fix permissions and retry"
                ) from e
        elif changed:
            txid = f"{time.time_ns():020d}-{os.getpid()}"
            pending = self.path / f"{TXN_PREFIX}{txid}{_PENDING}"
            committed = self.path / f"{TXN_PREFIX}{txid}{_COMMITTED}"
            pending.mkdir()
            _write_step(f"made {pending.name}")
            manifest = {"tables": {}}
            try:
                for name, table in changed:
                    target = self.path / TABLES[name].filename
                    staged = pending / target.name
                    table.write_parquet(staged)
                    _fsync_file(staged)
                    staged.chmod(_mode_of(target))
                    manifest["tables"][name] = _file_id(target)
                    _write_step(f"staged {target.name}")
                (pending / _TXN_MANIFEST).write_text(json.dumps(manifest) + "\n")
                _fsync_file(pending / _TXN_MANIFEST)
                _fsync_dir(pending)
                _write_step(f"wrote {_TXN_MANIFEST}")
            except OSError as e:  # disk full, permissions: nothing is committed, nothing is left
                shutil.rmtree(pending, ignore_errors=True)
                raise TimeticInputError(
                    f"could not write to the knowledge base {self.path} ({e.strerror or e}); nothing was "
                    "changed: free space or fix permissions and retry"
                ) from e
            os.rename(pending, committed)  # the commit point
            _fsync_dir(self.path)
            _write_step(f"committed {committed.name}")
            self._apply(committed)
        return [name for name, _ in changed]

    def _apply(self, folder: Path) -> list[str]:
        """Move the staged tables of the committed transaction ``folder`` into place, then remove it.

        A table that a writer without transactions (an older timetic) replaced since it was staged is
        combined with that writer's version first, so that neither change is lost.
        """
        try:
            tables = json.loads((folder / _TXN_MANIFEST).read_text())["tables"]
        except (OSError, ValueError, KeyError, TypeError):  # removal had begun: every table was applied
            tables = {n: None for n, spec in TABLES.items() if (folder / spec.filename).is_file()}
        applied = []
        for name, base in tables.items():
            spec = TABLES[name]
            staged, target = folder / spec.filename, self.path / spec.filename
            if not staged.is_file():
                continue  # applied before the previous writer died
            if base is not None and _file_id(target) != base:
                ours = self._scan_file(name, staged).collect()
                theirs = self._scan_file(name, target).collect() if target.is_file() else ours.clear()
                merged, _ = _combine(ours, theirs, spec, set(theirs.columns), by_time=False)
                _write_parquet(merged, staged)
            os.replace(staged, target)
            _write_step(f"moved {spec.filename} into place")
            applied.append(name)
        _fsync_dir(self.path)
        _remove(folder)
        _fsync_dir(self.path)
        _write_step(f"removed {folder.name}")
        return applied

    def _upsert(self, name: str, df: Any) -> int:
        spec = TABLES[name]
        incoming, supplied = _conform(df, spec)
        if incoming.height == 0:
            return 0
        with self.transaction() as tx:
            return tx._add(name, incoming, supplied, by_time=False)

    # -- readers ------------------------------------------------------------------------------------

    def datasets(self) -> pl.DataFrame:
        """The datasets table (:data:`DATASETS_SCHEMA`), sorted by ``dataset_id``."""
        return self._read("datasets")

    def models(self) -> pl.DataFrame:
        """The models table (:data:`MODELS_SCHEMA`), sorted by ``model_id``."""
        return self._read("models")

    def windows(
        self,
        dataset_id: str | Sequence[str] | None = None,
        task: str | Sequence[str] | None = None,
        drop_null_features: bool = False,
    ) -> pl.DataFrame:
        """Window meta-features, optionally of some datasets and tasks only.

        Args:
            dataset_id: one id or several; ``None`` = all.
            task: one task name or several; ``None`` = all.
            drop_null_features: drop feature columns that are null in every returned row (features
                that only other datasets have).
        """
        def query(lf: pl.LazyFrame) -> pl.LazyFrame:
            for cond in (_one_of("dataset_id", dataset_id), _one_of("task", task)):
                if cond is not None:
                    lf = lf.filter(cond)
            return lf

        df = self._load("windows", query)
        if drop_null_features and df.height:
            features = [c for c in df.columns if c not in WINDOWS_SCHEMA]
            df = df.drop([c for c in features if df[c].null_count() == df.height])
        return df

    def observations(
        self,
        dataset_id: str | Sequence[str] | None = None,
        model_id: str | Sequence[str] | None = None,
        task: str | Sequence[str] | None = None,
        recipe_hash: str | Sequence[str] | None = None,
    ) -> pl.DataFrame:
        """Observations (:data:`OBSERVATIONS_SCHEMA`), optionally filtered; each filter takes one
        value or several, ``None`` = all."""
        def query(lf: pl.LazyFrame) -> pl.LazyFrame:
            for column, values in (
                ("dataset_id", dataset_id),
                ("model_id", model_id),
                ("task", task),
                ("recipe_hash", recipe_hash),
            ):
                cond = _one_of(column, values)
                if cond is not None:
                    lf = lf.filter(cond)
            return lf

        return self._load("observations", query)

    def tables(self, *names: str) -> dict[str, pl.DataFrame]:
        """Several tables (default: all four) read as one state: no change that a writer commits
        meanwhile shows in some of them but not in others (separate calls of :meth:`datasets`,
        :meth:`windows`, ... may each see a newer state)."""
        names = names or tuple(TABLES)
        unknown = [n for n in names if n not in TABLES]
        if unknown:
            raise TimeticInputError(f"unknown table(s) {', '.join(unknown)}; use {', '.join(TABLES)}")
        return self._consistent(lambda: {name: self._read(name) for name in names})

    # -- writers ------------------------------------------------------------------------------------

    def add_datasets(self, df: Any) -> int:
        """Upsert dataset rows (key ``dataset_id``); ``added`` defaults to now. Returns new keys."""
        return self._upsert("datasets", df)

    def add_windows(self, df: Any) -> int:
        """Upsert window rows (key ``dataset_id, task, item_id, window_start``) with any numeric
        feature columns (stored as Float64). Features not in ``df`` keep their stored values.
        Returns the number of new keys."""
        return self._upsert("windows", df)

    def add_models(self, df: Any) -> int:
        """Upsert model rows (key ``model_id``); ``added`` defaults to now. Returns new keys."""
        return self._upsert("models", df)

    def add_observations(self, df: Any) -> int:
        """Upsert observation rows (key ``dataset_id, model_id, task, recipe_hash, item_id,
        window_start``). ``recipe_hash`` is derived from ``recipe`` when absent; ``date`` defaults
        to now. Returns the number of new keys (0 when every row was already stored)."""
        return self._upsert("observations", df)

    def merge(self, other: "KnowledgeBase | str | Path") -> dict[str, int]:
        """Combine every table of ``other`` into this KB; the newer row wins a key clash.

        The tables change together, as one transaction (:meth:`transaction`). Returns the number of
        new keys per table.
        """
        if not isinstance(other, KnowledgeBase):
            other = KnowledgeBase.open(other)
        elif other.meta.get("schema_version", SCHEMA_VERSION) != SCHEMA_VERSION:
            raise TimeticInputError(
                f"knowledge base {other.path} has schema version {other.meta['schema_version']}, "
                f"this timetic reads {SCHEMA_VERSION}; rebuild or migrate it"
            )
        added = {name: 0 for name in TABLES}
        if other.path.resolve() == self.path.resolve():
            return added
        theirs = other.tables()
        conformed = {name: _conform(theirs[name], spec) for name, spec in TABLES.items()}
        with self.transaction() as tx:
            for name, (incoming, supplied) in conformed.items():
                if incoming.height:
                    added[name] = tx._add(name, incoming, supplied, by_time=True)
        return added

    # -- summaries and export -------------------------------------------------------------------------

    def stats(self) -> dict:
        """Counts: rows per table, (dataset, model, task) cells, tasks, models per dataset, ...

        Returns a JSON-serialisable dict.
        """
        def read() -> tuple[pl.DataFrame, ...]:
            return (
                self._load(
                    "observations", lambda lf: lf.select("dataset_id", "model_id", "task", "recipe_hash", "ft_mase")
                ),
                self._load("windows", lambda lf: lf.select("dataset_id", "task")),
                self._load("datasets", lambda lf: lf.select("dataset_id")),
                self._load("models", lambda lf: lf.select("model_id")),
            )

        obs, win, datasets, models = self._consistent(read)
        datasets, models = datasets["dataset_id"], models["model_id"]
        cells = obs.select("dataset_id", "model_id", "task").unique()
        per_dataset = cells.group_by("dataset_id").agg(pl.col("model_id").n_unique()).sort("dataset_id")
        per_model = cells.group_by("model_id").agg(pl.col("dataset_id").n_unique()).sort("model_id")
        ft_mase = pl.col("ft_mase")
        win_per_dataset = win.group_by("dataset_id").len().sort("dataset_id")
        seen_datasets = pl.concat([obs.get_column("dataset_id"), win.get_column("dataset_id")]).unique()
        return {
            "path": str(self.path),
            "schema_version": self.meta.get("schema_version", SCHEMA_VERSION),
            "n_datasets": datasets.len(),
            "n_windows": win.height,
            "n_models": models.len(),
            "n_observations": obs.height,
            "n_cells": cells.height,
            "n_recipes": obs.get_column("recipe_hash").n_unique(),
            "n_missing_ft_mase": int(obs.select((ft_mase.is_null() | ft_mase.is_nan()).sum()).item()),
            "tasks": sorted(set(obs.get_column("task").to_list()) | set(win.get_column("task").to_list())),
            "models_per_dataset": dict(per_dataset.iter_rows()),
            "datasets_per_model": dict(per_model.iter_rows()),
            "windows_per_dataset": dict(win_per_dataset.iter_rows()),
            "unregistered_datasets": sorted(set(seen_datasets.to_list()) - set(datasets.to_list())),
            "unregistered_models": sorted(set(obs.get_column("model_id").to_list()) - set(models.to_list())),
            "datasets_without_windows": sorted(set(datasets.to_list()) - set(win.get_column("dataset_id").to_list())),
        }

    def check(self, repair: bool = False) -> list["Problem"]:
        """Inconsistencies of the KB, one :class:`Problem` each (an empty list: the KB is consistent).

        Looked for: leftovers of dead writers (a stale ``.lock``, temporary files, staging folders of
        unfinished or committed-but-unapplied changes), duplicate keys, windows of datasets that are
        not registered, registered datasets without windows, observations whose dataset or model is
        not registered, observations whose scores are below 0 or infinite.

        With ``repair``, under the writer lock (waiting for live writers), what can be fixed safely is
        fixed in one transaction: leftovers are removed (a committed change is completed), duplicate
        keys keep their last row, orphan windows are dropped and so are dataset rows without windows
        or observations. Observations are never dropped: one whose dataset or model is missing is
        reported, with the command that registers it. Each returned problem says whether it was fixed.

        Without ``repair`` nothing is written; while a live process holds the lock, its files are not
        reported as leftovers.
        """
        import warnings

        from timetic.errors import TimeticWarning

        lock = _lock_state(self.path / LOCK_FILE)
        if not repair:
            problems = []
            if lock == "held":
                warnings.warn(
                    f"a live process is writing {self.path}: its temporary files were not checked",
                    TimeticWarning,
                    stacklevel=2,
                )
            else:
                problems += self._leftover_problems(lock == "stale")
            return problems + _table_problems(self.tables(), self._base_ids())[0]
        known = self._base_ids()
        with self._locked():
            problems = [_fixed(p) for p in self._leftover_problems(lock == "stale")]
            self._recover()
            tables = {name: self._read(name) for name in TABLES}
            found, repaired = _table_problems(tables, known)
            tx = Transaction(self)
            for name, table in repaired.items():
                tx._set(name, table)
            self._commit(tx)
        return problems + [_fixed(p) if p.repairable else p for p in found]

    def _base_ids(self) -> dict[str, set[str]]:
        """Dataset and model ids of the KBs this one layers over (a user KB, :mod:`timetic.layers`):
        its observations may name them."""
        if not self.meta.get("base"):
            return {}
        from timetic.layers import base_ids

        return base_ids(self)

    def _leftover_problems(self, stale_lock: bool) -> list["Problem"]:
        problems = []
        if stale_lock:
            problems.append(Problem("stale-lock", f"{LOCK_FILE}: lock file that no live process holds"))
        for folder in self._txn_folders():
            if folder.name.endswith(_COMMITTED):
                problems.append(
                    Problem(
                        "unapplied-change",
                        f"{folder.name}: a committed change whose writer died while applying it "
                        f"(readers see it already; repair completes it)",
                    )
                )
            else:
                problems.append(
                    Problem(
                        "unfinished-change",
                        f"{folder.name}: staging folder of a writer that died before committing "
                        f"(the KB is as before it; repair removes the folder)",
                    )
                )
        for tmp in self._temp_files():
            problems.append(Problem("stray-file", f"{tmp.name}: temporary file of a dead writer"))
        return problems

    def export(
        self, out: str | Path, table: str | Iterable[str] | None = None, format: str = "csv"
    ) -> list[Path]:
        """Write tables as CSV, parquet or JSON.

        Args:
            out: a file (``.csv``, ``.parquet`` or ``.json``; ``table`` must name one table) or a
                folder (created if needed; one ``<table>.<format>`` file per table).
            table: a table name, several, or ``None`` for all.
            format: ``"csv"``, ``"parquet"`` or ``"json"`` when ``out`` is a folder.

        List columns (models' profiles) become JSON text in CSV files.

        Returns:
            The files written.
        """
        out = Path(out)
        names = list(TABLES) if table is None else [table] if isinstance(table, str) else list(table)
        unknown = [n for n in names if n not in TABLES]
        if unknown:
            raise TimeticInputError(f"unknown table(s) {', '.join(unknown)}; use {', '.join(TABLES)}")
        if out.suffix.lower() in (".csv", ".parquet", ".json"):
            if len(names) != 1:
                raise TimeticInputError(
                    f"export to the single file {out.name} needs one table; pass --table (table= in Python) or a folder"
                )
            targets = [(names[0], out)]
        else:
            if format not in ("csv", "parquet", "json"):
                raise TimeticInputError(f"unknown export format {format!r}; use csv, parquet or json")
            if out.exists() and out.resolve() == self.path.resolve():
                raise TimeticInputError(
                    f"cannot export into the knowledge base folder {out} itself; pick another folder"
                )
            out.mkdir(parents=True, exist_ok=True)
            targets = [(n, out / f"{n}.{format}") for n in names]
        written = []
        for name, target in targets:
            if target.exists() and target.resolve().parent == self.path.resolve():
                raise TimeticInputError(
                    f"cannot export over the knowledge base's own files ({target}); pick another path"
                )
            df = self._read(name)
            if target.suffix.lower() == ".csv":
                df = _lists_to_json(df)
            written.append(write_table(df, target))
        return written


@dataclass(frozen=True)
class Problem:
    """One inconsistency found by :meth:`KnowledgeBase.check`.

    Attributes:
        kind: what is wrong (``"stale-lock"``, ``"stray-file"``, ``"unfinished-change"``,
            ``"unapplied-change"``, ``"duplicate-keys"``, ``"orphan-windows"``,
            ``"dataset-without-windows"``, ``"orphan-observations"``, ``"bad-scores"``).
        message: one line saying where and what.
        repairable: whether ``check(repair=True)`` fixes it.
        fixed: whether it was fixed (by ``check(repair=True)``).
    """

    kind: str
    message: str
    repairable: bool = True
    fixed: bool = False

    def __str__(self) -> str:
        return f"{'repaired ' if self.fixed else ''}{self.kind}: {self.message}"


def _fixed(p: Problem) -> Problem:
    return Problem(p.kind, p.message, p.repairable, fixed=True)


def _names(values: Iterable[str], limit: int = 5) -> str:
    values = sorted(values)
    shown = ", ".join(repr(v) for v in values[:limit])
    return shown + (f" and {len(values) - limit} more" if len(values) > limit else "")


def _table_problems(
    tables: dict[str, pl.DataFrame], base: dict[str, set[str]] | None = None
) -> tuple[list[Problem], dict[str, pl.DataFrame]]:
    """Cross-table inconsistencies of ``tables``, and the tables repaired where that is safe.
    ``base``: ``{"dataset_id": ids, "model_id": ids}`` registered in the KBs a user KB layers over."""
    problems: list[Problem] = []
    repaired: dict[str, pl.DataFrame] = {}
    tables = dict(tables)
    for name, spec in TABLES.items():
        df = tables[name]
        key = list(spec.key)
        n_dup = df.height - df.select(key).n_unique() if df.height else 0
        if n_dup:
            keys = df.filter(df.select(key).is_duplicated()).select(key).unique().height
            problems.append(
                Problem(
                    "duplicate-keys",
                    f"{name}: {keys} key(s) stored more than once ({n_dup} surplus rows; repair keeps the last)",
                )
            )
            tables[name] = repaired[name] = df.unique(subset=key, keep="last", maintain_order=True).sort(key)
    datasets = set(tables["datasets"].get_column("dataset_id").to_list())
    models = set(tables["models"].get_column("model_id").to_list())
    windows, obs = tables["windows"], tables["observations"]
    registered = pl.Series(sorted(datasets | (base or {}).get("dataset_id", set())), dtype=pl.Utf8).implode()
    orphan = windows.filter(~pl.col("dataset_id").is_in(registered))
    if orphan.height:
        ids = set(orphan.get_column("dataset_id").to_list())
        problems.append(
            Problem(
                "orphan-windows",
                f"windows: {orphan.height} row(s) of unregistered dataset(s) {_names(ids)} (repair drops them)",
            )
        )
        tables["windows"] = repaired["windows"] = windows.filter(pl.col("dataset_id").is_in(registered))
    with_windows = set(tables["windows"].get_column("dataset_id").to_list())
    observed_datasets = set(obs.get_column("dataset_id").to_list())
    empty = datasets - with_windows
    droppable = empty - observed_datasets
    if droppable:
        problems.append(
            Problem(
                "dataset-without-windows",
                f"datasets: {_names(droppable)} registered without windows (an add-dataset that did not "
                f"finish?; repair drops the row, run `timetic add-dataset` again to add it)",
            )
        )
        repaired["datasets"] = tables["datasets"].filter(
            ~pl.col("dataset_id").is_in(pl.Series(sorted(droppable), dtype=pl.Utf8).implode())
        )
    if empty & observed_datasets:
        problems.append(
            Problem(
                "dataset-without-windows",
                f"datasets: {_names(empty & observed_datasets)} have observations but no windows; "
                f"run `timetic add-dataset` for them again",
                repairable=False,
            )
        )
    for column, known, table, command in (
        ("dataset_id", datasets, "datasets", "add-dataset"),
        ("model_id", models, "models", "add-model"),
    ):
        missing = set(obs.get_column(column).to_list()) - known - (base or {}).get(column, set())
        if missing:
            n = obs.filter(pl.col(column).is_in(pl.Series(sorted(missing), dtype=pl.Utf8).implode())).height
            problems.append(
                Problem(
                    "orphan-observations",
                    f"observations: {n} row(s) of {column.split('_')[0]}(s) {_names(missing)} that are not in "
                    f"the {table} table; register them with `timetic {command}` (observations are never dropped)",
                    repairable=False,
                )
            )
    problems += _score_problems(obs)
    return problems, repaired


def _score_problems(obs: pl.DataFrame) -> list[Problem]:
    """Observations whose scores cannot be (below 0 or infinite: scaled errors are finite and
    >= 0; NaN, undefined, is allowed), one problem per column. Writers refuse negative scores, so
    these come from files written by other means; they are reported, never dropped."""
    problems = []
    for column in (c for c in SCORE_COLUMNS if c in obs.columns):
        s = obs.get_column(column).cast(pl.Float64)
        bad = obs.filter((s < 0) | s.is_infinite())
        if bad.height:
            cells = bad.select("dataset_id", "model_id", "task").unique()
            problems.append(
                Problem(
                    "bad-scores",
                    f"observations: {bad.height} row(s) with {column} below 0 or infinite, in {cells.height} "
                    f"(dataset, model, task) cell(s), e.g. {'/'.join(cells.sort(cells.columns).row(0))}; "
                    "re-run those cells (timetic finetune --kb DIR, or benchmarks/build_kb.py) "
                    "(observations are never dropped)",
                    repairable=False,
                )
            )
    return problems


class Transaction:
    """Changes to several tables of a KB that become visible together; see
    :meth:`KnowledgeBase.transaction`. Each ``add_*`` returns the number of new keys, as
    :meth:`KnowledgeBase.add_datasets` and the others do."""

    def __init__(self, kb: KnowledgeBase):
        self.kb = kb
        self._tables: dict[str, tuple[pl.DataFrame, pl.DataFrame]] = {}  # name -> (as read, as changed)

    def _table(self, name: str) -> pl.DataFrame:
        if name not in self._tables:
            table = self.kb._read(name)
            self._tables[name] = (table, table)
        return self._tables[name][1]

    def _set(self, name: str, table: pl.DataFrame) -> None:
        self._table(name)
        self._tables[name] = (self._tables[name][0], table)

    def _add(self, name: str, incoming: pl.DataFrame, supplied: set[str], by_time: bool) -> int:
        combined, n_new = _combine(self._table(name), incoming, TABLES[name], supplied, by_time=by_time)
        self._set(name, combined)
        return n_new

    def _upsert(self, name: str, df: Any) -> int:
        incoming, supplied = _conform(df, TABLES[name])
        return self._add(name, incoming, supplied, by_time=False) if incoming.height else 0

    def add_datasets(self, df: Any) -> int:
        """As :meth:`KnowledgeBase.add_datasets`, applied when the transaction ends."""
        return self._upsert("datasets", df)

    def add_windows(self, df: Any) -> int:
        """As :meth:`KnowledgeBase.add_windows`, applied when the transaction ends."""
        return self._upsert("windows", df)

    def add_models(self, df: Any) -> int:
        """As :meth:`KnowledgeBase.add_models`, applied when the transaction ends."""
        return self._upsert("models", df)

    def add_observations(self, df: Any) -> int:
        """As :meth:`KnowledgeBase.add_observations`, applied when the transaction ends."""
        return self._upsert("observations", df)


def _lists_to_json(df: pl.DataFrame) -> pl.DataFrame:
    """List columns -> JSON text (CSV has no nested values; only the small models table has any)."""
    lists = [c for c, t in df.schema.items() if isinstance(t, pl.List)]
    if not lists:
        return df
    return df.with_columns(
        pl.Series(c, [None if v is None else json.dumps(v) for v in df[c].to_list()], dtype=pl.Utf8)
        for c in lists
    )


def _write_parquet(df: pl.DataFrame, path: Path) -> None:
    """Atomic parquet write keeping ``path``'s permissions (new files: rw-r--r--, not mkstemp's 0600)."""
    mode = _mode_of(path)
    with atomic_path(path) as tmp:
        df.write_parquet(tmp)
        tmp.chmod(mode)
        _write_step(f"wrote a temporary file for {path.name}")
    _write_step(f"replaced {path.name}")


def _mode_of(path: Path) -> int:
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        return _FILE_MODE


def _file_id(path: Path) -> list | None:
    """What tells one version of a file from the next (inode, size, mtime), or ``None`` if absent."""
    try:
        st = path.stat()
    except OSError:
        return None
    return [st.st_ino, st.st_size, st.st_mtime_ns]


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())




def _remove(path: Path) -> None:
    """Remove a staging folder (or a stray file of that name); what cannot be removed stays."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            path.unlink()
        except OSError:
            pass


def _lock_state(path: Path) -> str:
    """``"absent"``, ``"held"`` (a live process holds it) or ``"stale"`` (nobody holds it)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        return "absent"
    except OSError:
        return "held"  # cannot tell: treat as live, never remove it
    try:
        import fcntl

        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return "held"
        return "stale" if os.fstat(fd).st_nlink else "absent"
    finally:
        os.close(fd)  # drops the probe's flock


def _has_rows(f: Path) -> bool:
    try:
        return pl.scan_parquet(f).select(pl.len()).collect().item() > 0
    except Exception:  # noqa: BLE001 - an unreadable file holds nothing we could keep
        return False


def _short(e: BaseException) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def _timetic_version() -> str:
    import sys

    version = getattr(sys.modules.get("timetic"), "__version__", None)
    if version:
        return str(version)
    try:
        from importlib.metadata import version as _version

        return _version("timetic")
    except Exception:  # noqa: BLE001 - not installed: the version is unknown
        return "unknown"


__all__ = [
    "DATASETS_SCHEMA",
    "MODELS_SCHEMA",
    "OBSERVATIONS_SCHEMA",
    "SCHEMA_VERSION",
    "TABLES",
    "WINDOWS_SCHEMA",
    "KnowledgeBase",
    "Problem",
    "TableSpec",
    "Transaction",
    "content_hash",
    "recipe_hash",
]


# ---------------------------------------------------------------------------------------------
# locations


#: The folder (at the repository root) of the default knowledge base. It is the one constant to change
#: to switch the default KB: a source checkout reads ``<repo>/<DEFAULT_KB_DIR>``, and the wheel build
#: (``hatch_build.py``, which reads this line) copies that folder into the package as ``timetic/_kb``.
DEFAULT_KB_DIR = "meta_features"

#: where an installed (wheel) timetic keeps its copy of the default KB, relative to the package.
PACKAGED_KB_DIR = "_kb"


def default_kb_path() -> Path:
    """The knowledge base used when none is given.

    ``TIMETIC_KB`` if set; else :data:`DEFAULT_KB_DIR` of the source checkout (``meta_features/``);
    else the copy shipped inside the installed package (``timetic/_kb``, a wheel install).
    """
    import os

    env = os.environ.get("TIMETIC_KB")
    if env:
        return Path(env)
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / DEFAULT_KB_DIR, here / PACKAGED_KB_DIR):
        if (candidate / KB_FILE).exists():
            return candidate
    raise TimeticInputError(
        f"no default knowledge base found ({DEFAULT_KB_DIR}/ of a source checkout or the installed package's "
        f"{PACKAGED_KB_DIR}/ has no {KB_FILE}); pass --kb DIR or set TIMETIC_KB"
    )


def resolve_model_source(kb: KnowledgeBase, source: str) -> str:
    """A model's stored ``source``: ``zoo:<id>`` is a model shipped in ``timetic/zoo``;
    ``weights:<folder>`` a folder of the weights folder (:mod:`timetic.pretrained`); relative
    paths are relative to the KB folder; anything else (absolute path, hub id) is kept."""
    if source.startswith("zoo:"):
        return str(Path(__file__).resolve().parent / "zoo" / source[4:])
    from timetic.pretrained import resolve_weights_source

    if (path := resolve_weights_source(source)) is not None:
        return path
    p = Path(source)
    if not p.is_absolute() and (kb.path / p).exists():
        return str(kb.path / p)
    return source

