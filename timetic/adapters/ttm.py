"""TinyTimeMixer family (IBM Granite TTM, ``tsfm_public.models.tinytimemixer`` from granite-tsfm).

Checkpoints are Hugging Face directories (``config.json`` + ``model.safetensors``) of
``TinyTimeMixerForPrediction``: ones saved by :meth:`TTMAdapter.save_pretrained`, the TTM-R2
512-96 weights in :func:`weights_dir` ``/ttm-r2-512-96`` (:func:`pretrained_path`), or
``ibm-granite/granite-timeseries-ttm-r2`` (revision ``main``) where the hub is reachable.

Install: granite-tsfm pins an older torch, so it is installed without its declared dependencies,
then the ``ttm`` extra adds what importing the model needs (``transformers`` and ``datasets``,
which granite-tsfm's package ``__init__`` imports)::

    pip install -e ".[ttm]" && pip install --no-deps granite-tsfm==0.3.11

Model: an MLP-mixer over patches, channel independent (``mode = decoder_mode =
"common_channel"``), with the library's per-window "std" scaler; it forecasts in the input's units.
Series are fed one per window as a single channel. Checkpoints that mix channels, need frequency
tokens (``resolution_prefix_tuning``) or static categoricals are refused on loading.
``from_config`` builds random-weight models with the R2 512-96 geometry (512 steps in patches of
64, 96 steps out): "zoo-m" is exactly the released R2 512-96 architecture (805,280 parameters),
"zoo-s" the same with one mixer layer per level, "tiny" a narrow one for tests.

Inputs: the model reads exactly ``context_length`` (512) steps. Missing values are linearly
interpolated (edges: nearest observed value, :func:`~timetic.adapters.base.fill_nan`) and marked
unobserved in ``past_observed_mask``, which the scaler honours (it is the only use of the mask).
Shorter contexts are left-padded with the mean of their observed values, also marked unobserved;
as the scaler's ``loc`` is that same mean, the padding is exactly 0 in the model's standardised
space, which is what TTM sees when granite-tsfm zero-pads data it has standardised beforehand. (On
ETTh1 with 64-256 observed steps this beat padding with the first value by 15-17% in MAE.) Longer
contexts keep their last 512 steps. An all-missing window reads as zeros and forecasts about 0.

Outputs: TTM is a point forecaster (trained with MSE). Horizons up to ``prediction_length`` (96)
take the first H steps of one pass; longer ones are rolled out autoregressively: each 96-step
block is appended to the context (marked observed), the last 512 steps are fed again, and the
blocks are concatenated. **Quantiles**: all nine levels equal the point forecast (a degenerate
predictive distribution). This is the honest reading of a point model: no spread is invented, WQL
of a TTM forecast is then its absolute error weighted like every other model's WQL (sum of
|error| over the sum of |target|), and MASE uses the point forecast as the median.

Layer embeddings (the distinct layer outputs, recorded with forward hooks, input first): the
patch embedding fed to the encoder's mixer block, the output of every encoder mixer layer (each
adaptive-patching level, finest first), the decoder's adapter (``d_model -> decoder_d_model``,
when present), and every decoder mixer layer. For the released R2 512-96 model these are
``hidden_states`` entries 0, 2, 3, 7, 8, 12, 13, 15, 16, 17 (weights README): 10 tensors,
``depth = 9``. Finer adaptive-patching levels (32 x 48, 16 x 96) are reshaped back to the
stage's width ([8, 192]; the model's own reshape, inverted), so each layer is (n, tokens, d) with
d = ``d_model`` in the encoder and ``decoder_d_model`` in the decoder. All are computed on the
model's standardised input.

Fine-tuning: the shared :class:`~timetic.adapters.torch_base.TorchAdapter` loop with MSE on the
standardised scale (forecast minus target, divided by the model's per-window ``scale``), masked
where the future is missing, as TTM trains on standardised data with MSE. Training targets are
the first ``min(H, prediction_length)`` steps (``_max_train_horizon``); dropout is on while
training, as the checkpoint's config sets it.

Weights: :func:`weights_dir` is ``$TIMETIC_WEIGHTS_DIR`` when set, else ``../shared/weights``
next to the repository (the same pattern as :func:`timetic.datasets.data_dir`). ``info()``
carries ``weights_sha256``, the sha256 of the loaded ``model.safetensors`` ("" for models built
from a config), so runs can record exactly which weights they used.
"""

from __future__ import annotations

import importlib.util
import logging
import math
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from timetic.adapters.base import QUANTILE_LEVELS, fill_nan, resolve_source
from timetic.adapters.hf_base import as_context, check_model_type, finish_quantiles, quiet_transformers
from timetic.adapters.torch_base import TorchAdapter
from timetic.errors import TimeticInputError
from timetic.pretrained import ENV_VAR, file_sha256, weights_dir

if importlib.util.find_spec("tsfm_public") is None:  # the family registers only where granite-tsfm is
    raise ImportError(
        "the ttm adapter needs granite-tsfm: pip install -e '.[ttm]' && "
        "pip install --no-deps granite-tsfm==0.3.11"
    )

#: folder name of the TTM-R2 512-96 weights inside :func:`weights_dir`.
PRETRAINED_NAME = "ttm-r2-512-96"
MODEL_TYPE = "tinytimemixer"

__all__ = ["TTMAdapter", "weights_dir", "pretrained_path", "file_sha256", "ENV_VAR", "PRETRAINED_NAME"]


def pretrained_path() -> Path:
    """``weights_dir() / "ttm-r2-512-96"`` (may not exist)."""
    return weights_dir() / PRETRAINED_NAME


def _tsfm() -> Any:
    """``tsfm_public.models.tinytimemixer.modeling_tinytimemixer``, imported without keeping the
    root-logger handler and INFO level that ``tsfm_public``'s ``__init__`` installs."""
    import sys

    name = "tsfm_public.models.tinytimemixer.modeling_tinytimemixer"
    if name in sys.modules:
        return sys.modules[name]
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        with quiet_transformers():
            import tsfm_public.models.tinytimemixer  # noqa: F401
            import tsfm_public.models.tinytimemixer.modeling_tinytimemixer as mod
    finally:
        for h in root.handlers[:]:
            if h not in handlers:
                root.removeHandler(h)
        root.setLevel(level)
    return mod


_COMMON: dict[str, Any] = dict(
    context_length=512,
    prediction_length=96,
    patch_length=64,
    patch_stride=64,
    num_input_channels=1,
    mode="common_channel",
    decoder_mode="common_channel",
    scaling="std",
    loss="mse",
    gated_attn=True,
    norm_mlp="LayerNorm",
    self_attn=False,
    use_positional_encoding=False,
    resolution_prefix_tuning=False,
    expansion_factor=2,
    dropout=0.2,
    head_dropout=0.2,
)
_SIZES: dict[str, dict[str, Any]] = {
    # 25,232 parameters, depth 4
    "tiny": dict(d_model=32, num_layers=1, adaptive_patching_levels=2, decoder_d_model=16, decoder_num_layers=1),
    # 470,432 parameters, depth 5
    "zoo-s": dict(d_model=192, num_layers=1, adaptive_patching_levels=3, decoder_d_model=128, decoder_num_layers=1),
    # the released R2 512-96 architecture: 805,280 parameters, depth 9
    "zoo-m": dict(d_model=192, num_layers=2, adaptive_patching_levels=3, decoder_d_model=128, decoder_num_layers=2),
}


class TTMAdapter(TorchAdapter, name="ttm"):
    """IBM Granite TinyTimeMixer (TTM), a channel-independent MLP-mixer point forecaster."""

    sizes: ClassVar[tuple[str, ...]] = ("tiny", "zoo-s", "zoo-m")
    model_type: ClassVar[str] = MODEL_TYPE

    def __init__(self, model: Any, source: str = "", device: str = "cpu", weights_sha256: str = ""):
        _check_supported(model.config)
        self.model = model.eval()
        self.source = str(source)
        self.device = device
        self.weights_sha256 = weights_sha256
        self.context_length = int(model.config.context_length)

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, source: str | Path, device: str = "cpu", **kwargs: Any) -> "TTMAdapter":
        path = resolve_source(source)
        check_model_type(path, MODEL_TYPE)
        mod = _tsfm()
        with quiet_transformers():
            model = mod.TinyTimeMixerForPrediction.from_pretrained(path, **kwargs)
        weights = path / "model.safetensors"
        sha = file_sha256(weights) if weights.is_file() else ""
        return cls(model.to(device), source=str(source), device=device, weights_sha256=sha)

    @classmethod
    def from_config(cls, size: str = "tiny", seed: int = 0, **overrides: Any) -> "TTMAdapter":
        if size not in _SIZES:
            raise TimeticInputError(f"unknown ttm size {size!r}; use one of {', '.join(_SIZES)}")
        mod = _tsfm()
        kw = {**_COMMON, **_SIZES[size], **overrides}
        if kw["context_length"] % kw["patch_length"] or kw["prediction_length"] < 1:
            raise TimeticInputError(
                "ttm needs context_length divisible by patch_length and prediction_length >= 1; "
                "change the overrides"
            )
        torch.manual_seed(seed)
        with quiet_transformers():
            model = mod.TinyTimeMixerForPrediction(mod.TinyTimeMixerConfig(**kw))
        return cls(model, source=f"config:{size}")

    def save_pretrained(self, path: str | Path) -> Path:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        with quiet_transformers():
            self.model.save_pretrained(path)
        return path

    # -- description --------------------------------------------------------------------------
    @property
    def prediction_length(self) -> int:
        """Native output length of one forward pass."""
        cfg = self.model.config
        return int(cfg.prediction_filter_length or cfg.prediction_length)

    @property
    def depth(self) -> int:
        return len(self._layer_modules()) - 1

    def info(self) -> dict[str, Any]:
        return {**super().info(), "weights_sha256": self.weights_sha256}

    # -- inputs -------------------------------------------------------------------------------
    def _inputs(self, context: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """(b, C) with NaN -> past_values and past_observed_mask, both (b, context_length, 1).

        NaN are interpolated and marked unobserved; short contexts are left-padded with the mean
        of their observed values (unobserved), long ones keep their last ``context_length`` steps.
        """
        filled, observed = fill_nan(context)
        L = self.context_length
        C = filled.shape[1]
        if C >= L:
            filled, observed = filled[:, C - L :], observed[:, C - L :]
        else:
            pad = L - C
            n_obs = observed.sum(axis=1)
            level = np.where(n_obs > 0, (filled * observed).sum(axis=1) / np.maximum(n_obs, 1), 0.0)
            filled = np.concatenate([np.repeat(level[:, None], pad, axis=1), filled], axis=1)
            observed = np.concatenate([np.zeros((len(observed), pad)), observed], axis=1)
        values = torch.as_tensor(filled, dtype=torch.float32, device=self.device)
        mask = torch.as_tensor(observed, dtype=torch.float32, device=self.device)
        return values[..., None], mask[..., None]

    def _run(self, values: torch.Tensor, mask: torch.Tensor) -> Any:
        return self.model(past_values=values, past_observed_mask=mask, return_loss=False, return_dict=True)

    # -- use ----------------------------------------------------------------------------------
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

    def _forecast_batch(self, x: np.ndarray, horizon: int) -> np.ndarray:
        """(b, C) with NaN -> (b, Q, H): the point forecast at every level, rolled out in blocks."""
        values, mask = self._inputs(x)
        L, P = self.context_length, self.prediction_length
        blocks = []
        for k in range(math.ceil(horizon / P)):
            point = self._run(values, mask).prediction_outputs[..., :1]  # (b, P, 1), data units
            blocks.append(point[..., 0].double().cpu().numpy())
            if (k + 1) * P < horizon:
                values = torch.cat([values, point.to(values.dtype)], dim=1)[:, -L:]
                mask = torch.cat([mask, torch.ones_like(point, dtype=mask.dtype)], dim=1)[:, -L:]
        point = np.concatenate(blocks, axis=1)[:, :horizon]
        q = np.repeat(point[:, None, :], len(QUANTILE_LEVELS), axis=1)
        return finish_quantiles(q, x)  # non-finite (overflow): naive forecast

    def _layer_modules(self) -> list[tuple[torch.nn.Module, str]]:
        """(module, what) of every distinct layer output in forward order; ``what`` is "input"
        (the input of the encoder's mixer block), "encoder" or "decoder" (the module's output)."""
        layer_cls = _tsfm().TinyTimeMixerLayer
        encoder = self.model.backbone.encoder.mlp_mixer_encoder
        mods: list[tuple[torch.nn.Module, str]] = [(encoder, "input")]
        mods += [(m, "encoder") for m in encoder.modules() if isinstance(m, layer_cls)]
        if getattr(self.model, "use_decoder", False):
            decoder = self.model.decoder
            if decoder.adapter is not None:
                mods.append((decoder.adapter, "decoder"))
            mods += [(m, "decoder") for m in decoder.decoder_block.modules() if isinstance(m, layer_cls)]
        return mods

    def layer_embeddings(self, context: np.ndarray, batch_size: int = 64) -> list[torch.Tensor]:
        x = as_context(context)
        if len(x) == 0:
            raise TimeticInputError("no context windows given (n = 0); pass at least one")
        cfg = self.model.config
        width = {"input": int(cfg.d_model), "encoder": int(cfg.d_model), "decoder": int(cfg.decoder_d_model)}
        mods = self._layer_modules()
        captured: list[torch.Tensor] = []

        def keep(what: str):
            def hook(module, args, output=None):
                h = args[0] if what == "input" else output  # (b, channels, T, d)
                captured.append(h[:, 0].reshape(h.shape[0], -1, width[what]).detach().float().cpu())

            return hook

        handles = [
            m.register_forward_pre_hook(keep(w)) if w == "input" else m.register_forward_hook(keep(w))
            for m, w in mods
        ]
        self.model.eval()
        per_batch: list[list[torch.Tensor]] = []
        try:
            with torch.no_grad():
                for start in range(0, len(x), batch_size):
                    captured.clear()
                    self._run(*self._inputs(x[start : start + batch_size]))
                    if len(captured) != len(mods):
                        raise RuntimeError(f"ttm: captured {len(captured)} layer outputs, expected {len(mods)}")
                    per_batch.append(list(captured))
        finally:
            for h in handles:
                h.remove()
        return [torch.cat(layer, dim=0) for layer in zip(*per_batch)]

    # -- fine-tuning ----------------------------------------------------------------------------
    def _max_train_horizon(self, horizon: int) -> int:
        return min(horizon, self.prediction_length)

    def _loss(self, context: torch.Tensor, future: torch.Tensor) -> torch.Tensor:
        values, mask = self._inputs(context.detach().cpu().numpy())
        out = self._run(values.to(future.device), mask.to(future.device))
        return ttm_loss(out.prediction_outputs[..., 0], out.scale[..., 0], future)


def ttm_loss(prediction: torch.Tensor, scale: torch.Tensor, future: torch.Tensor) -> torch.Tensor:
    """MSE on the standardised scale over observed future steps.

    Args:
        prediction: (B, P) forecast in data units.
        scale: (B, 1) the model's per-window scale.
        future: (B, h) targets with NaN, h <= P.
    """
    h = future.shape[1]
    ok = torch.isfinite(future)
    err = (prediction[:, :h] - torch.nan_to_num(future, nan=0.0)) / scale
    err = torch.where(ok, err, torch.zeros_like(err))
    return (err**2).sum() / ok.sum().clamp_min(1)


def _check_supported(config: Any) -> None:
    """Refuse TTM variants this adapter cannot feed (one channel, no frequency or static tokens)."""
    problems = []
    if getattr(config, "mode", "common_channel") != "common_channel" or getattr(
        config, "decoder_mode", "common_channel"
    ) != "common_channel":
        problems.append("channel mixing (mode/decoder_mode 'mix_channel')")
    if getattr(config, "enable_forecast_channel_mixing", False):
        problems.append("forecast channel mixing")
    if getattr(config, "resolution_prefix_tuning", False):
        problems.append("frequency tokens (resolution_prefix_tuning)")
    if getattr(config, "categorical_vocab_size_list", None):
        problems.append("static categoricals")
    if getattr(config, "loss", "mse") == "nll":
        problems.append("a distribution head")
    if getattr(config, "multi_quantile_head", False):
        problems.append("a multi-quantile head")
    if getattr(config, "decompose", False):
        problems.append("trend decomposition")
    if problems:
        raise TimeticInputError(
            f"this TTM checkpoint uses {', '.join(problems)}; the ttm adapter supports "
            "channel-independent point-forecast TTMs (e.g. granite-timeseries-ttm-r2)"
        )
