"""Shared fine-tuning loop for adapters whose model is a ``torch.nn.Module`` with a loss.

Subclasses implement :meth:`TorchAdapter._loss` (a scalar training loss on a batch of context and
future windows) and keep the module in ``self.model``. The loop is the uniform recipe: AdamW,
fixed steps, batch size, gradient clipping, seeded sampling.
"""

from __future__ import annotations

import copy
from typing import Callable

import numpy as np
import torch

from timetic.adapters.base import Adapter, sample_training_windows
from timetic.recipe import Recipe


class TorchAdapter(Adapter):
    """Base for the chronos / transformers families (not registered itself)."""

    model: torch.nn.Module
    device: str = "cpu"

    @property
    def num_parameters(self) -> int:
        return int(sum(p.numel() for p in self.model.parameters()))

    def _loss(self, context: torch.Tensor, future: torch.Tensor) -> torch.Tensor:
        """Training loss. context: (B, C) float32 with NaN; future: (B, H) float32 with NaN."""
        raise NotImplementedError

    def _max_train_horizon(self, horizon: int) -> int:
        """Horizon used in training batches (families with a fixed output length cap it)."""
        return horizon

    def _copy(self) -> "TorchAdapter":
        new = copy.copy(self)
        new.model = copy.deepcopy(self.model)
        return new

    def finetune(
        self,
        train: list[np.ndarray],
        horizon: int,
        recipe: Recipe,
        progress: Callable[[int, int], None] | None = None,
    ) -> "TorchAdapter":
        device = recipe.resolve_device()
        new = self._copy()
        new.model.to(device)
        new.device = device
        context_length = recipe.context_length or getattr(self, "context_length", 512)
        h = self._max_train_horizon(horizon)
        rng = np.random.default_rng(recipe.seed)
        torch.manual_seed(recipe.seed)
        opt = torch.optim.AdamW(
            new.model.parameters(), lr=recipe.learning_rate, weight_decay=recipe.weight_decay
        )
        new.model.train()
        for step in range(recipe.steps):
            ctx, fut = sample_training_windows(train, context_length, h, recipe.batch_size, rng)
            ctx_t = torch.as_tensor(ctx, dtype=torch.float32, device=device)
            fut_t = torch.as_tensor(fut, dtype=torch.float32, device=device)
            loss = new._loss(ctx_t, fut_t)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(new.model.parameters(), recipe.grad_clip)
            opt.step()
            if progress is not None:
                progress(step + 1, recipe.steps)
        new.model.eval()
        new.model.to("cpu")
        new.device = "cpu"
        return new
