"""Shared base of the adapters over Hugging Face ``transformers`` model classes (TimesFM, PatchTST).

Checkpoints are Hugging Face directories (``config.json`` + ``model.safetensors``) of one
``transformers`` model class; :class:`HFAdapter` loads, builds, saves and batches them, and the
families add their inputs, outputs and loss. The helpers here (context checks, quiet loading,
``model_type`` checks, the final quantile clean-up) are shared by the families too.
"""

from __future__ import annotations

import contextlib
import json
import warnings
from pathlib import Path
from typing import Any, ClassVar, Iterator

import numpy as np
import torch

from timetic.adapters.base import QUANTILE_LEVELS, fill_nan, resolve_source
from timetic.adapters.torch_base import TorchAdapter
from timetic.errors import TimeticInputError


class HFAdapter(TorchAdapter):
    """Base of the ``transformers`` families (not registered itself).

    Subclasses set :attr:`model_type`, :attr:`model_class`, :attr:`config_class`, the size tables
    and implement :meth:`_embed_batch` and :meth:`_forecast_batch` (plus the fine-tuning loss).
    """

    sizes: ClassVar[tuple[str, ...]] = ("tiny", "zoo-s", "zoo-m")
    #: ``model_type`` in the family's ``config.json`` (checked on loading; named in errors).
    model_type: ClassVar[str] = ""
    #: names of the ``transformers`` model and config classes.
    model_class: ClassVar[str] = ""
    config_class: ClassVar[str] = ""
    #: ``from_config`` keyword arguments of the config class: shared ones and those of each size.
    config_common: ClassVar[dict[str, Any]] = {}
    config_sizes: ClassVar[dict[str, dict[str, Any]]] = {}

    def __init__(self, model: Any, source: str = "", device: str = "cpu"):
        self.model = model.eval()
        self.source = str(source)
        self.device = device
        self.context_length = int(model.config.context_length)

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def _transformers(cls, name: str) -> type:
        """``from transformers import <name>`` (ImportError when the library lacks it)."""
        import transformers

        try:
            return getattr(transformers, name)
        except AttributeError as e:
            raise ImportError(f"cannot import name {name!r} from 'transformers'") from e

    @classmethod
    def from_pretrained(cls, source: str | Path, device: str = "cpu", **kwargs: Any) -> "HFAdapter":
        path = resolve_source(source)
        check_model_type(path, cls.model_type)
        with quiet_transformers():
            model = cls._transformers(cls.model_class).from_pretrained(path, **kwargs)
        return cls(model.to(device), source=str(source), device=device)

    @classmethod
    def from_config(cls, size: str = "tiny", seed: int = 0, **overrides: Any) -> "HFAdapter":
        config_class, model_class = cls._transformers(cls.config_class), cls._transformers(cls.model_class)
        if size not in cls.config_sizes:
            raise TimeticInputError(
                f"unknown {cls.model_type} size {size!r}; use one of {', '.join(cls.config_sizes)}"
            )
        kw = {**cls.config_common, **cls.config_sizes[size], **overrides}
        cls._check_config(kw)
        torch.manual_seed(seed)
        model = model_class(config_class(**kw))
        return cls(model, source=f"config:{size}")

    @classmethod
    def _check_config(cls, kw: dict[str, Any]) -> None:
        """Raise TimeticInputError when the config arguments ``kw`` cannot build a usable model."""

    def save_pretrained(self, path: str | Path) -> Path:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        with quiet_transformers():
            self.model.save_pretrained(path)
        return path

    # -- description --------------------------------------------------------------------------
    @property
    def depth(self) -> int:
        return int(self.model.config.num_hidden_layers)

    # -- use ----------------------------------------------------------------------------------
    def _embed_batch(self, x: np.ndarray) -> list[torch.Tensor]:
        """(b, C) with NaN -> every layer's token embeddings, each (b, T, d) on any device."""
        raise NotImplementedError

    def _forecast_batch(self, x: np.ndarray, horizon: int) -> np.ndarray:
        """(b, C) with NaN -> (b, Q, H) at :data:`QUANTILE_LEVELS`."""
        raise NotImplementedError

    def layer_embeddings(self, context: np.ndarray, batch_size: int = 64) -> list[torch.Tensor]:
        x = as_context(context)
        if len(x) == 0:
            raise TimeticInputError("no context windows given (n = 0); pass at least one")
        self.model.eval()
        per_batch: list[list[torch.Tensor]] = []
        with torch.no_grad():
            for start in range(0, len(x), batch_size):
                states = self._embed_batch(x[start : start + batch_size])
                per_batch.append([h.detach().float().cpu() for h in states])
        return [torch.cat(layer, dim=0) for layer in zip(*per_batch)]

    def forecast(self, context: np.ndarray, horizon: int, batch_size: int = 64) -> np.ndarray:
        if horizon < 1:
            raise TimeticInputError(f"horizon must be >= 1; got {horizon}")
        x = as_context(context)
        self.model.eval()
        out = np.empty((len(x), len(QUANTILE_LEVELS), horizon))
        with torch.no_grad():
            for start in range(0, len(x), batch_size):
                out[start : start + batch_size] = self._forecast_batch(x[start : start + batch_size], horizon)
        return out


def as_context(context: np.ndarray) -> np.ndarray:
    """(n, C) float64 with NaN for missing (non-finite values count as missing)."""
    x = np.asarray(context, dtype=np.float64)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2 or x.shape[1] == 0:
        raise TimeticInputError(f"context must have shape (n, C) with C >= 1; got shape {x.shape}")
    return np.where(np.isfinite(x), x, np.nan)


def finish_quantiles(q: np.ndarray, x: np.ndarray) -> np.ndarray:
    """(b, Q, H) -> sorted across quantiles; non-finite values become the last observed value of
    the context ``x`` (b, C) (a naive forecast where the model overflowed)."""
    q = np.sort(q, axis=1)
    if not np.isfinite(q).all():
        filled, _ = fill_nan(x)
        last = filled[:, -1][:, None, None]
        q = np.where(np.isfinite(q), q, last)
        q = np.sort(q, axis=1)
    return q


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' progress bars and warnings while loading / saving (restored after)."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    if was_enabled:
        hf_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def check_model_type(path: Path, expected: str) -> None:
    """Raise a clear error unless ``path/config.json`` declares ``model_type == expected``."""
    cfg = path / "config.json"
    if not cfg.is_file():
        raise TimeticInputError(
            f"no config.json in {path}; pass a directory saved by save_pretrained or a {expected} "
            "checkpoint from the Hugging Face hub"
        )
    try:
        model_type = json.loads(cfg.read_text()).get("model_type")
    except (json.JSONDecodeError, AttributeError) as e:
        raise TimeticInputError(f"{cfg} is not a valid JSON config; re-download the checkpoint") from e
    if model_type != expected:
        raise TimeticInputError(
            f"{path} holds a {model_type!r} model, not {expected!r}; pick the adapter that matches "
            "the checkpoint"
        )
