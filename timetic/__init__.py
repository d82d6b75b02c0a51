"""timetic: which time-series foundation model will do best on your data after fine-tuning.

Pipeline, one stage per module: ``data`` (target) -> ``windows`` -> ``features`` /
``characterize`` -> ``selection`` -> (knowledge base, learner, ranking).
"""

from timetic.data import Target, load_target
from timetic.errors import TimeticError, TimeticInputError, TimeticWarning
from timetic.recipe import Recipe
from timetic.selection import TotalVarianceSelector
from timetic.tasks import Task
from timetic.windows import Windows, sample_windows

__version__ = "0.1.0"

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
