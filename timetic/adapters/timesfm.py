"""TimesFM family (``transformers.TimesFmModelForPrediction``).

Checkpoints are Hugging Face directories (``config.json`` + ``model.safetensors``) such as
``google/timesfm-2.0-500m-pytorch``.

Inputs: as in the ``timesfm`` library's own ``forecast``, leading missing values are stripped
(they become TimesFM padding) and inner missing values are linearly interpolated. The model's own
``_preprocess`` then left-pads shorter contexts (padding mask 1) and truncates longer ones to
``config.context_length``. All series get frequency index 0 (TimesFM's "high frequency" bucket):
adapters do not know the data's frequency.

Outputs: TimesFM predicts ``horizon_length`` steps of (mean, quantiles at ``config.quantiles``)
from its last input patch; ``TimesFmModelForPrediction.forward`` decodes one such block only. For
longer horizons the adapter unrolls autoregressively as the ``timesfm`` library does: the mean of
each block is appended to the context and the model is called again. Quantiles are mapped to
:data:`QUANTILE_LEVELS` (directly when the model's levels are the deciles, else by linear
interpolation) and sorted.

Layer embeddings: ``output_hidden_states=True``: the input embedding (residual-block patch
embedding + frequency embedding) then the output of each decoder layer; one token per input patch
(``context_length / patch_length`` tokens, padded patches included). ``depth = num_hidden_layers``.

Fine-tuning: the model's own loss (``forward(..., future_values=...)``: MSE of the mean plus the
mean quantile loss) computed the same way but masked (missing future values are skipped) and on
values divided by each window's context standard deviation, so that one learning rate suits series
of any scale. Training targets are the first ``min(H, horizon_length)`` steps.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from timetic.adapters.base import QUANTILE_LEVELS, fill_nan
from timetic.adapters.hf_base import HFAdapter, finish_quantiles
from timetic.adapters.hf_base import as_context, check_model_type, quiet_transformers  # noqa: F401  (lived here)
from timetic.errors import TimeticInputError

#: named sizes for ``from_config`` (``TimesFmConfig`` keyword arguments).
_COMMON: dict[str, Any] = {"quantiles": list(QUANTILE_LEVELS), "freq_size": 3}
_SIZES: dict[str, dict[str, Any]] = {
    "tiny": dict(
        patch_length=8, context_length=64, horizon_length=16, num_hidden_layers=2,
        hidden_size=32, intermediate_size=64, head_dim=16, num_attention_heads=2,
    ),
    "zoo-s": dict(
        patch_length=32, context_length=512, horizon_length=128, num_hidden_layers=3,
        hidden_size=128, intermediate_size=128, head_dim=32, num_attention_heads=4,
    ),
    "zoo-m": dict(
        patch_length=32, context_length=512, horizon_length=128, num_hidden_layers=8,
        hidden_size=128, intermediate_size=128, head_dim=32, num_attention_heads=4,
    ),
}
#: TimesFM frequency bucket fed for every series (0 = high frequency, the library's default).
_FREQ = 0


def _strip_and_fill(context: np.ndarray, device: str | torch.device) -> list[torch.Tensor]:
    """Rows of (n, C) with NaN -> n float32 1-D tensors without leading NaN, inner NaN interpolated.

    An all-missing row becomes a single 0 (the model pads the rest).
    """
    filled, observed = fill_nan(context)
    first = np.where(observed.any(axis=1), observed.argmax(axis=1), context.shape[1] - 1)
    return [
        torch.as_tensor(filled[i, first[i] :], dtype=torch.float32, device=device)
        for i in range(len(filled))
    ]


def _window_scale(context: torch.Tensor) -> torch.Tensor:
    """Per-window loss scale: std of the observed context, else its mean |x|, else 1. (B, C) -> (B,)."""
    mask = torch.isfinite(context)
    x = torch.where(mask, context, torch.zeros_like(context))
    count = mask.sum(dim=1).clamp_min(1)
    mean = x.sum(dim=1) / count
    var = (torch.where(mask, x - mean[:, None], torch.zeros_like(x)) ** 2).sum(dim=1) / count
    std = var.sqrt()
    level = mean.abs()
    tiny = 1e-6 * (1.0 + level)
    scale = torch.where(std > tiny, std, torch.where(level > tiny, level, torch.ones_like(std)))
    return scale


def timesfm_loss(
    full: torch.Tensor, future: torch.Tensor, quantiles: list[float], scale: torch.Tensor | None = None
) -> torch.Tensor:
    """TimesFM's loss (MSE of the mean + mean quantile loss), skipping missing targets.

    Args:
        full: (B, h, 1 + len(quantiles)) predictions, mean first.
        future: (B, h) targets with NaN.
        quantiles: the model's quantile levels.
        scale: (B,) divisor of errors; ``None`` = 1 (then equals the model's own loss when
            ``future`` has no NaN).
    """
    mask = torch.isfinite(future)
    target = torch.where(mask, future, full[..., 0].detach())
    err = target[..., None] - full  # (B, h, 1 + Q)
    if scale is not None:
        err = err / scale[:, None, None]
    w = mask.to(full.dtype)
    denom = w.sum().clamp_min(1.0)
    mse = (err[..., 0] ** 2 * w).sum() / denom
    qs = torch.as_tensor(quantiles, dtype=full.dtype, device=full.device)
    e = err[..., 1:]
    pinball = torch.maximum((qs - 1) * e, qs * e)  # (B, h, Q)
    ql = (pinball * w[..., None]).sum(dim=(0, 1)) / denom
    return mse + ql.mean()


def _level_map(model_levels: list[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices and weights that interpolate the sorted model levels at QUANTILE_LEVELS."""
    src = np.asarray(sorted(model_levels), dtype=np.float64)
    target = np.clip(np.asarray(QUANTILE_LEVELS), src[0], src[-1])
    hi = np.clip(np.searchsorted(src, target, side="left"), 0, len(src) - 1)
    lo = np.clip(hi - 1, 0, len(src) - 1)
    gap = src[hi] - src[lo]
    w = np.where(gap > 0, (target - src[lo]) / np.where(gap > 0, gap, 1.0), 1.0)
    return lo, hi, w


class TimesFmAdapter(HFAdapter, name="timesfm"):
    """TimesFM (decoder-only patch transformer with a mean + quantile head)."""

    model_type = "timesfm"
    model_class = "TimesFmModelForPrediction"
    config_class = "TimesFmConfig"
    config_common = _COMMON
    config_sizes = _SIZES

    @classmethod
    def _check_config(cls, kw: dict[str, Any]) -> None:
        if kw["context_length"] % kw["patch_length"]:
            raise TimeticInputError(
                f"timesfm context_length ({kw['context_length']}) must be a multiple of "
                f"patch_length ({kw['patch_length']}); change one of them"
            )

    # -- description --------------------------------------------------------------------------
    @property
    def horizon_length(self) -> int:
        """Native output length of one decoding step."""
        return int(self.model.config.horizon_length)

    # -- use ----------------------------------------------------------------------------------
    def _run(self, series: list[torch.Tensor], **kwargs: Any) -> Any:
        """One forward pass on a list of 1-D contexts (the model pads / truncates them)."""
        return self.model(past_values=series, freq=[_FREQ] * len(series), **kwargs)

    def _embed_batch(self, x: np.ndarray) -> list[torch.Tensor]:
        return list(self._run(_strip_and_fill(x, self.device), output_hidden_states=True).hidden_states)

    def _forecast_batch(self, x: np.ndarray, horizon: int) -> np.ndarray:
        """(b, C) with NaN -> (b, Q, H), unrolling blocks of ``horizon_length`` steps."""
        series = _strip_and_fill(x, self.device)
        blocks = []
        for _ in range(math.ceil(horizon / self.horizon_length)):
            out = self._run(series)
            blocks.append(out.full_predictions.float().cpu().numpy())  # (b, h_len, 1 + Q)
            mean = out.mean_predictions
            series = [torch.cat([s, m])[-self.context_length :] for s, m in zip(series, mean)]
        full = np.concatenate(blocks, axis=1)[:, :horizon].astype(np.float64)
        q = self._to_levels(full[..., 1:])  # (b, H, 9)
        return finish_quantiles(np.moveaxis(q, -1, 1), x)

    def _to_levels(self, q: np.ndarray) -> np.ndarray:
        """(..., len(config.quantiles)) -> (..., 9) at QUANTILE_LEVELS."""
        levels = list(self.model.config.quantiles)
        order = np.argsort(levels)
        q = np.sort(q[..., order], axis=-1)
        if len(levels) == len(QUANTILE_LEVELS) and np.allclose(np.asarray(levels)[order], QUANTILE_LEVELS):
            return q
        lo, hi, w = _level_map(levels)
        return q[..., lo] * (1 - w) + q[..., hi] * w

    # -- fine-tuning ----------------------------------------------------------------------------
    def _max_train_horizon(self, horizon: int) -> int:
        return min(horizon, self.horizon_length)

    def _loss(self, context: torch.Tensor, future: torch.Tensor) -> torch.Tensor:
        series = _strip_and_fill(context.detach().cpu().numpy(), context.device)
        out = self._run(series)
        full = out.full_predictions[:, : future.shape[1]]
        return timesfm_loss(full, future, list(self.model.config.quantiles), _window_scale(context))
