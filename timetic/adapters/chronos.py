"""Chronos families: Chronos-Bolt and Chronos-2 (``chronos-forecasting``).

Both wrap the library's own classes: :class:`chronos.chronos_bolt.ChronosBoltModelForForecasting`
driven by :class:`chronos.ChronosBoltPipeline`, and :class:`chronos.Chronos2Model` driven by
:class:`chronos.Chronos2Pipeline`. Checkpoints are Hugging Face directories (``config.json`` +
``model.safetensors``) such as ``amazon/chronos-bolt-small`` or ``amazon/chronos-2``.

Inputs: contexts go to the models with NaN for missing values (both models mask missing values
themselves); contexts longer than the model's context length are truncated on the left by the
model, shorter ones are left-padded with NaN by its patching layer.

Layer embeddings (what :meth:`layer_embeddings` returns, input embedding first):

* Chronos-Bolt (T5 encoder-decoder): the encoder's input (patch embeddings + [REG] token), the
  output of every encoder layer (the last one after the encoder's final layer norm, as in
  ``output_hidden_states``), then the output of every decoder layer (one token: the decoder reads
  a single start token; the last one after the decoder's final layer norm).
  ``depth = num_layers + num_decoder_layers``.
* Chronos-2 (encoder only): the encoder's input (context patch embeddings, [REG] token and one
  future-patch token, as in ``Chronos2Pipeline.embed``) and the output of every encoder block (the
  last one after the final layer norm). ``depth = num_layers``.

Horizons: both forecast any H. Beyond the native output length (Bolt: ``prediction_length``;
Chronos-2: ``max_output_patches * output_patch_size``) the pipelines' own autoregressive
heuristic is used (each quantile path is fed back and the quantiles re-estimated). Fine-tuning
uses the models' own quantile loss; Bolt trains on the first ``prediction_length`` steps of the
horizon (its forward cannot score longer targets), Chronos-2 trains on the whole horizon with
as many output patches as needed (as ``Chronos2Pipeline.fit`` does) and, like ``fit``, raises
``max_output_patches`` afterwards when the horizon needed more.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from timetic.adapters.base import QUANTILE_LEVELS, float32_context, resolve_source
from timetic.adapters.hf_base import quiet_transformers
from timetic.adapters.torch_base import TorchAdapter
from timetic.errors import TimeticInputError

#: the nine deciles Chronos-Bolt is trained on.
_BOLT_QUANTILES = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
#: the 21 levels of ``amazon/chronos-2``.
_CHRONOS2_QUANTILES = [0.01, 0.05] + [round(0.1 + 0.05 * i, 2) for i in range(17)] + [0.95, 0.99]


def _finish_quantiles(q: np.ndarray) -> np.ndarray:
    """(n, Q, H) -> float64, sorted across quantiles (random or barely trained heads may cross)."""
    q = np.asarray(q, dtype=np.float64)
    return np.sort(q, axis=1)


def _hidden(output: Any) -> torch.Tensor:
    """The hidden states of a module output (a tensor, a tuple or a ``ModelOutput``)."""
    if isinstance(output, torch.Tensor):
        return output
    return output[0]


class _LayerRecorder:
    """Forward hooks that record every layer's hidden states of a transformer stack.

    ``stack`` is the encoder/decoder module; ``blocks`` its layers. Records the stack's input
    embeddings (when ``with_input``), the output of every block but the last, and the stack's own
    output (the last block after the final layer norm), in that order.
    """

    def __init__(self, stack: torch.nn.Module, blocks: torch.nn.ModuleList, with_input: bool):
        self.states: list[torch.Tensor] = []
        self._handles = []
        if with_input:
            self._handles.append(stack.register_forward_pre_hook(self._pre, with_kwargs=True))
        for block in list(blocks)[:-1]:
            self._handles.append(block.register_forward_hook(self._post))
        self._handles.append(stack.register_forward_hook(self._post))

    def _pre(self, module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
        self.states.append(kwargs["inputs_embeds"] if "inputs_embeds" in kwargs else args[0])

    def _post(self, module: torch.nn.Module, args: tuple, output: Any) -> None:
        self.states.append(_hidden(output))

    def remove(self) -> None:
        for h in self._handles:
            h.remove()


class _ChronosAdapter(TorchAdapter):
    """Shared loading, saving, batching and embedding logic of the two Chronos families."""

    sizes: ClassVar[tuple[str, ...]] = ("tiny", "zoo-s", "zoo-m")
    #: architecture name written in ``config.json`` by this family's model class.
    _architecture: ClassVar[str] = ""

    def __init__(self, model: torch.nn.Module, source: str, device: str = "cpu"):
        self.model = model.to(device).eval()
        self.source = str(source)
        self.device = device

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def _model_class(cls) -> type:
        raise NotImplementedError

    @classmethod
    def _build_config(cls, size: str, overrides: dict[str, Any]) -> Any:
        raise NotImplementedError

    @classmethod
    def from_pretrained(cls, source: str | Path, device: str = "cpu", **kwargs: Any) -> "_ChronosAdapter":
        path = resolve_source(source)
        cls._check_checkpoint(path)
        with quiet_transformers():
            model = cls._model_class().from_pretrained(str(path), **kwargs)
        return cls(model.float(), source=str(source), device=device)

    @classmethod
    def _check_checkpoint(cls, path: Path) -> None:
        """Raise a clear error when ``path`` is not a checkpoint of this family."""
        cfg_file = path / "config.json"
        if not cfg_file.is_file():
            raise TimeticInputError(
                f"{path} has no config.json; pass the directory of a {cls.name} checkpoint"
            )
        try:
            cfg = json.loads(cfg_file.read_text())
        except json.JSONDecodeError as e:
            raise TimeticInputError(f"{cfg_file} is not valid JSON ({e.msg}); re-download the model") from e
        arch = (cfg.get("architectures") or [""])[0]
        if "chronos_config" not in cfg or arch != cls._architecture:
            raise TimeticInputError(
                f"{path} is not a {cls.name} checkpoint (architecture {arch or 'unknown'!r}, expected "
                f"{cls._architecture!r}); pass the right directory or choose the matching adapter"
            )

    @classmethod
    def from_config(cls, size: str = "tiny", seed: int = 0, **overrides: Any) -> "_ChronosAdapter":
        if size not in cls.sizes:
            raise TimeticInputError(f"unknown size {size!r} for {cls.name}; use one of {', '.join(cls.sizes)}")
        config = cls._build_config(size, dict(overrides))
        torch.manual_seed(seed)
        model = cls._model_class()(config)
        return cls(model, source=f"config:{size}:seed={seed}")

    @staticmethod
    def _apply_overrides(
        top: dict[str, Any], chronos_config: dict[str, Any], overrides: dict[str, Any]
    ) -> None:
        """Overrides naming a ``chronos_config`` field go there, the rest to the top-level config."""
        for key, value in overrides.items():
            if key in chronos_config:
                chronos_config[key] = value
            else:
                top[key] = value

    def save_pretrained(self, path: str | Path) -> Path:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        with quiet_transformers():
            self.model.save_pretrained(str(path))
        return path

    # -- description --------------------------------------------------------------------------
    @property
    def chronos_config(self) -> Any:
        return self.model.chronos_config

    @property
    def context_length(self) -> int:
        return int(self.model.chronos_config.context_length)

    @property
    def prediction_length(self) -> int:
        """Native output length of one forward pass."""
        raise NotImplementedError

    # -- use ----------------------------------------------------------------------------------
    def _recorders(self) -> list[_LayerRecorder]:
        raise NotImplementedError

    def _embed_forward(self, context: torch.Tensor) -> None:
        """One forward pass that runs every layer whose embeddings are recorded."""
        raise NotImplementedError

    @torch.no_grad()
    def layer_embeddings(self, context: np.ndarray, batch_size: int = 64) -> list[torch.Tensor]:
        x = float32_context(context)
        self.model.eval()
        per_batch: list[list[torch.Tensor]] = []
        for start in range(0, len(x), batch_size):
            batch = torch.as_tensor(x[start : start + batch_size], device=self.model.device)
            recorders = self._recorders()
            try:
                self._embed_forward(batch)
            finally:
                for r in recorders:
                    r.remove()
            states = [s for r in recorders for s in r.states]
            per_batch.append([s.detach().float().cpu() for s in states])
        if not per_batch:
            raise TimeticInputError("no context windows given (n = 0)")
        return [torch.cat(layer, dim=0) for layer in zip(*per_batch)]

    def _forecast_batch(self, context: torch.Tensor, horizon: int) -> np.ndarray:
        """context: (b, C) float32 with NaN -> (b, Q, H) at :data:`QUANTILE_LEVELS`."""
        raise NotImplementedError

    @torch.no_grad()
    def forecast(self, context: np.ndarray, horizon: int, batch_size: int = 64) -> np.ndarray:
        if horizon < 1:
            raise TimeticInputError(f"horizon must be >= 1; got {horizon}")
        x = float32_context(context)
        self.model.eval()
        out = np.empty((len(x), len(QUANTILE_LEVELS), horizon))
        for start in range(0, len(x), batch_size):
            batch = torch.as_tensor(x[start : start + batch_size])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "We recommend keeping prediction length <= ..."
                out[start : start + len(batch)] = self._forecast_batch(batch, horizon)
        return _finish_quantiles(out)


# ---------------------------------------------------------------------------------------------
# Chronos-Bolt

#: size -> (d_model, d_ff, num_heads, num_layers, num_decoder_layers, context_length,
#: prediction_length). The zoo sizes keep the released models' context/prediction ratio
#: (patch 16, 64-step output) at a 512-step context; they differ only in depth.
_BOLT_SIZES: dict[str, tuple[int, int, int, int, int, int, int]] = {
    "tiny": (32, 64, 4, 2, 2, 64, 16),
    "zoo-s": (96, 192, 4, 2, 2, 512, 64),
    "zoo-m": (96, 192, 4, 5, 5, 512, 64),
}


class ChronosBoltAdapter(_ChronosAdapter, name="chronos-bolt"):
    """Chronos-Bolt (``amazon/chronos-bolt-*``): patched T5 encoder-decoder, direct quantiles."""

    _architecture = "ChronosBoltModelForForecasting"

    @classmethod
    def _model_class(cls) -> type:
        from chronos.chronos_bolt import ChronosBoltModelForForecasting

        return ChronosBoltModelForForecasting

    @classmethod
    def _build_config(cls, size: str, overrides: dict[str, Any]) -> Any:
        from transformers import T5Config

        d, d_ff, heads, layers, dec_layers, ctx, pred = _BOLT_SIZES[size]
        chronos_config = {
            "context_length": ctx,
            "prediction_length": pred,
            "input_patch_size": 16,
            "input_patch_stride": 16,
            "quantiles": list(_BOLT_QUANTILES),
            "use_reg_token": True,
        }
        top: dict[str, Any] = {
            "d_model": d,
            "d_kv": d // heads,
            "d_ff": d_ff,
            "num_heads": heads,
            "num_layers": layers,
            "num_decoder_layers": dec_layers,
            # as in the released checkpoints
            "dropout_rate": 0.1,
            "feed_forward_proj": "relu",
            "initializer_factor": 0.05,
            "layer_norm_epsilon": 1e-6,
            "relative_attention_num_buckets": 32,
            "relative_attention_max_distance": 128,
            "decoder_start_token_id": 0,
            "pad_token_id": 0,
            "eos_token_id": 1,
            "is_encoder_decoder": True,
            "use_cache": False,
            "vocab_size": 2,
        }
        cls._apply_overrides(top, chronos_config, overrides)
        return T5Config(
            **top,
            chronos_config=chronos_config,
            chronos_pipeline_class="ChronosBoltPipeline",
            architectures=[cls._architecture],
        )

    @property
    def prediction_length(self) -> int:
        return int(self.model.chronos_config.prediction_length)

    @property
    def depth(self) -> int:
        return int(self.model.config.num_layers + self.model.config.num_decoder_layers)

    def _recorders(self) -> list[_LayerRecorder]:
        return [
            _LayerRecorder(self.model.encoder, self.model.encoder.block, with_input=True),
            _LayerRecorder(self.model.decoder, self.model.decoder.block, with_input=False),
        ]

    def _embed_forward(self, context: torch.Tensor) -> None:
        self.model(context=context)

    def _forecast_batch(self, context: torch.Tensor, horizon: int) -> np.ndarray:
        from chronos import ChronosBoltPipeline

        pipeline = ChronosBoltPipeline(model=self.model)
        q, _ = pipeline.predict_quantiles(
            context, prediction_length=horizon, quantile_levels=list(QUANTILE_LEVELS)
        )  # (b, H, Q)
        return q.permute(0, 2, 1).numpy()

    def _max_train_horizon(self, horizon: int) -> int:
        # ChronosBoltModelForForecasting.forward asserts target length <= prediction_length
        return min(horizon, self.prediction_length)

    def _loss(self, context: torch.Tensor, future: torch.Tensor) -> torch.Tensor:
        """The model's quantile loss. context: (B, C), future: (B, h <= prediction_length)."""
        return self.model(context=context, target=future).loss


# ---------------------------------------------------------------------------------------------
# Chronos-2

#: size -> (d_model, d_ff, num_heads, num_layers, context_length, max_output_patches).
#: Patch 16, 21 quantile levels, [REG] token and arcsinh scaling as in ``amazon/chronos-2``;
#: the zoo sizes differ only in depth.
_CHRONOS2_SIZES: dict[str, tuple[int, int, int, int, int, int]] = {
    "tiny": (32, 64, 4, 2, 64, 2),
    "zoo-s": (96, 192, 4, 4, 512, 64),
    "zoo-m": (96, 192, 4, 8, 512, 64),
}


class Chronos2Adapter(_ChronosAdapter, name="chronos-2"):
    """Chronos-2 (``amazon/chronos-2``): patched encoder with time and group attention."""

    _architecture = "Chronos2Model"

    @classmethod
    def _model_class(cls) -> type:
        from chronos import Chronos2Model

        return Chronos2Model

    @classmethod
    def _build_config(cls, size: str, overrides: dict[str, Any]) -> Any:
        from chronos.chronos2 import Chronos2CoreConfig

        d, d_ff, heads, layers, ctx, max_patches = _CHRONOS2_SIZES[size]
        chronos_config = {
            "context_length": ctx,
            "input_patch_size": 16,
            "input_patch_stride": 16,
            "output_patch_size": 16,
            "max_output_patches": max_patches,
            "quantiles": list(_CHRONOS2_QUANTILES),
            "use_reg_token": True,
            "use_arcsinh": True,
            "time_encoding_scale": None,
        }
        top: dict[str, Any] = {
            "d_model": d,
            "d_kv": d // heads,
            "d_ff": d_ff,
            "num_heads": heads,
            "num_layers": layers,
            "dropout_rate": 0.1,
            "feed_forward_proj": "relu",
            "initializer_factor": 0.05,
            "layer_norm_epsilon": 1e-6,
            "rope_theta": 10000.0,
        }
        cls._apply_overrides(top, chronos_config, overrides)
        if chronos_config["time_encoding_scale"] is None:
            chronos_config["time_encoding_scale"] = chronos_config["context_length"]
        return Chronos2CoreConfig(
            **top,
            chronos_config=chronos_config,
            chronos_pipeline_class="Chronos2Pipeline",
            architectures=[cls._architecture],
        )

    @property
    def output_patch_size(self) -> int:
        return int(self.model.chronos_config.output_patch_size)

    @property
    def prediction_length(self) -> int:
        cc = self.model.chronos_config
        return int(cc.max_output_patches * cc.output_patch_size)

    @property
    def depth(self) -> int:
        return int(self.model.config.num_layers)

    def _recorders(self) -> list[_LayerRecorder]:
        return [_LayerRecorder(self.model.encoder, self.model.encoder.block, with_input=True)]

    def _embed_forward(self, context: torch.Tensor) -> None:
        self.model.encode(context=context)

    def _forecast_batch(self, context: torch.Tensor, horizon: int) -> np.ndarray:
        from chronos import Chronos2Pipeline

        pipeline = Chronos2Pipeline(model=self.model)
        q, _ = pipeline.predict_quantiles(
            context[:, None, :],  # (b, 1 variate, C)
            prediction_length=horizon,
            quantile_levels=list(QUANTILE_LEVELS),
            batch_size=len(context),
        )  # list of b tensors (1, H, Q)
        return torch.cat(q, dim=0).permute(0, 2, 1).numpy()

    def _loss(self, context: torch.Tensor, future: torch.Tensor) -> torch.Tensor:
        """The model's quantile loss over ``ceil(h / patch)`` output patches. future: (B, h)."""
        patches = math.ceil(future.shape[-1] / self.output_patch_size)
        return self.model(context=context, future_target=future, num_output_patches=patches).loss

    def _prepare_finetune(self, horizon: int) -> None:
        # as Chronos2Pipeline.fit: the model predicts the trained horizon in one pass (set before
        # training so that validation forecasts the way the fine-tuned model will)
        cc = self.model.chronos_config
        cc.max_output_patches = max(cc.max_output_patches, math.ceil(horizon / cc.output_patch_size))
        self.model.config.chronos_config = dict(cc.__dict__)
