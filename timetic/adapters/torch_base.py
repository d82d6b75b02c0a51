"""Shared fine-tuning loop for adapters whose model is a ``torch.nn.Module`` with a loss.

Subclasses implement :meth:`TorchAdapter._loss` (a scalar training loss on a batch of context and
future windows) and keep the module in ``self.model``. The loop is the uniform recipe: AdamW at
the family's learning rate (``recipe.learning_rate_for(name)``), at most ``recipe.steps`` steps,
batch size, gradient clipping, seeded sampling; with a ``validate`` callback, best-checkpoint
keeping and early stopping (:class:`Checkpointer`, shared with the gluonts families).
"""

from __future__ import annotations

import contextlib
import copy
import math
from typing import Any, Callable, Iterator

import numpy as np
import torch

from timetic.adapters.base import Adapter, sample_training_windows
from timetic.recipe import Recipe


@contextlib.contextmanager
def _rng_kept(device: str | torch.device) -> Iterator[None]:
    """Restore the global torch RNG (CPU and, on CUDA, that device), numpy's and python's global
    RNG afterwards: validation must not change the training run's random stream (dropout, window
    sampling, shuffling)."""
    import random

    device = torch.device(device)
    devices = [device.index or 0] if device.type == "cuda" and torch.cuda.is_available() else []
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        with torch.random.fork_rng(devices=devices):
            yield
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)


class Checkpointer:
    """Validation, best-checkpoint keeping and early stopping of one fine-tuning run.

    ``evaluate(step)`` puts ``module`` in eval mode, calls ``validate(adapter)`` (an adapter that
    forecasts with ``module``'s current weights) with the global torch RNG restored afterwards,
    puts the module back in its previous mode, and keeps a copy of the weights when the loss is
    the lowest so far (strictly; the first evaluation is always kept, so the starting weights are
    the fallback). Non-finite losses count as worst. It returns True when ``patience``
    evaluations in a row have not improved on the best. ``restore()`` loads the best weights.

    Args:
        module: the trained module (its ``state_dict`` is copied and restored).
        adapter: what ``validate`` is called with.
        validate: adapter -> validation loss (lower is better).
        eval_every: steps between evaluations (``due`` also says yes at the last step).
        patience: evaluations without improvement before stopping; ``None`` = never stop.
        total: the step cap.
        sync: called before every evaluation (e.g. copy the weights into a forecasting copy).
    """

    def __init__(
        self,
        module: torch.nn.Module,
        adapter: Any,
        validate: Callable[[Any], float],
        eval_every: int,
        patience: int | None,
        total: int,
        sync: Callable[[], None] | None = None,
    ):
        self.module = module
        self.adapter = adapter
        self.validate = validate
        self.eval_every = max(1, int(eval_every))
        self.patience = patience
        self.total = int(total)
        self.sync = sync
        self.curve: list[list[Any]] = []
        self.best = math.inf
        self.best_step: int | None = None
        self.best_state: dict[str, torch.Tensor] | None = None
        self.bad = 0

    def due(self, step: int) -> bool:
        return step % self.eval_every == 0 or step == self.total

    def evaluate(self, step: int) -> bool:
        """Validate at ``step``; True when training should stop (patience exhausted)."""
        if self.sync is not None:
            self.sync()
        was_training = self.module.training
        self.module.eval()
        try:
            device = next(self.module.parameters()).device
        except StopIteration:
            device = torch.device("cpu")
        try:
            with _rng_kept(device), torch.no_grad():
                loss = float(self.validate(self.adapter))
        finally:
            self.module.train(was_training)
        finite = math.isfinite(loss)
        self.curve.append([int(step), loss if finite else None])
        score = loss if finite else math.inf
        if self.best_state is None or score < self.best:
            self.best, self.best_step = score, int(step)
            self.best_state = {k: v.detach().clone() for k, v in self.module.state_dict().items()}
            self.bad = 0
        else:
            self.bad += 1
        return self.patience is not None and self.bad >= self.patience

    def restore(self) -> None:
        if self.best_state is not None:
            self.module.load_state_dict(self.best_state)

    def info(self, steps_run: int, stopped_early: bool) -> dict[str, Any]:
        return {
            "validated": True,
            "steps_run": int(steps_run),
            "best_step": self.best_step,
            "best_val": self.best if math.isfinite(self.best) else None,
            "val_curve": self.curve,
            "stopped_early": bool(stopped_early),
        }


def plain_info(steps_run: int) -> dict[str, Any]:
    """``finetune_info`` of a run without validation (the last weights are kept)."""
    return {
        "validated": False,
        "steps_run": int(steps_run),
        "best_step": int(steps_run),
        "best_val": None,
        "val_curve": [],
        "stopped_early": False,
    }


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

    def _prepare_finetune(self, horizon: int) -> None:
        """Adjust the copy about to be fine-tuned (before step 0's validation); default nothing."""

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
        validate: Callable[[Adapter], float] | None = None,
    ) -> "TorchAdapter":
        device = recipe.resolve_device()
        new = self._copy()
        new.model.to(device)
        new.device = device
        new._prepare_finetune(horizon)
        context_length = recipe.context_length or getattr(self, "context_length", 512)
        h = self._max_train_horizon(horizon)
        lr = recipe.learning_rate_for(self.name)
        rng = np.random.default_rng(recipe.seed)
        torch.manual_seed(recipe.seed)
        opt = torch.optim.AdamW(new.model.parameters(), lr=lr, weight_decay=recipe.weight_decay)
        new.model.train()
        ckpt = None
        if validate is not None and recipe.eval_every is not None:
            ckpt = Checkpointer(new.model, new, validate, recipe.eval_every, recipe.patience, recipe.steps)
        stop = ckpt is not None and ckpt.evaluate(0)
        steps_run = 0
        while not stop and steps_run < recipe.steps:
            ctx, fut = sample_training_windows(train, context_length, h, recipe.batch_size, rng)
            ctx_t = torch.as_tensor(ctx, dtype=torch.float32, device=device)
            fut_t = torch.as_tensor(fut, dtype=torch.float32, device=device)
            loss = new._loss(ctx_t, fut_t)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(new.model.parameters(), recipe.grad_clip)
            opt.step()
            steps_run += 1
            if progress is not None:
                progress(steps_run, recipe.steps)
            if ckpt is not None and ckpt.due(steps_run):
                stop = ckpt.evaluate(steps_run)
        if ckpt is not None:
            ckpt.restore()
        new.model.eval()
        new.model.to("cpu")
        new.device = "cpu"
        info = ckpt.info(steps_run, stop and steps_run < recipe.steps) if ckpt is not None else plain_info(steps_run)
        new.finetune_info = {**info, "learning_rate": lr}
        return new
