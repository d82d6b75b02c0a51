"""The adapter interface: one class per model family, registered by name.

An adapter wraps a real model library's class. It can load from a Hugging Face id or a local
directory (``from_pretrained``), build a random-weight model from a config (``from_config``: tests
and the zoo), save back, return per-layer token embeddings, forecast quantiles, and fine-tune.
Only modules under ``timetic/adapters/`` import model libraries.

Array shapes: ``n`` windows, ``C`` context length, ``H`` horizon, ``Q`` quantile levels,
``T_l`` tokens of layer ``l``, ``d`` model width.
"""

from __future__ import annotations

import os
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Callable, ClassVar

import numpy as np

from timetic.errors import TimeticInputError
from timetic.recipe import Recipe

#: quantile levels of every forecast (the 9 deciles, as in GIFT-Eval's WQL).
QUANTILE_LEVELS: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)

_REGISTRY: dict[str, type["Adapter"]] = {}


class Adapter(ABC):
    """A pretrained forecasting model behind timetic's common interface.

    Subclasses register themselves with ``class ChronosBolt(Adapter, name="chronos-bolt")``.
    """

    name: ClassVar[str] = ""
    #: names of the sizes ``from_config`` knows: "tiny" (tests) and the zoo sizes.
    sizes: ClassVar[tuple[str, ...]] = ("tiny",)
    #: for a model whose quantiles come from sampled paths: the ``from_pretrained`` keyword that
    #: sets how many paths it draws (None: the model forecasts quantiles directly).
    sample_paths_kwarg: ClassVar[str | None] = None
    quantile_levels: tuple[float, ...] = QUANTILE_LEVELS

    def __init_subclass__(cls, name: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if name is not None:
            if name in _REGISTRY and _REGISTRY[name] is not cls:
                raise RuntimeError(f"adapter name {name!r} registered twice")
            cls.name = name
            _REGISTRY[name] = cls

    # -- construction -------------------------------------------------------------------------
    @classmethod
    @abstractmethod
    def from_pretrained(cls, source: str | Path, device: str = "cpu", **kwargs: Any) -> "Adapter":
        """Load a checkpoint from a local directory or a Hugging Face hub id."""

    @classmethod
    def weights_available(cls, source: str) -> bool:
        """Whether ``from_pretrained(source)`` finds its weights on this machine without a
        download: a local path that exists (a family whose package bundles weights says so too)."""
        return Path(str(source)).exists()

    @classmethod
    @abstractmethod
    def from_config(cls, size: str = "tiny", seed: int = 0, **overrides: Any) -> "Adapter":
        """Build a random-weight model of a named size (no download)."""

    @abstractmethod
    def save_pretrained(self, path: str | Path) -> Path:
        """Save in the family's own format so that ``from_pretrained(path)`` loads it back."""

    # -- use ----------------------------------------------------------------------------------
    @abstractmethod
    def layer_embeddings(self, context: np.ndarray, batch_size: int = 64) -> list["torch.Tensor"]:  # noqa: F821
        """Token embeddings of every layer, input embedding first, last layer last.

        Args:
            context: shape (n, C), float, NaN = missing.
        Returns:
            list of depth + 1 float32 CPU tensors, the l-th of shape (n, T_l, d).
        """

    @abstractmethod
    def forecast(self, context: np.ndarray, horizon: int, batch_size: int = 64) -> np.ndarray:
        """Quantile forecasts.

        Args:
            context: shape (n, C), float, NaN = missing.
            horizon: H.
        Returns:
            shape (n, Q, H) float64, quantiles in :attr:`quantile_levels` order.
        """

    @abstractmethod
    def finetune(
        self,
        train: list[np.ndarray],
        horizon: int,
        recipe: Recipe,
        progress: Callable[[int, int], None] | None = None,
        validate: Callable[["Adapter"], float] | None = None,
    ) -> "Adapter":
        """Full-parameter fine-tuning on training series; returns a new adapter (self unchanged).

        Args:
            train: the training parts of the series, each of shape (T_i,), NaN = missing.
            horizon: H of the task.
            recipe: the uniform recipe (steps, batch size, learning rate
                (``recipe.learning_rate_for(self.name)``), context length, seed, validation).
            progress: called as ``progress(step, total)`` after every optimiser step.
            validate: validation loss of an adapter (lower is better, non-finite = worst). When
                given and ``recipe.eval_every`` is set, it is called on an adapter that forecasts
                with the current weights at step 0, every ``eval_every`` steps and at the last
                step; the weights with the lowest loss are kept (the starting weights when
                nothing improves on them) and training stops after ``recipe.patience``
                evaluations without improvement (:class:`timetic.adapters.torch_base.Checkpointer`).
        Returns:
            the new adapter, with ``finetune_info``: a dict with ``steps_run``, ``best_step``,
            ``val_curve`` (list of ``[step, loss]``, loss ``None`` when not finite),
            ``stopped_early``, ``validated`` and ``learning_rate``.
        """

    # -- description --------------------------------------------------------------------------
    @property
    @abstractmethod
    def num_parameters(self) -> int: ...

    @property
    @abstractmethod
    def depth(self) -> int:
        """Number of layers whose embeddings ``layer_embeddings`` returns, minus the input one."""

    def info(self) -> dict[str, Any]:
        return {
            "adapter": self.name,
            "source": str(getattr(self, "source", "")),
            "num_parameters": int(self.num_parameters),
            "depth": int(self.depth),
        }


# ---------------------------------------------------------------------------------------------
# registry

#: The adapter families timetic ships, as static metadata, so that listing them (``timetic
#: adapters``, :func:`available_adapters`, :func:`adapter_sizes`) imports no model library: name ->
#: (module under ``timetic.adapters``, top-level packages that module imports and that may be
#: missing, the sizes ``from_config`` knows). A family's module (torch, gluonts, transformers, ...)
#: is imported only by :func:`get_adapter` of one of its names. tests/test_lazy.py checks this table
#: against the classes.
FAMILIES: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "chronos-bolt": ("chronos", ("torch",), ("tiny", "zoo-s", "zoo-m")),
    "chronos-2": ("chronos", ("torch",), ("tiny", "zoo-s", "zoo-m")),
    "timesfm": ("timesfm", ("torch",), ("tiny", "zoo-s", "zoo-m")),
    "patchtst": ("patchtst", ("torch",), ("tiny", "zoo-s", "zoo-m")),
    "deepar": ("gluonts_models", ("torch", "lightning", "gluonts"), ("tiny", "zoo-s", "zoo-m")),
    "tide": ("gluonts_models", ("torch", "lightning", "gluonts"), ("tiny", "zoo-s", "zoo-m")),
    "ttm": ("ttm", ("torch", "tsfm_public"), ("tiny", "zoo-s", "zoo-m")),
    "fracast": ("fracast", ("torch", "fracast"), ("tiny", "fracast-0")),
}


#: The shipped adapters whose ``from_pretrained`` takes a number of sample paths, by the keyword
#: (their class's :attr:`Adapter.sample_paths_kwarg`), so that a zero-shot cache key can be made
#: without importing the family (a fully cached predict imports no model library).
SAMPLE_PATHS_KWARGS: dict[str, str] = {"deepar": "num_parallel_samples"}


def adapter_sample_paths_kwarg(name: str) -> str | None:
    """``get_adapter(name).sample_paths_kwarg``, without importing a shipped family."""
    if name in _REGISTRY:
        return _REGISTRY[name].sample_paths_kwarg
    if name in FAMILIES:
        return SAMPLE_PATHS_KWARGS.get(name)
    raise _unknown(name)


def _installed(packages: tuple[str, ...]) -> bool:
    """Whether every top-level package can be found (found, not imported)."""
    import importlib.util

    for package in packages:
        try:
            if importlib.util.find_spec(package) is None:
                return False
        except (ImportError, ValueError):
            return False
    return True


def available_adapters() -> list[str]:
    """Names of the adapters whose libraries are installed (no model library is imported)."""
    names = {name for name, (_, requires, _) in FAMILIES.items() if _installed(requires)}
    return sorted(names | set(_REGISTRY))


def adapter_sizes(name: str) -> tuple[str, ...]:
    """The sizes ``get_adapter(name).from_config`` knows, without importing the family."""
    if name in _REGISTRY:
        return tuple(_REGISTRY[name].sizes)
    if name in FAMILIES:
        return FAMILIES[name][2]
    raise _unknown(name)


def get_adapter(name: str) -> type[Adapter]:
    """The adapter class registered as ``name`` (imports that family's module, and only it)."""
    if name not in _REGISTRY and name in FAMILIES:
        module, requires, _ = FAMILIES[name]
        try:
            _import_family(module)
        except ImportError as e:
            raise TimeticInputError(
                f"adapter {name!r} cannot be used here: {type(e).__name__}: {e}; install the "
                f"libraries it needs ({', '.join(requires)}; see pyproject.toml's extras)"
            ) from e
    try:
        return _REGISTRY[name]
    except KeyError:
        raise _unknown(name) from None


def _unknown(name: str) -> TimeticInputError:
    return TimeticInputError(
        f"unknown adapter {name!r}; use one of {', '.join(available_adapters()) or '(none installed)'}"
    )


def load_model(source: str | Path, adapter: str, device: str = "cpu", **kwargs: Any) -> Adapter:
    """``get_adapter(adapter).from_pretrained(source)``."""
    return get_adapter(adapter).from_pretrained(source, device=device, **kwargs)


def _import_family(module: str) -> None:
    """Import ``timetic.adapters.<module>`` so that its classes register."""
    import importlib

    importlib.import_module(f"timetic.adapters.{module}")


# ---------------------------------------------------------------------------------------------
# helpers shared by the families


def resolve_source(source: str | Path) -> Path:
    """A local directory for ``source``: itself if it exists, else a hub snapshot.

    Hub ids (``org/name``) are fetched with ``huggingface_hub`` (cache first). When the hub cannot
    be reached, raises :class:`TimeticInputError` saying how to pass a local directory instead.
    """
    path = Path(source).expanduser()
    if path.exists():
        if not path.is_dir():
            raise TimeticInputError(f"{path} is a file; pass the model's directory")
        return path
    text = str(source)
    if text.count("/") != 1 or text.startswith((".", "/", "~")):
        raise TimeticInputError(
            f"model source {text!r} is neither a local directory nor a hub id like 'org/name'; "
            "check the path"
        )
    try:
        from huggingface_hub import snapshot_download

        try:
            return Path(snapshot_download(text, local_files_only=True))
        except Exception:
            if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
                raise
            return Path(snapshot_download(text))
    except Exception as e:
        raise TimeticInputError(
            f"cannot fetch {text!r} from the Hugging Face hub (offline or unreachable: "
            f"{type(e).__name__}); download it where the hub is reachable (huggingface-cli download "
            f"{text} --local-dir DIR) and pass DIR"
        ) from e


def float32_context(context: np.ndarray) -> np.ndarray:
    """(n, C) float32 with NaN for missing (non-finite values count as missing)."""
    x = np.asarray(context, dtype=np.float64)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2:
        raise TimeticInputError(f"context must have shape (n, C); got shape {x.shape}")
    if x.shape[1] == 0:
        raise TimeticInputError("context is empty (C = 0); pass at least one time step")
    return np.where(np.isfinite(x), x, np.nan).astype(np.float32)


def fill_nan(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Linear interpolation of NaN along the last axis (edges: nearest value; all-NaN rows: 0).

    Shape (n, C) -> ((n, C) filled, (n, C) observed mask as float).
    """
    x = np.asarray(x, dtype=np.float64)
    mask = np.isfinite(x)
    out = x.copy()
    idx = np.arange(x.shape[-1])
    for i in np.flatnonzero(~mask.all(axis=-1)):
        m = mask[i]
        out[i] = np.interp(idx, idx[m], x[i, m]) if m.any() else 0.0
    return out, mask.astype(np.float64)


def sample_training_windows(
    train: list[np.ndarray], context_length: int, horizon: int, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Draw n random (context, future) pairs from the training series.

    Series shorter than C + H are left-padded with NaN (models see missing values). Series are
    drawn with probability proportional to their number of windows.

    Returns:
        context of shape (n, C) and future of shape (n, H), float64 with NaN.
    """
    L = context_length + horizon
    lengths = np.array([len(s) for s in train])
    if len(train) == 0 or lengths.max(initial=0) < horizon + 2:
        raise TimeticInputError(
            "no training data long enough for fine-tuning; use longer series or a shorter task"
        )
    weight = np.maximum(lengths - L + 1, 1).astype(float)
    weight[lengths < horizon + 2] = 0
    which = rng.choice(len(train), size=n, p=weight / weight.sum())
    out = np.full((n, L), np.nan)
    for k, i in enumerate(which):
        s = train[i]
        if len(s) >= L:
            start = rng.integers(0, len(s) - L + 1)
            out[k] = s[start : start + L]
        else:
            out[k, L - len(s) :] = s
    return out[:, :context_length], out[:, context_length:]


class Timer:
    """``with Timer() as t: ...; t.seconds`` (wall clock) and ``t.cpu_seconds`` (CPU time of the
    whole process, every thread: unlike the wall clock, it does not count time the process was
    paused or waiting for a busy machine)."""

    def __enter__(self) -> "Timer":
        self.start = time.perf_counter()
        self.cpu_start = time.process_time()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.seconds = time.perf_counter() - self.start
        self.cpu_seconds = time.process_time() - self.cpu_start
