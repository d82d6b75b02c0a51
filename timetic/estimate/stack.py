"""The ``stack`` formulation: stack the cheap rankings, learn how much to trust each, calibrate.

For a target cell and candidate models g, the predicted log mean fine-tuned MASE is

    log ft_g = level + rel_g,
    rel_g = w_zs * zc_g + w_lb * leaderboard_g + w_knn * knn_g       (no intercept)

with ``zc_g`` the candidate's zero-shot input (left out in the weight-free mode) and the priors of
:mod:`timetic.estimate.priors`, all centred over the KB's models (:meth:`StackedRanker.predict_in_kb`;
the kNN prior's neighbours chosen over the first ``components`` principal components of the
meta-features, their number chosen on the source cells), plus, where the KB is large enough, the
``cross`` prior with zero-shot scores and the ``meta`` prior without them (a ridge regression of
the models' scores on the target's zero-shot ranks or on its meta-features' principal components;
``w_cross * cross_g`` or ``w_meta * meta_g``). By default four such
configurations are averaged (``combine="mean"``): with and without the models' centred fine-tuning
gains (``gain_leaderboard``, ``gain_knn``) as two more inputs, and with priors on the log and on
the rank scale (the zero-shot input on the same scale, ``zs_scale="match"``: centred log zero-shot
MASE, or its centred rank among the candidates); ``combine="select"`` keeps the one whose
out-of-fold predictions rank the KB's cells best.

The weights (``weights="spearman"``, default) are non-negative, sum to one, and are the point of a
simplex grid (step 0.1) whose weighted sum ranks the source cells best: the mean within-cell
Spearman ρ against the observed fine-tuned scores, the metric the ranking is judged by. One
least-squares scale then maps the weighted sum to centred log scores. A task (horizon) with enough
source cells (``task_weights``, default 8) gets its own weights: the cheap rankings are not equally
good at every horizon (on KB v2 kNN ranks the medium task far better than the short one). (``weights="ridge"`` fits
least squares on the log scores instead; it chases the magnitudes -- a model whose zero-shot score
is 10x worse is rarely 10x worse fine-tuned -- and ranked worse on KB v2: ρ 0.497 against 0.519,
below the zero-shot ranking on the short task; benchmarks/RESULTS.md, ablation.) The weights are fitted on *out-of-fold* priors (each source dataset's priors come
from the other source datasets, as a target's will), so they say how much each input is worth on
datasets the priors have not seen. The level is the mean candidate log zero-shot MASE plus the
nearest source cells' mean log(fine-tuned / zero-shot) (weight-free: their mean log fine-tuned
MASE).

With zero-shot scores, a second, *gain* model answers "does fine-tuning help this model here?":
log(fine-tuned / zero-shot)_g = b0 + b1 * gain_leaderboard_g + b2 * gain_knn_g + b3 * log_len
+ b4 * zs_rank_g (ridge with an intercept on out-of-fold priors; ``log_len``: log10 of the mean
series length over the task's window length, ``zs_rank``: the candidate's zero-shot rank among the
KB's models, -0.5 best .. 0.5 worst: the models best at zero-shot on a dataset gain least there).
The ranking model's within-cell view is regularised toward the mean (its zero-shot weight is below
1), which biases the gain of the models with the best zero-shot scores; the gain model has no such
bias, so ``predicted_gain`` comes from it, and P(fine-tuning helps) from a logistic regression on
the same inputs, fitted on the source cells' out-of-fold inputs (``helps="logistic"``; or, with
``helps="residuals"``, from the gain model's out-of-fold residuals, recalibrated).

A candidate whose weights are absent (no zero-shot score) still ranks with the others: its
zero-shot input is imputed from the nearest source cells (its mean relative log zero-shot MASE
there), and its residuals add the zero-shot weight times the out-of-fold imputation error of each
source cell, in the input's units (prediction error = the ranking residual + w_zs * (true -
imputed input)), so its interval is as wide as what it does not know.

With a *learning-curve probe* (``probe=True``; ``TimeTic(probe_steps=K)``), every candidate has
also been fine-tuned for the recipe's first K steps on the target, and ``log_probe_g`` =
log(min(v_K, v_0) / v_0), its validation MASE after K steps relative to before, joins every
configuration's inputs (centred) and the gain model's; the source cells read the same quantity
from their runs' validation curves (:mod:`timetic.estimate.cells`), so only cells whose runs
recorded one train the ranker.

Uncertainty (split conformal on leave-one-dataset-out residuals): every source cell's residual
vector (observed minus predicted log score, per model, its priors computed without its dataset)
goes into a pool per task. Intervals are the pool's finite-sample-corrected quantiles (the model's
own residuals when it has at least ``min_model_residuals``, else all models'); joint samples draw
whole residual vectors of one source cell, so models that err together stay correlated in P(best),
regret and P(fine-tuning helps). A target farther from the sources than any source was from the
others (leave-one-dataset-out nearest distance) gets its residuals scaled up by the ratio.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np

from timetic.estimate.cells import Cells
from timetic.estimate.priors import Priors, PriorValues, _quiet, average_ranks, profile_distances


class StackedRanker:
    """Fit on cells, predict log mean fine-tuned MASE of candidates for a target cell.

    Args:
        zero_shot: use the candidates' zero-shot scores (needs model weights at prediction time).
        k: nearest source cells of the kNN prior; a tuple of candidates is combined like the
            other configurations (``combine``); everything reads only the cells ``fit`` is given.
        alpha: ridge penalty.
        min_model_residuals: a model's own residuals make its interval when it has this many.
        inputs: which of :attr:`INPUTS` the ridge reads: a tuple of names, ``None`` (the
            :attr:`DEFAULT_INPUTS` that apply) or a list of such tuples (configurations, combined
            with those of ``k`` and ``scale``); ``"auto"`` = :attr:`AUTO_INPUTS`. The level does
            not depend on it.
        scale: the priors' relative scores, ``"log"`` or ``"rank"`` (:mod:`timetic.estimate.priors`),
            or ``"auto"``: both, like ``inputs``.
        combine: with several configurations (``k``, ``inputs``, ``scale`` candidates), ``"mean"``
            (default) averages their predictions (and residuals); ``"select"`` keeps the one whose
            out-of-fold predictions rank the source cells best. On 14 datasets the selection is
            noisy (benchmarks/RESULTS*.md, ablation ``stack-combine=select``); averaging is not.
        probe: read the learning-curve probe (module docstring): every configuration and the gain
            model get it as an input; cells need ``log_probe``.
        length: the gain model also reads log10(mean series length / the task's window length)
            (cells' ``log_len``; a target without one gets the source cells' mean): fine-tuning
            helps less where series are short (benchmarks/results/helps_flag.md: helped in 44 %
            of the cells of the dataset under 100 points a series, 65 % up to 316, 75-85 % above).
            On KB v2 (unseen dataset, 1222 held-out cells) the Brier score of P(fine-tuning helps)
            is 0.1503 with it and 0.1547 without (base rate 0.1563; benchmarks/helps_flag.py
            --stack). Length over window length rather than length alone: on 985 cells of the
            then partial KB, 0.1565 against 0.1581.
        zs_rank: the gain model also reads each candidate's zero-shot rank (scaled to -0.5 best ..
            0.5 worst; 0 for a candidate without a zero-shot score): among a source cell's models
            in fit, among all the KB's models at prediction time (:meth:`zs_ranks`). On KB v2
            fine-tuning helped in 64 % of the cells of a dataset's best-quarter zero-shot models
            and in 91 % of its worst quarter's; the log score centred over the candidates did not
            tell them apart as well (benchmarks/results/helps_flag.md).
        helps: P(fine-tuning helps) from a logistic regression on the gain model's inputs, fitted
            on the source cells' out-of-fold inputs (``"logistic"``, default), or from the share of
            the gain model's out-of-fold residuals that put the predicted gain below zero,
            recalibrated by a logistic fit (``"residuals"``). Results on KB v2: the README and
            benchmarks/results/helps_flag.md (``--stack``).
        zs_scale: the zero-shot (and probe) inputs as centred log scores (``"log"``), as centred
            ranks among the candidates (``"rank"``), or on each configuration's prior scale
            (``"match"``). Ranks are robust to the zero-shot outliers that fine-tuning repairs
            (a model 10x worse zero-shot is rarely 10x worse fine-tuned).
        weights: how the inputs are weighed: ``"ridge"`` (least squares on the centred log
            scores) or ``"spearman"``: non-negative weights summing to one, on a simplex grid of
            step 0.1, that maximise the mean out-of-fold Spearman ρ over the source cells (the
            metric the ranking is judged by), then one least-squares scale so that the weighted
            sum predicts the centred log score.
        profile_neighbours: how many source models, nearest in entropy-profile space, a model
            without source cells (new to the KB) borrows its priors from (:mod:`timetic.estimate.priors`);
            ``"auto"`` (default) picks one of :attr:`PROFILE_NEIGHBOURS` in ``fit`` by leave-one-model-out
            on the source cells alone (:meth:`_choose_profile_neighbours`), an int fixes it.
        new_model_weights: when ``fit`` is given profiles of models without source cells (new to
            the KB), weigh their inputs with weights fitted for that situation: on the source
            cells with every model's priors borrowed from its profile neighbours, as a new
            model's are (leave one model out), its own zero-shot score kept. The weights of the
            known models stay as they are. The borrowed rows leave each source cell's own dataset
            out, so these weights fit a target that is not one of the KB's datasets. ``"auto"``
            (default): with zero-shot scores, for a target farther from every source cell than
            the nearest pair of KB datasets (leave-one-dataset-out, the task's smallest
            ``oof_distance_``); the known models' weights for a target that is one of the KB's
            datasets and without zero-shot scores. ``True``: always; ``False``: never. On KB v2
            ``True`` raises both-unseen ρ from 0.311 to 0.340 but lowers unseen-model ρ (the
            target's dataset in the KB) from 0.512 to 0.461, and lowers the weight-free ρ in both
            scenarios (benchmarks/RESULTS.md, rows ``*new-model-weights*``).
        components: the kNN prior's nearest source cells are chosen over this many principal
            components of the standardised meta-features (:class:`timetic.estimate.priors.Priors`;
            the gains, zero-shot imputation, level and out-of-domain check keep every feature),
            ``None`` over all of them, or ``"auto"`` (default): one of :attr:`COMPONENTS`, chosen in
            ``fit`` by leave-one-dataset-out on the source cells alone (:meth:`_choose_components`).
        cross_alpha: the ridge penalty of the ``cross`` prior (:meth:`Priors.cross
            <timetic.estimate.priors.Priors.cross>`: every model's relative fine-tuned score
            predicted from all the KB models' zero-shot ranks on the target, its log length and the
            task), which ``inputs="auto"`` reads with zero-shot scores; ``"auto"`` (default): one of
            :attr:`CROSS_ALPHAS`, chosen in ``fit`` by leave-one-dataset-out on the source cells alone
            (:meth:`_choose_cross_alpha`).
        meta: read the ``meta`` prior (:meth:`Priors.meta <timetic.estimate.priors.Priors.meta>`:
            every model's relative fine-tuned score regressed on a few principal components of the
            meta-features, the log length and the task): ``"auto"`` (default) without zero-shot
            scores only (with them the ``cross`` prior reads the dataset better), ``True``
            always, ``False`` never. Its number of components and ridge penalty are chosen in
            ``fit`` among :attr:`META_COMPONENTS` x :attr:`META_ALPHAS` by leave-one-dataset-out on
            the source cells alone (:meth:`_choose_meta`); the input sets of ``inputs="auto"`` then
            read it.
        other_family_neighbours: with ``families`` given to ``fit``, how many nearest KB models of
            other families a new model whose family has no KB model borrows its priors from (a new
            model of a known family borrows from its siblings alone); 0: none, its priors are the
            mean. ``"auto"`` (default): one of :attr:`OTHER_FAMILY_NEIGHBOURS`, chosen in ``fit``
            by leave-one-family-out on the source cells alone (:meth:`_choose_other_family_neighbours`).
            The weights for new models (``new_model_weights``) are fitted for each situation that
            the new models are in, with every model's priors borrowed as in that situation.
        task_weights: with ``weights="spearman"``, a task (horizon) whose source cells number at
            least this many gets its own weights (the cheap rankings are not equally good at every
            horizon: kNN ranks the medium task better than the short one); the others, and
            ``None``, use the weights fitted on all cells.
    """

    INPUTS = ("zero_shot", "leaderboard", "knn", "gain_leaderboard", "gain_knn", "probe", "cross", "meta")
    DEFAULT_INPUTS = ("zero_shot", "leaderboard", "knn")
    #: ``inputs="auto"``: the three cheap rankings, or those plus the models' fine-tuning gains;
    #: each with the ``cross`` prior (:mod:`timetic.estimate.priors`) where zero-shot scores are read
    #: and the ``meta`` prior where ``meta`` says.
    AUTO_INPUTS = [DEFAULT_INPUTS + ("cross", "meta"), INPUTS[:5] + ("cross", "meta")]
    #: ``profile_neighbours="auto"`` chooses among these.
    PROFILE_NEIGHBOURS = (1, 2, 3)
    #: ``components="auto"`` chooses among these (``None``: every meta-feature).
    COMPONENTS = (2, 3, 5, 8, None)
    #: ``cross_alpha="auto"`` chooses among these.
    CROSS_ALPHAS = (1.0, 2.0, 5.0, 10.0, 20.0)
    #: the ``meta`` prior's number of principal components and ridge penalty are chosen among these.
    META_COMPONENTS = (2, 3, 5, 8)
    META_ALPHAS = (2.0, 5.0, 20.0)

    def __init__(self, zero_shot: bool = True, k: int | tuple[int, ...] = 5, alpha: float = 1.0, min_model_residuals: int = 10,
                 inputs: tuple[str, ...] | list | str | None = "auto", scale: str = "auto",
                 combine: str = "mean", probe: bool = False, zs_scale: str = "match", weights: str = "spearman",
                 task_weights: int | None = 8, length: bool = True, profile_neighbours: int | str = "auto",
                 new_model_weights: bool | str = "auto", zs_rank: bool = True, helps: str = "logistic",
                 components: int | str | None = "auto", cross_alpha: float | str = "auto",
                 meta: bool | str = "auto", other_family_neighbours: int | str = "auto"):
        if helps not in ("logistic", "residuals"):
            raise ValueError(f"unknown helps {helps!r}; use 'logistic' or 'residuals'")
        if meta not in (True, False, "auto"):
            raise ValueError(f"unknown meta {meta!r}; use True, False or 'auto'")
        if new_model_weights not in (True, False, "auto"):
            raise ValueError(f"unknown new_model_weights {new_model_weights!r}; use True, False or 'auto'")
        self.zero_shot = zero_shot
        self.other_family_neighbours = other_family_neighbours
        self.components = components
        self.cross_alpha = cross_alpha
        self.meta = meta
        self.zs_rank = zs_rank
        self.helps = helps
        self.new_model_weights = new_model_weights
        self.profile_neighbours = profile_neighbours
        self.length = length
        self.weights = weights
        self.task_weights = task_weights
        self.zs_scale = zs_scale
        self.probe = probe
        self.k = k
        self.alpha = alpha
        self.min_model_residuals = min_model_residuals
        self.inputs = inputs
        self.scale = scale
        self.combine = combine

    # -- fit -------------------------------------------------------------------------------------
    def fit(self, cells: Cells, profiles: dict[str, np.ndarray] | None = None,
            families: dict[str, str] | None = None) -> "StackedRanker":
        """Fit on ``cells``; ``profiles``: model id -> entropy profile, for every model that may be
        a candidate (models without cells are new to the KB); ``families``: model id -> family
        (which models are siblings, e.g. the adapter; None: unknown), see ``other_family_neighbours``."""
        ks = (self.k,) if np.isscalar(self.k) else tuple(self.k)
        sets = (self.AUTO_INPUTS if isinstance(self.inputs, str) and self.inputs == "auto"
                else self.inputs if isinstance(self.inputs, list) else [self.inputs])
        scales = ("log", "rank") if self.scale == "auto" else (self.scale,)
        known = np.array([]) if cells.log_len is None else cells.log_len[np.isfinite(cells.log_len)]
        self.use_length_ = bool(self.length and known.size)
        self.len_fill_ = float(known.mean()) if known.size else float("nan")
        self.families_ = dict(families or {})
        self.profile_neighbours_, self.profile_neighbour_scores_ = self._choose_profile_neighbours(cells, profiles)
        self.other_family_neighbours_, self.other_family_neighbour_scores_ = self._choose_other_family_neighbours(
            cells, profiles)
        self.components_, self.component_scores_ = self._choose_components(cells, int(ks[0]))
        self.cross_alpha_, self.cross_alpha_scores_ = self._choose_cross_alpha(cells)
        self.meta_, self.meta_scores_ = self._choose_meta(cells)
        self.new_models_ = sorted(m for m in (profiles or {}) if m not in set(cells.models))
        # per situation of a new model ("kin": its family has KB models, or families are unknown;
        # "other": it has none), per KB model: the neighbours it borrows from when treated as such
        # a new model (new_model_weights)
        self.borrow_neighbours_ = {}
        if self._new_weights_on() and self.new_models_:
            for situation in sorted({self.situation(m, cells.models) for m in self.new_models_}):
                order = self._profile_order(cells, profiles, situation)
                n = self.profile_neighbours_ if situation == "kin" else self.other_family_neighbours_
                if order is not None:
                    self.borrow_neighbours_[situation] = [None if o is None else o[:n] for o in order]
        self.choice_scores_ = {}
        states = []
        self._oof_priors = {}  # (k, scale, cell, cross) -> out-of-fold priors, shared by the input sets
        try:
            for scale in scales:
                for names in sets:
                    names = self._names(names)
                    for k in ks:
                        state = self._fit_k(cells, profiles, int(k), names, scale)
                        self.choice_scores_[(scale, int(k), tuple(names))] = state["oof_spearman"]
                        states.append(state)
        finally:
            del self._oof_priors
        if self.combine not in ("mean", "select"):
            raise ValueError(f"unknown combine {self.combine!r}; use 'mean' or 'select'")
        best = max(states, key=lambda st: st["oof_spearman"] if np.isfinite(st["oof_spearman"]) else -np.inf)
        for name, value in best.items():
            setattr(self, name, value)
        # "mean": every configuration predicts, the ranking averages them (their out-of-fold
        # residuals average the same way); "select": the best configuration alone
        self.states_ = states if self.combine == "mean" else [best]
        self.residuals_ = np.mean([st["residuals_"] for st in self.states_], axis=0)
        self.residuals_new_ = {sit: np.mean([st["residuals_new_"][sit] for st in self.states_], axis=0)
                               for sit in self.states_[0].get("residuals_new_", {})}
        # prediction error of an imputed zero-shot input: each configuration's weight times its
        # input's imputation error, averaged like the predictions
        self.imputation_errors_ = np.mean([st["imputation_errors_"] for st in self.states_], axis=0)
        self.helps_calibration_ = (self._fit_helps_calibration()
                                   if self.zero_shot and getattr(self, "helps_classifier_", None) is None else None)
        self.best_temperature_ = self._fit_best_temperature(cells)
        return self

    def _new_weights_on(self) -> bool:
        """Whether ``fit`` fits weights for models new to the KB (``new_model_weights``)."""
        return self.new_model_weights is True or (self.new_model_weights == "auto" and self.zero_shot)

    def uses_new_weights(self, task: str, nearest: float) -> bool:
        """Whether models new to the KB are ranked with their own weights on a target whose nearest
        source cell of ``task`` lies at ``nearest`` (``new_model_weights``)."""
        return self.new_model_weights is True or (
            self.new_model_weights == "auto" and not self.is_kb_dataset(task, nearest))

    def new_model_pools(self, task: str, models: list[str], nearest: float) -> dict[int, np.ndarray]:
        """Column index -> residual pool, for the candidates new to the KB that their own weights
        rank (:meth:`uses_new_weights`): the out-of-fold residuals of the task's source cells with
        every KB model predicted as a new model in the same situation (:meth:`situation`), which a
        new model's interval and joint samples draw from instead of the known models' residuals."""
        pools = {}
        if not getattr(self, "residuals_new_", None) or not self.uses_new_weights(task, nearest):
            return pools
        rows = np.flatnonzero(self.tasks_ == task)
        rows = rows if rows.size else np.arange(len(self.tasks_))
        kb = set(self.models_)
        for j, m in enumerate(models):
            if m not in kb:
                R = self.residuals_new_.get(self.situation(m, self.models_))
                if R is not None and np.isfinite(R[rows]).any():
                    pools[j] = R[rows][np.isfinite(R[rows])]
        return pools

    def is_kb_dataset(self, task: str, nearest: float) -> bool:
        """Whether a target whose nearest source cell of ``task`` lies at ``nearest`` is one of the
        KB's own datasets: nearer than any KB dataset lies to another (leave-one-dataset-out)."""
        d = self.oof_distance_[(self.tasks_ == task) & np.isfinite(self.oof_distance_)]
        return bool(d.size and np.isfinite(nearest) and nearest < d.min())

    def _choose_components(self, cells: Cells, k: int) -> tuple[int | None, dict]:
        """(n, {candidate n: score}): how many principal components of the meta-features the kNN
        priors choose their neighbours over (``components``). Leave one dataset out on the source
        cells: each source cell's kNN prior (k nearest, log scale) from the other datasets' cells;
        the score of ``n`` is the mean within-cell Spearman ρ of that prior against the cell's
        observed fine-tuned scores. The best ``n`` wins (ties: the earlier in
        :attr:`COMPONENTS`). Only the cells ``fit`` is given are read."""
        if not isinstance(self.components, str):
            return self.components, {}
        if self.components != "auto":
            raise ValueError(f"unknown components {self.components!r}; use 'auto', an int or None")
        datasets = np.unique(cells.datasets)
        if len(datasets) < 3:
            return None, {}
        with _quiet():
            rel = cells.log_ft - np.nanmean(cells.log_ft, axis=1, keepdims=True)
        B = {n: np.full(rel.shape, np.nan) for n in self.COMPONENTS}
        for d in datasets:
            others = np.flatnonzero(cells.datasets != d)
            pri = Priors(k, scale="log", cross_alpha=None).fit(cells.take(cells.datasets != d))  # its standardisation
            for task in np.unique(cells.tasks[cells.datasets == d]):
                held = np.flatnonzero((cells.datasets == d) & (cells.tasks == task))
                rows, zF, _ = pri._standardised(task, cells.features[held[0]])
                zT = np.vstack([pri._standardised(task, cells.features[c])[2] for c in held])
                with _quiet():
                    full = np.sqrt(np.nanmean((zF[None, :, :] - zT[:, None, :]) ** 2, axis=2))  # (held, rows)
                    lb = np.nanmean(rel[others[rows]], axis=0)
                A = np.nan_to_num(zF)
                centre = A.mean(axis=0)
                Vt = np.linalg.svd(A - centre, full_matrices=False)[2]
                S, T = (A - centre) @ Vt.T, (np.nan_to_num(zT) - centre) @ Vt.T
                for n in self.COMPONENTS:
                    dist = full if n is None else np.sqrt(((S[None, :, :n] - T[:, None, :n]) ** 2).mean(axis=2))
                    dist = np.where(np.isfinite(dist), dist, np.inf)
                    for i, c in enumerate(held):
                        near = others[rows[np.argsort(dist[i], kind="stable")[:k]]]
                        with _quiet():
                            kn = np.nanmean(rel[near], axis=0)
                        B[n][c] = np.where(np.isfinite(kn), kn, lb)
        scores = {n: _mean_row_spearman(B[n], rel) for n in self.COMPONENTS}
        finite = [n for n in self.COMPONENTS if np.isfinite(scores[n])]
        best = max(finite, key=lambda n: scores[n]) if finite else None  # max keeps the first of ties
        return best, scores

    def _choose_cross_alpha(self, cells: Cells) -> tuple[float | None, dict]:
        """(alpha, {candidate alpha: score}): the ridge penalty of the ``cross`` prior
        (``cross_alpha``). Leave one dataset out on the source cells: each source cell's ``cross``
        prior from a regression on the other datasets' cells; the score of an alpha is the mean
        within-cell Spearman ρ of that prior against the cell's observed fine-tuned scores. The
        best wins (ties: the earlier in :attr:`CROSS_ALPHAS`). Only the cells ``fit`` is given are
        read. None without zero-shot scores or with fewer source cells than
        :attr:`Priors.CROSS_CELLS_PER_INPUT <timetic.estimate.priors.Priors.CROSS_CELLS_PER_INPUT>`
        per input of the regression: then the prior is not read."""
        if not self.zero_shot:
            return None, {}
        if isinstance(self.cross_alpha, str) and self.cross_alpha != "auto":
            raise ValueError(f"unknown cross_alpha {self.cross_alpha!r}; use 'auto' or a number")
        datasets = np.unique(cells.datasets)
        if len(datasets) < 3 or Priors.cross_cells(cells) is None:
            return None, {}  # too few cells to fit the regression: the prior is not read
        if not isinstance(self.cross_alpha, str):
            return float(self.cross_alpha), {}
        models = list(cells.models)
        B = {a: np.full(cells.log_ft.shape, np.nan) for a in self.CROSS_ALPHAS}
        for d in datasets:
            held = np.flatnonzero(cells.datasets == d)
            pri = Priors(scale="log").fit(cells.take(cells.datasets != d))
            for a in self.CROSS_ALPHAS:
                pri.cross_alpha = a
                pri.cross_ = pri._fit_cross(pri.cells_)
                for c in held:
                    cross = pri.cross(cells.tasks[c], models, cells.log_zs[c],
                                      None if cells.log_len is None else cells.log_len[c])
                    if cross is not None:
                        B[a][c] = cross
        scores = {a: _mean_row_spearman(B[a], cells.log_ft) for a in self.CROSS_ALPHAS}
        finite = [a for a in self.CROSS_ALPHAS if np.isfinite(scores[a])]
        best = max(finite, key=lambda a: scores[a]) if finite else self.CROSS_ALPHAS[0]
        return best, scores

    def _choose_meta(self, cells: Cells) -> tuple[tuple[int, float] | None, dict]:
        """((components, alpha), {candidate: score}): the ``meta`` prior's number of principal
        components and ridge penalty, or None where it is not read (``meta``; fewer than 3 source
        datasets; too few cells for every candidate, :meth:`Priors.meta_cells_enough
        <timetic.estimate.priors.Priors.meta_cells_enough>`). Leave one dataset out on the source
        cells: each source cell's ``meta`` prior from a regression on the other datasets' cells;
        the score of a candidate is the mean within-cell Spearman ρ of that prior against the
        cell's observed fine-tuned scores. The best wins (ties: the earlier, fewer components and
        smaller penalty first). Only the cells ``fit`` is given are read."""
        if not (self.meta is True or (self.meta == "auto" and not self.zero_shot)):
            return None, {}
        datasets = np.unique(cells.datasets)
        cands = [(n, a) for n in self.META_COMPONENTS for a in self.META_ALPHAS]
        if len(datasets) < 3:
            return None, {}
        B = {c: np.full(cells.log_ft.shape, np.nan) for c in cands}
        log_len = cells.log_len if cells.log_len is not None else np.full(len(cells), np.nan)
        for d in datasets:
            held = np.flatnonzero(cells.datasets == d)
            pri = Priors(scale="log", cross_alpha=None).fit(cells.take(cells.datasets != d))
            for n, a in cands:
                st = pri._fit_meta(pri.cells_, n, a)
                if st is None:
                    continue
                # Priors.meta of every held-out cell at once (every model is a KB model here)
                with _quiet():
                    Z = np.nan_to_num(np.clip((cells.features[held] - st["mu"]) / st["sd"], -pri.clip, pri.clip))
                A = Priors._meta_design(st, Z, log_len[held], cells.tasks[held])
                B[(n, a)][held] = A @ st["coef"] + st["intercept"]
        scores = {c: _mean_row_spearman(B[c], cells.log_ft) for c in cands}
        finite = [c for c in cands if np.isfinite(scores[c])]
        if not finite:
            return None, scores
        return max(finite, key=lambda c: scores[c]), scores

    def _priors(self, k: int, scale: str) -> Priors:
        """An unfitted :class:`Priors` with this ranker's chosen settings."""
        meta = getattr(self, "meta_", None)
        return Priors(k, scale=scale, n_profile_neighbours=self.profile_neighbours_, components=self.components_,
                      cross_alpha=self.cross_alpha_, meta_components=None if meta is None else meta[0],
                      meta_alpha=5.0 if meta is None else meta[1],
                      n_other_family_neighbours=getattr(self, "other_family_neighbours_", None))

    def situation(self, model: str, kb_models) -> str:
        """``"other"`` for a model whose family (``families``) has no model among ``kb_models``,
        ``"kin"`` otherwise (and where families are unknown)."""
        fams = getattr(self, "families_", {})
        family = fams.get(model)
        if family is None or not fams:
            return "kin"
        return "kin" if any(fams.get(m) == family for m in kb_models if m != model) else "other"

    def _choose_profile_neighbours(self, cells: Cells, profiles: dict[str, np.ndarray] | None) -> tuple[int, dict]:
        """(n, {candidate n: score}): how many profile neighbours a new model borrows its priors from.

        Leave one model out on the source cells: each source model in turn is treated as new and
        given the mean centred log fine-tuned score of its ``n`` nearest other source models
        (standardised profile distance, as :meth:`Priors._borrowed` does); the score of ``n`` is the
        mean within-cell Spearman ρ of those borrowed scores against the observed ones. The most
        informative ``n`` wins (ties: the smaller). With ``families``, only the models that have a
        sibling count, each borrowing from its siblings (nearest first). Only the cells ``fit`` is
        given are read."""
        if not isinstance(self.profile_neighbours, str):
            return int(self.profile_neighbours), {}
        if self.profile_neighbours != "auto":
            raise ValueError(f"unknown profile_neighbours {self.profile_neighbours!r}; use 'auto' or an int")
        default = 2
        order = self._profile_order(cells, profiles, "kin")
        if order is None:
            return default, {}
        idx = np.array([g for g, o in enumerate(order) if o is not None and len(o)])
        if self.families_:  # models without a sibling borrow as other_family_neighbours says
            idx = np.array([g for g in idx if self.situation(cells.models[g], cells.models) == "kin"], dtype=int)
            if len(idx) < 2:
                return default, {}
        with _quiet():
            rel = cells.log_ft - np.nanmean(cells.log_ft[:, idx], axis=1, keepdims=True)
        scores = {}
        for n in self.PROFILE_NEIGHBOURS:
            with _quiet():
                B = np.column_stack([np.nanmean(rel[:, order[g][:n]], axis=1) for g in idx])
            scores[n] = _mean_row_spearman(B, rel[:, idx])
        finite = {n: v for n, v in scores.items() if np.isfinite(v)}
        return (max(finite, key=lambda n: (finite[n], -n)) if finite else default), scores

    def _profile_order(self, cells: Cells, profiles: dict[str, np.ndarray] | None,
                       situation: str = "kin") -> list[np.ndarray | None] | None:
        """Per KB model (the columns of ``cells``), the column indices of the other KB models with
        profiles that it would borrow from as a new model in ``situation`` (:meth:`situation`),
        nearest first in entropy-profile space (profiles standardised over all the others, as
        :meth:`Priors._borrowed` does): ``"kin"``, those of its family where it has any
        (with ``families``), else all; ``"other"``, those of other families. None for a model
        without a profile; None in all when fewer than 4 KB models have profiles."""
        idx = np.array([g for g, m in enumerate(cells.models) if profiles and m in profiles], dtype=int)
        if len(idx) < 4:
            return None
        fams = getattr(self, "families_", {})
        fam = [fams.get(cells.models[g]) for g in idx]
        P = np.vstack([np.asarray(profiles[cells.models[g]], dtype=float) for g in idx])
        order: list[np.ndarray | None] = [None] * len(cells.models)
        for i, g in enumerate(idx):
            others = np.delete(np.arange(len(idx)), i)
            near = others[np.argsort(profile_distances(P[others], P[i]), kind="stable")]
            if fam[i] is not None:
                kin = np.array([fam[j] == fam[i] for j in near], dtype=bool)
                if situation == "other":
                    near = near[~kin]
                elif kin.any():
                    near = near[kin]
            order[g] = idx[near]
        return order

    #: ``other_family_neighbours="auto"`` chooses among these (0: borrow nothing).
    OTHER_FAMILY_NEIGHBOURS = (0, 1, 2, 3)

    def _choose_other_family_neighbours(self, cells: Cells, profiles: dict[str, np.ndarray] | None) -> tuple[int | None, dict]:
        """(n, {candidate n: score}): how many nearest KB models of other families a new model whose
        family has no KB model borrows its priors from (0: none, it gets the mean).

        Leave one family out on the source cells: each source model in turn is placed among the
        others' observed log fine-tuned scores at the mean score of its ``n`` nearest models of
        other families (0: at the mean of the others' scores); the score of ``n`` is the mean over
        models of the mean within-cell Spearman ρ of that placement against the observed scores
        (over the cells where the model is observed). The best ``n``
        wins (ties: the smaller). ``None`` (new models borrow as known families' do) without
        ``families``, with fewer than 3 families among the profiled models, or for a fixed
        ``other_family_neighbours`` (then that number)."""
        if not isinstance(self.other_family_neighbours, str):
            return int(self.other_family_neighbours), {}
        if self.other_family_neighbours != "auto":
            raise ValueError(f"unknown other_family_neighbours {self.other_family_neighbours!r}; use 'auto' or an int")
        order = self._profile_order(cells, profiles, "other")
        fams = {self.families_.get(m) for m in cells.models if profiles and m in profiles} - {None}
        if order is None or len(fams) < 3:
            return None, {}
        idx = np.array([g for g, o in enumerate(order) if o is not None and len(o)])
        truth = cells.log_ft[:, idx]
        scores = {}
        for n in self.OTHER_FAMILY_NEIGHBOURS:
            rhos = []
            for i, g in enumerate(idx):
                V = truth.copy()
                with _quiet():  # at the mean of the others' scores (not of a mean that includes its own)
                    mean_others = np.nanmean(np.delete(truth, i, axis=1), axis=1)
                    V[:, i] = np.nanmean(cells.log_ft[:, order[g][:n]], axis=1) if n else mean_others
                V[:, i] = np.where(np.isfinite(V[:, i]), V[:, i], mean_others)
                seen = np.isfinite(truth[:, i])  # the cells where the model is observed
                rhos.append(_mean_row_spearman(V[seen], truth[seen]))
            scores[n] = float(np.nanmean(rhos)) if np.isfinite(rhos).any() else float("nan")
        finite = {n: v for n, v in scores.items() if np.isfinite(v)}
        return (max(finite, key=lambda n: (finite[n], -n)) if finite else None), scores

    #: exponents tried by the P(best) temperature (1 = the joint samples' frequencies as they are).
    TEMPERATURES = tuple(np.round(np.arange(0.1, 2.01, 0.05), 2))

    def _fit_best_temperature(self, cells: Cells, n_samples: int = 400, seed: int = 0) -> float:
        """Exponent ``a`` of the P(best) recalibration p ∝ (p_raw + P_BEST_FLOOR)^a (:meth:`calibrate_p_best`):
        for every source cell, P(best) among its observed models from its out-of-fold prediction
        and the other cells' joint residuals (as a target's are made), and ``a`` maximising the
        log-likelihood of the observed best models. The joint samples tend to be overconfident
        (RESULTS.md's reliability table before this: mean P(best) 0.47 where 22% were best); ``a``
        < 1 flattens them. 1 when no cell has three observed models."""
        raw, best = [], []
        for task in np.unique(self.tasks_):
            rows = np.flatnonzero(self.tasks_ == task)
            for i in rows:
                ok = np.isfinite(cells.log_ft[i]) & np.isfinite(self.residuals_[i])
                others = rows[(rows != i) & (cells.datasets[rows] != cells.datasets[i])]
                if ok.sum() < 3 or others.size == 0:
                    continue
                R = self.residuals_[others][:, ok]
                R = R[np.isfinite(R).any(axis=1)]
                if R.shape[0] == 0:
                    continue
                point = cells.log_ft[i, ok] - self.residuals_[i, ok]
                S = self.joint_residuals(R, n_samples, seed)
                counts = np.bincount((point[None, :] + S).argmin(axis=1), minlength=int(ok.sum()))
                raw.append(counts / n_samples)
                best.append(int(np.argmin(cells.log_ft[i, ok])))
        if not raw:
            return 1.0

        def loglik(a: float) -> float:
            return sum(float(np.log(_tempered(p, a)[b])) for p, b in zip(raw, best))

        return float(max(self.TEMPERATURES, key=loglik))

    def calibrate_p_best(self, p: np.ndarray) -> np.ndarray:
        """(G,) P(best) frequencies of joint samples, recalibrated with the fitted temperature
        (:meth:`_fit_best_temperature`); sums to 1."""
        return _tempered(np.asarray(p, dtype=float), getattr(self, "best_temperature_", 1.0))

    def _fit_helps_calibration(self):
        """Logistic recalibration of P(fine-tuning helps): for every source (cell, model), the raw
        probability from the other cells' gain residuals (leave-one-cell-out) against whether
        fine-tuning helped there. None when one outcome never occurs."""
        from sklearn.linear_model import LogisticRegression

        raw, hit = [], []
        for task in np.unique(self.tasks_):
            rows = np.flatnonzero(self.tasks_ == task)
            R, T = self.gain_residuals_[rows], self.gain_truth_[rows]
            for i in range(len(rows)):
                others = np.delete(R, i, axis=0)
                ok = np.isfinite(R[i])
                if not ok.any() or len(others) == 0:
                    continue
                pred = T[i] - R[i]
                p = self.p_below(others, np.where(ok, pred, 0.0), np.zeros(R.shape[1]))
                keep = ok & np.isfinite(p)
                raw += list(p[keep])
                hit += list(T[i, keep] < 0)
        hit = np.asarray(hit, dtype=int)
        if len(hit) < 20 or hit.min() == hit.max():
            return None
        return _Linear.of(LogisticRegression().fit(_logit(np.asarray(raw))[:, None], hit))

    def _helps_inputs(self, gain_X: np.ndarray) -> np.ndarray:
        """The helps classifier reads the gain inputs, plus, with the probe, whether the probe
        improved at all (a run whose first K steps do not lower the validation loss mostly keeps
        its step-0 weights: fine-tuned = zero-shot, no help)."""
        if not self.probe:
            return gain_X
        return np.column_stack([gain_X, (gain_X[:, -1] < 0).astype(float)])

    def p_helps(self, R: np.ndarray, point: np.ndarray, gain_X: np.ndarray | None = None) -> np.ndarray:
        """(G,) P(fine-tuning helps) of candidates with gain predictions ``point`` (log ratio),
        gain residuals ``R`` (:meth:`residual_matrix` with ``gain=True``) and gain inputs
        ``gain_X`` (:meth:`gain_inputs`). ``helps="logistic"`` (or with the probe): a logistic
        regression on the gain inputs (and on whether the probe improved), fitted on the source
        cells' out-of-fold inputs; ``"residuals"``: the share of the gain model's residuals that
        put the point below 0, recalibrated by a logistic fit (:meth:`_fit_helps_calibration`)."""
        clf = getattr(self, "helps_classifier_", None)
        if clf is not None and gain_X is not None:
            return clf.predict_proba(self._helps_inputs(gain_X))[:, 1]
        p = self.p_below(R, point, np.zeros(len(point)))
        cal = getattr(self, "helps_calibration_", None)
        if cal is None:
            return p
        out = np.full(len(p), np.nan)
        ok = np.isfinite(p)
        if ok.any():
            out[ok] = cal.predict_proba(_logit(p[ok])[:, None])[:, 1]
        return out

    def _fit_k(self, cells: Cells, profiles: dict[str, np.ndarray] | None, k: int, names: list[str],
               scale: str = "log") -> dict:
        """Fitted state (attribute name -> value) for one k, input set and prior scale."""
        C, G = cells.log_ft.shape
        models = list(cells.models)
        if self.probe and cells.log_probe is None:
            raise ValueError("probe=True needs cells built with probe_steps (build_cells(ctx, probe_steps=K))")
        log_probe = cells.log_probe if self.probe else np.zeros((C, G))
        X_rows, y_rows, where, row_tasks = [], [], [], []
        Xb_rows = {sit: [] for sit in self.borrow_neighbours_}  # the rows with every model's priors borrowed
        gX_rows, g_rows = [], []
        imputation = np.full((C, G), np.nan)
        level_oof = np.full(C, np.nan)
        oof_distance = np.full(C, np.nan)
        for d in np.unique(cells.datasets):
            others = cells.datasets != d
            if not others.any():
                continue
            pri = None
            for c in np.flatnonzero(~others):
                obs = self._observed(cells.log_ft[c], cells.log_zs[c], log_probe[c])
                if obs.sum() < 2:
                    continue
                # the out-of-fold priors of a cell are the same for every input set that reads the
                # same priors: computed once per fit (``fit`` keeps them while it runs)
                key = (k, scale, int(c), "cross" in names)
                p = self._oof_priors.get(key) if hasattr(self, "_oof_priors") else None
                if p is None:
                    if pri is None:
                        pri = self._priors(k, scale).fit(cells.take(others), profiles, self.families_)
                    p = pri(cells.tasks[c], cells.features[c], models,
                            log_zs=np.where(obs, cells.log_zs[c], np.nan) if "cross" in names else None,
                            log_len=None if cells.log_len is None else cells.log_len[c])
                    if hasattr(self, "_oof_priors"):
                        self._oof_priors[key] = p
                X, level = self._inputs(p, cells.log_zs[c], obs, names, log_probe[c], scale)
                yc = cells.log_ft[c, obs] - cells.log_ft[c, obs].mean()
                X_rows.append(X[obs])
                y_rows.append(yc)
                for sit, nbrs in self.borrow_neighbours_.items():
                    Xb, _ = self._inputs(_borrow(p, nbrs), cells.log_zs[c], obs, names, log_probe[c], scale)
                    Xb_rows[sit].append(Xb[obs])
                if self.zero_shot:
                    zc = cells.log_zs[c] - cells.log_zs[c, obs].mean()
                    imputed = self._imputed_log_zs(cells.log_zs[c], p, obs, np.ones(G, dtype=bool))
                    x_imp, _ = self._inputs(p, imputed, obs, ["zero_shot"], log_probe[c], scale)
                    x_true, _ = self._inputs(p, cells.log_zs[c], obs, ["zero_shot"], log_probe[c], scale)
                    imputation[c, obs] = (x_true - x_imp)[obs, 0]
                    log_len = None if cells.log_len is None else cells.log_len[c]
                    gX_rows.append(self.gain_inputs(p, log_probe[c], log_len, np.where(obs, cells.log_zs[c], np.nan))[obs])
                    g_rows.append(cells.log_ft[c, obs] - cells.log_zs[c, obs])
                where.append((c, np.flatnonzero(obs)))
                row_tasks.append(cells.tasks[c])
                level_oof[c] = level
                oof_distance[c] = p.nearest
        if not X_rows:
            raise ValueError("no source cell has two models observed" + (" with a learning-curve probe" if self.probe else "")
                             + ": the knowledge base is too small to stack")
        X_all = np.vstack(X_rows)
        ridge = self._fit_weights(X_rows, y_rows, row_tasks)
        ridge_new = {sit: self._fit_weights(rows, y_rows, row_tasks) for sit, rows in Xb_rows.items() if rows} or None
        # out-of-fold residuals of every KB model predicted as a new model in each situation (its
        # priors borrowed, the new-model weights): a new model's interval where those weights rank it
        residuals_new = {}
        for sit, w in (ridge_new or {}).items():
            R_new = np.full((C, G), np.nan)
            for Xb, (c, g) in zip(Xb_rows[sit], where):
                R_new[c, g] = cells.log_ft[c, g] - (level_oof[c] + _predict(w, Xb, cells.tasks[c]))
            residuals_new[sit] = R_new
        residuals = np.full((C, G), np.nan)
        rhos = []
        for X, yc, (c, g) in zip(X_rows, y_rows, where):
            pred = _predict(ridge, X, cells.tasks[c])
            residuals[c, g] = cells.log_ft[c, g] - (level_oof[c] + pred)
            if len(g) > 2:
                rhos.append(np.nan_to_num(_mean_row_spearman(pred[None, :], yc[None, :])))
        gain_residuals = np.full((C, G), np.nan)
        gain_truth = np.full((C, G), np.nan)
        gain_ridge = None
        if self.zero_shot:
            from sklearn.linear_model import Ridge

            gain_ridge = _Linear.of(Ridge(alpha=self.alpha).fit(np.vstack(gX_rows), np.concatenate(g_rows)))
            for X, r, (c, g) in zip(gX_rows, g_rows, where):
                gain_residuals[c, g] = r - gain_ridge.predict(X)
                gain_truth[c, g] = r
        helps_classifier = None
        if self.zero_shot and (self.probe or self.helps == "logistic"):
            from sklearn.linear_model import LogisticRegression

            hit = (np.concatenate(g_rows) < 0).astype(int)
            if 0 < hit.sum() < len(hit):
                helps_classifier = _Linear.of(LogisticRegression().fit(self._helps_inputs(np.vstack(gX_rows)), hit))
        w_zs = np.zeros((C, 1))
        if "zero_shot" in names:
            j = names.index("zero_shot")
            w_zs[:, 0] = [_coef(ridge, t)[j] for t in cells.tasks]
        return {"k_": k, "input_names_": names, "scale_": scale, "ridge_": ridge, "ridge_new_": ridge_new,
                "residuals_new_": residuals_new,
                "imputation_errors_": w_zs * imputation, "residuals_": residuals, "gain_ridge_": gain_ridge,
                "gain_residuals_": gain_residuals,
                "helps_classifier_": helps_classifier, "gain_truth_": gain_truth, "oof_distance_": oof_distance, "tasks_": cells.tasks,
                "models_": np.asarray(models),
                "priors_": self._priors(k, scale).fit(cells, profiles, self.families_),
                "n_rows_": len(X_all),
                "oof_spearman": float(np.mean(rhos)) if rhos else float("nan")}

    def _fit_weights(self, X_rows: list[np.ndarray], y_rows: list[np.ndarray], row_tasks: list[str]):
        """The input weights (see ``weights``) fitted on rows ``X_rows`` (cells' inputs) -> ``y_rows``."""
        if self.weights == "spearman":
            return _TaskWeights(self.task_weights).fit(X_rows, y_rows, row_tasks)
        if self.weights == "ridge":
            from sklearn.linear_model import Ridge

            return _Linear.of(Ridge(alpha=self.alpha, fit_intercept=False).fit(np.vstack(X_rows), np.concatenate(y_rows)))
        raise ValueError(f"unknown weights {self.weights!r}; use 'ridge' or 'spearman'")

    def _names(self, inputs: tuple[str, ...] | None) -> list[str]:
        names = list(self.DEFAULT_INPUTS if inputs is None else inputs)
        unknown = [n for n in names if n not in self.INPUTS]
        if unknown or not names:
            raise ValueError(f"unknown stack inputs {unknown}; choose from {', '.join(self.INPUTS)}")
        if self.probe and "probe" not in names:
            names.append("probe")
        cross = self.zero_shot and getattr(self, "cross_alpha_", None) is not None
        meta = getattr(self, "meta_", None) is not None
        return [n for n in names if (self.zero_shot or n != "zero_shot") and (cross or n != "cross")
                and (meta or n != "meta") and (self.probe or n != "probe")]

    @property
    def weights_(self) -> dict[str, float]:
        """The weight of each input (how much each cheap ranking is trusted), averaged over the
        combined configurations (an input a configuration does not read counts 0); the weights
        fitted on every task (see :meth:`weights_for`)."""
        return self.weights_for(None)

    def weights_for(self, task: str | None) -> dict[str, float]:
        """:attr:`weights_` of the weights that rank ``task`` (its own with ``task_weights``)."""
        states = getattr(self, "states_", None) or [self._state()]
        out: dict[str, float] = {}
        for st in states:
            coef = st["ridge_"].coef_ if task is None else _coef(st["ridge_"], task)
            for name, w in zip(st["input_names_"], coef):
                out[name] = out.get(name, 0.0) + float(w) / len(states)
        return out

    def _observed(self, log_ft: np.ndarray, log_zs: np.ndarray, log_probe: np.ndarray | None = None) -> np.ndarray:
        ok = np.isfinite(log_ft)
        if self.probe and log_probe is not None:
            ok &= np.isfinite(log_probe)
        return ok & np.isfinite(log_zs) if self.zero_shot else ok

    def _inputs(self, p: PriorValues, log_zs: np.ndarray | None, obs: np.ndarray,
                names: list[str] | None = None, log_probe: np.ndarray | None = None,
                scale: str | None = None) -> tuple[np.ndarray, float]:
        """(G, n_inputs) stacked inputs and the level, centred over the ``obs`` candidates."""
        cols = {}
        scale = scale or getattr(self, "scale_", "log")
        ranks = self.zs_scale == "rank" or (self.zs_scale == "match" and scale == "rank")
        if self.probe:
            with _quiet():
                centre = np.nanmean(log_probe[obs]) if np.isfinite(log_probe[obs]).any() else 0.0
            cols["probe"] = np.nan_to_num(log_probe - centre)  # 0 (the mean) where unprobed
            if ranks:
                cols["probe"] = np.nan_to_num(_ranks_over(log_probe, obs & np.isfinite(log_probe)))
        if self.zero_shot:
            cols["zero_shot"] = log_zs - log_zs[obs].mean()
            if ranks:
                cols["zero_shot"] = _ranks_over(log_zs, obs)
            gap = p.gap_knn if np.isfinite(p.gap_knn) else 0.0
            level = float(log_zs[obs].mean() + gap)
        else:
            level = p.level_knn
        cols["leaderboard"] = p.leaderboard - p.leaderboard[obs].mean()
        cols["knn"] = p.knn - p.knn[obs].mean()
        cols["gain_leaderboard"] = p.gain_leaderboard - p.gain_leaderboard[obs].mean()
        cols["gain_knn"] = p.gain_knn - p.gain_knn[obs].mean()
        # (a fold with too few cells for the regression: no information, the candidates' mean)
        cols["cross"] = np.zeros(len(obs)) if p.cross is None else p.cross - p.cross[obs].mean()
        cols["meta"] = np.zeros(len(obs)) if p.meta is None else p.meta - p.meta[obs].mean()
        return np.column_stack([cols[n] for n in (names or self.input_names_)]), level

    def gain_inputs(self, p: PriorValues, log_probe: np.ndarray | None = None,
                    log_len: float | None = None, log_zs: np.ndarray | None = None,
                    zs_rank: np.ndarray | None = None) -> np.ndarray:
        """(G, 2 [+ 1] [+ 1] [+ 1]) the gain model's inputs: the leaderboard and kNN gains,
        [``log_len``, log10(mean series length / window length), the source mean where unknown],
        [with ``zs_rank``: the candidate's zero-shot rank among the candidates with a zero-shot
        score ``log_zs`` (G,), scaled to -0.5 (best) .. 0.5 (worst), 0 where it has none; or
        ``zs_rank`` (G,) when given, e.g. :meth:`zs_ranks`], [the probe, always last]."""
        cols = [p.gain_leaderboard, p.gain_knn]
        if getattr(self, "use_length_", False):
            v = log_len if log_len is not None and np.isfinite(log_len) else self.len_fill_
            cols.append(np.full(len(p.gain_knn), v))
        if self.zero_shot and getattr(self, "zs_rank", False):
            cols.append(_centred_rank(log_zs, len(p.gain_knn)) if zs_rank is None else np.asarray(zs_rank, dtype=float))
        if self.probe:
            cols.append(np.nan_to_num(log_probe))  # 0 = no improvement where unprobed
        return np.column_stack(cols)

    # -- predict ---------------------------------------------------------------------------------
    def predict_gain(self, p: PriorValues, log_probe: np.ndarray | None = None,
                     log_len: float | None = None, log_zs: np.ndarray | None = None,
                     zs_rank: np.ndarray | None = None) -> np.ndarray:
        """(G,) predicted log(fine-tuned / zero-shot) of the candidates the priors ``p`` describe
        (with ``probe``: and their probes ``log_probe``) on a target whose log10(mean series
        length / window length) is ``log_len`` (``None``: unknown), where their log zero-shot
        MASE are ``log_zs`` (G,; NaN: none) or their zero-shot ranks ``zs_rank`` (:meth:`zs_ranks`)."""
        return self.gain_ridge_.predict(self.gain_inputs(p, log_probe, log_len, log_zs, zs_rank))

    def zs_ranks(self, task: str, features: np.ndarray, models: list[str], log_zs: np.ndarray) -> np.ndarray:
        """(G,) the candidates' zero-shot ranks (scaled as in :meth:`gain_inputs`) among all the KB's
        models on this target: a KB model that is not a candidate takes the zero-shot score imputed
        from the nearest source cells (as a candidate without weights does), so a candidate's rank,
        and with it its predicted gain and P(fine-tuning helps), does not hinge on which other
        candidates are ranked with it (``--models a,b``). Candidates without a score get 0."""
        log_zs = np.asarray(log_zs, dtype=float)
        listed = set(models)
        others = [m for m in getattr(self, "models_", []) if m not in listed]
        obs = np.isfinite(log_zs)
        if not others or not obs.any():
            return _centred_rank(log_zs, len(models))
        names = list(models) + others
        full = np.concatenate([log_zs, np.full(len(others), np.nan)])
        seen = np.concatenate([obs, np.zeros(len(others), dtype=bool)])
        imputed = self._imputed_log_zs(full, self.priors_(task, features, names), seen,
                                       np.concatenate([np.zeros(len(models), dtype=bool), np.ones(len(others), dtype=bool)]))
        return _centred_rank(imputed, len(names))[: len(models)]

    def predict_in_kb(self, task: str, features: np.ndarray, models: list[str],
                      log_zs: np.ndarray | None = None, impute: np.ndarray | None = None,
                      log_probe: np.ndarray | None = None, log_len: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(G,) predictions and mask, as :meth:`predict` gives them, with every input centred over
        all the KB's models: a KB model that is not among ``models`` joins the reference set with
        its zero-shot score imputed from the nearest source cells (as a candidate without weights
        does) and is then dropped. The weights were fitted on cells that hold (nearly) every KB
        model, so this is the situation they know, and a candidate's predicted MASE does not hinge
        on which other candidates are ranked with it (``--models a,b``). With every KB model
        among ``models`` it is :meth:`predict`."""
        listed = set(models)
        others = [m for m in getattr(self, "models_", []) if m not in listed]
        if not others:
            pred, _, ok = self.predict(task, features, models, log_zs, impute, log_probe, log_len=log_len)
            return pred, ok
        G, extra = len(models), np.full(len(others), np.nan)
        zs = imp = None
        if self.zero_shot:
            zs = np.concatenate([np.asarray(log_zs, dtype=float), extra])
            imp = np.concatenate([np.zeros(G, dtype=bool) if impute is None else np.asarray(impute, dtype=bool),
                                  np.ones(len(others), dtype=bool)])
        probe = None if log_probe is None else np.concatenate([np.asarray(log_probe, dtype=float), extra])
        pred, _, ok = self.predict(task, features, list(models) + others, zs, imp, probe, centre="used", log_len=log_len)
        return pred[:G], ok[:G]

    def predict(self, task: str, features: np.ndarray, models: list[str],
                log_zs: np.ndarray | None = None,
                impute: np.ndarray | None = None,
                log_probe: np.ndarray | None = None,
                centre: str = "observed", log_len: float | None = None) -> tuple[np.ndarray, PriorValues, np.ndarray]:
        """Predicted log mean fine-tuned MASE (G,) of ``models`` (NaN where a needed zero-shot score
        is missing), the priors used, and the boolean mask of predicted candidates. ``impute``
        (G,) bool: candidates without a zero-shot score whose input is imputed (weights absent;
        with ``probe`` their probe input is the candidates' mean). ``log_probe`` (G,): the
        candidates' learning-curve probes (with ``probe``). ``centre``: the inputs are centred over
        the candidates with a zero-shot score (``"observed"``) or over those and the imputed ones
        (``"used"``, :meth:`predict_in_kb`). ``log_len``: log10 of the target's mean series length
        over the task's window length (the ``cross`` prior; ``None``: unknown)."""
        if self.zero_shot and log_zs is None:
            raise ValueError("this ranker uses zero-shot scores; pass log_zs")
        if self.probe and log_probe is None:
            raise ValueError("this ranker reads learning-curve probes; pass log_probe")
        obs = np.isfinite(log_zs) if self.zero_shot else np.ones(len(models), dtype=bool)
        p = self.priors_(task, features, models, log_len=log_len)
        out = np.full(len(models), np.nan)
        use = obs.copy()
        # weights for models new to the KB: not for a target that is one of the KB's datasets
        # ("auto"), whose source cells the borrowed rows they were fitted on never include
        new_weights = self.uses_new_weights(task, p.nearest)
        if obs.any():
            if self.zero_shot and impute is not None:
                use |= impute
            preds = []
            situations = None  # of the candidates new to the KB ("" for the KB's own)
            for st in getattr(self, "states_", None) or [self._state()]:
                pst = st["priors_"](task, features, models, log_len=log_len)
                zs_in = log_zs
                if self.zero_shot and impute is not None and impute.any():
                    zs_in = self._imputed_log_zs(log_zs, pst, obs, impute)
                if self.zero_shot and "cross" in st["input_names_"]:
                    pst = dataclasses.replace(pst, cross=st["priors_"].cross(task, models, zs_in, log_len))
                X, level = self._inputs(pst, zs_in, use if centre == "used" else obs, st["input_names_"], log_probe,
                                        st["scale_"])
                pred = _predict(st["ridge_"], X[use], task)
                if new_weights and st.get("ridge_new_") is not None:  # models new to the KB: their own weights
                    if situations is None:  # the states share the KB models: once per prediction
                        kb = set(st["models_"])
                        situations = np.array([self.situation(m, st["models_"]) if m not in kb else ""
                                               for m in np.asarray(models)[use]])
                    for sit, ridge_new in st["ridge_new_"].items():
                        here = situations == sit
                        if here.any():
                            pred = np.where(here, _predict(ridge_new, X[use], task), pred)
                preds.append(level + pred)
            out[use] = np.mean(preds, axis=0)
        return out, p, use

    @staticmethod
    def _imputed_log_zs(log_zs: np.ndarray, p: PriorValues, obs: np.ndarray, which: np.ndarray) -> np.ndarray:
        """``log_zs`` with the ``which`` candidates' values imputed from the nearest source cells:
        the observed candidates' mean plus the candidate's relative log zero-shot MASE there
        (relative to the observed candidates' mean there)."""
        out = np.array(log_zs, dtype=float)
        out[which] = log_zs[obs].mean() + p.zero_shot_knn[which] - p.zero_shot_knn[obs].mean()
        return out

    def _state(self) -> dict:
        return {"priors_": self.priors_, "input_names_": self.input_names_, "ridge_": self.ridge_,
                "scale_": self.scale_, "ridge_new_": getattr(self, "ridge_new_", None),
                "models_": getattr(self, "models_", np.array([]))}

    def out_of_domain(self, task: str, nearest: float) -> float:
        """Residual scale for a target whose nearest source cell is at ``nearest``: 1 inside what
        leave-one-dataset-out saw (its largest nearest distance for the task), else the ratio."""
        d = self.oof_distance_[(self.tasks_ == task) & np.isfinite(self.oof_distance_)]
        if d.size == 0 or not np.isfinite(nearest):
            return 1.0
        return float(max(1.0, nearest / d.max()))

    def residual_matrix(self, task: str, models: list[str], gain: bool = False,
                        imputed: np.ndarray | None = None) -> np.ndarray:
        """(n_cells, G) residuals of the task's source cells for ``models``, NaN where unobserved
        (``gain``: of the gain model). ``imputed`` (G,) bool: candidates whose zero-shot input is
        imputed get the zero-shot weight times the same cells' imputation errors added (averaged
        over the configurations like the predictions)."""
        R = self._rows(task, models, self.gain_residuals_ if gain else self.residuals_)
        if imputed is not None and imputed.any() and not gain:
            E = self._rows(task, models, self.imputation_errors_)
            R[:, imputed] = R[:, imputed] + E[:, imputed]
        return R[np.isfinite(R).any(axis=1)]

    def _rows(self, task: str, models: list[str], source: np.ndarray) -> np.ndarray:
        """(n_task_cells, G) of a (C, G_kb) matrix for ``models`` (NaN for models not in the KB)."""
        rows = np.flatnonzero(self.tasks_ == task)
        if rows.size == 0:
            rows = np.arange(len(self.tasks_))
        index = {m: g for g, m in enumerate(self.models_)}
        R = np.full((rows.size, len(models)), np.nan)
        for j, m in enumerate(models):
            if m in index:
                R[:, j] = source[rows, index[m]]
        return R

    def p_below(self, R: np.ndarray, point: np.ndarray, threshold: np.ndarray) -> np.ndarray:
        """(G,) P(point + residual < threshold), each model over its own residuals (the pool's
        when it has fewer than ``min_model_residuals``)."""
        pooled = R[np.isfinite(R)]
        out = np.full(R.shape[1], np.nan)
        for j in range(R.shape[1]):
            r = R[:, j][np.isfinite(R[:, j])]
            r = r if r.size >= self.min_model_residuals else pooled
            if r.size:
                out[j] = float(np.mean(point[j] + r < threshold[j]))
        return out

    def intervals(self, R: np.ndarray, coverage: float = 0.9,
                  pools: dict[int, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Per model, the (lower, upper) residual quantiles of a central ``coverage`` interval,
        finite-sample corrected (split conformal: level ceil((n+1) q) / n); a model with too few
        residuals of its own takes ``pools[j]`` where given, else all of ``R``'s."""
        pooled = R[np.isfinite(R)]
        a = (1.0 - coverage) / 2.0
        lo, hi = np.empty(R.shape[1]), np.empty(R.shape[1])
        for j in range(R.shape[1]):
            r = R[:, j][np.isfinite(R[:, j])]
            if r.size < self.min_model_residuals:
                r = (pools or {}).get(j, pooled)
            lo[j], hi[j] = _conformal_quantiles(r, a)
        return lo, hi

    def joint_residuals(self, R: np.ndarray, n_samples: int, seed: int,
                        pools: dict[int, np.ndarray] | None = None) -> np.ndarray:
        """(n_samples, G) residual vectors: a random source cell's residuals per sample; a model
        unobserved in that cell takes a random residual of its own (else of ``pools[j]`` where
        given, else of all of ``R``'s)."""
        rng = np.random.default_rng(seed)
        n, G = R.shape
        pooled = R[np.isfinite(R)]
        S = R[rng.integers(0, n, size=n_samples)]
        for j in range(G):
            miss = ~np.isfinite(S[:, j])
            if miss.any():
                own = R[:, j][np.isfinite(R[:, j])]
                src = own if own.size >= self.min_model_residuals else (pools or {}).get(j, pooled)
                S[miss, j] = rng.choice(src, size=int(miss.sum()))
        return S


class _Linear:
    """The fitted state of a scikit-learn linear model (``Ridge`` or a binary
    ``LogisticRegression``), without scikit-learn: the fitted ranker is cached and unpickled by
    every ``predict``, and importing ``sklearn.linear_model`` to unpickle the originals cost a
    weight-free predict about 0.3 CPU-seconds (2026-12-07, with scipy's share already paid).
    ``predict`` / ``predict_proba`` give the originals' results."""

    def __init__(self, coef: np.ndarray, intercept: float, logistic: bool):
        self.coef_, self.intercept_, self.logistic = np.asarray(coef, dtype=np.float64).ravel(), float(intercept), logistic

    @classmethod
    def of(cls, model) -> "_Linear":
        logistic = hasattr(model, "predict_proba")
        if logistic and len(getattr(model, "classes_", [0, 1])) != 2:
            raise ValueError("only a binary classifier can be frozen")
        return cls(model.coef_, np.ravel(model.intercept_)[0] if np.ndim(model.intercept_) else model.intercept_, logistic)

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(X, dtype=np.float64) @ self.coef_ + self.intercept_

    def predict(self, X: np.ndarray) -> np.ndarray:
        z = self.decision_function(X)
        return (z > 0).astype(int) if self.logistic else z

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        if not self.logistic:
            raise AttributeError("predict_proba: not a classifier")
        p = 0.5 * (1.0 + np.tanh(0.5 * self.decision_function(X)))  # the logistic function, overflow-free
        return np.column_stack([1.0 - p, p])


def _predict(weights, X: np.ndarray, task: str) -> np.ndarray:
    return weights.predict(X, task) if isinstance(weights, _TaskWeights) else weights.predict(X)


def _coef(weights, task: str) -> np.ndarray:
    return weights.coef_for(task) if isinstance(weights, _TaskWeights) else weights.coef_


class _TaskWeights:
    """:class:`_RankWeights` on all cells, and per task where it has ``min_cells`` cells or more."""

    def __init__(self, min_cells: int | None = 8):
        self.min_cells = min_cells

    def fit(self, X_rows: list[np.ndarray], y_rows: list[np.ndarray], tasks: list[str]) -> "_TaskWeights":
        self.pooled_ = _RankWeights().fit(X_rows, y_rows)
        self.by_task_ = {}
        tasks = np.asarray(tasks)
        if self.min_cells is not None and len(np.unique(tasks)) > 1:
            for t in np.unique(tasks):
                rows = np.flatnonzero(tasks == t)
                if len(rows) >= self.min_cells:
                    self.by_task_[str(t)] = _RankWeights().fit([X_rows[i] for i in rows], [y_rows[i] for i in rows])
        self.coef_ = self.pooled_.coef_
        return self

    def coef_for(self, task: str) -> np.ndarray:
        return self.by_task_.get(str(task), self.pooled_).coef_

    def predict(self, X: np.ndarray, task: str | None = None) -> np.ndarray:
        return X @ (self.coef_ if task is None else self.coef_for(task))


def _borrow(p: PriorValues, neighbours: list[np.ndarray | None]) -> PriorValues:
    """``p`` with each model's per-model priors replaced by the mean over its ``neighbours`` (column
    indices of the same candidates; None: kept; empty: the value of a model that borrows nothing,
    as :class:`Priors` gives it: 0, the gains the neighbours' gap), as if every model were new to the KB."""
    gap = p.gap_knn if np.isfinite(p.gap_knn) else 0.0

    def b(v: np.ndarray, default: float = 0.0) -> np.ndarray:
        return np.array([v[g] if o is None else v[o].mean() if len(o) else default for g, o in enumerate(neighbours)])

    return dataclasses.replace(p, leaderboard=b(p.leaderboard), knn=b(p.knn), gain_leaderboard=b(p.gain_leaderboard, gap),
                               gain_knn=b(p.gain_knn, gap), zero_shot_knn=b(p.zero_shot_knn),
                               cross=None if p.cross is None else b(p.cross), meta=None if p.meta is None else b(p.meta))


def _mean_row_spearman(A: np.ndarray, B: np.ndarray) -> float:
    """Mean over rows of Spearman ρ(A[i], B[i]) on the entries finite in both (average ranks for
    ties, as ``scipy.stats.spearmanr``); rows with fewer than 3 such entries, or where either is
    constant on them, are skipped (NaN when every row is).

    A, B: (rows, columns). Rows are grouped by their pattern of finite entries, so each group is
    ranked in one vectorised call (:func:`timetic.estimate.priors.average_ranks`)."""

    ok = np.isfinite(A) & np.isfinite(B)
    patterns, inverse = np.unique(ok, axis=0, return_inverse=True)
    rhos = []
    for g, mask in enumerate(patterns):
        if mask.sum() < 3:
            continue
        rows = np.flatnonzero(inverse.ravel() == g)
        ra, rb = (average_ranks(M[np.ix_(rows, mask)], axis=1) for M in (A, B))
        ra, rb = ra - ra.mean(axis=1, keepdims=True), rb - rb.mean(axis=1, keepdims=True)
        na, nb = np.linalg.norm(ra, axis=1), np.linalg.norm(rb, axis=1)
        keep = (na > 0) & (nb > 0)
        rhos.append((ra[keep] * rb[keep]).sum(axis=1) / (na[keep] * nb[keep]))
    rhos = np.concatenate(rhos) if rhos else np.array([])
    return float(rhos.mean()) if len(rhos) else float("nan")


class _RankWeights:
    """Stacking weights that maximise the mean within-cell Spearman ρ (see ``weights``)."""

    def fit(self, X_rows: list[np.ndarray], y_rows: list[np.ndarray], step: float = 0.1) -> "_RankWeights":
        m = X_rows[0].shape[1]
        grid = _simplex_grid(m, int(round(1 / step)))
        score = np.zeros(len(grid))
        by_size: dict[int, list[int]] = {}  # cells with as many candidates are ranked in one call
        for i, y in enumerate(y_rows):
            if len(y) >= 3:
                by_size.setdefault(len(y), []).append(i)
        for idx in by_size.values():
            Y = np.stack([y_rows[i] for i in idx])  # (cells, n)
            ry = average_ranks(Y, axis=1)
            ry = ry - ry.mean(axis=1, keepdims=True)
            ny = np.linalg.norm(ry, axis=1, keepdims=True)
            ry = ry / np.where(ny > 0, ny, 1.0)
            R = average_ranks(np.stack([X_rows[i] for i in idx]) @ grid.T, axis=1)  # (cells, n, points)
            R = R - R.mean(axis=1, keepdims=True)
            norm = np.linalg.norm(R, axis=1)  # (cells, points)
            dot = np.einsum("cnp,cn->cp", R, ry)
            score += np.where(norm > 0, dot / np.where(norm > 0, norm, 1.0), 0.0).sum(axis=0)
        # ties between grid points: the one nearest equal weights (stable, no arbitrary corner)
        best = np.flatnonzero(score >= score.max() - 1e-9)
        w = grid[best[np.argmin(np.abs(grid[best] - 1.0 / m).sum(axis=1))]]
        s = np.concatenate([X @ w for X in X_rows])
        y = np.concatenate(y_rows)
        # (a weighted sum that is zero up to rounding has no scale: 0, not s·y / ~1e-30)
        b = float(s @ y / (s @ s)) if s @ s > 1e-12 * max(float(y @ y), 1e-300) else 0.0
        self.w_, self.scale_ = w, max(b, 0.0)
        self.coef_ = self.scale_ * w
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return X @ self.coef_


@functools.lru_cache(maxsize=16)
def _simplex_grid(m: int, n: int) -> np.ndarray:
    """(points, m) weights in steps of 1/n that are >= 0 and sum to 1, in lexicographic order of
    their numerators (read-only: shared between fits)."""
    def compositions(m: int, n: int):  # the tuples of m non-negative ints summing to n, in that order
        if m == 1:
            yield (n,)
            return
        for first in range(n + 1):
            for rest in compositions(m - 1, n - first):
                yield (first, *rest)

    grid = np.array(list(compositions(m, n)), dtype=float).reshape(-1, m) / n
    grid.setflags(write=False)
    return grid


def _ranks_over(values: np.ndarray, obs: np.ndarray) -> np.ndarray:
    """(G,) centred ranks / count of ``values`` over the ``obs`` candidates; the others get the
    rank they would take among them (so an imputed candidate sits where its value puts it)."""
    from timetic.estimate.priors import _centred_ranks

    out = np.full(len(values), np.nan)
    if obs.any():
        out[obs] = _centred_ranks(values[obs][None, :])[0]
        ref = np.sort(values[obs])
        n = obs.sum()
        for j in np.flatnonzero(~obs & np.isfinite(values)):
            r = np.searchsorted(ref, values[j]) + 0.5
            out[j] = (r - (n + 1) / 2) / n
    return out


#: added to every P(best) frequency before the temperature (a model never best in the samples keeps
#: a little), the same when the temperature is fitted and when it is applied.
P_BEST_FLOOR = 1.0 / 400


def _tempered(p: np.ndarray, a: float) -> np.ndarray:
    """p ∝ (p + P_BEST_FLOOR)^a, normalised."""
    q = (p + P_BEST_FLOOR) ** a
    return q / q.sum()


def _centred_rank(x: np.ndarray | None, n: int) -> np.ndarray:
    """(n,) ranks of the finite entries of ``x`` (ties averaged) scaled to -0.5 (smallest) ..
    0.5 (largest); 0 for the others, for all when fewer than two are finite or ``x`` is None."""
    out = np.zeros(n)
    if x is None:
        return out
    x = np.asarray(x, dtype=float)
    ok = np.isfinite(x)
    if ok.sum() < 2:
        return out
    out[ok] = (average_ranks(x[ok]) - 1.0) / (ok.sum() - 1.0) - 0.5
    return out


def _logit(p: np.ndarray, eps: float = 0.01) -> np.ndarray:
    p = np.clip(p, eps, 1 - eps)
    return np.log(p / (1 - p))


def _conformal_quantiles(r: np.ndarray, a: float) -> tuple[float, float]:
    n = r.size
    if n == 0:
        return -np.inf, np.inf
    with _quiet():
        q_hi = min(1.0, math.ceil((n + 1) * (1.0 - a)) / n)
        q_lo = max(0.0, 1.0 - q_hi)
        return float(np.quantile(r, q_lo)), float(np.quantile(r, q_hi))
