"""timetic: which time-series foundation model will do best on your data after fine-tuning.

Pipeline, one stage per module: ``data`` (target) -> ``windows`` -> ``features`` /
``characterize`` -> ``selection`` -> (knowledge base, learner, ranking).

The public names below are imported lazily (PEP 562): ``import timetic`` costs milliseconds, and
pandas, polars, scikit-learn (and, in :mod:`timetic.adapters`, the model libraries) are imported
only by the code that uses them, so that ``timetic --help`` and ``timetic adapters`` answer at once.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from timetic.errors import TimeticError, TimeticInputError, TimeticWarning

__version__ = "0.1.0"

#: public name -> the module that defines it (imported on first access).
_LAZY = {
    "Recipe": "timetic.recipe",
    "Target": "timetic.data",
    "Task": "timetic.tasks",
    "TotalVarianceSelector": "timetic.selection",
    "Windows": "timetic.windows",
    "load_target": "timetic.data",
    "sample_windows": "timetic.windows",
}

__all__ = [
    "Recipe",
    "Target",
    "Task",
    "TimeticError",
    "TimeticInputError",
    "TimeticWarning",
    "TotalVarianceSelector",
    "Windows",
    "load_target",
    "sample_windows",
]

if TYPE_CHECKING:  # pragma: no cover
    from timetic.data import Target, load_target
    from timetic.recipe import Recipe
    from timetic.selection import TotalVarianceSelector
    from timetic.tasks import Task
    from timetic.windows import Windows, sample_windows


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is not None:
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value
        return value
    if not name.startswith("_"):  # a submodule not imported yet: ``timetic.kb`` after ``import timetic``
        try:
            return importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{name}":
                raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
