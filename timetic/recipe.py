"""The uniform fine-tuning recipe: one set of hyper-parameters for every model.

TimeTic fine-tunes every model with one fixed recipe (full-parameter, AdamW, batch 32). timetic
counts optimiser *steps* instead of epochs so that a run costs the same on a small and a large
dataset, and stores the recipe (and its :attr:`Recipe.hash`) next to every result.

Named recipes (:meth:`Recipe.named`):

* ``"v1"``: the recipe of knowledge base v1 (``meta_features_v1/``): 40 fixed steps at
  learning rate 1e-4, no validation, the last step's weights are kept. Its JSON (and hash
  ``aeab0b13e3c6e14a``) is exactly what the KB rows hold.
* ``"v2"`` (the default of :meth:`Recipe.load` and ``benchmarks/build_kb.py``; the recipe of KB
  v2, ``meta_features/``): at most 400
  steps; a validation span at the end of every series' training part (never the test span); the
  validation loss (mean seasonal MASE of the forecasts of at most 64 validation windows) is
  computed at step 0 and every 25 steps (and at the last step); training stops after 4
  evaluations without improvement and the best checkpoint is kept (possibly the untouched
  starting model). Learning rates per model family: :data:`FAMILY_LEARNING_RATES`.

``Recipe(...)`` (name ``"custom"``) has v2's schedule with one learning rate for every family
(``learning_rates=None``) unless told otherwise.

``timetic finetune`` defaults to neither: it uses the knowledge base's own recipe
(:meth:`Recipe.from_kb`: the KB given with ``--kb`` when it has observations, else the default KB),
so that its results compare with the KB's.

Reading older files: a recipe JSON without the v2 fields (written before they existed) is a v1
style recipe: no validation, fixed steps (``eval_every``, ``patience``, ``val_windows`` and
``learning_rates`` are ``None``, ``name`` is ``"v1"``). Conversely :meth:`Recipe.to_dict` of a
recipe named ``"v1"`` leaves out the v2 fields whose value is that v1 value (and the name), so a
v1 recipe writes (and hashes) exactly as before; every recipe reads back equal to itself. A
hand-written file with another ``name`` gets v2's schedule for the fields it leaves out.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from timetic.errors import TimeticInputError

#: learning rate of each model family (adapter name) in the ``"v2"`` recipe; a family missing
#: here uses ``Recipe.learning_rate``. Chosen once by ``benchmarks/zoo/select_lr.py`` among 1e-5,
#: 1e-4, 1e-3 and 3e-3 on the held-out series of the zoo's pretraining corpus (never on an
#: evaluation dataset; ``benchmarks/zoo/learning_rates.json`` has every score, a test checks the
#: two agree). Fracast is not in the grid (too slow to fine-tune on CPU) and keeps the v1 rate.
FAMILY_LEARNING_RATES: dict[str, float] = {
    "chronos-bolt": 1e-3,
    "chronos-2": 1e-3,
    "timesfm": 1e-4,
    "patchtst": 1e-4,
    "deepar": 1e-4,
    "tide": 1e-3,
    "ttm": 1e-3,
    "fracast": 1e-4,
}

#: the value of every v2 field that means "v1 behaviour"; missing fields of a JSON recipe take
#: these values and :meth:`Recipe.to_dict` omits fields that have them.
_V1_VALUES: dict[str, Any] = {
    "name": "v1",
    "eval_every": None,
    "patience": None,
    "val_windows": None,
    "learning_rates": None,
}


@dataclass(frozen=True)
class Recipe:
    """Hyper-parameters of one fine-tuning run.

    Attributes:
        name: a label (``"v1"``, ``"v2"``, ``"custom"`` or your own); part of the JSON and
            hash unless ``"v1"``.
        optimizer: always ``"AdamW"`` (kept for the record).
        learning_rate: AdamW learning rate (the fallback for families not in ``learning_rates``).
        weight_decay: AdamW weight decay.
        steps: optimiser steps (batches) of full-parameter fine-tuning; with validation the cap.
        batch_size: windows per batch.
        context_length: context length C fed to the model; ``None`` = the task's.
        grad_clip: max gradient norm.
        seed: seeds window sampling, shuffling and dropout.
        device: ``"auto"`` (CUDA when available, else CPU), ``"cpu"`` or ``"cuda"``.
        eval_every: validate every this many steps (and at step 0 and the last step); ``None`` =
            no validation: train ``steps`` steps and keep the last weights (v1).
        patience: stop after this many evaluations in a row without a lower validation loss;
            ``None`` = never stop early (the best checkpoint is still kept).
        val_windows: at most this many validation windows (``None``: no validation, as v1).
        learning_rates: adapter name -> learning rate (``None``: ``learning_rate`` for all).
    """

    name: str = "custom"
    optimizer: str = "AdamW"
    learning_rate: float = 1e-4
    weight_decay: float = 0.01
    steps: int = 400
    batch_size: int = 32
    context_length: int | None = None
    grad_clip: float = 1.0
    seed: int = 0
    device: str = "auto"
    eval_every: int | None = 25
    patience: int | None = 4
    val_windows: int | None = 64
    learning_rates: dict[str, float] | None = field(default=None)

    def __post_init__(self) -> None:
        if self.optimizer != "AdamW":
            raise TimeticInputError(f"optimizer {self.optimizer!r} is not supported; use 'AdamW'")
        if self.steps < 0 or self.batch_size < 1 or self.learning_rate <= 0:
            raise TimeticInputError(
                "recipe needs steps >= 0, batch_size >= 1 and learning_rate > 0; fix the recipe file"
            )
        for key in ("eval_every", "val_windows"):
            v = getattr(self, key)
            if v is not None and (not isinstance(v, int) or v < 1):
                raise TimeticInputError(f"recipe field {key} must be None or an integer >= 1 (got {v!r})")
        if self.patience is not None and (not isinstance(self.patience, int) or self.patience < 1):
            raise TimeticInputError(f"recipe field patience must be None or an integer >= 1 (got {self.patience!r})")
        if self.learning_rates is not None:
            if not isinstance(self.learning_rates, dict):
                raise TimeticInputError("recipe field learning_rates must map adapter names to learning rates")
            lrs = {str(k): float(v) for k, v in self.learning_rates.items()}
            if any(not v > 0 for v in lrs.values()):
                raise TimeticInputError("recipe learning_rates must all be > 0; fix the recipe file")
            object.__setattr__(self, "learning_rates", lrs)

    def __hash__(self) -> int:  # learning_rates is a dict
        return hash(self.to_json())

    # -- behaviour ----------------------------------------------------------------------------
    @property
    def validates(self) -> bool:
        """Whether fine-tuning validates, keeps the best checkpoint and may stop early."""
        return self.eval_every is not None and self.val_windows is not None

    def learning_rate_for(self, family: str) -> float:
        """The learning rate of adapter family ``family`` (``learning_rates``, else the fallback)."""
        return float((self.learning_rates or {}).get(str(family), self.learning_rate))

    # -- named recipes ------------------------------------------------------------------------
    @classmethod
    def named(cls, name: str) -> "Recipe":
        """The named recipe ``"v1"`` (KB v1's) or ``"v2"`` (the default, the shipped KB v2's); see the module."""
        if name == "v1":
            return cls(name="v1", learning_rate=1e-4, steps=40, **{k: v for k, v in _V1_VALUES.items() if k != "name"})
        if name == "v2":
            return cls(name="v2", learning_rates=dict(FAMILY_LEARNING_RATES))
        raise TimeticInputError(f"unknown recipe {name!r}; use one of {', '.join(NAMED_RECIPES)} or a JSON file")

    @classmethod
    def load(cls, spec: "str | Path | Recipe | None") -> "Recipe":
        """A named recipe (``"v1"``, ``"v2"``), a recipe JSON file, or ``None`` (the default, v2)."""
        if spec is None:
            return cls.named(DEFAULT_RECIPE)
        if isinstance(spec, Recipe):
            return spec
        if str(spec) in NAMED_RECIPES:
            return cls.named(str(spec))
        return cls.from_file(spec)

    @classmethod
    def from_kb(cls, kb: Any) -> "Recipe | None":
        """The primary recipe of knowledge base ``kb`` (a :class:`timetic.kb.KnowledgeBase`): the
        one with the most observations, ties broken by hash, as the estimator picks its ground
        truth (:meth:`timetic.estimate.TimeTic.recipe_hash`); ``None`` when ``kb`` has no
        observations. Results fine-tuned with it compare with the KB's."""
        import polars as pl

        obs = kb.observations()
        if obs.height == 0:
            return None
        counts = obs.group_by("recipe_hash").len().sort(["len", "recipe_hash"], descending=[True, False])
        primary = counts.get_column("recipe_hash")[0]
        text = obs.filter(pl.col("recipe_hash") == primary).get_column("recipe").drop_nulls()
        if text.len() == 0:
            raise TimeticInputError(
                f"the knowledge base {kb.path} stores no recipe JSON for recipe {primary}; pass --recipe v1|v2|FILE"
            )
        return cls.from_dict(json.loads(text[0]))

    # -- serialisation ------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """Every field; a recipe named "v1" leaves out the v2 fields at their v1 value (and its
        name), so that v1 recipes write (and hash) exactly as before the v2 fields existed."""
        d = dataclasses.asdict(self)
        if self.name == "v1":
            for key, v1 in _V1_VALUES.items():
                if d[key] == v1:
                    del d[key]
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @property
    def hash(self) -> str:
        """Short (16 hex digits) sha256 of the canonical JSON; equals :func:`timetic.kb.recipe_hash`."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    @classmethod
    def from_dict(cls, d: dict) -> "Recipe":
        """Read :meth:`to_dict` output, including v1 recipes written before the v2 fields existed.

        Without a ``name`` (older files) or with name ``"v1"``, missing v2 fields take their v1
        value (no validation); other missing fields take the dataclass defaults (v2's schedule,
        one learning rate for every family).
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise TimeticInputError(
                f"unknown recipe field(s) {', '.join(unknown)}; use {', '.join(sorted(known))}"
            )
        if d.get("name", "v1") == "v1":
            d = {**_V1_VALUES, **d}
        return cls(**d)

    @classmethod
    def from_file(cls, path: str | Path) -> "Recipe":
        path = Path(path)
        try:
            d = json.loads(path.read_text())
        except FileNotFoundError as e:
            raise TimeticInputError(
                f"recipe file not found: {path}; pass an existing JSON file or one of "
                f"{', '.join(NAMED_RECIPES)}"
            ) from e
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


#: names :meth:`Recipe.named` knows.
NAMED_RECIPES: tuple[str, ...] = ("v1", "v2")
#: the recipe of :meth:`Recipe.load` (``None``) and ``benchmarks/build_kb.py`` unless told otherwise, and
#: of ``timetic finetune`` when no knowledge base with observations is at hand (it otherwise uses the
#: KB's recipe, :meth:`Recipe.from_kb`).
DEFAULT_RECIPE = "v2"
