"""The uniform fine-tuning recipe: one set of hyper-parameters for every model.

TimeTic fine-tunes every model with one fixed recipe (full-parameter, AdamW, 1 epoch, batch 32,
learning rate 1e-5). timetic counts optimiser *steps* instead of epochs so that a run costs the
same on a small and a large dataset, and stores the recipe next to every result.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from timetic.errors import TimeticInputError


@dataclass(frozen=True)
class Recipe:
    """Hyper-parameters of one fine-tuning run.

    Attributes:
        optimizer: always ``"AdamW"`` (kept for the record).
        learning_rate: AdamW learning rate.
        weight_decay: AdamW weight decay.
        steps: optimiser steps (batches) of full-parameter fine-tuning.
        batch_size: windows per batch.
        context_length: context length C fed to the model; ``None`` = the task's.
        grad_clip: max gradient norm.
        seed: seeds window sampling, shuffling and dropout.
        device: ``"auto"`` (CUDA when available, else CPU), ``"cpu"`` or ``"cuda"``.
    """

    optimizer: str = "AdamW"
    learning_rate: float = 1e-4
    weight_decay: float = 0.01
    steps: int = 100
    batch_size: int = 32
    context_length: int | None = None
    grad_clip: float = 1.0
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.optimizer != "AdamW":
            raise TimeticInputError(f"optimizer {self.optimizer!r} is not supported; use 'AdamW'")
        if self.steps < 0 or self.batch_size < 1 or self.learning_rate <= 0:
            raise TimeticInputError(
                "recipe needs steps >= 0, batch_size >= 1 and learning_rate > 0; fix the recipe file"
            )

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> "Recipe":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise TimeticInputError(
                f"unknown recipe field(s) {', '.join(unknown)}; use {', '.join(sorted(known))}"
            )
        return cls(**d)

    @classmethod
    def from_file(cls, path: str | Path) -> "Recipe":
        path = Path(path)
        try:
            d = json.loads(path.read_text())
        except FileNotFoundError as e:
            raise TimeticInputError(f"recipe file not found: {path}; check the path") from e
        except json.JSONDecodeError as e:
            raise TimeticInputError(f"recipe file {path.name} is not valid JSON ({e.msg}); fix it") from e
        if not isinstance(d, dict):
            raise TimeticInputError(f"recipe file {path.name} must hold a JSON object; fix it")
        return cls.from_dict(d)

    def resolve_device(self) -> str:
        if self.device != "auto":
            return self.device
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
