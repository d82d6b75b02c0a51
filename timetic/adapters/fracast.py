"""Fracast-0 (PyPI ``fracast==0.1.0``), a compact attention-free convolutional forecaster.

The package ships its pretrained weights inside the wheel (85,001 parameters; Apache-2.0), so the
model needs no download. Install with ``pip install -e ".[fracast]"``.

Sources (:meth:`FracastAdapter.from_pretrained`):

* ``"fracast-0"`` (or ``"bundled"``): the fp32 weights bundled with the installed package
  (``site-packages/fracast/weights/model.safetensors``); ``weights="w8"`` loads the bundled int8
  weights (dequantised to fp32) instead.
* a local folder with the package's file layout: ``config.json`` (``{"model": ..., "pyramid":
  ...}``) and ``model.safetensors`` (keys ``core.*`` and ``head.*``), e.g. one written by
  :meth:`FracastAdapter.save_pretrained`.

Any other string is refused with a :class:`TimeticInputError`. The package itself treats an
unknown string as a Hugging Face repository id and downloads it; this adapter never calls that
path (it builds the model from the package's classes and reads the files itself).

Model: ``fracast._core.model.Model`` (``model.core``: input projection of value, coverage and
recency features plus periodogram phase features, then **one shared** dilated causal conv block
``model.core.block`` applied ``n_stages`` (10) times at dilations 1, 2, ..., 512 with FiLM scale
conditioning, then an RMSNorm; ``model.head``: a gather/query quantile head with a future-state
convolution). The context window is fixed: ``W`` = 2,048 points.

Inputs: as the package's wrapper does, each window's last ``W`` points are min-max normalised
(``loc`` = min, ``span`` = max - min, at least 1e-5, over the observed points), missing points
and left padding (contexts shorter than ``W``) are 0 and marked unobserved (``valid`` and
coverage 0). The package refuses series with fewer than 8 observed points; this adapter forecasts
them anyway (all-missing windows use ``loc`` = 0, ``span`` = 1 and forecast about 0). The
forward pass is the package's own (``core(values, valid, coverage)`` then
``head.forward_horizon``) but written in torch here, so it is differentiable; with fp32 weights it
reproduces ``FracastModel.forecast`` (tested).

Outputs: the 9 quantile levels of the release (0.1, ..., 0.9) are exactly
:data:`~timetic.adapters.base.QUANTILE_LEVELS`; a checkpoint with other levels is linearly
interpolated between its levels (flat beyond its outermost). The native horizon is 48 steps;
longer horizons are rolled out as the package does: the median block is appended to the raw
context, the window is re-normalised and the model runs again. Quantiles are sorted and
non-finite values replaced by the last observed value (:func:`~timetic.adapters.hf_base.finish_quantiles`).

Layer embeddings: forward hooks on the encoder: the input embedding (what the first FiLM
conditioning ``model.core.scale`` receives: ``in_proj`` of the features plus the phase
features) and the output of every stage of ``model.core.block`` (10 with the release config),
so ``depth = n_stages``. Every layer is ``(n, T, d_model)`` with ``T = min(C, W)``: the left
padding of contexts shorter than ``W`` is cut off (positions that are missing inside the given
context are kept). The states are computed on the normalised, zero-padded window.

Fine-tuning: the shared :class:`~timetic.adapters.torch_base.TorchAdapter` loop with the pinball
(quantile) loss, averaged over the model's quantile levels and the observed future steps, on the
wrapper's min-max normalised scale (targets normalised with the context window's ``loc`` and
``span``). Training targets are the first ``min(H, 48)`` steps. The model always processes ``W``
points, so training with a 512-point context costs about as much as with 2,048.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from timetic.adapters.base import QUANTILE_LEVELS
from timetic.adapters.hf_base import as_context, finish_quantiles
from timetic.adapters.torch_base import TorchAdapter
from timetic.errors import TimeticInputError

import fracast  # noqa: E402  (ImportError: the family is skipped by the registry)
from fracast._core.model import Model, as_configs

__all__ = ["FracastAdapter", "BUNDLED_SOURCES", "bundled_dir"]

#: source strings that mean "the weights bundled with the installed fracast package".
BUNDLED_SOURCES = ("fracast-0", "bundled")
_WEIGHT_FILES = {"fp32": "model.safetensors", "w8": "model.int8.safetensors"}
#: ``from_config`` sizes: overrides of the package's release config (``weights/config.json``).
_SIZES: dict[str, dict[str, Any]] = {
    # tests: 6,665 parameters, W 256, 6 stages (dilations 1..32), 24 steps out (3 queries x 8 steps)
    "tiny": dict(
        d_model=16, W=256, level_widths=[256], n_stages=6, horizon=24, future_queries=3,
        future_patch=8, head_d_ff=24, head_future_conv_layers=3,
    ),
    # the release architecture (config.json of the package) with random weights
    "fracast-0": {},
}


def bundled_dir() -> Path:
    """``site-packages/fracast/weights`` of the installed package."""
    return Path(fracast.__file__).resolve().parent / "weights"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _build(cfg: dict[str, Any]) -> torch.nn.Module:
    try:
        return Model(as_configs({"model": dict(cfg["model"]), "pyramid": dict(cfg["pyramid"])}))
    except (KeyError, TypeError, ValueError) as e:
        raise TimeticInputError(
            f"not a buildable Fracast config ({type(e).__name__}: {e}); pass a Fracast-0 folder"
        ) from e


class FracastAdapter(TorchAdapter, name="fracast"):
    """Fracast-0: one shared dilated causal conv block over a 2,048-point window, 9 quantiles out."""

    sizes: ClassVar[tuple[str, ...]] = tuple(_SIZES)

    def __init__(
        self, model: torch.nn.Module, cfg: dict[str, Any], source: str = "", device: str = "cpu",
        weights_sha256: str = "", weights: str = "",
    ):
        self.model = model.to(device).eval()
        self.cfg = copy.deepcopy(cfg)
        self.source = str(source)
        self.device = device
        self.weights_sha256 = weights_sha256
        self.weights = weights
        m = cfg["model"]
        self.context_length = int(m["W"])
        self.prediction_length = int(m["horizon"])
        self.model_quantiles = tuple(float(q) for q in m["quantiles"])
        self._median = int(np.argmin(np.abs(np.asarray(self.model_quantiles) - 0.5)))

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def weights_available(cls, source: str) -> bool:
        """The package's bundled weights (``"fracast-0"``, ``"bundled"``) are always here."""
        return str(source).strip() in BUNDLED_SOURCES or super().weights_available(source)

    @classmethod
    def from_pretrained(cls, source: str | Path = "fracast-0", device: str = "cpu", weights: str = "fp32",
                        **kwargs: Any) -> "FracastAdapter":
        if kwargs:
            raise TimeticInputError(
                f"fracast takes no loading options {sorted(kwargs)}; pass only weights='fp32' or 'w8'"
            )
        if weights not in _WEIGHT_FILES:
            raise TimeticInputError(f"fracast weights must be 'fp32' or 'w8'; got {weights!r}")
        text = str(source)
        if isinstance(source, str) and text in BUNDLED_SOURCES:
            path = bundled_dir()
        else:
            path = Path(source).expanduser()
            if not path.is_dir():
                raise TimeticInputError(
                    f"fracast source {text!r} is not a local folder; pass 'fracast-0' for the weights "
                    "bundled with the fracast package or a folder saved by save_pretrained (no downloads)"
                )
        cfg_file, weight_file = path / "config.json", path / _WEIGHT_FILES[weights]
        if not cfg_file.is_file() or not weight_file.is_file():
            raise TimeticInputError(
                f"{path} lacks config.json or {weight_file.name}; pass a folder with the fracast package's file layout"
            )
        try:
            cfg = json.loads(cfg_file.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise TimeticInputError(f"{cfg_file} is not valid JSON; re-create the folder") from e
        if not isinstance(cfg, dict) or "model" not in cfg or "pyramid" not in cfg:
            raise TimeticInputError(f"{cfg_file} is not a Fracast config (no 'model'/'pyramid'); pass a Fracast folder")
        model = _build(cfg)
        if weights == "fp32":
            from safetensors.torch import load_file

            state = load_file(str(weight_file), device="cpu")
        else:
            from fracast._core.safetensors_io import load_w8_safetensors

            state = load_w8_safetensors(weight_file, path / "w8_manifest.json")
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as e:
            raise TimeticInputError(f"the weights in {path} do not match its config.json; re-create the folder") from e
        return cls(model, cfg, source=text, device=device, weights_sha256=_sha256(weight_file), weights=weights)

    @classmethod
    def from_config(cls, size: str = "tiny", seed: int = 0, **overrides: Any) -> "FracastAdapter":
        if size not in _SIZES:
            raise TimeticInputError(f"unknown fracast size {size!r}; use one of {', '.join(_SIZES)}")
        cfg = json.loads((bundled_dir() / "config.json").read_text(encoding="utf-8"))
        cfg["model"].update({**_SIZES[size], **overrides})
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = _build(cfg)
        return cls(model, cfg, source=f"config:{size}")

    def save_pretrained(self, path: str | Path) -> Path:
        from safetensors.torch import save_file

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        (path / "config.json").write_text(json.dumps(self.cfg, indent=2) + "\n", encoding="utf-8")
        state = {k: v.detach().cpu().contiguous() for k, v in self.model.state_dict().items()}
        save_file(state, str(path / "model.safetensors"))
        return path

    # -- description --------------------------------------------------------------------------
    @property
    def depth(self) -> int:
        return int(self.model.core.n_stages)

    def info(self) -> dict[str, Any]:
        return {**super().info(), "weights_sha256": self.weights_sha256, "weights": self.weights}

    # -- the torch forward path -------------------------------------------------------------------
    def _normalise(self, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(b, C) with NaN -> values (b, W) float32, valid (b, W) bool, loc and span (b, 1) float64.

        As ``FracastModel._predict_rows``: the last W points, min-max over the observed ones,
        missing points and left padding 0 and unobserved.
        """
        W = self.context_length
        tail = context[:, -W:].to(device=self.device, dtype=torch.float64)
        mask = torch.isfinite(tail)
        inf = torch.full_like(tail, math.inf)
        lo = torch.where(mask, tail, inf).amin(dim=1, keepdim=True)
        hi = torch.where(mask, tail, -inf).amax(dim=1, keepdim=True)
        any_obs = mask.any(dim=1, keepdim=True)
        loc = torch.where(any_obs, lo, torch.zeros_like(lo))
        span = torch.where(any_obs, (hi - lo).clamp_min(1e-5), torch.ones_like(lo))
        norm = torch.where(mask, (tail - loc) / span, torch.zeros_like(tail)).float()
        pad = W - tail.shape[1]
        if pad > 0:
            norm = torch.nn.functional.pad(norm, (pad, 0))
            mask = torch.nn.functional.pad(mask, (pad, 0), value=False)
        return norm, mask, loc, span

    def _run(self, values: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """Normalised (b, W) values and valid mask -> normalised quantiles (b, P, Q_model)."""
        hidden = self.model.core(values[:, None, :], valid[:, None, :], valid[:, None, :].float())
        return self.model.head.forward_horizon(hidden, last_obs=values[:, -1:], ctx=values, ctx_mask=valid)

    def _to_levels(self, q: np.ndarray) -> np.ndarray:
        """(b, Q_model, H) at the model's levels -> (b, Q, H) at QUANTILE_LEVELS."""
        levels = self.model_quantiles
        if len(levels) == len(QUANTILE_LEVELS) and np.allclose(levels, QUANTILE_LEVELS, atol=1e-9):
            return q
        order = np.argsort(levels)
        src, qs = np.asarray(levels)[order], np.sort(q, axis=1)
        out = np.empty((q.shape[0], len(QUANTILE_LEVELS), q.shape[2]))
        for j, lv in enumerate(QUANTILE_LEVELS):
            k = int(np.clip(np.searchsorted(src, lv), 1, len(src) - 1))
            w = float(np.clip((lv - src[k - 1]) / (src[k] - src[k - 1]), 0.0, 1.0))
            out[:, j] = (1 - w) * qs[:, k - 1] + w * qs[:, k]
        return out

    def _forecast_batch(self, x: np.ndarray, horizon: int) -> np.ndarray:
        """(b, C) float64 with NaN -> (b, Q, H) in data units, rolled out in blocks of P steps."""
        ctx = torch.as_tensor(x, dtype=torch.float64, device=self.device)
        P = self.prediction_length
        blocks = []
        for k in range(math.ceil(horizon / P)):
            values, valid, loc, span = self._normalise(ctx)
            q = self._run(values, valid).double() * span[:, :, None] + loc[:, :, None]  # (b, P, Qm)
            blocks.append(q.cpu().numpy())
            if (k + 1) * P < horizon:
                median = q[..., self._median].float().double()  # the wrapper appends float32 values
                ctx = torch.cat([ctx[:, -self.context_length :], median], dim=1)
        q = np.concatenate(blocks, axis=1)[:, :horizon]
        return finish_quantiles(self._to_levels(np.moveaxis(q, -1, 1)), x)

    # -- use ----------------------------------------------------------------------------------
    def forecast(self, context: np.ndarray, horizon: int, batch_size: int = 64) -> np.ndarray:
        if not isinstance(horizon, (int, np.integer)) or horizon < 1:
            raise TimeticInputError(f"horizon must be an integer >= 1; got {horizon!r}")
        x = as_context(context)
        self.model.eval()
        out = np.empty((len(x), len(QUANTILE_LEVELS), int(horizon)))
        with torch.no_grad():
            for start in range(0, len(x), batch_size):
                out[start : start + batch_size] = self._forecast_batch(x[start : start + batch_size], int(horizon))
        return out

    def layer_embeddings(self, context: np.ndarray, batch_size: int = 64) -> list[torch.Tensor]:
        x = as_context(context)
        if len(x) == 0:
            raise TimeticInputError("no context windows given (n = 0); pass at least one")
        core = self.model.core
        T = min(x.shape[1], self.context_length)
        captured: list[torch.Tensor] = []

        def keep(t: torch.Tensor) -> None:
            captured.append(t[:, -T:].detach().float().cpu())

        def input_hook(module, args):
            if not captured:  # the first call receives the input embedding
                keep(args[0])

        def stage_hook(module, args, output):
            keep(output)

        first = core.scale if core.scale is not None else (core.block if core.share_stages else core.blocks[0])
        stages = [core.block] if core.share_stages else list(core.blocks)
        handles = [first.register_forward_pre_hook(input_hook)]
        handles += [m.register_forward_hook(stage_hook) for m in stages]
        self.model.eval()
        per_batch: list[list[torch.Tensor]] = []
        try:
            with torch.no_grad():
                for start in range(0, len(x), batch_size):
                    captured.clear()
                    values, valid, _, _ = self._normalise(torch.as_tensor(x[start : start + batch_size]))
                    self.model.core(values[:, None, :], valid[:, None, :], valid[:, None, :].float())
                    if len(captured) != self.depth + 1:
                        raise RuntimeError(f"fracast: captured {len(captured)} layer outputs, expected {self.depth + 1}")
                    per_batch.append(list(captured))
        finally:
            for h in handles:
                h.remove()
        return [torch.cat(layer, dim=0) for layer in zip(*per_batch)]

    # -- fine-tuning ----------------------------------------------------------------------------
    def _max_train_horizon(self, horizon: int) -> int:
        return min(horizon, self.prediction_length)

    def _loss(self, context: torch.Tensor, future: torch.Tensor) -> torch.Tensor:
        values, valid, loc, span = self._normalise(context)
        q = self._run(values, valid)  # (B, P, Qm), normalised
        return fracast_loss(q, ((future.to(torch.float64) - loc) / span).float(), self.model.head.q)


def fracast_loss(q: torch.Tensor, target: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
    """Pinball loss averaged over quantile levels and observed target steps.

    Args:
        q: (B, P, Q) predicted quantiles (normalised).
        target: (B, h) normalised targets with NaN, h <= P.
        levels: (Q,) quantile levels.
    """
    h = target.shape[1]
    ok = torch.isfinite(target)
    diff = torch.nan_to_num(target, nan=0.0)[..., None] - q[:, :h]  # (B, h, Q)
    lv = levels.to(q.dtype)
    pinball = torch.maximum(lv * diff, (lv - 1) * diff).mean(dim=-1)
    pinball = torch.where(ok, pinball, torch.zeros_like(pinball))
    return pinball.sum() / ok.sum().clamp_min(1)
