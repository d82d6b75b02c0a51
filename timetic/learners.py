"""Learners: tabular regressors that read the knowledge base as context and predict a distribution.

Every learner has the same small interface (scikit-learn style: hyper-parameters in ``__init__``,
work in :meth:`Learner.fit`, learned state ends in ``_``):

- ``fit(X, y)``: X (n, p) float features (NaN = missing), y (n,) finite scores.
- ``predict(X) -> Prediction``: mean, predictive standard deviation, quantiles at ``levels``.
- ``sample_group_means(X, groups, n_samples, seed) -> (n_samples, G)``: joint samples of the mean
  prediction over the rows of each group (group = candidate model, rows = its windows).

Learners, by name (:func:`get_learner`):

- ``gp`` (default; no weights needed): Gaussian process, ARD Matern-5/2 (or RBF) kernel plus
  white noise, on standardised inputs and targets. Its ``sample_group_means`` uses the joint
  posterior of all rows, so windows of one model share their uncertainty correctly.
- ``hgb``: gradient-boosted trees, one squared-error model for the mean and one quantile model per
  level; std = (q95 - q05) / 3.29.
- ``tabpfn``: TabPFN v2 regressor from a local checkpoint (``TIMETIC_TABPFN_MODEL``); the
  ``tabpfn`` package is an optional extra (``pip install "timetic[tabpfn]"``), imported on first use.
- ``tabicl``: TabICL regressor from a local checkpoint (``TIMETIC_TABICL_MODEL``); extra ``tabicl``.

Nothing here downloads weights: ``tabpfn`` and ``tabicl`` need an existing checkpoint file and
raise :class:`~timetic.errors.TimeticInputError` otherwise.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from scipy.linalg import solve_triangular
from scipy.optimize import minimize
from scipy.stats import norm
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

from timetic.errors import TimeticInputError, TimeticWarning

if TYPE_CHECKING:
    from typing_extensions import Self

#: Quantile levels of :class:`Prediction` unless a learner is given others.
DEFAULT_LEVELS: tuple[float, ...] = (0.05, 0.25, 0.5, 0.75, 0.95)
#: Environment variables naming local checkpoints.
TABPFN_ENV = "TIMETIC_TABPFN_MODEL"
TABICL_ENV = "TIMETIC_TABICL_MODEL"
#: z(0.95) - z(0.05): width of a central 90% normal interval in standard deviations.
_Z90_WIDTH = float(norm.ppf(0.95) - norm.ppf(0.05))  # 3.2897


@dataclass
class Prediction:
    """A predictive distribution per row.

    Attributes:
        mean: (n,) predictive mean.
        std: (n,) predictive standard deviation, > 0.
        quantiles: (n, len(levels)) predictive quantiles, non-decreasing along axis 1.
        levels: the quantile levels, increasing, in (0, 1).
    """

    mean: np.ndarray
    std: np.ndarray
    quantiles: np.ndarray
    levels: tuple[float, ...] = DEFAULT_LEVELS

    def __post_init__(self) -> None:
        self.mean = np.asarray(self.mean, dtype=np.float64).reshape(-1)
        self.std = np.asarray(self.std, dtype=np.float64).reshape(-1)
        self.levels = tuple(float(q) for q in self.levels)
        self.quantiles = np.asarray(self.quantiles, dtype=np.float64).reshape(len(self.mean), len(self.levels))
        if self.std.shape != self.mean.shape:
            raise ValueError(f"std has shape {self.std.shape}, mean {self.mean.shape}")

    def __len__(self) -> int:
        return len(self.mean)

    def interval(self, coverage: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
        """Central interval from the stored quantiles (levels (1 -/+ coverage) / 2 must be present)."""
        lo, hi = (1.0 - coverage) / 2.0, (1.0 + coverage) / 2.0
        idx = [_level_index(self.levels, q) for q in (lo, hi)]
        return self.quantiles[:, idx[0]], self.quantiles[:, idx[1]]


def _level_index(levels: tuple[float, ...], q: float) -> int:
    for i, level in enumerate(levels):
        if abs(level - q) < 1e-9:
            return i
    raise KeyError(f"quantile level {q} not among {levels}")


_REGISTRY: dict[str, type[Learner]] = {}


class Learner(BaseEstimator, ABC):
    """Base class: input checks, constant targets, the context limit and output clean-up.

    Subclasses register with ``class MyLearner(Learner, name="mine")`` and implement ``_fit`` and
    ``_predict`` (and may override :meth:`sample_group_means` and :meth:`check_ready`).

    Attributes (after ``fit``):
        n_features_in_: p.
        n_context_rows_: rows the learner was fitted on (after the context limit).
        y_scale_: std of the training y (max(|y|, 1) when constant); sets the std floor.
        constant_: the training y when it was constant (the prediction is then that value), else None.
    """

    name: ClassVar[str] = ""
    #: most context rows the learner reads; ``fit`` subsamples (seeded, with a warning) above it.
    max_context_rows: ClassVar[int] = 10_000
    #: predictive std is floored at this fraction of the training y's std.
    min_std_fraction: ClassVar[float] = 1e-6

    def __init_subclass__(cls, name: str | None = None, **kwargs: Any):
        super().__init_subclass__(**kwargs)
        if name is not None:
            cls.name = name
            _REGISTRY[name] = cls

    # -- the public interface ------------------------------------------------------------------

    def check_ready(self) -> None:
        """Raise TimeticInputError when the learner cannot run here (e.g. missing weights)."""

    def fit(self, X: np.ndarray, y: np.ndarray) -> Self:
        """Fit on X (n, p) and finite y (n,). Non-finite X values are treated as missing (NaN)."""
        levels = self._checked_levels()
        X = _as_2d(X)
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        if X.shape[0] != y.shape[0]:
            raise TimeticInputError(f"X has {X.shape[0]} rows but y has {y.shape[0]}; pass matching rows")
        if X.shape[0] < 2:
            raise TimeticInputError(f"learner '{self.name}' needs at least 2 context rows (got {X.shape[0]})")
        if not np.isfinite(y).all():
            raise TimeticInputError(f"learner '{self.name}' needs finite y; drop rows with NaN/inf scores first")
        self.check_ready()
        if X.shape[0] > self.max_context_rows:
            warnings.warn(
                f"learner '{self.name}' reads at most {self.max_context_rows} context rows; "
                f"using a random {self.max_context_rows} of {X.shape[0]}",
                TimeticWarning,
                stacklevel=2,
            )
            rng = np.random.default_rng(getattr(self, "seed", 0))
            keep = np.sort(rng.choice(X.shape[0], self.max_context_rows, replace=False))
            X, y = X[keep], y[keep]
        self.n_features_in_ = X.shape[1]
        self.n_context_rows_ = X.shape[0]
        self.levels_ = levels
        sd = float(np.std(y))
        self.constant_ = float(y[0]) if np.ptp(y) == 0 else None
        self.y_scale_ = sd if sd > 0 else max(abs(float(y[0])), 1.0)
        if self.constant_ is None:
            self._fit(X, y)
        return self

    def predict(self, X: np.ndarray) -> Prediction:
        """Predictive mean, std (> 0) and monotone quantiles at ``levels`` for each row of X."""
        X = self._checked_X(X)
        if self.constant_ is not None:
            m = X.shape[0]
            mean = np.full(m, self.constant_)
            std = np.full(m, self._std_floor())
            quantiles = mean[:, None] + std[:, None] * norm.ppf(self.levels_)[None, :]
            return Prediction(mean, std, quantiles, self.levels_)
        mean, std, quantiles = self._predict(X)
        return self._clean(mean, std, quantiles)

    def sample_group_means(
        self, X: np.ndarray, groups: np.ndarray, n_samples: int = 1000, seed: int = 0
    ) -> np.ndarray:
        """Joint samples (n_samples, G) of the mean prediction over the rows of each group.

        ``groups`` (m,) holds ints in [0, G), every group present. This default assumes a row's
        error is fully correlated with the other rows of its group (sd of a group mean = mean of
        its rows' stds; conservative) and independent across groups; samples are normal.
        """
        pred = self.predict(X)
        groups, G = _checked_groups(groups, len(pred))
        counts = np.bincount(groups, minlength=G).astype(np.float64)
        mu = np.bincount(groups, weights=pred.mean, minlength=G) / counts
        sd = np.bincount(groups, weights=pred.std, minlength=G) / counts
        rng = np.random.default_rng(seed)
        return mu[None, :] + sd[None, :] * rng.standard_normal((int(n_samples), G))

    # -- for subclasses ------------------------------------------------------------------------

    @abstractmethod
    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        """Fit on checked X (n, p; NaN = missing) and non-constant finite y."""

    @abstractmethod
    def _predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(mean (m,), std (m,), quantiles (m, len(levels_))) for checked X."""

    def _std_floor(self) -> float:
        return max(self.min_std_fraction * self.y_scale_, 1e-12)

    def _clean(self, mean: np.ndarray, std: np.ndarray, quantiles: np.ndarray) -> Prediction:
        mean = np.asarray(mean, dtype=np.float64).reshape(-1)
        std = np.asarray(std, dtype=np.float64).reshape(-1)
        quantiles = np.asarray(quantiles, dtype=np.float64).reshape(len(mean), len(self.levels_))
        if not (np.isfinite(mean).all() and np.isfinite(std).all() and np.isfinite(quantiles).all()):
            raise RuntimeError(f"learner '{self.name}' produced non-finite predictions")
        std = np.maximum(std, self._std_floor())
        return Prediction(mean, std, np.sort(quantiles, axis=1), self.levels_)

    def _checked_levels(self) -> tuple[float, ...]:
        levels = tuple(float(q) for q in getattr(self, "levels", DEFAULT_LEVELS))
        if not levels or any(not 0.0 < q < 1.0 for q in levels) or any(np.diff(levels) <= 0):
            raise TimeticInputError(f"quantile levels must be increasing and inside (0, 1); got {levels}")
        return levels

    def _checked_X(self, X: np.ndarray) -> np.ndarray:
        if not hasattr(self, "n_features_in_"):
            raise NotFittedError(f"learner '{self.name}' is not fitted; call fit first")
        X = _as_2d(X)
        if X.shape[1] != self.n_features_in_:
            raise TimeticInputError(
                f"X has {X.shape[1]} features but learner '{self.name}' was fitted on {self.n_features_in_}; "
                "pass the same feature columns"
            )
        return X


def _as_2d(X: np.ndarray) -> np.ndarray:
    try:
        X = np.array(X, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TimeticInputError(f"learner input X must be numeric; {err}") from None
    if X.ndim != 2:
        raise TimeticInputError(f"X must be 2-D (rows, features); got shape {X.shape}")
    X[~np.isfinite(X)] = np.nan
    return X


def _checked_groups(groups: np.ndarray, m: int) -> tuple[np.ndarray, int]:
    groups = np.asarray(groups).reshape(-1)
    if groups.shape[0] != m:
        raise TimeticInputError(f"groups has {groups.shape[0]} entries but X has {m} rows; pass one group per row")
    if m == 0:
        raise TimeticInputError("sample_group_means needs at least one row")
    if not np.issubdtype(groups.dtype, np.integer):
        if not np.all(np.asarray(groups, dtype=np.float64) == np.round(np.asarray(groups, dtype=np.float64))):
            raise TimeticInputError("groups must be integers in [0, G)")
    groups = groups.astype(np.int64)
    if groups.min() < 0:
        raise TimeticInputError("groups must be integers in [0, G); found a negative group")
    G = int(groups.max()) + 1
    missing = np.flatnonzero(np.bincount(groups, minlength=G) == 0)
    if missing.size:
        raise TimeticInputError(f"group(s) {missing[:5].tolist()} have no rows; number groups 0..G-1 without gaps")
    return groups, G


def _thread_limit(n_threads: int | None, api: str):
    """Limit the BLAS / OpenMP threads of a block (None: leave them as they are).

    On a small machine shared with other work, multi-threaded BLAS and OpenMP spin-wait for
    busy cores: one thread was 10-30x faster than two in our measurements.
    """
    if n_threads is None:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=int(n_threads), user_api=api)


def _quantiles_from_normal(mean: np.ndarray, std: np.ndarray, levels: tuple[float, ...]) -> np.ndarray:
    return mean[:, None] + std[:, None] * norm.ppf(np.asarray(levels))[None, :]


def _group_matrix(groups: np.ndarray, G: int) -> np.ndarray:
    """A (G, m): row g averages the rows of group g."""
    A = np.zeros((G, groups.shape[0]))
    A[groups, np.arange(groups.shape[0])] = 1.0
    return A / A.sum(axis=1, keepdims=True)


# ---------------------------------------------------------------------------------------------
# Gaussian process
# ---------------------------------------------------------------------------------------------

_SQRT3, _SQRT5 = np.sqrt(3.0), np.sqrt(5.0)


def _ard_nll_and_grad(
    theta: np.ndarray, X: np.ndarray, y: np.ndarray, kernel: str, nu: float, jitter: float
) -> tuple[float, np.ndarray]:
    """Negative log marginal likelihood of a zero-mean GP and its gradient in log-parameters.

    theta = log(signal variance c, length scales l_1..l_p, noise variance s2). The kernel is
    c * k(r) + s2 * I, with r = |(x - x') / l|. The gradient avoids the (n, n, p) tensor that
    scikit-learn's kernels build: with W = K^-1 - a a^T (a = K^-1 y) and dK/dlog l_d = G * D_d
    (D_d = squared scaled differences in feature d), 0.5 tr(W dK_d) = sum_i z_id^2 (M 1)_i
    - z_d^T M z_d for M = W * G.
    """
    from scipy.linalg import lapack

    n, p = X.shape
    c, ell, s2 = np.exp(theta[0]), np.exp(theta[1 : p + 1]), np.exp(theta[p + 1])
    Z = X / ell
    sq = np.einsum("ij,ij->i", Z, Z)
    r2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * (Z @ Z.T), 0.0)
    if kernel == "rbf":
        Kf = c * np.exp(-0.5 * r2)
        G = Kf
    elif nu == 2.5:
        r = np.sqrt(r2)
        e = np.exp(-_SQRT5 * r)
        Kf = c * (1.0 + _SQRT5 * r + (5.0 / 3.0) * r2) * e
        G = c * (5.0 / 3.0) * (1.0 + _SQRT5 * r) * e
    else:  # nu == 1.5
        r = np.sqrt(r2)
        e = np.exp(-_SQRT3 * r)
        Kf = c * (1.0 + _SQRT3 * r) * e
        G = 3.0 * c * e
    K = Kf.copy()
    K[np.diag_indices(n)] += s2 + jitter
    L, info = lapack.dpotrf(K, lower=1, clean=1)
    if info != 0:
        return 1e25, np.zeros_like(theta)
    alpha = lapack.dpotrs(L, y, lower=1)[0]
    nll = 0.5 * float(y @ alpha) + float(np.sum(np.log(np.diag(L)))) + 0.5 * n * np.log(2.0 * np.pi)
    Kinv = lapack.dpotri(L, lower=1)[0]
    Kinv = np.tril(Kinv) + np.tril(Kinv, -1).T
    W = Kinv - np.outer(alpha, alpha)
    grad = np.empty_like(theta)
    grad[0] = 0.5 * float(np.sum(W * Kf))
    M = W * G
    grad[1 : p + 1] = (Z * Z).T @ M.sum(axis=1) - np.einsum("ij,ij->j", Z, M @ Z)
    grad[p + 1] = 0.5 * s2 * float(np.trace(W))
    return nll, grad


class GaussianProcessLearner(Learner, name="gp"):
    """Gaussian process regression (scikit-learn) with an ARD kernel.

    Kernel ``ConstantKernel * Matern(nu, one length scale per feature) + WhiteKernel`` (or RBF
    instead of Matern) on standardised inputs (missing values filled with the training mean) and a
    standardised target (what ``normalize_y=True`` does; kept explicit so the joint posterior can
    be rescaled). The hyper-parameters maximise the log marginal likelihood (L-BFGS-B with an
    analytic gradient; scikit-learn's own optimiser takes minutes at 1000 x 25) on at most
    ``max_opt_rows`` rows; the GP then conditions on all rows with the kernel fixed
    (``GaussianProcessRegressor(optimizer=None)``). The predictive std includes the noise term.

    Args:
        kernel: "matern" or "rbf".
        nu: Matern smoothness, 1.5 or 2.5.
        n_restarts_optimizer: extra optimiser starts from random (seeded) hyper-parameters.
        max_opt_rows: rows (seeded random subset) used to fit the hyper-parameters.
        n_threads: BLAS threads during fit/predict (1 is fastest on a small, busy machine;
            None = the library default).
        seed: seeds the row subset and the restarts.
        levels: quantile levels of the prediction.

    Attributes (after ``fit``):
        gp_: the fitted ``GaussianProcessRegressor`` (standardised space).
        kernel_: its kernel, with the fitted hyper-parameters.
        fill_, scaler_: missing-value fill (training means) and the input ``StandardScaler``.
        y_mean_, y_scale_: target standardisation.
        log_marginal_likelihood_: on the optimisation rows, at the optimum.
    """

    max_context_rows: ClassVar[int] = 3000

    def __init__(
        self,
        kernel: str = "matern",
        nu: float = 2.5,
        n_restarts_optimizer: int = 0,
        max_opt_rows: int = 800,
        n_threads: int | None = 1,
        seed: int = 0,
        levels: tuple[float, ...] = DEFAULT_LEVELS,
    ):
        self.kernel = kernel
        self.nu = nu
        self.n_restarts_optimizer = n_restarts_optimizer
        self.max_opt_rows = max_opt_rows
        self.n_threads = n_threads
        self.seed = seed
        self.levels = levels

    # jitter added to the kernel diagonal (as GaussianProcessRegressor's alpha)
    _JITTER: ClassVar[float] = 1e-8
    _C_BOUNDS: ClassVar[tuple[float, float]] = (1e-2, 1e2)
    _L_BOUNDS: ClassVar[tuple[float, float]] = (5e-2, 1e3)
    _NOISE_BOUNDS: ClassVar[tuple[float, float]] = (1e-6, 2.0)

    def _threads(self):
        return _thread_limit(self.n_threads, "blas")

    def _transform(self, X: np.ndarray) -> np.ndarray:
        X = np.where(np.isnan(X), self.fill_[None, :], X)
        return self.scaler_.transform(X)

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.preprocessing import StandardScaler

        if self.kernel not in ("matern", "rbf"):
            raise TimeticInputError(f"gp kernel must be 'matern' or 'rbf' (got {self.kernel!r})")
        if self.kernel == "matern" and self.nu not in (1.5, 2.5):
            raise TimeticInputError(f"gp nu must be 1.5 or 2.5 (got {self.nu!r})")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
            fill = np.nanmean(X, axis=0)
        self.fill_ = np.where(np.isfinite(fill), fill, 0.0)
        self.scaler_ = StandardScaler().fit(np.where(np.isnan(X), self.fill_[None, :], X))
        Xs = self._transform(X)
        self.y_mean_ = float(np.mean(y))
        ys = (y - self.y_mean_) / self.y_scale_
        rng = np.random.default_rng(self.seed)
        n, p = Xs.shape
        opt = np.sort(rng.choice(n, self.max_opt_rows, replace=False)) if n > self.max_opt_rows else np.arange(n)
        self.opt_rows_ = int(opt.size)
        bounds = [np.log(self._C_BOUNDS)] + [np.log(self._L_BOUNDS)] * p + [np.log(self._NOISE_BOUNDS)]
        lo, hi = np.array([b[0] for b in bounds]), np.array([b[1] for b in bounds])
        starts = [np.r_[0.0, np.full(p, 0.5 * np.log(max(p, 1))), np.log(0.1)]]
        for _ in range(int(self.n_restarts_optimizer)):
            starts.append(
                np.r_[rng.uniform(np.log(0.1), np.log(10.0)), rng.uniform(np.log(0.3), np.log(30.0), p),
                      rng.uniform(np.log(1e-3), np.log(0.5))]
            )
        best = None
        with self._threads():
            for theta0 in starts:
                res = minimize(
                    _ard_nll_and_grad, np.clip(theta0, lo, hi), jac=True, method="L-BFGS-B",
                    bounds=list(zip(lo, hi)), options={"maxiter": 200, "ftol": 1e-7},
                    args=(Xs[opt], ys[opt], self.kernel, self.nu, self._JITTER),
                )
                if best is None or res.fun < best.fun:
                    best = res
            theta = best.x
            self.log_marginal_likelihood_ = -float(best.fun)
            self.kernel_ = self._sklearn_kernel(theta, p)
            self.gp_ = GaussianProcessRegressor(
                kernel=self.kernel_, alpha=self._JITTER, optimizer=None, normalize_y=False, random_state=self.seed
            ).fit(Xs, ys)

    def _sklearn_kernel(self, theta: np.ndarray, p: int):
        from sklearn.gaussian_process.kernels import RBF, ConstantKernel, Matern, WhiteKernel

        c, ell, s2 = np.exp(theta[0]), np.exp(theta[1 : p + 1]), np.exp(theta[p + 1])
        if self.kernel == "rbf":
            base = RBF(length_scale=ell, length_scale_bounds="fixed")
        else:
            base = Matern(length_scale=ell, length_scale_bounds="fixed", nu=self.nu)
        return ConstantKernel(c, constant_value_bounds="fixed") * base + WhiteKernel(s2, noise_level_bounds="fixed")

    _CHUNK: ClassVar[int] = 1000

    def _predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        Xs = self._transform(X)
        means, stds = [], []
        with self._threads():
            for start in range(0, Xs.shape[0], self._CHUNK):
                mu, sd = self.gp_.predict(Xs[start : start + self._CHUNK], return_std=True)
                means.append(mu)
                stds.append(sd)
        mean = self.y_mean_ + self.y_scale_ * np.concatenate(means)
        std = self.y_scale_ * np.concatenate(stds)
        return mean, std, _quantiles_from_normal(mean, std, self.levels_)

    def group_mean_posterior(self, X: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean (G,) and covariance (G, G) of the group means of the rows' predictive distribution.

        Equals ``A @ mu`` and ``A @ Sigma @ A.T`` for ``mu, Sigma = gp_.predict(X, return_cov=True)``
        (rescaled) and A the (G, m) averaging matrix, computed in row chunks so that the (m, m)
        covariance is never formed. Includes the noise term (each group mean carries noise / n_g).
        """
        X = self._checked_X(X)
        groups, G = _checked_groups(groups, X.shape[0])
        A = _group_matrix(groups, G)
        if self.constant_ is not None:
            return np.full(G, self.constant_), np.diag(np.full(G, self._std_floor() ** 2))
        Xs = self._transform(X)
        kern = self.gp_.kernel_
        Xt = self.gp_.X_train_
        n = Xt.shape[0]
        mean = np.zeros(G)
        W = np.zeros((n, G))  # K(X_train, X*) A^T
        prior = np.zeros((G, G))  # A K(X*, X*) A^T without the noise
        with self._threads():
            for start in range(0, Xs.shape[0], self._CHUNK):
                sl = slice(start, start + self._CHUNK)
                Kt = kern(Xs[sl], Xt)  # (b, n); WhiteKernel gives 0 off the training diagonal
                mean += A[:, sl] @ (Kt @ self.gp_.alpha_)
                W += Kt.T @ A[:, sl].T
                prior += (A[:, sl] @ kern(Xs[sl], Xs)) @ A.T
            U = solve_triangular(self.gp_.L_, W, lower=True, check_finite=False)
            cov = prior - U.T @ U
        noise = float(self.gp_.kernel_.k2.noise_level)
        cov += np.diag(noise / np.bincount(groups, minlength=G))
        cov = 0.5 * (cov + cov.T) * self.y_scale_**2
        return self.y_mean_ + self.y_scale_ * mean, cov

    def sample_group_means(
        self, X: np.ndarray, groups: np.ndarray, n_samples: int = 1000, seed: int = 0
    ) -> np.ndarray:
        """Joint posterior samples (n_samples, G) of the group means (see :meth:`group_mean_posterior`)."""
        mu, cov = self.group_mean_posterior(X, groups)
        w, V = np.linalg.eigh(cov)
        root = V * np.sqrt(np.clip(w, 0.0, None))[None, :]
        z = np.random.default_rng(seed).standard_normal((int(n_samples), mu.shape[0]))
        return mu[None, :] + z @ root.T


# ---------------------------------------------------------------------------------------------
# Gradient boosting
# ---------------------------------------------------------------------------------------------


class HistGradientBoostingLearner(Learner, name="hgb"):
    """scikit-learn ``HistGradientBoostingRegressor``: a squared-error model for the mean and a
    quantile model per level (plus 0.05 and 0.95 for the std).

    std = (q95 - q05) / 3.29, floored at 1e-3 of the training y's std; quantiles are sorted per
    row (independent quantile models can cross). Handles missing values natively. ``n_threads``
    limits OpenMP threads (default 1; None = all cores, faster on an idle machine with many rows).

    Attributes (after ``fit``):
        mean_model_: the squared-error model.
        quantile_models_: {level: model}.
    """

    max_context_rows: ClassVar[int] = 200_000
    min_std_fraction: ClassVar[float] = 1e-3

    def __init__(
        self,
        max_iter: int = 200,
        learning_rate: float = 0.1,
        max_leaf_nodes: int = 31,
        min_samples_leaf: int = 20,
        l2_regularization: float = 0.0,
        n_threads: int | None = 1,
        seed: int = 0,
        levels: tuple[float, ...] = DEFAULT_LEVELS,
    ):
        self.n_threads = n_threads
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.seed = seed
        self.levels = levels

    def _model(self, **loss):
        from sklearn.ensemble import HistGradientBoostingRegressor

        return HistGradientBoostingRegressor(
            max_iter=self.max_iter, learning_rate=self.learning_rate, max_leaf_nodes=self.max_leaf_nodes,
            min_samples_leaf=self.min_samples_leaf, l2_regularization=self.l2_regularization,
            random_state=self.seed, **loss,
        )

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        with _thread_limit(self.n_threads, "openmp"):
            self.mean_model_ = self._model(loss="squared_error").fit(X, y)
            self.quantile_models_ = {
                q: self._model(loss="quantile", quantile=q).fit(X, y)
                for q in sorted(set(self.levels_) | {0.05, 0.95})
            }

    def _predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        with _thread_limit(self.n_threads, "openmp"):
            mean = self.mean_model_.predict(X)
            qs = {q: m.predict(X) for q, m in self.quantile_models_.items()}
        std = (qs[0.95] - qs[0.05]) / _Z90_WIDTH
        quantiles = np.column_stack([qs[q] for q in self.levels_])
        return mean, std, quantiles


# ---------------------------------------------------------------------------------------------
# Tabular foundation models (local checkpoints only)
# ---------------------------------------------------------------------------------------------


def _checkpoint(learner: str, given: str | os.PathLike | None, env: str, what: str, example: str) -> Path:
    path = given if given is not None else os.environ.get(env) or None
    hint = f"set {env}=/path/to/{example} or use --learner gp"
    if path is None:
        raise TimeticInputError(f"learner '{learner}' needs a {what} checkpoint; {hint}")
    path = Path(path).expanduser()
    if not path.is_file():
        raise TimeticInputError(f"learner '{learner}' needs a {what} checkpoint, but {path} is not a file; {hint}")
    return path


def _missing_package_error(learner: str, package: str) -> TimeticInputError:
    return TimeticInputError(
        f"learner '{learner}' needs the {package} package, an optional extra: "
        f'pip install "timetic[{package}]" (or use --learner gp)'
    )


def _require_package(learner: str, package: str) -> None:
    """Fail with one line naming the extra when ``package`` is not installed (without importing it)."""
    import importlib.util

    if importlib.util.find_spec(package) is None:
        raise _missing_package_error(learner, package)


def _import_package(learner: str, package: str, attr: str) -> Any:
    """``package.attr``, imported on first use; a missing package is one line naming the extra."""
    import importlib

    try:
        module = importlib.import_module(package)
    except ModuleNotFoundError as e:
        if e.name is not None and e.name.split(".")[0] != package:
            raise  # the package is there but one of its own dependencies is not
        raise _missing_package_error(learner, package) from None
    return getattr(module, attr)


def _offline_env() -> None:
    """Settings read at import: no telemetry. (tabpfn 9.x has none; older 2.x releases read this.)"""
    os.environ.setdefault("TABPFN_DISABLE_TELEMETRY", "1")


class _CheckpointLearner(Learner):
    """Base of the tabular foundation-model learners: a regressor loaded from a local checkpoint.

    Subclasses set where the checkpoint is named (:attr:`checkpoint_env`) and how it is described
    in errors, build the regressor in :meth:`_regressor` and implement ``_predict``.
    """

    max_context_rows: ClassVar[int] = 10_000
    #: environment variable naming the checkpoint when ``model_path`` is None.
    checkpoint_env: ClassVar[str] = ""
    #: the checkpoint's kind and an example file name, for error messages.
    checkpoint_what: ClassVar[str] = ""
    checkpoint_example: ClassVar[str] = ""
    #: the package (and optional extra of the same name) the regressor comes from.
    package: ClassVar[str] = ""

    def __init__(
        self,
        model_path: str | os.PathLike | None = None,
        n_estimators: int = 8,
        device: str = "cpu",
        seed: int = 0,
        levels: tuple[float, ...] = DEFAULT_LEVELS,
    ):
        self.model_path = model_path
        self.n_estimators = n_estimators
        self.device = device
        self.seed = seed
        self.levels = levels

    def _checkpoint_path(self) -> Path:
        return _checkpoint(
            self.name, self.model_path, self.checkpoint_env, self.checkpoint_what, self.checkpoint_example
        )

    def check_ready(self) -> None:
        _require_package(self.name, self.package)
        self._checkpoint_path()

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        self.model_path_ = self._checkpoint_path()
        self.model_ = self._regressor(str(self.model_path_))
        self.model_.fit(X, y)

    @abstractmethod
    def _regressor(self, model_path: str) -> Any:
        """The unfitted regressor reading the checkpoint ``model_path``."""


class TabPFNLearner(_CheckpointLearner, name="tabpfn"):
    """TabPFN v2 regressor (``tabpfn.TabPFNRegressor``) from a local checkpoint, on CPU by default.

    ``model_path`` or ``$TIMETIC_TABPFN_MODEL`` must name an existing file: nothing is downloaded
    (tabpfn would otherwise fetch a missing checkpoint). The mean and quantiles come from
    ``predict(output_type="full")``; the std is the variance of its output bar distribution.
    ``ignore_pretraining_limits=True`` lets it run on CPU with more than 1000 rows; the context is
    capped at 10000 rows (v2's pre-training limit).

    Attributes (after ``fit``):
        model_: the fitted ``TabPFNRegressor``.
        model_path_: the checkpoint used.
    """

    checkpoint_env = TABPFN_ENV
    checkpoint_what = "TabPFN v2"
    checkpoint_example = "tabpfn-v2-regressor.ckpt"
    package = "tabpfn"

    def _regressor(self, model_path: str) -> Any:
        _offline_env()
        TabPFNRegressor = _import_package(self.name, "tabpfn", "TabPFNRegressor")

        return TabPFNRegressor(
            model_path=model_path, n_estimators=self.n_estimators, device=self.device,
            ignore_pretraining_limits=True, random_state=self.seed, n_preprocessing_jobs=1,
        )

    def _predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        out = self.model_.predict(X, output_type="full", quantiles=[float(q) for q in self.levels_])
        var = out["criterion"].variance(out["logits"]).detach().cpu().numpy().astype(np.float64)
        std = np.sqrt(np.clip(var, 0.0, None))
        quantiles = np.column_stack([np.asarray(q, dtype=np.float64) for q in out["quantiles"]])
        return np.asarray(out["mean"], dtype=np.float64), std, quantiles


class TabICLLearner(_CheckpointLearner, name="tabicl"):
    """TabICL regressor (``tabicl.TabICLRegressor``, tabicl >= 2) from a local checkpoint, on CPU.

    ``model_path`` or ``$TIMETIC_TABICL_MODEL`` must name an existing file; auto-download is off.
    TabICL predicts a grid of quantiles ("raw_quantiles"); the std is their standard deviation,
    the requested quantiles and the mean come from its own ``predict``.

    Attributes (after ``fit``):
        model_: the fitted ``TabICLRegressor``.
        model_path_: the checkpoint used.
    """

    checkpoint_env = TABICL_ENV
    checkpoint_what = "TabICL"
    checkpoint_example = "tabicl-regressor.ckpt"
    package = "tabicl"

    def _regressor(self, model_path: str) -> Any:
        TabICLRegressor = _import_package(self.name, "tabicl", "TabICLRegressor")

        return TabICLRegressor(
            model_path=model_path, allow_auto_download=False, n_estimators=self.n_estimators,
            device=self.device, random_state=self.seed, verbose=False,
        )

    def _predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        out = self.model_.predict(
            X, output_type=["mean", "quantiles", "raw_quantiles"], alphas=[float(q) for q in self.levels_]
        )
        std = np.std(np.asarray(out["raw_quantiles"], dtype=np.float64), axis=1)
        return np.asarray(out["mean"], dtype=np.float64), std, np.asarray(out["quantiles"], dtype=np.float64)


# ---------------------------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------------------------


def available_learners() -> list[str]:
    """Names of all learners (``tabpfn`` / ``tabicl`` also need a checkpoint to run)."""
    return list(_REGISTRY)


def get_learner(name: str, **kwargs: Any) -> Learner:
    """The learner ``name`` with hyper-parameters ``kwargs``; checks that it can run here."""
    cls = _REGISTRY.get(str(name))
    if cls is None:
        raise TimeticInputError(f"unknown learner {name!r}; use one of: {', '.join(_REGISTRY)}")
    params = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    unknown = sorted(set(kwargs) - set(params))
    if unknown:
        raise TimeticInputError(
            f"learner '{name}' has no option(s) {', '.join(unknown)}; its options are: {', '.join(params)}"
        )
    learner = cls(**kwargs)
    learner.check_ready()
    return learner


def default_learner() -> str:
    """"tabpfn" when $TIMETIC_TABPFN_MODEL names an existing file, else "gp"."""
    path = os.environ.get(TABPFN_ENV)
    if path and Path(path).expanduser().is_file():
        return "tabpfn"
    return "gp"
