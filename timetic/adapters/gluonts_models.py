"""GluonTS families: DeepAR and TiDE (``gluonts.torch``, trained with PyTorch Lightning).

Both are driven through gluonts' own estimator / predictor API: a model is a
:class:`gluonts.torch.model.predictor.PyTorchPredictor` (whose ``prediction_net`` is the
Lightning module around the network) and the estimator that built it
(:class:`~gluonts.torch.model.deepar.DeepAREstimator`,
:class:`~gluonts.torch.model.tide.TiDEEstimator`) is rebuilt from a small JSON config whenever
the adapter needs its transformation, its data loader or a fresh Lightning module. Building a
predictor needs no data and no training: ``create_transformation`` + ``create_lightning_module``
+ ``create_predictor`` give an untrained predictor with seeded random weights.

GluonTS models have no hub. A checkpoint is the directory written by
``PyTorchPredictor.serialize``: ``gluonts-config.json`` (predictor type), ``predictor.json``
(gluonts' JSON serde of the predictor: transformation chain and Lightning module arguments, no
pickle) and ``prediction-net-state.pt`` (a ``torch.save`` of the network's state dict: tensors
only, read back with ``torch.load(weights_only=True)``), plus timetic's ``timetic-gluonts.json``
(the adapter name and the estimator config, needed to fine-tune). Before loading, every class
named in ``predictor.json`` must live in gluonts / numpy / pandas (gluonts' decoder imports the
modules it names).

Time stamps are dummies: every window is a series with frequency ``freq`` (default ``"h"``)
whose forecast starts at a fixed anchor, so a window's position in the calendar never depends on
its length. DeepAR is built without calendar features (``time_features=[]``: only gluonts' age
feature); TiDE always uses its seven calendar features (gluonts hard-codes them), which therefore
only encode the position relative to the anchor.

Inputs: NaN is missing; gluonts' ``AddObservedValuesIndicator`` replaces it with 0 and the
observed-values mask enters the mean scaler (and DeepAR's / TiDE's losses). A window without any
observed value gets scale 1 (gluonts' default would borrow the batch's mean scale, making it
depend on the other windows of its batch). Contexts longer than the model's
:attr:`~GluonTSAdapter.context_length` (for DeepAR: its unroll length plus its largest lag) are
truncated on the left, shorter ones are left-padded (unobserved)
by gluonts' ``InstanceSplitter``.

Horizons: DeepAR samples paths autoregressively for any horizon (the predictor is rebuilt with
``prediction_length = H``; the weights do not depend on it). TiDE has a fixed output length: a
shorter H is truncated, a longer one is unrolled by appending the median to the context.

Layer embeddings (input embedding first):

* DeepAR: the LSTM input (lagged, scaled targets + static and age features) at every context
  step, then the output of every LSTM layer (the stacked ``nn.LSTM`` is run layer by layer with
  its own weights). Tokens = the LSTM's unroll steps (the last ``unroll_length`` steps of the
  context). ``depth = num_layers``.
* TiDE: the dense encoder's input (one token: scaled context + projected covariates), the output
  of every dense-encoder block (one token), the output of every dense-decoder block (one token,
  the last one reshaped to the H future steps of width ``decoder_output_dim``, as TiDE's temporal
  decoder reads it). gluonts builds the dense decoder with ``num_layers_encoder`` blocks, so
  ``depth = 2 * num_layers_encoder``. Widths differ between layers.

Forecasts: DeepAR's quantiles are empirical quantiles of ``num_parallel_samples`` (default 100)
sample paths drawn under a fixed torch seed (global RNG state is restored afterwards): identical
for identical inputs and ``batch_size``, but a window's paths depend on its batch. Sampling is
DeepAR's cost (an LSTM step on n x 100 rows per horizon step); pass ``num_parallel_samples`` to
``from_pretrained`` / ``from_config`` to trade accuracy of the quantiles for speed. TiDE's
quantiles are the Student-t quantiles (deterministic, batch-independent).

Fine-tuning (:meth:`GluonTSAdapter.finetune`) uses the estimator's transformation (cached per
series, as gluonts' ``cache_data=True``), instance sampler (``ExpectedNumInstanceSampler``: about
one window per series and pass, contexts may be left-padded) and data loader, and a
``lightning.pytorch.Trainer`` for one epoch of ``recipe.steps`` batches of ``recipe.batch_size``
windows, seeded with ``seed_everything(recipe.seed)``. The Lightning module's optimizer is
replaced by AdamW (``recipe.learning_rate``, ``recipe.weight_decay``, constant rate; gluonts uses
Adam with L2 weight decay and an LR-on-plateau scheduler) and gradients are clipped at
``recipe.grad_clip``. The learning rate is ``recipe.learning_rate_for(name)``. With a
``validate`` callback, a :class:`~timetic.adapters.torch_base.Checkpointer` validates at step 0
and, from a Lightning callback (``on_train_batch_end``), every ``recipe.eval_every`` steps: a
forecasting copy of the adapter gets the module's current weights (every cached predictor), its
loss decides which network state is kept, and ``trainer.should_stop`` ends training after
``recipe.patience`` evaluations without improvement; the best state is loaded at the end.
Training windows have the model's own context length
(``recipe.context_length`` is ignored: TiDE's input size depends on it) and a future of
``min(H, prediction_length)`` steps (TiDE: always its native ``prediction_length``). Series with
fewer than two observed values are dropped; series too short for one window are right-padded
with NaN (masked in the loss).
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import re
import tempfile
import types
import warnings
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterator

# Known third-party noise, silenced where it is raised (message and module both match, so every
# other warning, timetic's TimeticWarning included, still shows): gluonts.json warns on import when
# neither orjson nor ujson is installed; the standard json module is all timetic needs.
warnings.filterwarnings("ignore", message="Using `json`-module for json-handling", category=UserWarning,
                        module=r"gluonts\.json")

import lightning.pytorch as pl  # noqa: E402
import numpy as np
import pandas as pd
import torch

import gluonts
from gluonts.dataset.common import ListDataset
from gluonts.dataset.loader import InferenceDataLoader
from gluonts.env import env as gluonts_env
from gluonts.itertools import Cached
from gluonts.torch.batchify import batchify
from gluonts.torch.model.deepar import DeepAREstimator, DeepARLightningModule
from gluonts.torch.model.predictor import PyTorchPredictor
from gluonts.torch.model.tide import TiDEEstimator, TiDELightningModule
from gluonts.transform import SelectFields

from timetic.adapters.base import QUANTILE_LEVELS, Adapter, float32_context, resolve_source
from timetic.adapters.torch_base import Checkpointer, plain_info
from timetic.errors import TimeticInputError
from timetic.recipe import Recipe

#: timetic's file next to gluonts' own ones in a saved directory.
CONFIG_FILE = "timetic-gluonts.json"
#: files ``PyTorchPredictor.serialize`` writes.
GLUONTS_FILES = ("gluonts-config.json", "predictor.json", "prediction-net-state.pt")
#: forecast start of every window (time stamps are dummies).
_ANCHOR = "2020-01-06 00:00"
#: seed of the sample paths of sampling models (DeepAR).
_FORECAST_SEED = 0
#: module prefixes / builtins that may be named in a ``predictor.json`` we load.
_SAFE_CLASS_PREFIXES = ("gluonts.", "numpy.", "pandas.")
_SAFE_BUILTINS = {f"builtins.{t}" for t in ("int", "float", "str", "bool", "tuple", "list", "dict", "set", "frozenset")}
_MEDIAN = QUANTILE_LEVELS.index(0.5)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence Lightning's / gluonts' info logs and library warnings (restored afterwards)."""
    loggers = [logging.getLogger(n) for n in ("lightning", "lightning.pytorch", "lightning.fabric", "gluonts")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


@contextlib.contextmanager
def _seeded(seed: int, device: str | torch.device) -> Iterator[None]:
    """``torch.manual_seed(seed)`` inside, the global torch RNG state restored afterwards."""
    device = torch.device(device)
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def _dataset(series: list[np.ndarray], freq: str, ends_at: list[int]) -> ListDataset:
    """Series whose step ``ends_at[i]`` (relative to the anchor) follows their last value."""
    anchor = pd.Period(_ANCHOR, freq=freq)
    return ListDataset(
        [{"start": anchor + int(e) - len(s), "target": s} for s, e in zip(series, ends_at)],
        freq=freq,
    )


def _check_safe_classes(path: Path) -> None:
    """Refuse a ``predictor.json`` that names classes outside gluonts / numpy / pandas."""
    text = (path / "predictor.json").read_text()
    names = set(re.findall(r'"class"\s*:\s*"([^"]+)"', text))
    bad = sorted(n for n in names if not (n.startswith(_SAFE_CLASS_PREFIXES) or n in _SAFE_BUILTINS))
    if bad:
        raise TimeticInputError(
            f"{path / 'predictor.json'} names classes outside gluonts ({', '.join(bad[:3])}); "
            "refusing to load it: pass a directory written by timetic's save_pretrained"
        )


class _StepCallback(pl.Callback):
    """Records every step's training loss, reports progress and, with a :class:`Checkpointer`,
    validates when due and asks the trainer to stop when patience runs out."""

    def __init__(self, total: int, progress: Callable[[int, int], None] | None, ckpt: Checkpointer | None = None):
        self.total = total
        self.progress = progress
        self.ckpt = ckpt
        self.losses: list[float] = []
        self.stopped = False

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        self.losses.append(float(loss.detach()))
        step = len(self.losses)  # optimiser steps done (automatic optimisation: stepped already)
        if self.progress is not None:
            self.progress(step, self.total)
        if self.ckpt is not None and self.ckpt.due(step) and self.ckpt.evaluate(step):
            self.stopped = True
            trainer.should_stop = True


def _adamw_optimizers(recipe: Recipe, lr: float) -> Callable[[Any], torch.optim.Optimizer]:
    """``configure_optimizers`` replacement: AdamW at a constant learning rate."""

    def configure_optimizers(module: Any) -> torch.optim.Optimizer:
        return torch.optim.AdamW(module.parameters(), lr=lr, weight_decay=recipe.weight_decay)

    return configure_optimizers


def _trainer_device(device: str) -> dict[str, Any]:
    if device.startswith("cuda"):
        return {"accelerator": "gpu", "devices": [torch.device(device).index or 0]}
    return {"accelerator": "cpu", "devices": 1}


class GluonTSAdapter(Adapter):
    """Shared loading, saving, forecasting and fine-tuning of the gluonts families.

    Subclasses set :attr:`estimator_cls`, :attr:`defaults`, :attr:`size_table` and implement
    :meth:`_embed_batch` and :attr:`depth`. ``config`` holds the estimator's keyword arguments
    (JSON values only); :meth:`_estimator` adds the fixed ones.
    """

    sizes: ClassVar[tuple[str, ...]] = ("tiny", "zoo-s", "zoo-m")
    estimator_cls: ClassVar[type]
    #: the estimator's Lightning module class (checked when loading).
    module_cls: ClassVar[type]
    #: estimator kwargs of every size (JSON values).
    defaults: ClassVar[dict[str, Any]] = {}
    #: size -> estimator kwargs on top of :attr:`defaults`.
    size_table: ClassVar[dict[str, dict[str, Any]]] = {}
    #: whether the network forecasts any horizon in one call (else: unroll with the median).
    any_horizon: ClassVar[bool] = False

    def __init__(self, predictor: PyTorchPredictor, config: dict[str, Any], source: str, device: str = "cpu"):
        self.config = dict(config)
        self.source = str(source)
        self.device = device
        self.predictor = predictor.to(device)
        self.predictor.prediction_net.eval()
        self._predictors: dict[int, PyTorchPredictor] = {int(config["prediction_length"]): self.predictor}

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def _estimator_kwargs(cls) -> dict[str, Any]:
        """Fixed estimator kwargs that are not JSON values (added by :meth:`_estimator`)."""
        return {}

    @classmethod
    def _estimator(cls, config: dict[str, Any], **changes: Any) -> Any:
        kwargs = {**config, **changes}
        return cls.estimator_cls(**cls._estimator_kwargs(), **kwargs)

    @classmethod
    def _prepare_module(cls, module: Any) -> Any:
        """Adjust a freshly built Lightning module (settings gluonts does not expose)."""
        return module

    @classmethod
    def _build_predictor(cls, config: dict[str, Any], state: dict | None = None, **changes: Any) -> PyTorchPredictor:
        """An untrained predictor (seeded by the caller) or one with the given weights."""
        est = cls._estimator(config, **changes)
        module = cls._prepare_module(est.create_lightning_module())
        if state is not None:
            module.load_state_dict(state)
        with _quiet():
            return est.create_predictor(est.create_transformation(), module)

    @classmethod
    def from_config(cls, size: str = "tiny", seed: int = 0, **overrides: Any) -> "GluonTSAdapter":
        if size not in cls.sizes:
            raise TimeticInputError(f"unknown size {size!r} for {cls.name}; use one of {', '.join(cls.sizes)}")
        config = {**cls.defaults, **cls.size_table[size], **overrides}
        torch.manual_seed(seed)
        predictor = cls._build_predictor(config)
        return cls(predictor, config, source=f"config:{size}:seed={seed}")

    @classmethod
    def from_pretrained(cls, source: str | Path, device: str = "cpu", **kwargs: Any) -> "GluonTSAdapter":
        """Load a directory written by :meth:`save_pretrained` (gluonts' serialize format).

        ``kwargs`` may override inference-only settings (e.g. DeepAR's ``num_parallel_samples``).
        """
        path = resolve_source(source)
        config = cls._check_checkpoint(path)
        _check_safe_classes(path)
        with _quiet():
            predictor = PyTorchPredictor.deserialize(path, device="cpu")
        if not isinstance(predictor.prediction_net, cls.module_cls):
            raise TimeticInputError(
                f"{path} holds a {type(predictor.prediction_net).__name__}, not a {cls.name} model; "
                "choose the matching adapter"
            )
        cls._prepare_module(predictor.prediction_net)
        if kwargs:
            config = {**config, **kwargs}
            with _seeded(0, "cpu"):
                predictor = cls._build_predictor(config, state=predictor.prediction_net.state_dict())
        return cls(predictor, config, source=str(source), device=device)

    @classmethod
    def _check_checkpoint(cls, path: Path) -> dict[str, Any]:
        """The estimator config of a saved directory; a clear error when it is not one."""
        missing = [f for f in (*GLUONTS_FILES, CONFIG_FILE) if not (path / f).is_file()]
        if missing:
            raise TimeticInputError(
                f"{path} is not a saved {cls.name} model (missing {', '.join(missing)}); pass a "
                "directory written by timetic's save_pretrained"
            )
        try:
            meta = json.loads((path / CONFIG_FILE).read_text())
        except json.JSONDecodeError as e:
            raise TimeticInputError(f"{path / CONFIG_FILE} is not valid JSON ({e.msg}); save the model again") from e
        if meta.get("adapter") != cls.name:
            raise TimeticInputError(
                f"{path} holds a {meta.get('adapter')!r} model, not {cls.name!r}; choose the matching adapter"
            )
        if not isinstance(meta.get("estimator"), dict):
            raise TimeticInputError(f"{path / CONFIG_FILE} has no estimator config; save the model again")
        return dict(meta["estimator"])

    def save_pretrained(self, path: str | Path) -> Path:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.predictor.to("cpu")
        try:
            self.predictor.serialize(path)
        finally:
            self.predictor.to(self.device)
        meta = {"adapter": self.name, "estimator": self.config, "gluonts": gluonts.__version__}
        (path / CONFIG_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True))
        return path

    # -- description --------------------------------------------------------------------------
    @property
    def network(self) -> torch.nn.Module:
        """The Lightning module (``.model`` is the gluonts network)."""
        return self.predictor.prediction_net

    @property
    def num_parameters(self) -> int:
        return int(sum(p.numel() for p in self.network.parameters()))

    @property
    def context_length(self) -> int:
        """Input steps the network reads (longer contexts are truncated, shorter ones padded)."""
        return int(self.config["context_length"])

    @property
    def prediction_length(self) -> int:
        """Native prediction length (TiDE's output length; DeepAR's default)."""
        return int(self.config["prediction_length"])

    # -- use ----------------------------------------------------------------------------------
    def _predictor_for(self, horizon: int) -> PyTorchPredictor:
        """A predictor with ``prediction_length = horizon`` sharing nothing but the weights."""
        if horizon not in self._predictors:
            with _seeded(0, torch.device("cpu")), _quiet():
                p = self._build_predictor(
                    self.config, state=self.network.state_dict(), prediction_length=horizon
                )
            self._predictors[horizon] = p.to(self.device)
        return self._predictors[horizon]

    def _batches(self, predictor: PyTorchPredictor, x: np.ndarray, batch_size: int) -> Iterator[dict]:
        """Input batches exactly as ``predictor.predict`` builds them (tensors on the device)."""
        data = _dataset(list(x), self.config["freq"], [0] * len(x))
        loader = InferenceDataLoader(
            data,
            transform=predictor.input_transform
            + SelectFields(predictor.input_names + predictor.required_fields, allow_missing=True),
            batch_size=batch_size,
            stack_fn=lambda d: batchify(d, predictor.device),
        )
        yield from loader

    def _embed_batch(self, batch: dict) -> list[torch.Tensor]:
        """One batch of inputs -> depth + 1 tensors (b, T_l, d_l)."""
        raise NotImplementedError

    @torch.no_grad()
    def layer_embeddings(self, context: np.ndarray, batch_size: int = 64) -> list[torch.Tensor]:
        x = float32_context(context)[:, -self.context_length :]
        if len(x) == 0:
            raise TimeticInputError("no context windows given (n = 0)")
        self.network.eval()
        per_batch: list[list[torch.Tensor]] = []
        with _quiet():
            for batch in self._batches(self.predictor, x, batch_size):
                per_batch.append([s.detach().float().cpu() for s in self._embed_batch(batch)])
        return [torch.cat(layer, dim=0) for layer in zip(*per_batch)]

    def _quantiles(self, predictor: PyTorchPredictor, x: np.ndarray, offset: int, batch_size: int) -> np.ndarray:
        """Contexts (n, C) ending ``offset`` steps after the anchor -> (n, Q, h) quantiles."""
        predictor.batch_size = batch_size
        data = _dataset(list(x), self.config["freq"], [offset] * len(x))
        out = np.empty((len(x), len(QUANTILE_LEVELS), predictor.prediction_length))
        with _seeded(_FORECAST_SEED, predictor.device), _quiet():
            for i, fc in enumerate(predictor.predict(data)):
                if hasattr(fc, "samples"):
                    out[i] = np.quantile(fc.samples, QUANTILE_LEVELS, axis=0)
                else:
                    out[i] = np.stack([fc.quantile(q) for q in QUANTILE_LEVELS])
        return out

    @torch.no_grad()
    def forecast(self, context: np.ndarray, horizon: int, batch_size: int = 64) -> np.ndarray:
        if horizon < 1:
            raise TimeticInputError(f"horizon must be >= 1; got {horizon}")
        x = float32_context(context)[:, -self.context_length :]
        if len(x) == 0:
            return np.empty((0, len(QUANTILE_LEVELS), horizon))
        predictor = self._predictor_for(horizon if self.any_horizon else self.prediction_length)
        chunks: list[np.ndarray] = []
        done = 0
        while done < horizon:
            q = self._quantiles(predictor, x, done, batch_size)
            chunks.append(q)
            done += q.shape[-1]
            if done < horizon:  # unroll: the median becomes context
                x = np.concatenate([x, q[:, _MEDIAN].astype(np.float32)], axis=1)[:, -self.context_length :]
        out = np.concatenate(chunks, axis=-1)[..., :horizon]
        out = np.nan_to_num(out, nan=0.0, posinf=np.finfo(np.float32).max, neginf=np.finfo(np.float32).min)
        return np.sort(out, axis=1)

    # -- fine-tuning --------------------------------------------------------------------------
    def _train_prediction_length(self, horizon: int) -> int:
        """Future length of training windows."""
        return self.prediction_length

    def _training_series(self, train: list[np.ndarray], h: int) -> list[np.ndarray]:
        """Series with >= 2 observed values; short ones right-padded with NaN to have windows."""
        out = []
        for s in train:
            s = np.asarray(s, dtype=np.float64).ravel()
            s = np.where(np.isfinite(s), s, np.nan).astype(np.float32)
            if np.isfinite(s).sum() < 2:
                continue
            if len(s) < h + 2:  # future partly unobserved (masked in the loss)
                s = np.concatenate([s, np.full(h, np.nan, dtype=np.float32)])
            out.append(s)
        if not out:
            raise TimeticInputError(
                "no training data long enough for fine-tuning; use longer series or a shorter task"
            )
        return out

    def _load_network_state(self, state: dict[str, torch.Tensor]) -> None:
        """Load weights into the network of every cached predictor (all horizons)."""
        for p in self._predictors.values():
            p.prediction_net.load_state_dict(state)

    def finetune(
        self,
        train: list[np.ndarray],
        horizon: int,
        recipe: Recipe,
        progress: Callable[[int, int], None] | None = None,
        validate: Callable[[Adapter], float] | None = None,
    ) -> "GluonTSAdapter":
        device = recipe.resolve_device()
        h = self._train_prediction_length(horizon)
        series = self._training_series(train, h)
        state = copy.deepcopy(self.network.state_dict())
        lr = recipe.learning_rate_for(self.name)
        if recipe.steps == 0:
            new = type(self)(self._build_predictor(self.config, state=state), self.config, self.source, device="cpu")
            new.train_losses = []
            new.finetune_info = {**plain_info(0), "learning_rate": lr}
            return new
        with _quiet(), tempfile.TemporaryDirectory(prefix="timetic-gluonts-") as tmp:
            pl.seed_everything(recipe.seed, verbose=False)
            est = self._estimator(
                self.config,
                prediction_length=h,
                lr=lr,
                weight_decay=recipe.weight_decay,
                batch_size=recipe.batch_size,
                num_batches_per_epoch=recipe.steps,
            )
            transformation = est.create_transformation()
            data = _dataset(series, self.config["freq"], [len(s) for s in series])
            module = self._prepare_module(est.create_lightning_module())
            module.load_state_dict(state)
            module.configure_optimizers = types.MethodType(_adamw_optimizers(recipe, lr), module)
            ckpt = None
            if validate is not None and recipe.eval_every is not None:
                # validation forecasts go through a predictor (as forecast() does) whose network
                # gets the trained module's current weights before every evaluation
                with _seeded(0, torch.device("cpu")):
                    val = type(self)(self._build_predictor(self.config, state=state), self.config, self.source,
                                     device=device)
                module.to(device)
                ckpt = Checkpointer(module, val, validate, recipe.eval_every, recipe.patience, recipe.steps,
                                    sync=lambda: val._load_network_state(module.state_dict()))
                ckpt.evaluate(0)
            callback = _StepCallback(recipe.steps, progress, ckpt)
            with gluonts_env._let(max_idle_transforms=max(len(series), 100)):
                # the per-series transformation (observed mask, time features) runs once; the
                # instance splitter then only slices cached arrays (as gluonts' cache_data=True)
                loader = est.create_training_data_loader(
                    Cached(transformation.apply(data, is_train=True)), module, shuffle_buffer_length=None
                )
            trainer = pl.Trainer(
                **_trainer_device(device),
                max_epochs=1,
                max_steps=recipe.steps,
                gradient_clip_val=recipe.grad_clip,
                enable_progress_bar=False,
                enable_model_summary=False,
                enable_checkpointing=False,
                logger=False,
                callbacks=[callback],
                default_root_dir=tmp,
                num_sanity_val_steps=0,
            )
            trainer.fit(model=module, train_dataloaders=loader)
            if ckpt is not None:
                ckpt.restore()
        module.to("cpu")
        new = type(self)(
            self._build_predictor(self.config, state=module.state_dict()), self.config, self.source, device="cpu"
        )
        new.train_losses = callback.losses
        steps_run = len(callback.losses)
        info = ckpt.info(steps_run, callback.stopped and steps_run < recipe.steps) if ckpt else plain_info(steps_run)
        new.finetune_info = {**info, "learning_rate": lr}
        return new


# ---------------------------------------------------------------------------------------------
# DeepAR


class DeepARAdapter(GluonTSAdapter, name="deepar"):
    """DeepAR (``gluonts.torch.model.deepar``): autoregressive LSTM, Student-t sample paths.

    Sizes keep the LSTM width and vary its depth. Lags cover hourly, daily and weekly seasons at
    any frequency (there are no calendar features). The LSTM unrolls over 128 steps (gluonts'
    ``context_length``; its default is the prediction length) whose lag features reach 167 steps
    further back (lag 168 of the first unroll step), so the model reads ``context_length = 295``
    points; a longer unroll would make
    training (teacher-forced over unroll + future steps) proportionally slower.
    """

    estimator_cls = DeepAREstimator
    module_cls = DeepARLightningModule
    any_horizon = True
    sample_paths_kwarg = "num_parallel_samples"
    defaults: ClassVar[dict[str, Any]] = {
        "freq": "h",
        "prediction_length": 48,
        "context_length": 128,
        "dropout_rate": 0.1,
        "lags_seq": [1, 2, 3, 4, 5, 6, 7, 12, 24, 48, 168],
        "scaling": True,
        "default_scale": 1.0,
        "num_parallel_samples": 100,
        "batch_size": 64,
    }
    #: zoo sizes: 176 LSTM cells, 2 or 4 layers.
    size_table: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {"hidden_size": 32, "num_layers": 2, "context_length": 40, "prediction_length": 16,
                 "lags_seq": [1, 2, 3, 4, 7, 12, 24]},
        "zoo-s": {"hidden_size": 176, "num_layers": 2},
        "zoo-m": {"hidden_size": 176, "num_layers": 4},
    }

    @classmethod
    def _estimator_kwargs(cls) -> dict[str, Any]:
        return {"time_features": []}

    @property
    def depth(self) -> int:
        return int(self.config["num_layers"])

    @property
    def unroll_length(self) -> int:
        """Steps the LSTM runs over before forecasting (gluonts' ``context_length``)."""
        return int(self.config["context_length"])

    @property
    def context_length(self) -> int:
        """Input steps the network reads: the unroll length plus the largest lag."""
        return int(self.network.model._past_length)

    def _train_prediction_length(self, horizon: int) -> int:
        return max(1, min(int(horizon), self.prediction_length))

    def _single_layers(self) -> list[torch.nn.LSTM]:
        """The stacked LSTM as one single-layer LSTM per layer (same weights)."""
        rnn = self.network.model.rnn
        layers = []
        for k in range(rnn.num_layers):
            single = torch.nn.LSTM(
                input_size=rnn.input_size if k == 0 else rnn.hidden_size,
                hidden_size=rnn.hidden_size,
                num_layers=1,
                batch_first=True,
            ).to(next(rnn.parameters()).device)
            single.load_state_dict(
                {f"{name}_l0": getattr(rnn, f"{name}_l{k}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
            )
            layers.append(single.eval())
        return layers

    def _embed_batch(self, batch: dict) -> list[torch.Tensor]:
        model = self.network.model
        rnn_input, _, _ = model.prepare_rnn_input(
            feat_static_cat=batch["feat_static_cat"],
            feat_static_real=batch["feat_static_real"],
            past_time_feat=batch["past_time_feat"],
            past_target=batch["past_target"],
            past_observed_values=batch["past_observed_values"],
            future_time_feat=batch["future_time_feat"][:, :1],
        )
        states = [rnn_input]
        h = rnn_input
        for layer in self._single_layers():
            h, _ = layer(h)
            states.append(h)
        return states


# ---------------------------------------------------------------------------------------------
# TiDE


class TiDEAdapter(GluonTSAdapter, name="tide"):
    """TiDE (``gluonts.torch.model.tide``): dense MLP encoder-decoder, Student-t output.

    Sizes keep the widths and vary the number of dense blocks (encoder and decoder alike).
    """

    estimator_cls = TiDEEstimator
    module_cls = TiDELightningModule
    any_horizon = False
    defaults: ClassVar[dict[str, Any]] = {
        "freq": "h",
        "prediction_length": 48,
        "context_length": 512,
        "feat_proj_hidden_dim": 4,
        "num_feat_dynamic_proj": 2,
        "temporal_hidden_dim": 32,
        "distr_hidden_dim": 4,
        "decoder_output_dim": 8,
        "dropout_rate": 0.1,
        "layer_norm": True,
        # standardise each window (subtract the mean, divide by the std) as the torch families do;
        # gluonts' default mean scaling leaves a series at 5000 +- 500 as 1 +- 0.1. Measured on the
        # zoo's validation split after 150 CPU-s of pretraining: geometric-mean MASE ratio to
        # seasonal naive 1.77 with "mean", 1.19 with "std".
        "scaling": "std",
        "batch_size": 64,
    }
    #: zoo sizes: width 112, 2 or 6 dense blocks in the encoder (and as many in the decoder).
    size_table: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {"encoder_hidden_dim": 32, "decoder_hidden_dim": 32, "num_layers_encoder": 2,
                 "num_layers_decoder": 2, "temporal_hidden_dim": 16, "context_length": 64,
                 "prediction_length": 16},
        "zoo-s": {"encoder_hidden_dim": 112, "decoder_hidden_dim": 112, "num_layers_encoder": 2,
                  "num_layers_decoder": 2},
        "zoo-m": {"encoder_hidden_dim": 112, "decoder_hidden_dim": 112, "num_layers_encoder": 6,
                  "num_layers_decoder": 6},
    }

    @classmethod
    def _prepare_module(cls, module: Any) -> Any:
        # a window without any observed value gets scale 1 (gluonts' default: the batch's mean
        # scale, which makes its output depend on the other windows of the batch)
        module.model.scaler.default_scale = 1.0
        return module

    @property
    def depth(self) -> int:
        model = self.network.model
        return len(model.dense_encoder.encoder) + len(model.dense_decoder.decoder)

    def _embed_batch(self, batch: dict) -> list[torch.Tensor]:
        model = self.network.model
        states: list[torch.Tensor] = []
        handles = [model.dense_encoder.register_forward_pre_hook(lambda m, args: states.append(args[0]))]
        blocks = list(model.dense_encoder.encoder) + list(model.dense_decoder.decoder)
        for block in blocks:
            handles.append(block.register_forward_hook(lambda m, args, out: states.append(out)))
        try:
            model(**{k: batch[k] for k in self.predictor.input_names})
        finally:
            for hd in handles:
                hd.remove()
        out = [s.unsqueeze(1) for s in states[:-1]]
        out.append(states[-1].reshape(len(states[-1]), model.prediction_length, model.decoder_output_dim))
        return out
