"""Priors: the cheap rankings a user already has, computed from source cells, as learner inputs.

Scores are *relative*: a model's log mean fine-tuned MASE minus the mean over the models of its
cell (``scale="log"``), or its rank in the cell, centred and divided by the number of models
(``scale="rank"``: one model that fails by a factor of 50 on one dataset moves a rank prior by
at most one place), so that easy and hard datasets weigh alike and only the order inside a cell
matters.

- ``leaderboard``: a model's mean relative score over the source cells of the task;
- ``knn``: its mean over the ``k`` source cells of the task nearest to the target in meta-feature
  space (features standardised over the source cells and clipped to ±``clip`` standard deviations,
  so that one feature a target takes to an extreme cannot decide alone; distance = root mean
  squared difference; with ``components``, this prior alone takes its neighbours over the first
  principal components of those standardised features instead of all of them: many of the window
  features vary together or not with fine-tuning results, and a few components find neighbours
  that rank the models better; the other kNN quantities keep the neighbours over all features);
- ``gain_leaderboard`` / ``gain_knn``: a model's mean log(fine-tuned / zero-shot) over the source
  cells of the task / over the nearest ones (what fine-tuning did to it there);
- ``zero_shot_knn``: a model's mean relative log zero-shot MASE over the nearest source cells
  (what its zero-shot score is likely to be, relative to the others, when its weights are absent);
- ``level_knn`` / ``gap_knn``: the mean over those neighbours of a cell's mean log fine-tuned MASE,
  and of its mean log(fine-tuned / zero-shot): the absolute level of the target's scores;
- ``cross`` (with the target's zero-shot scores): every model's relative fine-tuned score
  predicted from *all* the models' zero-shot ranks on the target, the dataset's log series length
  and the task, by one multi-output ridge regression over the source cells (:meth:`Priors.cross`):
  which models fine-tune well where a given set of models is good zero-shot. The zero-shot
  ranking of 13 models describes a dataset as the models see it, which the meta-features do not
  (on KB v2, leave one dataset out: Spearman 0.51 alone, against 0.43 for the zero-shot ranking and
  0.36 for the kNN prior).
- ``meta`` (without zero-shot scores, the weight-free counterpart of ``cross``): every model's
  relative fine-tuned score predicted from the first ``meta_components`` principal components of
  the target's standardised, clipped meta-features (each scaled to unit variance over the source
  cells), its log series length and the task, by one multi-output ridge regression over the source
  cells (:meth:`Priors.meta`). Where the kNN prior averages the 5 nearest datasets, the regression
  reads every source dataset along the few directions in which the datasets differ.

A model without source cells for the task (a new model) borrows from the ``n_profile_neighbours``
source models nearest in standardised entropy-profile space (how many: chosen by
:class:`timetic.estimate.stack.StackedRanker` on the source cells); without profiles it gets 0 (the mean).
With model families (``Priors.fit(..., families=)``; timetic's are the adapters), a new model whose
family has source models borrows from those alone (nearest first), and one whose family has none
from its ``n_other_family_neighbours`` nearest source models, 0 meaning none: it then gets 0. On KB
v2 the entropy profile finds a model's sibling (its nearest other model is of its family for 11 of
the 12 zoo models) but says nothing useful across families: placing each model among the others'
observed scores by the mean score of its 1-3 nearest other-family models ranks worse (mean
within-cell Spearman 0.913-0.935) than placing it at the mean of the others (0.943; ``StackedRanker``'s
``other_family_neighbour_scores_``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from timetic.estimate.cells import Cells


@dataclass
class PriorValues:
    """Priors for one target cell and G candidate models.

    Attributes:
        leaderboard: (G,) relative score prior.
        knn: (G,) relative score prior from the nearest source cells.
        gain_leaderboard: (G,) mean log(fine-tuned / zero-shot) over the task's source cells.
        gain_knn: (G,) the same over the nearest source cells.
        zero_shot_knn: (G,) relative log zero-shot MASE over the nearest source cells.
        level_knn: mean log fine-tuned MASE of the nearest source cells.
        gap_knn: mean log(fine-tuned / zero-shot) of the nearest source cells (NaN without zero-shot).
        neighbours: (k,) dataset ids of the nearest source cells over all the features, nearest
            first (with ``components`` the ``knn`` prior's own neighbours may differ).
        distance: (k,) their distances.
        nearest: the distance to the nearest source cell (what "outside the knowledge base" is
            judged by).
        nearest_id: that cell's dataset id.
        cross: (G,) the ``cross`` prior (module docstring), or None without zero-shot scores.
        meta: (G,) the ``meta`` prior (module docstring), or None where it is not fitted.
    """

    leaderboard: np.ndarray
    knn: np.ndarray
    gain_leaderboard: np.ndarray
    gain_knn: np.ndarray
    zero_shot_knn: np.ndarray
    level_knn: float
    gap_knn: float
    neighbours: np.ndarray
    distance: np.ndarray
    nearest: float = float("inf")
    nearest_id: str = ""
    cross: np.ndarray | None = None
    meta: np.ndarray | None = None


class Priors:
    """Leaderboard and kNN priors over source cells.

    Args:
        k: number of nearest source cells.
        n_profile_neighbours: source models a new model borrows its priors from (with ``families``:
            models of its family, where the source has any).
        n_other_family_neighbours: with ``families``, source models (of other families) that a new
            model whose family has no source model borrows from; 0: none (it gets 0, the mean);
            ``None``: ``n_profile_neighbours``.
        components: the ``knn`` prior's nearest source cells by distance over this many principal
            components of the standardised, clipped source features of the task (``None``: over
            all the features, as every other kNN quantity).
        cross_alpha: ridge penalty of the ``cross`` prior (:meth:`cross`); ``None``: no ``cross``
            prior.
        meta_components: principal components the ``meta`` prior reads (:meth:`meta`); ``None``: no
            ``meta`` prior.
        meta_alpha: its ridge penalty.
    """

    def __init__(self, k: int = 5, n_profile_neighbours: int = 2, clip: float = 5.0, scale: str = "log",
                 components: int | None = None, cross_alpha: float | None = 5.0, meta_components: int | None = None,
                 meta_alpha: float = 5.0, n_other_family_neighbours: int | None = None):
        self.n_other_family_neighbours = n_other_family_neighbours
        self.cross_alpha = cross_alpha
        self.meta_components = meta_components
        self.meta_alpha = meta_alpha
        self.k = k
        self.scale = scale
        self.n_profile_neighbours = n_profile_neighbours
        self.clip = clip
        self.components = components

    def fit(self, cells: Cells, profiles: dict[str, np.ndarray] | None = None,
            families: dict[str, str] | None = None) -> "Priors":
        """``profiles``: model id -> entropy profile (L,), for every model that may be a candidate;
        ``families``: model id -> family (which models are siblings; None: unknown)."""
        self.cells_ = cells
        self.families_ = dict(families or {})
        with np.errstate(invalid="ignore"), _quiet():
            self.rel_ = cells.log_ft - np.nanmean(cells.log_ft, axis=1, keepdims=True)
            if self.scale == "rank":
                self.rel_ = _centred_ranks(cells.log_ft)
            elif self.scale != "log":
                raise ValueError(f"unknown prior scale {self.scale!r}; use 'log' or 'rank'")
            self.level_ = np.nanmean(cells.log_ft, axis=1)
            self.zs_rel_ = cells.log_zs - np.nanmean(cells.log_zs, axis=1, keepdims=True)
            self.ratio_ = cells.log_ft - cells.log_zs
            self.gap_ = np.nanmean(self.ratio_, axis=1)
        self.profiles_ = profiles or {}
        self.index_ = {m: g for g, m in enumerate(cells.models)}
        self._bases: dict[str, tuple] = {}  # task -> principal-component basis (components)
        self.cross_ = self._fit_cross(cells)
        self.meta_ = self._fit_meta(cells, self.meta_components, self.meta_alpha)
        return self

    #: the ``cross`` regression is fitted only with at least this many source cells per input
    CROSS_CELLS_PER_INPUT = 4

    @staticmethod
    def cross_cells(cells: Cells) -> np.ndarray | None:
        """(C,) bool: the cells the ``cross`` regression on ``cells`` is fitted on (two or more
        zero-shot scores), or None when they number fewer than :attr:`CROSS_CELLS_PER_INPUT` per
        input of the regression (one zero-shot rank per model, the log length, one indicator per
        task): a small KB, where the regression would fit chance."""
        has = np.isfinite(cells.log_zs).sum(axis=1) >= 2
        inputs = len(cells.models) + 1 + len(np.unique(cells.tasks))
        return has if has.sum() >= Priors.CROSS_CELLS_PER_INPUT * inputs else None

    def _cross_design(self, zs_ranks: np.ndarray, log_len: np.ndarray, tasks: np.ndarray) -> np.ndarray:
        """(n, G_src + 1 + T) inputs of the ``cross`` regression: centred zero-shot ranks (0 where a
        model has none), log length minus the source mean (0 where unknown), task indicators."""
        len_c = np.nan_to_num(np.asarray(log_len, dtype=float) - self.cross_len_mean_)
        onehot = (np.asarray(tasks)[:, None] == self.cross_tasks_[None, :]).astype(float)
        return np.column_stack([np.nan_to_num(zs_ranks), len_c, onehot])

    def _fit_cross(self, cells: Cells) -> tuple[np.ndarray, np.ndarray] | None:
        """(coef (q, G_src), intercept (G_src,)) of the ``cross`` ridge on the source cells with
        zero-shot scores, or None when they are too few (:meth:`cross_cells`) or without ``cross_alpha``."""
        has = None if self.cross_alpha is None else self.cross_cells(cells)
        if has is None:
            return None
        log_len = cells.log_len if cells.log_len is not None else np.full(len(cells), np.nan)
        with _quiet():
            self.cross_len_mean_ = float(np.nanmean(log_len[has])) if np.isfinite(log_len[has]).any() else 0.0
        self.cross_tasks_ = np.unique(cells.tasks[has])
        A = self._cross_design(_centred_ranks(cells.log_zs[has]), log_len[has], cells.tasks[has])
        return _ridge(A, np.nan_to_num(self.rel_[has]), self.cross_alpha)  # unobserved: at the cell's mean

    def cross(self, task: str, models: list[str] | np.ndarray, log_zs: np.ndarray,
              log_len: float | None = None) -> np.ndarray | None:
        """(G,) the ``cross`` prior of ``models`` on a target where their log zero-shot MASE are
        ``log_zs`` (G,; NaN: none): a multi-output ridge regression (penalty ``cross_alpha``),
        fitted on the source cells, of every KB model's relative fine-tuned score on the KB models'
        centred zero-shot ranks (the target's are ranked among the KB models that are candidates
        with a score; the others count at the mean), the log10 of the mean series length over the
        window length (``log_len``; unknown: the source mean) and the task. A candidate that is
        not a KB model borrows from its profile neighbours. None when the source cells with zero-shot
        scores are too few (:meth:`cross_cells`)."""
        if self.cross_ is None:
            return None
        coef, intercept = self.cross_
        where = {m: i for i, m in enumerate(models)}
        z = np.array([log_zs[where[m]] if m in where else np.nan for m in self.cells_.models], dtype=float)
        if np.isfinite(z).sum() < 2:
            z = np.full(len(z), np.nan)
        A = self._cross_design(_centred_ranks(z[None, :]), np.array([np.nan if log_len is None else log_len]),
                               np.array([task]))
        y = (A @ coef + intercept)[0]
        return np.array([self._value(y, m) for m in models])

    @staticmethod
    def meta_cells_enough(cells: Cells, n_components: int) -> bool:
        """Whether ``cells`` number at least :attr:`CROSS_CELLS_PER_INPUT` per input of the ``meta``
        regression with ``n_components`` components (the components, the log length, one indicator
        per task) and have at least ``n_components + 1`` cells, as the ``cross`` rule."""
        inputs = n_components + 1 + len(np.unique(cells.tasks))
        return len(cells) >= max(Priors.CROSS_CELLS_PER_INPUT * inputs, n_components + 1)

    def _fit_meta(self, cells: Cells, n_components: int | None, alpha: float) -> dict | None:
        """Fitted state of the ``meta`` ridge on ``cells`` (:meth:`meta`), or None without
        ``n_components`` or with too few cells (:meth:`meta_cells_enough`)."""
        if n_components is None or not self.meta_cells_enough(cells, n_components):
            return None
        if getattr(self, "_meta_basis", (None,))[0] is not cells:  # one SVD per cells, any components
            F = cells.features
            with _quiet():
                mu, sd = np.nanmean(F, axis=0), np.nanstd(F, axis=0)
            mu, sd = np.nan_to_num(mu), np.where(np.isfinite(sd) & (sd > 0), sd, 1.0)
            with _quiet():
                Z = np.nan_to_num(np.clip((F - mu) / sd, -self.clip, self.clip))  # missing: the mean
            centre = Z.mean(axis=0)
            _, S, Vt = np.linalg.svd(Z - centre, full_matrices=False)
            self._meta_basis = (cells, mu, sd, Z, centre, S, Vt)
        _, mu, sd, Z, centre, S, Vt = self._meta_basis
        V = Vt[:n_components].T
        spread = S[:n_components] / np.sqrt(len(Z))
        spread = np.where(spread > 1e-12, spread, 1.0)
        log_len = cells.log_len if cells.log_len is not None else np.full(len(cells), np.nan)
        with _quiet():
            len_mean = float(np.nanmean(log_len)) if np.isfinite(log_len).any() else 0.0
        state = {"mu": mu, "sd": sd, "centre": centre, "V": V, "spread": spread, "len_mean": len_mean,
                 "tasks": np.unique(cells.tasks)}
        A = self._meta_design(state, Z, log_len, cells.tasks)
        coef, intercept = _ridge(A, np.nan_to_num(self.rel_), alpha)  # unobserved: at the cell's mean
        state.update(coef=coef, intercept=intercept)
        return state

    @staticmethod
    def _meta_design(state: dict, Z: np.ndarray, log_len: np.ndarray, tasks: np.ndarray) -> np.ndarray:
        """(n, components + 1 + T) inputs of the ``meta`` regression from standardised, clipped
        features ``Z`` (n, p): component scores over their source spread, the log length minus the
        source mean (0 where unknown), task indicators."""
        P = (Z - state["centre"]) @ state["V"] / state["spread"]
        len_c = np.nan_to_num(np.asarray(log_len, dtype=float) - state["len_mean"])
        onehot = (np.asarray(tasks)[:, None] == state["tasks"][None, :]).astype(float)
        return np.column_stack([P, len_c, onehot])

    def meta(self, task: str, features: np.ndarray, models: list[str] | np.ndarray,
             log_len: float | None = None) -> np.ndarray | None:
        """(G,) the ``meta`` prior of ``models`` on a target with mean features (p,): a multi-output
        ridge regression (penalty ``meta_alpha``), fitted on the source cells, of every KB model's
        relative fine-tuned score on the first ``meta_components`` principal components of the
        features (standardised over all the source cells and clipped to ±``clip``, missing values at
        the mean; each component scaled to unit variance), the log10 of the mean series length over
        the window length (``log_len``; unknown: the source mean) and the task. A candidate that is
        not a KB model borrows from its profile neighbours. None when the prior is not fitted."""
        st = self.meta_
        if st is None:
            return None
        with _quiet():
            z = np.nan_to_num(np.clip((np.asarray(features, dtype=float) - st["mu"]) / st["sd"], -self.clip, self.clip))
        A = self._meta_design(st, z[None, :], np.array([np.nan if log_len is None else log_len]), np.array([task]))
        y = (A @ st["coef"] + st["intercept"])[0]
        return np.array([self._value(y, m) for m in models])

    def source_rows(self, task: str) -> np.ndarray:
        """Indices of the source cells of ``task`` (all cells when the task has none)."""
        rows = np.flatnonzero(self.cells_.tasks == task)
        return rows if rows.size else np.arange(len(self.cells_))

    def distances(self, task: str, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(rows, distances) of the task's source cells to a target with mean features (p,)."""
        rows, zF, zt = self._standardised(task, features)
        return rows, _rms_distances(zF, zt)

    def _standardised(self, task: str, features: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(rows, source z (n, p), target z (p,)): the task's source cells' and the target's
        features standardised over the source cells and clipped (NaN where missing)."""
        rows = self.source_rows(task)
        F = self.cells_.features[rows]
        mu, sd = np.nanmean(F, axis=0), np.nanstd(F, axis=0)
        sd = np.where(sd > 0, sd, 1.0)
        with _quiet():
            zF = np.clip((F - mu) / sd, -self.clip, self.clip)
            zt = np.clip((features - mu) / sd, -self.clip, self.clip)
        return rows, zF, zt

    def component_distances(self, task: str, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(rows, distances) of the task's source cells to a target over the first ``components``
        principal components of the standardised, clipped source features (missing values at the
        mean); root mean squared difference of the component scores."""
        rows, _, zt = self._standardised(task, features)
        return rows, self._component_distances(task, zt)

    def _component_distances(self, task: str, zt: np.ndarray) -> np.ndarray:
        """:meth:`component_distances` of a target already standardised (``zt``, p)."""
        if task not in self._bases:
            _, zF, _ = self._standardised(task, np.zeros(self.cells_.features.shape[1]))
            A = np.nan_to_num(zF)
            centre = A.mean(axis=0)
            _, _, Vt = np.linalg.svd(A - centre, full_matrices=False)
            V = Vt[: self.components].T
            self._bases[task] = (centre, V, (A - centre) @ V)
        centre, V, scores = self._bases[task]
        t = (np.nan_to_num(zt) - centre) @ V
        d = np.sqrt(((scores - t) ** 2).mean(axis=1))
        return np.where(np.isfinite(d), d, np.inf)

    def __call__(self, task: str, features: np.ndarray, models: list[str] | np.ndarray,
                 log_zs: np.ndarray | None = None, log_len: float | None = None) -> PriorValues:
        """Priors of ``models`` for a target cell with mean features (p,); with the candidates' log
        zero-shot MASE ``log_zs`` (G,) also the ``cross`` prior; the ``meta`` prior where it is
        fitted (both read the log10 length ``log_len``)."""
        rows, zF, zt = self._standardised(task, features)  # once: both distances read it
        dist = _rms_distances(zF, zt)
        order = np.argsort(dist, kind="stable")[: self.k]
        near = rows[order]
        # the kNN ranking prior alone reads the neighbours over the principal components (what
        # ``components`` is chosen for); gains, zero-shot scores and the level keep ``near``
        near_rel = near if self.components is None else rows[
            np.argsort(self._component_distances(task, zt), kind="stable")[: self.k]]
        with _quiet():
            lb_all = np.nanmean(self.rel_[rows], axis=0)  # (G_src,)
            kn_all = np.nanmean(self.rel_[near_rel], axis=0)
            kn_all = np.where(np.isfinite(kn_all), kn_all, lb_all)
            glb_all = np.nanmean(self.ratio_[rows], axis=0)
            gkn_all = np.nanmean(self.ratio_[near], axis=0)
            gkn_all = np.where(np.isfinite(gkn_all), gkn_all, glb_all)
            zkn_all = np.nanmean(self.zs_rel_[near], axis=0)
            zkn_all = np.where(np.isfinite(zkn_all), zkn_all, np.nanmean(self.zs_rel_[rows], axis=0))
            level = float(np.nanmean(self.level_[near]))
            gap = float(np.nanmean(self.gap_[near]))
        lb = np.array([self._value(lb_all, m) for m in models])
        kn = np.array([self._value(kn_all, m) for m in models])
        gap0 = gap if np.isfinite(gap) else 0.0
        glb = np.array([self._value(glb_all, m, gap0) for m in models])
        gkn = np.array([self._value(gkn_all, m, gap0) for m in models])
        zkn = np.array([self._value(zkn_all, m) for m in models])
        cross = None if log_zs is None else self.cross(task, models, np.asarray(log_zs, dtype=float), log_len)
        return PriorValues(lb, kn, glb, gkn, zkn, level, gap, self.cells_.datasets[near], dist[order],
                           float(dist[order[0]]) if order.size else float("inf"),
                           str(self.cells_.datasets[near[0]]) if order.size else "", cross,
                           self.meta(task, features, models, log_len))

    def _value(self, values: np.ndarray, model: str, default: float = 0.0) -> float:
        g = self.index_.get(model)
        if g is not None and np.isfinite(values[g]):
            return float(values[g])
        return self._borrowed(values, model, default)

    def _borrowed(self, values: np.ndarray, model: str, default: float = 0.0) -> float:
        """A model without source cells: mean over its nearest source models in profile space (with
        ``families``: of its family where the source has any, else :attr:`n_other_family_neighbours`)."""
        near = self.lenders(model, [m for g, m in enumerate(self.cells_.models) if np.isfinite(values[g])])
        return float(np.mean([values[self.index_[m]] for m in near])) if near else default

    def lenders(self, model: str, have: list[str] | None = None) -> list[str]:
        """The source models (among ``have``, default all) a model without source cells borrows
        its priors from, nearest in profile first; empty: none (its priors are the mean)."""
        have = [m for m in (self.cells_.models if have is None else have) if m in self.profiles_]
        if model not in self.profiles_ or not have:
            return []
        pool, n = np.arange(len(have)), self.n_profile_neighbours
        family = getattr(self, "families_", {}).get(model)
        if family is not None:
            kin = np.array([i for i, m in enumerate(have) if self.families_.get(m) == family], dtype=int)
            if kin.size:
                pool = kin
            elif self.n_other_family_neighbours is not None:
                n = self.n_other_family_neighbours
        if n < 1:
            return []
        d = profile_distances(np.vstack([self.profiles_[m] for m in have]), self.profiles_[model])
        return [str(have[i]) for i in pool[np.argsort(d[pool], kind="stable")[:n]]]


def _ridge(A: np.ndarray, Y: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """(coef (q, k), intercept (k,)) of the multi-output ridge regression of Y (n, k) on A (n, q)
    with an unpenalised intercept (the ``cross`` and ``meta`` priors)."""
    a_mu, y_mu = A.mean(axis=0), Y.mean(axis=0)
    Ac = A - a_mu
    coef = np.linalg.solve(Ac.T @ Ac + alpha * np.eye(A.shape[1]), Ac.T @ (Y - y_mu))
    return coef, y_mu - a_mu @ coef


def profile_distances(P: np.ndarray, profile: np.ndarray) -> np.ndarray:
    """(n,) distances of ``profile`` (L,) to the rows of ``P`` (n, L): root mean squared difference
    of the profiles standardised by ``P``'s per-position standard deviation."""
    sd = P.std(axis=0)
    return np.sqrt((((P - profile) / np.where(sd > 0, sd, 1.0)) ** 2).mean(axis=1))


def _rms_distances(zF: np.ndarray, zt: np.ndarray) -> np.ndarray:
    """(n,) root mean squared differences of the rows of ``zF`` (n, p) to ``zt`` (p,) over the
    features both have; inf where they share none."""
    with _quiet():
        d = np.sqrt(np.nanmean((zF - zt) ** 2, axis=1))
    return np.where(np.isfinite(d), d, np.inf)


def average_ranks(values: np.ndarray, axis: int = -1) -> np.ndarray:
    """Ranks 1..n along ``axis`` with ties averaged, as ``scipy.stats.rankdata(values, axis=axis,
    nan_policy="omit")`` gives them (NaN stays NaN, the other values rank among themselves), in a
    few vectorised numpy calls: the stacking fit ranks thousands of small arrays, where rankdata's
    per-call overhead dominated the fit (tests/test_stack.py checks the two agree)."""
    a = np.moveaxis(np.asarray(values, dtype=np.float64), axis, -1)
    n = a.shape[-1]
    if a.size == 0:
        return np.moveaxis(a.copy(), -1, axis)
    order = np.argsort(a, axis=-1, kind="stable")  # NaN sorts last
    s = np.take_along_axis(a, order, axis=-1)
    pos = np.broadcast_to(np.arange(n), s.shape)
    start = np.ones(s.shape, dtype=bool)
    start[..., 1:] = s[..., 1:] != s[..., :-1]  # a new tie block (every NaN is its own)
    end = np.ones(s.shape, dtype=bool)
    end[..., :-1] = start[..., 1:]
    first = np.maximum.accumulate(np.where(start, pos, 0), axis=-1)
    last = np.flip(np.minimum.accumulate(np.flip(np.where(end, pos, n), axis=-1), axis=-1), axis=-1)
    ranks = np.empty(s.shape)
    np.put_along_axis(ranks, order, (first + last) / 2.0 + 1.0, axis=-1)
    ranks[np.isnan(a)] = np.nan
    return np.moveaxis(ranks, -1, axis)


def _centred_ranks(values: np.ndarray) -> np.ndarray:
    """Per row, ranks of the finite values (ties averaged), centred and divided by their count.

    values: (rows, cols); non-finite entries stay NaN."""
    v = np.where(np.isfinite(values), values, np.nan).astype(np.float64)
    if v.size == 0:
        return v
    r = average_ranks(v, axis=1)
    n = np.isfinite(v).sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(np.isfinite(v), (r - (n + 1) / 2) / n, np.nan)


class _quiet(np.errstate):
    """Silence numpy's all-NaN-slice warnings (an empty mean is NaN, handled by the caller)."""

    def __init__(self) -> None:
        super().__init__(invalid="ignore", divide="ignore")

    def __enter__(self):
        import warnings

        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)
        return super().__enter__()

    def __exit__(self, *exc):
        super().__exit__(*exc)
        return self._w.__exit__(*exc)
