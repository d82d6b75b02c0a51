"""PatchTST family (``transformers.PatchTSTForPrediction``), univariate and probabilistic.

Checkpoints are Hugging Face directories (``config.json`` + ``model.safetensors``), e.g. ones
saved by :meth:`PatchTSTAdapter.save_pretrained` or ``ibm-granite/granite-timeseries-patchtst``.

Model: ``from_config`` builds channel-independent univariate models (``num_input_channels=1``)
with a distribution head (``loss="nll"``, ``distribution_output="student_t"``), the flatten
prediction head of the PatchTST paper (``pooling_type=None``), layer norm and the library's
"std" input scaler. Loaded checkpoints with several input channels get the series in every
channel and channel 0's forecast; point-forecast checkpoints (``loss="mse"``) give nine equal
quantiles.

Inputs: ``context_length`` is fixed by the config. Missing values are linearly interpolated
(edges: nearest observed value) and marked unobserved in ``past_observed_mask`` (the scaler ignores
them); shorter contexts are left-padded with their first value (also marked unobserved), longer
ones keep their last ``context_length`` steps.

Outputs: quantiles come from the predicted distribution's inverse CDF (Student-t through
``scipy.special.stdtrit``, normal through ``torch.special.ndtri``): exact and deterministic. Other
distribution heads are sampled (``num_parallel_samples``, seeded). ``prediction_length`` is fixed
too: shorter horizons are truncated; longer ones are unrolled autoregressively, each block's
median is appended to the context (marked observed) and the model is called again.

Layer embeddings: ``output_hidden_states=True`` gives the input embedding (patch projection +
positional encoding) and the input of every further encoder layer; the last layer's output
(``last_hidden_state``) is appended. One token per patch. ``depth = num_hidden_layers``.

Fine-tuning: the model's own loss (the distribution's negative log-likelihood, as
``forward(..., future_values=...)`` computes it), masked where the future is missing or beyond
the horizon; training targets are the first ``min(H, prediction_length)`` steps. Point heads use
MSE on scaled values.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from timetic.adapters.base import QUANTILE_LEVELS, fill_nan
from timetic.adapters.hf_base import HFAdapter, finish_quantiles
from timetic.errors import TimeticInputError

_COMMON: dict[str, Any] = dict(
    num_input_channels=1,
    loss="nll",
    distribution_output="student_t",
    num_parallel_samples=100,
    pooling_type=None,
    norm_type="layernorm",
    scaling="std",
    share_embedding=True,
    share_projection=True,
    channel_attention=False,
    use_cls_token=False,
    positional_encoding_type="sincos",
)
_SIZES: dict[str, dict[str, Any]] = {
    "tiny": dict(
        context_length=64, patch_length=8, patch_stride=8, prediction_length=16,
        num_hidden_layers=2, d_model=32, num_attention_heads=2, ffn_dim=64,
    ),
    "zoo-s": dict(
        context_length=512, patch_length=32, patch_stride=16, prediction_length=48,
        num_hidden_layers=3, d_model=96, num_attention_heads=4, ffn_dim=192,
    ),
    "zoo-m": dict(
        context_length=512, patch_length=32, patch_stride=16, prediction_length=48,
        num_hidden_layers=8, d_model=96, num_attention_heads=4, ffn_dim=192,
    ),
}
#: seed of the sampling fallback (distribution heads without an inverse CDF).
_SAMPLE_SEED = 0


class PatchTSTAdapter(HFAdapter, name="patchtst"):
    """PatchTST (channel-independent patch transformer encoder) with a distribution head."""

    model_type = "patchtst"
    model_class = "PatchTSTForPrediction"
    config_class = "PatchTSTConfig"
    config_common = _COMMON
    config_sizes = _SIZES

    @classmethod
    def _check_config(cls, kw: dict[str, Any]) -> None:
        if kw["prediction_length"] < 2 or kw["context_length"] <= kw["patch_length"]:
            raise TimeticInputError(
                "patchtst needs prediction_length >= 2 and context_length > patch_length; "
                "change the overrides"
            )

    # -- description --------------------------------------------------------------------------
    @property
    def prediction_length(self) -> int:
        """Native output length of one forward pass."""
        return int(self.model.config.prediction_length)

    # -- inputs -------------------------------------------------------------------------------
    def _inputs(self, context: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """(b, C) with NaN -> past_values and past_observed_mask, both (b, context_length, channels).

        NaN are interpolated and marked unobserved; short contexts are left-padded with their
        first value (unobserved), long ones truncated on the left.
        """
        filled, observed = fill_nan(context)
        L = self.context_length
        C = filled.shape[1]
        if C >= L:
            filled, observed = filled[:, C - L :], observed[:, C - L :]
        else:
            pad = L - C
            filled = np.concatenate([np.repeat(filled[:, :1], pad, axis=1), filled], axis=1)
            observed = np.concatenate([np.zeros((len(observed), pad)), observed], axis=1)
        channels = int(self.model.config.num_input_channels)
        values = torch.as_tensor(filled, dtype=torch.float32, device=self.device)
        mask = torch.as_tensor(observed, dtype=torch.float32, device=self.device)
        return (
            values[..., None].expand(-1, -1, channels).contiguous(),
            mask[..., None].expand(-1, -1, channels).contiguous(),
        )

    # -- use ----------------------------------------------------------------------------------
    def _embed_batch(self, x: np.ndarray) -> list[torch.Tensor]:
        values, mask = self._inputs(x)
        out = self.model.model(past_values=values, past_observed_mask=mask, output_hidden_states=True)
        states = [*out.hidden_states, out.last_hidden_state]  # (b, channels, T, d) each
        return [h[:, 0] for h in states]

    def _forecast_batch(self, x: np.ndarray, horizon: int) -> np.ndarray:
        """(b, C) with NaN -> (b, Q, H), unrolling blocks of ``prediction_length`` steps."""
        values, mask = self._inputs(x)
        median = QUANTILE_LEVELS.index(0.5)
        blocks = []
        for _ in range(math.ceil(horizon / self.prediction_length)):
            out = self.model(past_values=values, past_observed_mask=mask)
            q = self._quantiles(out)  # (b, P, Q)
            blocks.append(q.cpu().numpy())
            step = q[..., median : median + 1].to(values.dtype).expand(-1, -1, values.shape[-1])
            values = torch.cat([values, step], dim=1)[:, -self.context_length :]
            mask = torch.cat([mask, torch.ones_like(step)], dim=1)[:, -self.context_length :]
        q = np.concatenate(blocks, axis=1)[:, :horizon].astype(np.float64)
        return finish_quantiles(np.moveaxis(q, -1, 1), x)  # non-finite (overflow): naive forecast

    def _quantiles(self, out: Any) -> torch.Tensor:
        """Model output -> (b, P, Q) quantiles of channel 0 at QUANTILE_LEVELS, in data units."""
        if self.model.distribution_output is None:  # point head: already in data units
            point = out.prediction_outputs[..., 0].double()
            return point[..., None].expand(-1, -1, len(QUANTILE_LEVELS))
        params = tuple(p[..., 0].double() for p in out.prediction_outputs)  # each (b, P)
        loc = out.loc[:, :, 0].double()  # (b, 1)
        scale = out.scale[:, :, 0].double()
        levels = torch.as_tensor(QUANTILE_LEVELS, dtype=torch.float64, device=loc.device)
        kind = self.model.config.distribution_output
        if kind == "student_t":
            from scipy.special import stdtrit

            df, mu, sigma = params
            z = stdtrit(df.cpu().numpy()[..., None], levels.cpu().numpy())
            z = torch.as_tensor(z, dtype=torch.float64, device=loc.device)
            q = mu[..., None] + sigma[..., None] * z
        elif kind == "normal":
            mu, sigma = params
            q = mu[..., None] + sigma[..., None] * torch.special.ndtri(levels)
        else:
            return self._sampled_quantiles(out, levels)
        return q * scale[..., None] + loc[..., None]

    def _sampled_quantiles(self, out: Any, levels: torch.Tensor) -> torch.Tensor:
        """Quantiles of ``num_parallel_samples`` seeded samples (heads without an inverse CDF)."""
        dist = self.model.distribution_output.distribution(
            out.prediction_outputs, loc=out.loc, scale=out.scale
        )
        n = int(self.model.config.num_parallel_samples)
        devices = [self.device] if str(self.device).startswith("cuda") else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(_SAMPLE_SEED)
            samples = dist.sample((n,))[..., 0].double()  # (n, b, P)
        return torch.quantile(samples, levels, dim=0).permute(1, 2, 0)

    # -- fine-tuning ----------------------------------------------------------------------------
    def _max_train_horizon(self, horizon: int) -> int:
        return min(horizon, self.prediction_length)

    def _loss(self, context: torch.Tensor, future: torch.Tensor) -> torch.Tensor:
        values, mask = self._inputs(context.detach().cpu().numpy())
        out = self.model(past_values=values.to(context.device), past_observed_mask=mask.to(context.device))
        return patchtst_loss(self.model, out, future)


def patchtst_loss(model: Any, out: Any, future: torch.Tensor) -> torch.Tensor:
    """The model's training loss on a (B, h) future with NaN, h <= prediction_length.

    Distribution heads: the mean negative log-likelihood over observed future steps (equal to
    ``model(..., future_values=...).loss`` when h = prediction_length and nothing is missing).
    Point heads: MSE of the forecast divided by the input scale.
    """
    P = int(model.config.prediction_length)
    channels = int(model.config.num_input_channels)
    B, h = future.shape
    target = torch.zeros(B, P, dtype=future.dtype, device=future.device)
    target[:, :h] = torch.nan_to_num(future[:, :P], nan=0.0)
    weight = torch.zeros_like(target)
    weight[:, :h] = torch.isfinite(future[:, :P]).to(target.dtype)
    target = target[..., None].expand(-1, -1, channels)
    if model.distribution_output is None:
        err = (out.prediction_outputs - target) / out.scale
        per_step = (err**2).mean(dim=-1)
    else:
        dist = model.distribution_output.distribution(out.prediction_outputs, loc=out.loc, scale=out.scale)
        per_step = -dist.log_prob(target) / channels  # (B, P): log-prob summed over channels
    return (per_step * weight).sum() / weight.sum().clamp_min(1.0)
