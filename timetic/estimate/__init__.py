"""Estimation: from the knowledge base and a target's rows to a ranking of candidate models.

The stages, one module each:

- :mod:`timetic.estimate.core`: :class:`TimeTic`, the estimator users call (fit on a KB, predict
  on a target); it picks a formulation with ``method``:
  ``"stack"`` (default) or ``"window"`` (TimeTic as published: one row per (window, model), a
  tabular learner in context).
- :mod:`timetic.estimate.cells`: the KB summarised per (dataset, task, model) cell: matrices of
  observed log fine-tuned and zero-shot MASE and per-(dataset, task) mean meta-features.
- :mod:`timetic.estimate.priors`: the cheap rankings a user already has, as learner inputs:
  the leaderboard (a model's mean relative score over source datasets) and the kNN meta-learner
  (its mean over the nearest source datasets); models not in the KB borrow from their nearest
  models in entropy-profile space.
- :mod:`timetic.estimate.stack`: the ``stack`` formulation: a ridge over (zero-shot, leaderboard,
  kNN) fitted on out-of-fold priors, a level model, and leave-one-dataset-out residuals that make
  the intervals, P(best), regret and P(fine-tuning helps) (split conformal).
"""

from timetic.estimate.core import RANKING_COLUMNS, TargetRows, TimeTic

__all__ = ["RANKING_COLUMNS", "TargetRows", "TimeTic"]
