"""Published pretrained checkpoints that live outside the package, in a weights folder.

Weights are never part of timetic; they are read from :func:`weights_dir`
(``$TIMETIC_WEIGHTS_DIR``, else ``../shared/weights`` beside the repository). :data:`EXTERNAL`
lists the checkpoints the knowledge base knows by name: adapter, sub-folder, the hub id a user with
a network would load, licence, and what is known of the pretraining data (the contamination
record that the KB's ``models`` table keeps). A KB row's ``source`` is ``weights:<folder>`` for
such a model, resolved against the weights folder of the machine that reads the KB, so the KB
itself moves between machines; a model whose folder is absent still ranks from the KB (its profile
and observations are stored), it just cannot run zero-shot there.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

ENV_VAR = "TIMETIC_WEIGHTS_DIR"
#: prefix of KB ``source`` values that name a folder inside :func:`weights_dir`.
SOURCE_PREFIX = "weights:"

#: TTM-R2's pretraining data as IBM describes it (public time-series archives such as Monash and
#: LibCity). The list could not be checked offline; these evaluation datasets are, or are likely
#: to be, in those archives (M4 and NN5 are Monash datasets; Monash's Australian electricity
#: demand includes Victoria's), so their TTM-R2 cells are flagged as possibly contaminated.
_TTM_POSSIBLE_OVERLAP = ["m4_hourly", "m4_weekly", "nn5", "vic_electricity"]

EXTERNAL: dict[str, dict[str, Any]] = {
    "ttm-r2": {
        "adapter": "ttm",
        "folder": "ttm-r2-512-96",
        "hub_id": "ibm-granite/granite-timeseries-ttm-r2",
        "licence": "Apache-2.0",
        "file": "model.safetensors",
        "pretraining_corpus": "IBM Granite TinyTimeMixer R2 (512-96): pretrained by IBM on public "
                              "time-series archives (Monash, LibCity and others, per its model card); "
                              "weights converted as documented in the weights folder's README",
        "pretraining_datasets": _TTM_POSSIBLE_OVERLAP,
    },
}


def weights_dir() -> Path:
    """The folder holding published pretrained weights.

    ``$TIMETIC_WEIGHTS_DIR`` when set; else the first existing of ``<repo>/../shared/weights``
    (relative to the installed package) and ``<cwd>/../shared/weights``; else the first of them.
    """
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    import timetic

    candidates = [
        Path(timetic.__file__).resolve().parents[2] / "shared" / "weights",
        Path.cwd().parent / "shared" / "weights",
    ]
    for c in candidates:
        if c.is_dir():
            return c
    return candidates[0]


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def external_path(model_id: str) -> Path:
    """The folder of external model ``model_id`` in :func:`weights_dir` (may not exist)."""
    return weights_dir() / EXTERNAL[model_id]["folder"]


def available_external() -> dict[str, Path]:
    """model_id -> folder, for the :data:`EXTERNAL` models whose weights are on this machine."""
    out = {}
    for mid, spec in EXTERNAL.items():
        path = external_path(mid)
        if (path / spec["file"]).is_file():
            out[mid] = path
    return out


def resolve_weights_source(source: str) -> str | None:
    """``weights:<folder>`` -> the folder's path in :func:`weights_dir`; anything else -> None."""
    if source.startswith(SOURCE_PREFIX):
        return str(weights_dir() / source[len(SOURCE_PREFIX):])
    return None
