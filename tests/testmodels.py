"""Tiny test-only models behind the adapter interface (used by test_finetune and test_profile).

Two small patch models that read (B, C) contexts with NaN, normalise them per window and forecast
quantiles of a fixed-length block: a patch MLP (``_test-patch-mlp``) and a patch transformer
(``_test-patch-transformer``). Their adapters register under those names on import; the names start
with ``_test`` so that tests over the real families can leave them out (:func:`real_adapters`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import torch
from torch import nn

from timetic.adapters import base as adapter_base
from timetic.adapters.torch_base import TorchAdapter

MLP_NAME = "_test-patch-mlp"
TRANSFORMER_NAME = "_test-patch-transformer"


class _PatchModel(nn.Module):
    """Config and input patch embedding of the tiny models: x (B, C) with NaN is normalised per
    window (missing values 0 and flagged) and cut into C / patch tokens of (values, mask)."""

    def __init__(self, context_length, patch, d_model, n_layers, out_len, n_q):
        super().__init__()
        self.config = dict(
            context_length=context_length, patch=patch, d_model=d_model, n_layers=n_layers, out_len=out_len, n_q=n_q
        )
        self.patch, self.out_len, self.n_q = patch, out_len, n_q
        self.embed = nn.Linear(2 * patch, d_model)

    def embed_patches(self, x):
        """x (B, C) with NaN -> (embedded patch tokens (B, C / patch, d_model), loc (B, 1), scale (B, 1))."""
        mask = torch.isfinite(x)
        zero = torch.zeros_like(x)
        x0 = torch.where(mask, x, zero)
        cnt = mask.sum(1, keepdim=True).clamp(min=1)
        loc = x0.sum(1, keepdim=True) / cnt
        scale = torch.sqrt((torch.where(mask, x0 - loc, zero) ** 2).sum(1, keepdim=True) / cnt) + 1e-3
        xn = torch.where(mask, (x0 - loc) / scale, zero)
        B = x.shape[0]
        p = torch.cat([xn.reshape(B, -1, self.patch), mask.float().reshape(B, -1, self.patch)], dim=-1)
        return self.embed(p), loc, scale


class _PatchMLP(_PatchModel):
    def __init__(self, context_length=48, patch=8, d_model=32, n_layers=2, out_len=12, n_q=9):
        super().__init__(context_length, patch, d_model, n_layers, out_len, n_q)
        n_tok = context_length // patch
        self.blocks = nn.ModuleList(
            nn.ModuleDict(
                {
                    "norm": nn.LayerNorm(d_model),
                    "mlp": nn.Sequential(nn.Linear(d_model, 2 * d_model), nn.GELU(), nn.Linear(2 * d_model, d_model)),
                    "mix": nn.Linear(n_tok, n_tok),
                }
            )
            for _ in range(n_layers)
        )
        self.head = nn.Linear(n_tok * d_model, n_q * out_len)

    def tokens(self, x):
        h, loc, scale = self.embed_patches(x)
        states = [h]
        for blk in self.blocks:
            h = h + blk["mlp"](blk["norm"](h))
            h = h + blk["mix"](h.transpose(1, 2)).transpose(1, 2)
            states.append(h)
        return states, loc, scale

    def forward(self, x):
        states, loc, scale = self.tokens(x)
        q = self.head(states[-1].flatten(1)).reshape(-1, self.n_q, self.out_len)
        return q, loc, scale


class _PatchTransformer(_PatchModel):
    def __init__(self, context_length=64, patch=8, d_model=32, n_layers=2, out_len=8, n_q=9):
        super().__init__(context_length, patch, d_model, n_layers, out_len, n_q)
        n_tok = context_length // patch
        self.pos = nn.Parameter(torch.randn(n_tok, d_model) * 0.1)
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(d_model, 2, 2 * d_model, dropout=0.0, batch_first=True) for _ in range(n_layers)
        )
        self.head = nn.Linear(d_model, n_q * out_len)

    def tokens(self, x):
        """x (B, C) with NaN -> (normalised hidden states list, loc, scale)."""
        h, loc, scale = self.embed_patches(x)
        h = h + self.pos
        states = [h]
        for layer in self.layers:
            h = layer(h)
            states.append(h)
        return states, loc, scale

    def forward(self, x):
        states, loc, scale = self.tokens(x)
        q = self.head(states[-1][:, -1]).reshape(-1, self.n_q, self.out_len)
        return q, loc, scale


class _PatchAdapter(TorchAdapter, name=None):
    """The adapter interface over a module class with ``tokens``, ``forward`` and a ``config`` dict."""

    sizes = ("tiny",)
    #: the wrapped ``nn.Module`` class (built from its ``config`` dict).
    module: ClassVar[type[nn.Module]]

    def __init__(self, model, source="config"):
        self.model = model.eval()
        self.source = source
        self.context_length = model.config["context_length"]

    @classmethod
    def from_config(cls, size="tiny", seed=0, **overrides):
        torch.manual_seed(seed)
        return cls(cls.module(**overrides), source=f"config:{size}:{seed}")

    @classmethod
    def from_pretrained(cls, source, device="cpu", **kwargs):
        from safetensors.torch import load_file

        path = adapter_base.resolve_source(source)
        model = cls.module(**json.loads((path / "config.json").read_text()))
        model.load_state_dict(load_file(str(path / "model.safetensors")))
        return cls(model, source=str(source))

    def save_pretrained(self, path):
        from safetensors.torch import save_file

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        (path / "config.json").write_text(json.dumps(self.model.config))
        save_file({k: v.contiguous() for k, v in self.model.state_dict().items()}, str(path / "model.safetensors"))
        return path

    @property
    def depth(self):
        return int(self.model.config["n_layers"])

    def _prep(self, context):
        x = torch.as_tensor(np.asarray(context, dtype=np.float32))
        C = self.context_length
        if x.shape[1] >= C:
            return x[:, -C:]
        return torch.cat([torch.full((x.shape[0], C - x.shape[1]), float("nan")), x], dim=1)

    def layer_embeddings(self, context, batch_size=64):
        with torch.no_grad():
            states, _, _ = self.model.tokens(self._prep(context))
        return [s.float().cpu() for s in states]

    def forecast(self, context, horizon, batch_size=64):
        ctx = self._prep(context)
        out = []
        with torch.no_grad():
            while sum(o.shape[-1] for o in out) < horizon:
                q, loc, scale = self.model(ctx)
                q = torch.sort(q, dim=1).values * scale[:, :, None] + loc[:, :, None]
                out.append(q)
                ctx = torch.cat([ctx, q[:, self.model.n_q // 2]], dim=1)[:, -self.context_length :]
        return torch.cat(out, dim=-1)[..., :horizon].double().numpy()

    def _max_train_horizon(self, horizon):
        return min(horizon, self.model.out_len)

    def _loss(self, context, future):
        x = self._prep(context.cpu().numpy()).to(future.device)
        q, loc, scale = self.model(x)
        h = future.shape[1]
        y = (future - loc) / scale
        levels = torch.tensor(self.quantile_levels, device=y.device)[None, :, None]
        err = y[:, None, :] - q[..., :h]
        ok = torch.isfinite(err)
        err = torch.where(ok, err, torch.zeros_like(err))
        return (torch.maximum(levels * err, (levels - 1) * err) * ok).sum() / ok.sum().clamp(min=1)


class PatchMLPAdapter(_PatchAdapter, name=None):
    module = _PatchMLP


class PatchTransformerAdapter(_PatchAdapter, name=None):
    module = _PatchTransformer


def _register(name: str, cls: type[_PatchAdapter]) -> None:
    """Register ``cls`` as ``name``, replacing an earlier registration (safe on re-import)."""
    adapter_base._REGISTRY.pop(name, None)
    adapter_base._REGISTRY[name] = cls
    cls.name = name


_register(MLP_NAME, PatchMLPAdapter)
_register(TRANSFORMER_NAME, PatchTransformerAdapter)


def tiny_real_adapter(name: str) -> TorchAdapter:
    """The tiny model (seed 0) of the real family ``name`` for smoke tests; skips the test when
    ``name`` is "(none)" (no real family importable) or the family cannot build it."""
    if name == "(none)":
        pytest.skip("no real adapter importable")
    try:
        return adapter_base.get_adapter(name).from_config("tiny", seed=0)
    except Exception as e:  # another engineer's adapter in progress
        pytest.skip(f"{name}.from_config('tiny') failed: {type(e).__name__}: {e}")


def real_adapters() -> list[str]:
    """The registered adapters of real model families (test-only ones left out)."""
    try:
        return [n for n in adapter_base.available_adapters() if not n.startswith("_test")]
    except Exception:  # a family module that fails to import must not break the test module
        return []
