"""The estimator: the knowledge base as context, a ranking for a target.

Two formulations (``method``):

* ``"stack"`` (default, :mod:`timetic.estimate.stack`): per (dataset, task) cell, a ridge stacks
  the rankings a user already has (the target's zero-shot scores, the leaderboard, kNN over source
  datasets) on out-of-fold priors, and leave-one-dataset-out residuals calibrate the intervals.
* ``"window"`` (TimeTic as published): the rest of this docstring.

:class:`TimeTic` builds the context table from a knowledge base (:mod:`timetic.context`),
selects window features with TotalVariance (:mod:`timetic.selection`), fits a learner
(:mod:`timetic.learners`) and, for a target, predicts every candidate model's fine-tuned score on
the target's windows. The transferability score of a model is the **mean over the target's windows
of its predicted fine-tuned MASE** (each window's lognormal mean; the observed ground truth of the
evaluation averages the same way; ``score="geomean"`` gives the geometric mean instead). Uncertainty comes from joint samples of the learner's predictive distribution of each
model's mean: intervals, P(best), expected regret, and P(fine-tuning beats zero-shot).

Everything that reads observed scores (selection, transform, learner) happens in :meth:`fit`, from
the rows it is given, so an evaluation fold can fit on its training part only.
"""

from __future__ import annotations

import inspect
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import polars as pl

from timetic.context import (
    KEY,
    ContextTable,
    build_context,
    log_ft_from_y,
    model_matrix,
    stratified_subsample,
    task_frame,
)
from timetic.errors import TimeticInputError, TimeticWarning
from timetic.selection import TotalVarianceSelector
from timetic.tasks import TASK_NAMES, Task

#: columns of :meth:`TimeTic.predict`'s result, in order (stable: the JSON and CSV schema).
RANKING_COLUMNS = (
    "task", "rank", "model_id", "adapter", "predicted_mase", "lower_90", "upper_90",
    "zero_shot_mase", "predicted_gain", "p_improve", "negative_transfer", "p_best",
    "expected_regret", "tied_with_above", "naive_mase", "p_beats_naive", "n_windows",
)
#: two neighbours in the ranking are tied when the joint samples order them the predicted way less
#: often than this (the order is close to a coin flip).
TIE_CONFIDENCE = 0.6


def ties(scores: np.ndarray, point: np.ndarray) -> np.ndarray:
    """(G,) booleans, in the order of ``point`` ascending: is this model tied with the one ranked
    just above it? ``scores``: (S, G) joint samples (lower = better)."""
    order = np.argsort(point, kind="stable")
    out = np.zeros(len(point), dtype=bool)
    for i in range(1, len(order)):
        out[i] = (scores[:, order[i - 1]] < scores[:, order[i]]).mean() < TIE_CONFIDENCE
    return out


@dataclass
class TargetRows:
    """The target side of a prediction for one task.

    Attributes:
        features: (n_windows, p) window meta-features.
        zero_shot: model_id -> (n_windows,) observed zero-shot MASE on those windows, or None.
        horizon: H of the task.
        naive: (n_windows,) MASE of the seasonal-naive forecast on those windows (no weights
            needed), or None.
        no_weights: candidates whose weights are not on this machine (no zero-shot score); the
            ``stack`` imputes their zero-shot input from the KB.
        probe: with ``probe_steps``, model_id -> the learning-curve probe log(min(v_K, v_0) / v_0)
            of the candidate on the target (:func:`timetic.finetune.probe_curve`), or None.
        series_length: the target's mean points per series, or None (unknown).
        window_length: the task's context + horizon, or None; the ``stack``'s gain model reads
            log10(series_length / window_length).
    """

    task: str
    features: pl.DataFrame
    zero_shot: dict[str, np.ndarray] | None
    horizon: int
    naive: np.ndarray | None = None
    no_weights: tuple[str, ...] = ()
    probe: dict[str, float] | None = None
    series_length: float | None = None
    window_length: float | None = None


class TimeTic:
    """Rank candidate models for a target from a knowledge base.

    Args:
        kb: a :class:`timetic.kb.KnowledgeBase` (or use :meth:`from_kb`).
        learner: a learner name (``gp``, ``hgb``, ``tabpfn``, ``tabicl``) or ``None`` = default
            (TabPFN when a checkpoint is configured, else GP).
        n_features: at most this many window features (TotalVariance forward selection).
        profile: ``"renyi"`` (default) or ``"knn"`` (the paper's estimator) entropy profile;
            ``None`` leaves the profile out. On KB v1 the two tied within noise (unseen-dataset
            ρ 0.643 vs 0.648, τ_w 0.575 vs 0.567, window formulation); the
            Rényi estimator has no k and no small-sample bias, so it is the default.
        zero_shot: use the zero-shot score column (needs model weights at prediction time).
        transform: ``"log_ratio"``, ``"log"`` or ``"auto"`` (log_ratio with zero-shot, else log).
        max_context_rows: cap on the learner's context rows (default: the learner's own limit).
        selection_rows: rows used by feature selection (subsampled, stratified).
        n_samples: joint samples for P(best), regret and intervals.
        score: how a model's per-window predictions become its score on the target:
            ``"mean"``, the arithmetic mean over windows of the predicted MASE (each window's
            lognormal mean), what the evaluation's ground truth (observed mean MASE) measures;
            or ``"geomean"``, the geometric mean (mean predicted log MASE).
        zero_shot_columns: with ``zero_shot``, which zero-shot columns the rows carry: ``"window"``
            (the window's log zero-shot MASE), ``"cell"`` (log of the model's mean zero-shot MASE
            over all windows of the dataset and task, the target's windows at prediction time) or
            ``"both"``.
        selection_tol: TotalVariance forward selection stops when the gain is below this; ``None``
            selects exactly ``n_features`` (TimeTic as published: 20).
        selection_target: ``"residual"`` selects features against y minus each model's mean y
            (window features can only explain what varies across windows); ``"raw"`` uses y.
        method: ``"stack"`` or ``"window"`` (see the module docstring); ``None`` (default) = ``window``
            when a ``learner`` is named (the tabular learners read window rows), else ``stack``. ``stack`` reads
            ``k``, ``alpha``, ``zero_shot`` and ``profile`` (new models borrow priors from their
            profile neighbours); the other arguments shape ``window``.
        k: ``stack``: nearest source datasets of the kNN prior.
        alpha: ``stack``: ridge penalty of the stacking weights.
        stack_inputs: ``stack``: the inputs the ridge reads (names of
            :attr:`timetic.estimate.stack.StackedRanker.INPUTS`); ``"auto"`` (default) lets ``fit``
            choose, by out-of-fold Spearman on the KB it is given, between the three cheap rankings
            and those plus the models' fine-tuning gains; ``None`` = the three.
        scale: ``stack``: relative scores of the leaderboard and kNN priors, ``"log"``, ``"rank"``
            or ``"auto"`` (default: both).
        combine: ``stack``: ``"mean"`` (default) averages the configurations ``stack_inputs`` and
            ``scale`` allow; ``"select"`` keeps the best by out-of-fold Spearman on the KB.
        recipe: recipe hash whose observations are the ground truth; ``None`` = the KB's primary
            recipe (the one with the most observations; other recipes, e.g. noise-ceiling seeds,
            are left out so that a cell is not counted twice).
        zero_shot_windows: with ``zero_shot``, how many of the sampled target windows the models
            forecast (evenly spread over the sample; the others get NaN and count only for the
            features). 32 matches the knowledge base, whose cells hold at most 32 scored windows
            per (dataset, model, task), so the benchmark's accuracy is measured at this size; the
            zero-shot pass costs in proportion (benchmarks/zero_shot_windows.py shows the ranking
            against 128). ``None`` scores every sampled window.
        zero_shot_sample_paths: with ``zero_shot``, how many sample paths a sampling model
            (DeepAR: its forecast quantiles are quantiles of sampled paths) draws per window in the
            zero-shot pass; models that forecast quantiles directly ignore it. The KB's zero-shot
            scores used the adapter default (100 for DeepAR); 50 halves DeepAR's share of
            predict's time (about a third of it at H = 48, more at longer horizons) and moves its
            mean zero-shot MASE by about 1% (benchmarks/zero_shot_windows.py compares the
            rankings). ``None`` = the adapter default.
        probe_steps: ``stack`` only, opt-in: fine-tune every candidate for the KB recipe's first
            ``probe_steps`` steps on the target and read the early validation curve (the
            learning-curve probe of :mod:`timetic.estimate.stack`); must be one of the recipe's
            evaluation steps (a multiple of its ``eval_every``) so that the KB's runs recorded the
            same quantity. Costs about ``probe_steps`` / (the recipe's mean steps run) of
            fine-tuning every candidate (benchmarks/probe.py).
        zs_scale: ``stack``: the zero-shot (and probe) inputs as centred log scores (``"log"``), as
            centred ranks among the candidates (``"rank"``) or on each configuration's prior scale
            (``"match"``, default); see :class:`timetic.estimate.stack.StackedRanker`.
        stack_weights: ``stack``: ``"spearman"`` (default: weights chosen for the ranking metric)
            or ``"ridge"`` (least squares); :class:`timetic.estimate.stack.StackedRanker`.
        stack_task_weights: ``stack`` with ``stack_weights="spearman"``: a task with at least this
            many KB (dataset, task) cells gets its own stacking weights (``None``: one set for
            all); :class:`timetic.estimate.stack.StackedRanker`'s ``task_weights``.
        gain_length: ``stack`` with zero-shot scores: the gain model (predicted gain, P(fine-tuning
            helps)) also reads log10(mean series length / the task's context + horizon) of the
            target and of each KB dataset (:class:`timetic.estimate.stack.StackedRanker`'s
            ``length``). The ranking does not depend on it.
        gain_zs_rank: ``stack`` with zero-shot scores: the gain model also reads each candidate's
            zero-shot rank among the KB's models (:class:`timetic.estimate.stack.StackedRanker`'s
            ``zs_rank``): the models best at zero-shot on a target gain least from fine-tuning
            there. The ranking does not depend on it.
        helps_model: ``stack`` with zero-shot scores: P(fine-tuning helps) from a logistic
            regression on the gain model's inputs (``"logistic"``) or from the gain model's
            residuals, recalibrated (``"residuals"``); :class:`timetic.estimate.stack.StackedRanker`'s
            ``helps``. The ranking does not depend on it.
        profile_neighbours: ``stack``: how many KB models, nearest in entropy-profile space, a
            candidate new to the KB borrows its leaderboard and kNN priors from; ``"auto"``
            (default) chooses among 1, 2 and 3 by leave-one-model-out on the KB cells it is fitted
            on (:class:`timetic.estimate.stack.StackedRanker`'s ``profile_neighbours``).
        families: ``stack``: read the KB models' families (their adapters): a candidate new to the
            KB borrows its priors from the KB models of its family (nearest in profile first), and
            one whose family the KB lacks from the number of other-family models chosen by
            leave-one-family-out on the KB cells (0 on KB v2: none, its priors are the mean;
            :class:`timetic.estimate.stack.StackedRanker`'s ``other_family_neighbours``).
            ``False``: every new model borrows from its nearest profiles, whatever their family.
        new_model_weights: ``stack``: candidates new to the KB get input weights fitted for them
            (on the KB cells with every model's priors borrowed from its profile neighbours, as
            the new model's are: from its family's models or, for a family new to the KB, as
            ``families`` says).
            ``"auto"`` (default): with zero-shot scores, for a target that is not one of the KB's
            datasets; ``True`` / ``False``: always / never
            (:class:`timetic.estimate.stack.StackedRanker`).
        components: ``stack``: the kNN prior chooses its nearest KB datasets over this many
            principal components of the standardised meta-features (``None``: all of them);
            ``"auto"`` (default) chooses among 2, 3, 5, 8 and all by leave-one-dataset-out on the
            KB cells it is fitted on (:class:`timetic.estimate.stack.StackedRanker`'s ``components``).
        cross_alpha: ``stack`` with zero-shot scores: the ridge penalty of the ``cross`` prior (every
            model's fine-tuned score predicted from all the models' zero-shot ranks on the target,
            :mod:`timetic.estimate.priors`); ``"auto"`` (default) chooses among 1, 2, 5, 10 and 20
            by leave-one-dataset-out on the KB cells it is fitted on.
        meta: ``stack``: read the ``meta`` prior (every model's fine-tuned score regressed on a few
            principal components of the meta-features, the log length and the task,
            :mod:`timetic.estimate.priors`): ``"auto"`` (default) without zero-shot scores only,
            ``True`` always, ``False`` never; its components and penalty are chosen by
            leave-one-dataset-out on the KB cells it is fitted on.
        seed: seeds every random step.
    """

    def __init__(
        self,
        kb: Any = None,
        learner: str | None = None,
        n_features: int = 20,
        profile: str | None = "renyi",
        zero_shot: bool = True,
        transform: str = "auto",
        max_context_rows: int | None = None,
        selection_rows: int = 3000,
        n_samples: int = 2000,
        learner_kwargs: dict | None = None,
        score: str = "mean",
        zero_shot_columns: str = "both",
        selection_tol: float | None = 1e-3,
        selection_target: str = "raw",
        method: str | None = None,
        k: int = 5,
        alpha: float = 1.0,
        stack_inputs: tuple[str, ...] | list | str | None = "auto",
        scale: str = "auto",
        combine: str = "mean",
        recipe: str | None = None,
        zero_shot_windows: int | None = 32,
        zero_shot_sample_paths: int | None = 50,
        probe_steps: int | None = None,
        zs_scale: str = "match",
        stack_weights: str = "spearman",
        stack_task_weights: int | None = 8,
        gain_length: bool = True,
        gain_zs_rank: bool = True,
        helps_model: str = "logistic",
        profile_neighbours: int | str = "auto",
        new_model_weights: bool | str = "auto",
        families: bool = True,
        components: int | str | None = "auto",
        cross_alpha: float | str = "auto",
        meta: bool | str = "auto",
        seed: int = 0,
    ):
        self.kb = kb
        self.learner = learner
        self.n_features = n_features
        self.profile = profile
        self.zero_shot = zero_shot
        self.transform = transform
        self.max_context_rows = max_context_rows
        self.selection_rows = selection_rows
        self.n_samples = n_samples
        self.learner_kwargs = learner_kwargs
        self.score = score
        self.zero_shot_columns = zero_shot_columns
        self.selection_tol = selection_tol
        self.selection_target = selection_target
        self.method = method
        self.k = k
        self.alpha = alpha
        self.stack_inputs = stack_inputs
        self.scale = scale
        self.combine = combine
        self.recipe = recipe
        self.zero_shot_windows = zero_shot_windows
        self.zero_shot_sample_paths = zero_shot_sample_paths
        self.probe_steps = probe_steps
        self.zs_scale = zs_scale
        self.stack_weights = stack_weights
        self.stack_task_weights = stack_task_weights
        self.gain_length = gain_length
        self.gain_zs_rank = gain_zs_rank
        self.helps_model = helps_model
        self.profile_neighbours = profile_neighbours
        self.new_model_weights = new_model_weights
        self.families = families
        self.components = components
        self.cross_alpha = cross_alpha
        self.meta = meta
        self.seed = seed

    @classmethod
    def from_kb(cls, path: str | Path | None = None, **kwargs: Any) -> "TimeTic":
        """Open a knowledge base (default: the shipped one, :func:`timetic.kb.default_kb_path`); a user KB is read
        with the KBs it layers over (:mod:`timetic.layers`)."""
        from timetic.layers import open_kb

        return cls(open_kb(path), **kwargs)

    # -- fit -----------------------------------------------------------------------------------
    @property
    def method_(self) -> str:
        if self.method is None:
            return "window" if self.learner is not None else "stack"
        if self.method not in ("stack", "window"):
            raise TimeticInputError(f"unknown method {self.method!r}; use 'stack' or 'window'")
        return self.method

    @property
    def transform_(self) -> str:
        if self.transform == "auto":
            return "log_ratio" if self.zero_shot else "log"
        return self.transform

    def context_table(self) -> ContextTable:
        kb = self._require_kb()
        return build_context(
            kb.windows(), kb.models(), kb.observations(recipe_hash=self.recipe_hash(kb)),
            profile=self.profile or "knn",
            require_zero_shot=self.zero_shot or (self.method_ == "window" and self.transform_ == "log_ratio"),
            datasets=kb.datasets(),
        )

    def recipe_hash(self, kb: Any = None) -> str | None:
        """The recipe whose observations this estimator reads (see ``recipe``)."""
        if self.recipe is not None:
            return self.recipe
        counts = (kb or self._require_kb()).observations().group_by("recipe_hash").len()
        if counts.height == 0:
            return None
        return counts.sort(["len", "recipe_hash"], descending=[True, False]).get_column("recipe_hash")[0]

    def fit(self, context: ContextTable | None = None) -> "TimeTic":
        """Select features and fit the learner on ``context`` (default: the whole KB).

        Fitted on the whole KB, the fitted state is cached (:mod:`timetic.cache`, keyed by the
        parameters, the KB's files and timetic's code), so the next process skips the fit."""
        if context is not None:
            self._whole_kb_fit = None
            return self._fit(context)
        from timetic import cache

        key = self._whole_kb_key()
        state = cache.get_object(key) if key is not None else None
        if isinstance(state, dict) and "learner_" in state:
            self.__dict__.update(state)
            self._whole_kb_fit = key
            return self
        self._fit(self.context_table())
        if key is not None:
            cache.put_object(key, {k: v for k, v in self.__dict__.items()
                                   if k.endswith("_") and not k.startswith("_") and k not in _PREDICT_STATE})
        self._whole_kb_fit = key
        return self

    def _whole_kb_key(self) -> str | None:
        """The fit cache's key of this estimator on its whole KB as the KB's files are now."""
        from timetic import cache

        params = {k: getattr(self, k) for k in inspect.signature(type(self).__init__).parameters
                  if k not in ("self", "kb")}
        return cache.fit_key(params, self._require_kb())

    def _fitted_on_another_kb(self) -> bool:
        """Fitted on the whole KB, whose files have changed since (e.g. ``verify(kb_out=...)`` into
        this estimator's own KB): the next predict refits."""
        key = getattr(self, "_whole_kb_fit", None)
        return key is not None and self._whole_kb_key() != key

    def _fit(self, ctx: ContextTable) -> "TimeTic":
        if self.profile is not None and ctx.profile != self.profile:
            raise TimeticInputError(
                f"the context table holds {ctx.profile!r} profiles but this estimator uses {self.profile!r}; "
                "build it with this estimator's context_table()"
            )
        if self.zero_shot and not np.isfinite(ctx.meta.get_column("zs_mase").to_numpy()).all():
            raise TimeticInputError(
                "the context table has rows without zero-shot scores; build it with this estimator's context_table()"
            )
        if len(ctx) < 10:
            raise TimeticInputError(
                f"the knowledge base has only {len(ctx)} usable observation rows; add datasets, "
                "models and observations (timetic finetune --kb DIR) first"
            )
        self.models_ = ctx.meta.get_column("model_id").unique().sort().to_list()
        per_task = ctx.meta.group_by("task").agg(pl.col("dataset_id").n_unique()).sort("task")
        self.tasks_ = per_task.get_column("task").to_list()
        self.task_datasets_ = dict(per_task.iter_rows())
        self._fit_explanations(ctx)
        if self.method_ == "stack":
            return self._fit_stack(ctx)
        y = ctx.y(self.transform_)
        groups = ctx.meta.select("dataset_id", "model_id", "task")
        sel_idx = stratified_subsample(groups, self.selection_rows, self.seed)
        feats = ctx.features[pl.Series(sel_idx)]
        y_sel = y[sel_idx]
        if self.selection_target == "residual":
            mids = groups.get_column("model_id").to_numpy()[sel_idx]
            _, inv = np.unique(mids, return_inverse=True)
            y_sel = y_sel - (np.bincount(inv, weights=y_sel) / np.bincount(inv))[inv]
        elif self.selection_target != "raw":
            raise TimeticInputError(f"unknown selection_target {self.selection_target!r}; use 'raw' or 'residual'")
        tol = -np.inf if self.selection_tol is None else self.selection_tol
        self.selector_ = TotalVarianceSelector(max_features=self.n_features, tol=tol, seed=self.seed).fit(
            feats, y_sel
        )
        self.features_ = list(self.selector_.selected_)
        from timetic.learners import default_learner, get_learner  # the window formulation only

        name = self.learner or default_learner()
        self.learner_ = get_learner(name, seed=self.seed, **(self.learner_kwargs or {}))
        cap = self.max_context_rows or self.learner_.max_context_rows
        idx = stratified_subsample(groups, cap, self.seed)
        X = self._X(ctx.take(idx), _cell_log_zs(ctx)[idx])
        self.learner_.fit(X, y[idx])
        self.learner_name_ = name
        self.n_context_rows_ = len(idx)
        return self

    def _fit_stack(self, ctx: ContextTable) -> "TimeTic":
        from timetic.estimate.cells import build_cells
        from timetic.estimate.stack import StackedRanker

        probe = self.probe_steps is not None
        if probe and (self.probe_steps < 1 or not self.zero_shot):
            raise TimeticInputError(
                f"probe_steps must be >= 1 and needs zero-shot scores (got {self.probe_steps}, "
                f"zero_shot={self.zero_shot}); drop --probe-steps or --no-zero-shot"
            )
        cells = build_cells(ctx, probe_steps=self.probe_steps)
        if probe and np.isfinite(cells.log_probe).sum() < 10:
            raise TimeticInputError(
                f"the knowledge base has {int(np.isfinite(cells.log_probe).sum())} runs with a validation "
                f"curve point at step {self.probe_steps}; pick --probe-steps among the recipe's evaluation "
                "steps (multiples of its eval_every) or add runs that record fit logs"
            )
        self.cells_ = cells
        profiles = self._profiles()
        # models the KB has a profile of but no observation: ranked as unseen models
        self.unobserved_models_ = sorted(m for m in profiles if m not in set(self.models_))
        self.learner_ = StackedRanker(
            zero_shot=self.zero_shot, k=self.k, alpha=self.alpha,
            inputs=self.stack_inputs if isinstance(self.stack_inputs, (list, str)) or self.stack_inputs is None
            else tuple(self.stack_inputs),
            scale=self.scale, combine=self.combine, probe=probe, zs_scale=self.zs_scale,
            weights=self.stack_weights, task_weights=self.stack_task_weights, length=self.gain_length,
            zs_rank=self.gain_zs_rank, helps=self.helps_model,
            profile_neighbours=self.profile_neighbours, new_model_weights=self.new_model_weights,
            components=self.components, cross_alpha=self.cross_alpha, meta=self.meta,
        ).fit(
            cells, profiles, self._families() if self.families else None
        )
        self.learner_name_ = "stack"
        self.features_ = list(cells.feature_names)
        self.n_context_rows_ = self.learner_.n_rows_
        return self

    def _families(self) -> dict[str, str]:
        """model id -> family (its adapter), for every model of the KB."""
        models = self._require_kb().models()
        if "adapter" not in models.columns:
            return {}
        return {m: a for m, a in models.select("model_id", "adapter").iter_rows() if a}

    def _profiles(self) -> dict[str, np.ndarray]:
        """model id -> entropy profile, for every model of the KB (new models borrow by profile)."""
        prof = model_matrix(self._require_kb().models(), self.profile or "renyi")
        ids = prof.get_column("model_id").to_list()
        P = prof.drop("model_id").to_numpy().astype(np.float64)
        return {m: P[i] for i, m in enumerate(ids) if np.isfinite(P[i]).all()}

    def _fit_explanations(self, ctx: ContextTable) -> None:
        # dataset-level means of every window feature, for explanations (nearest source datasets
        # are found in the full meta-feature space: the selected subset can be a single column)
        self.explain_features_ = list(ctx.features.columns)
        self.source_means_ = (
            pl.concat([ctx.meta.select("dataset_id", "task", "item_id", "window_start"), ctx.features], how="horizontal")
            .unique(subset=["dataset_id", "task", "item_id", "window_start"])
            .group_by("dataset_id", "task")
            .agg(pl.col(self.explain_features_).mean())
            .sort("dataset_id", "task")
        )
        self.source_scores_ = (
            ctx.meta.group_by("dataset_id", "task", "model_id")
            .agg(
                pl.col("ft_mase").log().mean().exp().alias("observed_ft_mase"),
                pl.col("zs_mase").log().mean().exp().alias("observed_zs_mase"),
            )
        )

    def _zs_parts(self, log_zs: np.ndarray, log_cell: np.ndarray) -> list[np.ndarray]:
        if not self.zero_shot:
            return []
        if self.zero_shot_columns not in ("window", "cell", "both"):
            raise TimeticInputError(
                f"unknown zero_shot_columns {self.zero_shot_columns!r}; use 'window', 'cell' or 'both'"
            )
        out = []
        if self.zero_shot_columns in ("window", "both"):
            out.append(log_zs[:, None])
        if self.zero_shot_columns in ("cell", "both"):
            out.append(log_cell[:, None])
        return out

    def _X(self, ctx: ContextTable, log_cell: np.ndarray | None = None) -> np.ndarray:
        """Learner inputs of context rows; ``log_cell`` (n,) defaults to the cells of ``ctx`` itself."""
        if log_cell is None:
            log_cell = _cell_log_zs(ctx)
        parts = [ctx.features.select(self.features_).to_numpy()]
        if self.profile is not None:
            parts.append(ctx.model.to_numpy())
        parts.append(ctx.tasks.to_numpy())
        parts += self._zs_parts(np.log(ctx.meta.get_column("zs_mase").to_numpy()), log_cell)
        return np.hstack(parts).astype(np.float64)

    # -- predict -------------------------------------------------------------------------------
    def predict(
        self,
        target: Any,
        /,
        task: str | Sequence[str] = "short",
        models: Sequence[str] | None = None,
        n_windows: int = 128,
        zero_shot: bool | None = None,
        progress: Callable[[str, int, int], None] | None = None,
        **load_kwargs: Any,
    ) -> pl.DataFrame:
        """Rank candidate models for ``target`` (a path, frame or :class:`timetic.data.Target`).

        Returns a polars frame with :data:`RANKING_COLUMNS`, one row per (task, model), best first.
        """
        if zero_shot is not None and zero_shot != self.zero_shot:
            raise TimeticInputError(
                "this estimator was built with zero_shot="
                f"{self.zero_shot}; create TimeTic(..., zero_shot={zero_shot}) instead"
            )
        return self.predict_detailed(target, task=task, models=models, n_windows=n_windows, explain_top=1,
                                     progress=progress, **load_kwargs)["ranking"]

    def verify(
        self,
        target: Any,
        /,
        task: str | Sequence[str] = "short",
        top_k: int = 3,
        kb_out: str | Path | None = None,
        **kwargs: Any,
    ) -> Any:
        """Fine-tune the ``top_k`` predicted models on ``target`` with the KB's recipe, score them on
        the target's held-out span and set the observations beside the predictions; with
        ``kb_out``, record them in a user KB layered over this estimator's KB.

        Returns a :class:`timetic.verify.VerifyResult` (``table``, ``summary()``, ``to_json()``);
        the other arguments are :func:`timetic.verify.verify`'s.
        """
        from timetic.verify import verify

        return verify(self, target, task=task, top_k=top_k, kb_out=kb_out, **kwargs)

    def predict_detailed(
        self,
        target: Any,
        /,
        task: str | Sequence[str] = "short",
        models: Sequence[str] | None = None,
        n_windows: int = 128,
        explain_top: int = 3,
        progress: Callable[[str, int, int], None] | None = None,
        **load_kwargs: Any,
    ) -> dict[str, Any]:
        """:meth:`predict` plus what a report shows.

        Returns ``{"target": Target, "ranking": frame (RANKING_COLUMNS), "explanations": frame
        (nearest source datasets of the top ``explain_top`` models per task), "features": {task:
        the target's window features (n_windows, p)}}``.
        """
        from timetic.data import Target, load_target

        if not hasattr(self, "learner_") or self._fitted_on_another_kb():
            self.fit()
        tgt = target if isinstance(target, Target) else load_target(target, **load_kwargs)
        self._check_frequency(tgt.freq)
        self._check_known_data(tgt)
        names = list(TASK_NAMES) if task == "all" else ([task] if isinstance(task, str) else list(dict.fromkeys(task)))
        if len(names) > 1:
            names = _feasible_tasks(tgt, names)
        candidates = self._candidates(models)
        twin = self._weight_free_twin(candidates)
        if twin is not None:
            res = twin.predict_detailed(tgt, task=names, models=candidates, n_windows=n_windows,
                                        explain_top=explain_top, progress=progress)
            for attr in ("learner_name_", "features_", "n_context_rows_", "unobserved_ranked_", "windows_used_"):
                setattr(self, attr, getattr(twin, attr))
            return res
        self.windows_used_ = {}
        self._warn_unobserved(candidates)
        self.zero_shot_used_ = self.zero_shot
        rankings, explanations, features = [], [], {}
        for name in names:
            t = Task.preset(name, tgt.freq)
            n_ds = getattr(self, "task_datasets_", {name: MIN_TASK_DATASETS}).get(name, 0)
            if n_ds == 0:
                warnings.warn(
                    f"the knowledge base has no {name}-task observations (it has {', '.join(self.tasks_)}); "
                    f"the {name} ranking and its intervals come from those tasks' results: add {name}-task "
                    "observations to the KB (benchmarks/build_kb.py --tasks) or pick another --task",
                    TimeticWarning,
                    stacklevel=2,
                )
            elif n_ds < MIN_TASK_DATASETS:
                warnings.warn(
                    f"the knowledge base has {name}-task observations on only {n_ds} dataset(s); the {name} "
                    "ranking leans on them and its intervals are rough: add more (benchmarks/build_kb.py "
                    "--tasks) or pick another --task",
                    TimeticWarning,
                    stacklevel=2,
                )
            rows = self.target_rows(tgt, t, candidates, n_windows=n_windows, progress=progress)
            ranking = self.rank(rows, candidates)
            rankings.append(ranking)
            explanations.append(self.explain(rows, ranking.get_column("model_id").head(explain_top).to_list()))
            features[name] = rows.features
        return {"target": tgt, "ranking": pl.concat(rankings), "explanations": pl.concat(explanations),
                "features": features}

    def target_rows(
        self, target: Any, task: Task, candidates: Sequence[str], n_windows: int = 128,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> TargetRows:
        """Sample the target's windows, compute features and (if used) zero-shot scores."""
        from timetic.characterize import dataset_features, feature_columns
        from timetic.windows import sample_windows

        n_paths = self.zero_shot_sample_paths
        if self.zero_shot and n_paths is not None and int(n_paths) < 1:  # before any window is scored
            raise TimeticInputError(f"zero_shot_sample_paths must be >= 1 (got {n_paths}); the default is 50")
        windows = sample_windows(target, task, n_windows=n_windows, seed=self.seed)
        n_zs = len(zero_shot_subset(len(windows.context), self.zero_shot_windows)) if self.zero_shot else 0
        self.windows_used_ = {**getattr(self, "windows_used_", {}),
                              task.name: {"sampled": len(windows.context), "zero_shot": n_zs}}  # info
        feats = dataset_features(target, task, windows=windows, seed=self.seed)
        feats = feats.select(feature_columns(feats))
        zs = None
        if self.zero_shot:
            zs = {}
            missing = getattr(self, "zero_shot_missing_", {})
            idx = zero_shot_subset(len(windows.context), self.zero_shot_windows)
            scored = windows.subset(idx)
            for k, model_id in enumerate(candidates):
                if progress is not None:
                    progress("zero-shot", k, len(candidates))
                if model_id not in missing:
                    full = np.full(len(windows.context), np.nan)
                    full[idx] = self._zero_shot(model_id, scored, task)
                    zs[model_id] = full
            if progress is not None:
                progress("zero-shot", len(candidates), len(candidates))
        probe = None
        if self.probe_steps is not None:
            probe = {}
            for k, model_id in enumerate(candidates):
                if progress is not None:
                    progress("probe", k, len(candidates))
                if model_id not in getattr(self, "zero_shot_missing_", {}):
                    probe[model_id] = self._probe(model_id, target, task)
            if progress is not None:
                progress("probe", len(candidates), len(candidates))
        return TargetRows(task=task.name, features=feats, zero_shot=zs, horizon=task.horizon,
                          naive=_naive_mase(windows, task),
                          no_weights=tuple(m for m in candidates if m in getattr(self, "zero_shot_missing_", {})),
                          probe=probe,
                          series_length=float(target.lengths.mean()), window_length=float(task.window_length))

    def _model_row(self, model_id: str) -> tuple[str, str, str | None]:
        """(source path, adapter, revision) of a KB model."""
        from timetic.kb import resolve_model_source

        kb = self._require_kb()
        row = kb.models().filter(pl.col("model_id") == model_id)
        source = resolve_model_source(kb, row.get_column("source")[0])
        revision = row.get_column("revision")[0] if "revision" in row.columns else None
        return source, row.get_column("adapter")[0], revision

    def _probe(self, model_id: str, target: Any, task: Task) -> float:
        """The learning-curve probe of one candidate on the target (see ``probe_steps``)."""
        from timetic.adapters import load_model
        from timetic.finetune import probe_curve
        from timetic.recipe import Recipe

        kb = self._require_kb()
        h = self.recipe_hash(kb)
        if not hasattr(self, "probe_recipe_"):
            import json

            text = kb.observations().filter(pl.col("recipe_hash") == h).get_column("recipe").drop_nulls()
            if text.len() == 0:
                raise TimeticInputError(f"the knowledge base stores no recipe JSON for recipe {h}; "
                                        "the probe needs it: drop --probe-steps")
            self.probe_recipe_ = Recipe.from_dict(json.loads(text[0]))
        recipe = self.probe_recipe_
        source, adapter, _ = self._model_row(model_id)
        v0, vk = probe_curve(load_model(source, adapter=adapter), target, task, recipe, self.probe_steps)
        if not (np.isfinite(v0) and np.isfinite(vk)) or v0 <= 0 or vk <= 0:
            return float("nan")
        return float(np.log(min(vk, v0) / v0))

    def _zero_shot(self, model_id: str, windows: Any, task: Task) -> np.ndarray:
        from timetic.adapters import adapter_sample_paths_kwarg, load_model
        from timetic.scoring import score_windows

        from timetic import cache

        source, adapter, revision = self._model_row(model_id)
        kwargs = {}
        n_paths = self.zero_shot_sample_paths  # checked once in target_rows
        if n_paths is not None:
            name = adapter_sample_paths_kwarg(adapter)  # imports no model library: a cache hit stays cheap
            if name is not None:
                kwargs[name] = int(n_paths)
        windows = windows.for_models()  # tiny or huge values: a power of ten (MASE does not change)
        key = cache.zero_shot_key(adapter, source, revision, task.horizon, task.seasonality,
                                  windows.context, windows.future, settings=kwargs)
        hit = cache.get(key)
        if hit is not None and hit.shape == (len(windows.context),):
            return hit
        model = load_model(source, adapter=adapter, **kwargs)
        q = model.forecast(windows.context, task.horizon)
        mase = score_windows(windows.context, windows.future, q, model.quantile_levels, task.seasonality)["mase"]
        cache.put(key, mase)
        return mase

    def _check_known_data(self, target: Any) -> None:
        """Warn when the target holds the series of a KB dataset (by content, whatever the names):
        the ranking then reads the KB's own observed results for them."""
        from timetic.kb import content_hash, series_hash

        known = self._require_kb().datasets()
        if not known.height:
            return
        hits = known.filter(pl.col("content_hash") == content_hash(target.frame))
        if "series_hash" in known.columns and not hits.height:
            hits = known.filter(pl.col("series_hash") == series_hash(target.frame))
        if hits.height:
            warnings.warn(
                f"the target holds the series of the knowledge base's dataset {hits.get_column('dataset_id')[0]!r}, "
                "whose fine-tuning results the KB has observed: the ranking leans on them; to see how timetic "
                "does on data it has not seen, leave that dataset out (as `timetic verify` does)",
                TimeticWarning,
                stacklevel=3,
            )

    def _check_frequency(self, freq: str) -> None:
        """Warn when no KB dataset has the target's kind of frequency (e.g. monthly)."""
        kb_freqs = self._require_kb().datasets().get_column("freq").drop_nulls().unique().to_list()
        fam = freq_family(freq)
        self.frequency_in_kb_ = not kb_freqs or fam in {freq_family(f) for f in kb_freqs}
        if not self.frequency_in_kb_:
            warnings.warn(
                f"the knowledge base has no dataset at the target's frequency {freq!r} (it has "
                f"{', '.join(sorted(kb_freqs))}); the ranking extrapolates from other frequencies; add "
                "datasets like it to the KB (timetic add-dataset) for a grounded answer",
                TimeticWarning,
                stacklevel=3,
            )

    def missing_weights(self, candidates: Sequence[str]) -> dict[str, str]:
        """model_id -> the path looked at, for candidates whose weights are not on this machine
        (e.g. a ``weights:`` model without ``TIMETIC_WEIGHTS_DIR``); they rank from the KB alone."""
        from timetic.kb import resolve_model_source

        kb = self._require_kb()
        rows = (kb.models().filter(pl.col("model_id").is_in(list(candidates)))
                .select("model_id", "source", "adapter"))
        out = {}
        for model_id, source, adapter in rows.iter_rows():
            path = resolve_model_source(kb, source)
            if not Path(path).exists() and not _bundled_weights(adapter, path):
                out[model_id] = path
        return out

    def _weight_free_twin(self, candidates: Sequence[str]) -> "TimeTic | None":
        """None when every candidate can run zero-shot (or zero-shot is off); else, with a warning,
        the same estimator without the zero-shot column, which ranks all candidates consistently
        (intervals, P(best) and regret stay joint). Sets ``zero_shot_used_`` and
        ``zero_shot_missing_``."""
        self.zero_shot_missing_ = self.missing_weights(candidates) if self.zero_shot else {}
        if not self.zero_shot_missing_:
            return None
        miss = self.zero_shot_missing_
        if self.method_ == "stack":  # it ranks them with the others, their zero-shot input imputed
            warnings.warn(
                f"no weights on this machine for {', '.join(sorted(miss))} (looked at {next(iter(miss.values()))}); "
                "they are ranked with their zero-shot scores imputed from the knowledge base (wider intervals); "
                "set TIMETIC_WEIGHTS_DIR to run them",
                TimeticWarning,
                stacklevel=3,
            )
            self.zero_shot_used_ = True
            return None
        warnings.warn(
            f"no weights on this machine for {', '.join(sorted(miss))} (looked at {next(iter(miss.values()))}); "
            "ranking every candidate without the zero-shot column; set TIMETIC_WEIGHTS_DIR, or leave them "
            "out with --models",
            TimeticWarning,
            stacklevel=3,
        )
        if getattr(self, "twin_", None) is None:
            params = {k: getattr(self, k) for k in inspect.signature(type(self).__init__).parameters if k != "self"}
            self.twin_ = type(self)(**{**params, "zero_shot": False}).fit()
        self.zero_shot_used_ = False
        return self.twin_

    def _candidates(self, models: Sequence[str] | None) -> list[str]:
        """The models to rank: by default every model with KB observations plus, for the ``stack``
        formulation, every model the KB has only a profile of (:attr:`unobserved_models_`)."""
        known = list(self.models_) + list(getattr(self, "unobserved_models_", []))
        if models is None:
            return known
        if isinstance(models, str):
            models = [m for m in models.split(",") if m]
        models = list(dict.fromkeys(models))  # each once, in the order given
        if not models:
            raise TimeticInputError(f"the list of candidate models is empty; name some of: {', '.join(known)}")
        unknown = [m for m in models if m not in known]
        if unknown:
            raise TimeticInputError(
                f"unknown model(s) {', '.join(unknown)}; choose from the knowledge base: {', '.join(known)}"
            )
        return list(models)

    def _warn_unobserved(self, candidates: Sequence[str]) -> None:
        new = [m for m in candidates if m in getattr(self, "unobserved_models_", [])]
        self.unobserved_ranked_ = new
        if new:
            lenders = self.lenders(new)
            how = ("; ".join(f"{m} from {', '.join(lenders[m])}" if lenders[m] else f"{m} from none (its family is not in "
                             "the KB: placed by its zero-shot score where it runs, else at the mean)" for m in new) if lenders is not None
                   else "from the models nearest their entropy profile")
            warnings.warn(
                f"no fine-tuning observations in the knowledge base for {', '.join(new)}: ranked as unseen "
                f"models (priors borrowed: {how}; plus their zero-shot scores "
                "where they run; intervals from the other models' errors; how well this works: "
                "benchmarks/RESULTS.md, scenarios unseen-model and both-unseen); "
                "fine-tune them on a few KB datasets (timetic finetune --kb) or run timetic verify",
                TimeticWarning,
                stacklevel=3,
            )

    def lenders(self, models: Sequence[str]) -> dict[str, list[str]] | None:
        """``stack``: model id -> the KB models each of ``models`` (new to the KB) borrows its priors
        from, nearest in entropy profile first (empty: none); None for the window formulation."""
        priors = getattr(getattr(self, "learner_", None), "priors_", None)
        if getattr(self, "method_", None) != "stack" or priors is None:
            return None
        return {m: priors.lenders(m) for m in models}

    def rank(self, rows: TargetRows, candidates: Sequence[str]) -> pl.DataFrame:
        """Predict every candidate on the target rows and rank (see the module docstring)."""
        if self.method_ == "stack":
            return self._rank_stack(rows, candidates)
        kb_models = self._require_kb().models()
        prof = model_matrix(kb_models, self.profile or "knn")
        n = rows.features.height
        missing = [c for c in self.features_ if c not in rows.features.columns]
        if missing:
            raise TimeticInputError(
                f"target features lack {', '.join(missing[:3])}; compute them with the knowledge base's backend"
            )
        blocks, groups, log_zs_rows, keep_models = [], [], [], []
        for g, model_id in enumerate(candidates):
            feats = rows.features.select(self.features_).to_numpy()
            ok = np.ones(n, dtype=bool)
            log_zs = None
            if rows.zero_shot is not None:
                zs = rows.zero_shot[model_id]
                ok = np.isfinite(zs) & (zs > 0)
                log_zs = np.log(np.where(ok, zs, 1.0))
            if not ok.any():
                warnings.warn(f"no scorable target window for {model_id}; it is left out", TimeticWarning)
                continue
            parts = [feats[ok]]
            if self.profile is not None:
                p = prof.filter(pl.col("model_id") == model_id).drop("model_id").to_numpy()
                parts.append(np.repeat(p, ok.sum(), axis=0))
            tasks = task_frame(pl.Series([rows.task] * int(ok.sum())), pl.Series([rows.horizon] * int(ok.sum())))
            parts.append(tasks.to_numpy())
            if self.zero_shot:
                k = int(ok.sum())
                parts += self._zs_parts(log_zs[ok], np.full(k, np.log(np.exp(log_zs[ok]).mean())))
            blocks.append(np.hstack(parts))
            groups.append(np.full(int(ok.sum()), len(keep_models)))
            log_zs_rows.append(log_zs[ok] if log_zs is not None else None)
            keep_models.append(model_id)
        if not keep_models:
            raise TimeticInputError("no candidate model could be scored on the target's windows; check the target")
        X = np.vstack(blocks)
        grp = np.concatenate(groups)
        G = len(keep_models)
        samples = self.learner_.sample_group_means(X, grp, n_samples=self.n_samples, seed=self.seed)  # (S, G) in y
        if self.transform_ == "log_ratio":
            mean_log_zs = np.array([lz.mean() for lz in log_zs_rows])
            log_ft = samples + mean_log_zs[None, :]
        else:
            mean_log_zs = (
                np.array([lz.mean() for lz in log_zs_rows]) if rows.zero_shot is not None else None
            )
            log_ft = samples
        if self.score == "geomean":
            scores = np.exp(log_ft)  # (S, G) geometric-mean fine-tuned MASE
            point = np.exp(np.median(log_ft, axis=0))
        elif self.score == "mean":
            # per-window lognormal means, averaged: the expected mean MASE over the target's windows;
            # its uncertainty: the joint samples of the group's mean log score around their centre.
            pred = self.learner_.predict(X)
            log_w = pred.mean + (np.concatenate(log_zs_rows) if self.transform_ == "log_ratio" else 0.0)
            w_mase = np.exp(log_w + 0.5 * pred.std**2)
            point = np.bincount(grp, weights=w_mase, minlength=G) / np.bincount(grp, minlength=G)
            centre = np.bincount(grp, weights=pred.mean, minlength=G) / np.bincount(grp, minlength=G)
            scores = point[None, :] * np.exp(samples - centre[None, :])
            log_ft = np.log(scores)
        else:
            raise TimeticInputError(f"unknown score {self.score!r}; use 'mean' or 'geomean'")
        lower, upper = np.quantile(scores, [0.05, 0.95], axis=0)
        best = scores.argmin(axis=1)
        p_best = np.bincount(best, minlength=G) / scores.shape[0]
        regret = (scores / scores.min(axis=1, keepdims=True) - 1.0).mean(axis=0)
        if mean_log_zs is not None:
            if self.score == "mean":  # same averaging as the predicted score
                zs_mase = np.array([np.exp(lz).mean() for lz in log_zs_rows])
            else:
                zs_mase = np.exp(mean_log_zs)
            gain = 1.0 - point / zs_mase
            p_improve = (scores < zs_mase[None, :]).mean(axis=0)
        else:
            zs_mase = gain = p_improve = np.full(G, np.nan)
        return self._ranking_frame(
            rows, keep_models, scores, point, lower, upper, zs_mase, gain, p_improve,
            p_improve < 0.5 if mean_log_zs is not None else [None] * G, p_best, regret,
            np.bincount(grp, minlength=G),
        )

    def _rank_stack(self, rows: TargetRows, candidates: Sequence[str]) -> pl.DataFrame:
        """:meth:`rank` of the ``stack`` formulation (:mod:`timetic.estimate.stack`)."""
        from timetic.estimate.cells import target_cell

        ranker = self.learner_
        names = [c for c in self.features_ if c in rows.features.columns]
        if not names:
            raise TimeticInputError(
                "the target's features share no column with the knowledge base's; compute them with its backend"
            )
        cands = list(candidates)
        feats, log_zs = target_cell(rows.features, names, rows.zero_shot if self.zero_shot else None, cands)
        feats = np.array([feats[names.index(c)] if c in names else np.nan for c in self.features_])
        impute = np.array([c in rows.no_weights for c in cands]) if log_zs is not None else None
        log_probe = None
        if getattr(ranker, "probe", False):
            log_probe = np.array([(rows.probe or {}).get(c, np.nan) for c in cands], dtype=float)
        log_len = (np.log10(rows.series_length / rows.window_length)
                   if rows.series_length and rows.window_length else None)
        # centred over all the KB's models, so that --models does not move a candidate's prediction
        pred, ok = ranker.predict_in_kb(rows.task, feats, cands, log_zs, impute=impute, log_probe=log_probe,
                                        log_len=log_len)
        pri = ranker.priors_(rows.task, feats, cands)
        for m in (c for c, o in zip(cands, ok) if not o):
            warnings.warn(f"no scorable target window for {m}; it is left out", TimeticWarning)
        if not ok.any():
            raise TimeticInputError("no candidate model could be scored on the target's windows; check the target")
        keep = [c for c, o in zip(cands, ok) if o]
        G = len(keep)
        point_log = pred[ok]
        scale = ranker.out_of_domain(rows.task, pri.nearest)
        self.out_of_domain_ = getattr(self, "out_of_domain_", {})
        self.out_of_domain_[rows.task] = scale
        if scale > 1.0:
            warnings.warn(
                f"task {rows.task}: the target lies outside the knowledge base (nearest source dataset "
                f"{pri.nearest_id} at distance {pri.nearest:.2f}, beyond every leave-one-dataset-out "
                f"distance); intervals widened x{scale:.1f}; treat the ranking as a guess, or add similar "
                "datasets to the KB (timetic add-dataset)",
                TimeticWarning,
                stacklevel=3,
            )
        self.neighbours_ = getattr(self, "neighbours_", {})
        self.neighbours_[rows.task] = list(zip(pri.neighbours.tolist(), pri.distance.tolist()))
        imputed = None if impute is None else impute[ok]
        R = ranker.residual_matrix(rows.task, keep, imputed=imputed) * scale
        if R.shape[0] == 0:  # a KB of one dataset: no out-of-fold residual to calibrate with
            lo_r = hi_r = np.full(G, np.nan)
            S = np.zeros((1, G))
        else:
            pools = ranker.new_model_pools(rows.task, keep, pri.nearest)  # models new to the KB
            pools = {j: r * scale for j, r in pools.items()}
            lo_r, hi_r = ranker.intervals(R, pools=pools)
            S = ranker.joint_residuals(R, self.n_samples, self.seed, pools=pools)
        scores = np.exp(point_log[None, :] + S)  # (S, G) joint samples of the mean fine-tuned MASE
        point = np.exp(point_log)
        best = scores.argmin(axis=1)
        p_best = np.bincount(best, minlength=G) / scores.shape[0]
        if R.shape[0] > 0:
            p_best = ranker.calibrate_p_best(p_best)
        regret = (scores / scores.min(axis=1, keepdims=True) - 1.0).mean(axis=0)
        if log_zs is not None:
            # gain and P(fine-tuning helps) from the gain model (see timetic.estimate.stack)
            zs_mase = np.exp(log_zs[ok])  # NaN for imputed candidates
            zs_rank = ranker.zs_ranks(rows.task, feats, cands, log_zs) if getattr(ranker, "zs_rank", False) else None
            g_point = ranker.predict_gain(pri, log_probe, log_len, log_zs, zs_rank)[ok]
            gain = 1.0 - np.exp(g_point)
            Rg = ranker.residual_matrix(rows.task, keep, gain=True) * scale
            gain_X = ranker.gain_inputs(pri, log_probe, log_len, log_zs, zs_rank)[ok]
            p_improve = ranker.p_helps(Rg, g_point, gain_X) if Rg.shape[0] else np.full(G, np.nan)
            negative = [None if imputed[j] else bool(p_improve[j] < 0.5) for j in range(G)]
            gain = np.where(imputed, np.nan, gain)
            p_improve = np.where(imputed, np.nan, p_improve)
            n_win = [int(np.isfinite(np.asarray(rows.zero_shot.get(m, []), dtype=float)).sum()) for m in keep]
        else:
            zs_mase = gain = p_improve = np.full(G, np.nan)
            negative = [None] * G
            n_win = [rows.features.height] * G
        return self._ranking_frame(
            rows, keep, scores, point, np.exp(point_log + lo_r), np.exp(point_log + hi_r), zs_mase, gain,
            p_improve, negative, p_best, regret, n_win,
        )

    def _ranking_frame(self, rows: TargetRows, models: list[str], scores: np.ndarray, point: np.ndarray,
                       lower: Any, upper: Any, zs_mase: Any, gain: Any, p_improve: Any, negative: Any,
                       p_best: np.ndarray, regret: np.ndarray, n_windows: Any) -> pl.DataFrame:
        """The :data:`RANKING_COLUMNS` frame of one task, best first; ``scores`` (S, G) joint samples."""
        G = len(models)
        adapters = dict(self._require_kb().models().select("model_id", "adapter").iter_rows())
        naive_mase, p_naive = _naive_columns(rows, scores)
        df = pl.DataFrame(
            {
                "task": [rows.task] * G,
                "model_id": list(models),
                "adapter": [adapters.get(m, "") for m in models],
                "predicted_mase": point,
                "lower_90": lower,
                "upper_90": upper,
                "zero_shot_mase": zs_mase,
                "predicted_gain": gain,
                "p_improve": p_improve,
                "negative_transfer": negative,
                "p_best": p_best,
                "expected_regret": regret,
                "naive_mase": naive_mase,
                "p_beats_naive": p_naive,
                "n_windows": np.asarray(n_windows, dtype=np.int64),
            },
            schema_overrides={"negative_transfer": pl.Boolean, "naive_mase": pl.Float64, "p_beats_naive": pl.Float64},
        )
        df = df.sort("predicted_mase", maintain_order=True).with_columns(
            pl.Series("tied_with_above", ties(scores, point)))
        df = df.sort("predicted_mase").with_columns(pl.int_range(1, G + 1, dtype=pl.Int64).alias("rank"))
        df = df.with_columns(
            pl.col(["zero_shot_mase", "predicted_gain", "p_improve", "lower_90", "upper_90"]).fill_nan(None)
        )
        return df.select(RANKING_COLUMNS)

    # -- explanations --------------------------------------------------------------------------
    def explain(self, rows: TargetRows, models: Sequence[str], k: int = 3) -> pl.DataFrame:
        """For each model: the k nearest source datasets (same task) in meta-feature space (all
        window features, standardised over the source datasets' means), with their observed
        fine-tuned and zero-shot MASE (geometric means)."""
        src = self.source_means_.filter(pl.col("task") == rows.task)
        if src.height == 0:
            src = self.source_means_
        cols = [c for c in self.explain_features_ if c in rows.features.columns]
        A = src.select(cols).to_numpy()
        mu, sd = A.mean(axis=0), A.std(axis=0)
        sd = np.where(sd > 0, sd, 1.0)
        t = rows.features.select(cols).to_numpy().mean(axis=0)
        dist = np.sqrt((((A - mu) / sd - (t - mu) / sd) ** 2).mean(axis=1))
        near = src.select("dataset_id", "task").with_columns(pl.Series("distance", dist)).sort("distance").head(k)
        out = (
            near.join(pl.DataFrame({"model_id": list(models)}), how="cross")
            .join(self.source_scores_, on=["dataset_id", "task", "model_id"], how="left")
            .sort("model_id", "distance")
        )
        return out.select("model_id", "dataset_id", "task", "distance", "observed_ft_mase", "observed_zs_mase")

    def _require_kb(self) -> Any:
        if self.kb is None:
            raise TimeticInputError("no knowledge base; use TimeTic.from_kb(PATH) or pass --kb DIR")
        return self.kb


#: attributes that predict (not fit) sets; the fit cache leaves them out.
_PREDICT_STATE = ("twin_", "zero_shot_missing_", "zero_shot_used_", "probe_recipe_", "unobserved_ranked_", "windows_used_",
                  "frequency_in_kb_")

#: below this many KB datasets with observations for a task, predict warns that its ranking is thin.
MIN_TASK_DATASETS = 3


def zero_shot_subset(n: int, k: int | None) -> np.ndarray:
    """Indices of the ``k`` of ``n`` sampled windows that the zero-shot pass scores: evenly
    spread over the sample (which is ordered by series, then time), so every series keeps its
    share. ``k=None`` or ``k >= n``: all."""
    if k is None or k >= n:
        return np.arange(n)
    if k < 1:
        raise TimeticInputError(f"zero_shot_windows must be >= 1; got {k}")
    return np.unique(np.linspace(0, n - 1, k).round().astype(int))


def _naive_mase(windows: Any, task: Task) -> np.ndarray:
    """(n_windows,) MASE of the seasonal-naive forecast on the target's windows."""
    from timetic.scoring import score_windows, seasonal_naive

    levels = (0.1, 0.5, 0.9)
    q = seasonal_naive(windows.context, task.horizon, task.seasonality, len(levels))
    return score_windows(windows.context, windows.future, q, levels, task.seasonality)["mase"]


def _bundled_weights(adapter: str, source: str) -> bool:
    """Whether ``adapter`` finds the weights of ``source`` without a local path (weights bundled
    with its package); False when the family cannot be imported."""
    from timetic.adapters import get_adapter

    try:
        return bool(get_adapter(adapter).weights_available(source))
    except Exception:  # noqa: BLE001 - a family that does not import has no weights here
        return False


def _naive_columns(rows: TargetRows, scores: np.ndarray) -> tuple[list, list]:
    """(naive_mase, p_beats_naive) columns: the target's mean seasonal-naive MASE and, per model,
    the share of joint samples (S, G) of its mean fine-tuned MASE below it."""
    G = scores.shape[1]
    nv = None if rows.naive is None else np.asarray(rows.naive, dtype=np.float64)
    if nv is None or not np.isfinite(nv).any():
        return [None] * G, [None] * G
    m = float(np.nanmean(nv))
    return [m] * G, list((scores < m).mean(axis=0))


def freq_family(freq: str) -> str:
    """The kind of a pandas frequency string, multiples and anchors dropped: ``10min`` -> ``min``,
    ``W-SUN`` -> ``W``, ``MS`` / ``ME`` / ``M`` -> ``M``, ``QS-OCT`` -> ``Q``, ``YS`` / ``A`` -> ``Y``."""
    base = str(freq).lstrip("0123456789").split("-")[0]
    alias = {"H": "h", "T": "min", "S": "s", "L": "ms", "MS": "M", "ME": "M", "BM": "M", "BMS": "M", "QS": "Q",
             "QE": "Q", "BQ": "Q", "Y": "Y", "YS": "Y", "YE": "Y", "A": "Y", "AS": "Y", "BA": "Y", "BY": "Y"}
    return alias.get(base, base)


def _cell_log_zs(ctx: ContextTable) -> np.ndarray:
    """Per row, log of the mean zero-shot MASE of its (dataset, task, model) cell; shape (n,)."""
    return (
        ctx.meta.select(pl.col("zs_mase").mean().over("dataset_id", "task", "model_id").log())
        .to_series()
        .to_numpy()
    )


def _feasible_tasks(target: Any, names: list[str]) -> list[str]:
    """The tasks of ``names`` that some series of ``target`` is long enough for; a warning names
    the others. Raises the first task's error when none is."""
    keep, skipped, first_error = [], [], None
    for name in names:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", TimeticWarning)  # dropped series: warned when ranked
                target.for_task(Task.preset(name, target.freq))
        except TimeticInputError as err:
            skipped.append(name)
            first_error = first_error or err
            continue
        keep.append(name)
    if not keep:
        raise first_error
    if skipped:
        warnings.warn(
            f"every series is too short for the {' and '.join(skipped)} task{'s' if len(skipped) > 1 else ''}; "
            f"ranked {', '.join(keep)} only (longer series would add {'them' if len(skipped) > 1 else 'it'})",
            TimeticWarning,
            stacklevel=3,
        )
    return keep
