"""timetic's model zoo: 12 mini time-series foundation models shipped with the package.

Six families (the adapters chronos-bolt, chronos-2, timesfm, patchtst, deepar, tide) at two
depths (``<adapter>-s`` from size ``"zoo-s"``, ``<adapter>-m`` from ``"zoo-m"``), pretrained from
random weights on a synthetic + real corpus disjoint from timetic's evaluation datasets by
``benchmarks/zoo/pretrain.py``. Each ``ZOO_DIR / <model_id>`` holds the model in its adapter's own
format, ``card.json`` (family, adapter, size, parameters, depth, pretraining recipe and budget,
corpus summary, zero-shot validation scores) and a ``README.md`` model card;
``corpus_manifest.json`` lists the pretraining corpus' sources (the contamination record).

    from timetic.zoo import zoo_models, zoo_path, load_zoo_model
    [c["model_id"] for c in zoo_models()]
    model = load_zoo_model("chronos-bolt-s")
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from timetic.errors import TimeticInputError

#: the folder holding the zoo's model folders.
ZOO_DIR: Path = Path(__file__).resolve().parent
#: the model card every model folder holds.
CARD_FILE = "card.json"
#: the corpus manifest (sources and counts of the pretraining corpus).
MANIFEST_FILE = "corpus_manifest.json"


#: the retrained zoo (benchmark v2: new corpus, CPU-time budget) that knowledge base v2 is built
#: on; it replaces the top-level zoo when KB v2 becomes the shipped default. Its models are
#: addressed as ``"v2/<model_id>"`` (``zoo_path``, KB sources ``zoo:v2/<model_id>``).
GENERATIONS: tuple[str, ...] = ("v2",)


def _card_dirs(generation: str | None = None) -> list[Path]:
    root = ZOO_DIR / generation if generation else ZOO_DIR
    if not root.is_dir():
        return []
    return sorted(d for d in root.iterdir() if d.is_dir() and (d / CARD_FILE).is_file())


def zoo_models(generation: str | None = None) -> list[dict[str, Any]]:
    """The cards of every built zoo model (sorted by model id), each with its ``path`` added.

    ``generation`` None: the shipped zoo (the models of the shipped KB); ``"v2"``: the retrained
    zoo of KB v2 (:data:`GENERATIONS`). Empty when that zoo has not been built
    (``python benchmarks/zoo/pretrain.py``).
    """
    out = []
    for d in _card_dirs(generation):
        card = json.loads((d / CARD_FILE).read_text())
        card["path"] = str(d)
        out.append(card)
    return out


def zoo_path(model_id: str) -> Path:
    """The folder of zoo model ``model_id`` (e.g. ``"chronos-bolt-s"``)."""
    path = ZOO_DIR / str(model_id)
    if not (path / CARD_FILE).is_file():
        known = ", ".join(d.name for d in _card_dirs()) or "none: run benchmarks/zoo/pretrain.py"
        raise TimeticInputError(f"no zoo model {model_id!r}; built zoo models: {known}")
    return path


def zoo_card(model_id: str) -> dict[str, Any]:
    """The ``card.json`` of zoo model ``model_id``."""
    return json.loads((zoo_path(model_id) / CARD_FILE).read_text())


def zoo_manifest() -> dict[str, Any]:
    """The pretraining corpus manifest (``corpus_manifest.json``)."""
    path = ZOO_DIR / MANIFEST_FILE
    if not path.is_file():
        raise TimeticInputError("the zoo's corpus manifest is missing; run benchmarks/zoo/pretrain.py")
    return json.loads(path.read_text())


def zoo_revision(model_id: str) -> str:
    """``"sha256:<hex>"`` over the model folder's files except its card and README (the weights
    and configs): the KB records it, so observations of a retrained model are told apart."""
    return folder_revision(zoo_path(model_id))


def folder_revision(path: str | Path) -> str:
    """``"sha256:<hex>"`` over the files of a model folder except a card and README (or of one
    checkpoint file)."""
    import hashlib

    path = Path(path)
    h = hashlib.sha256()
    files = [path] if path.is_file() else sorted(path.iterdir())
    for f in files:
        if f.is_file() and f.name not in (CARD_FILE, "README.md"):
            h.update(f.name.encode() + b"\0" + f.read_bytes())
    return f"sha256:{h.hexdigest()}"


def load_zoo_model(model_id: str, device: str = "cpu", **kwargs: Any) -> Any:
    """``timetic.adapters.load_model(zoo_path(model_id), adapter=<the card's adapter>)``."""
    from timetic.adapters import load_model

    return load_model(zoo_path(model_id), adapter=zoo_card(model_id)["adapter"], device=device, **kwargs)


__all__ = ["ZOO_DIR", "zoo_models", "zoo_path", "zoo_card", "zoo_manifest", "zoo_revision", "folder_revision", "load_zoo_model"]
