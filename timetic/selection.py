"""Feature selection as in TimeTic: greedy forward selection minimising TotalVariance.

TotalVariance(S) = (1/K) Σ_k Var(y | row in group k), where the K groups come from standardising
the selected columns S, projecting them to 2-D with PCA (1-D while |S| = 1) and clustering the
projection with k-means (seeded). A feature set whose neighbourhoods agree on y has a low
TotalVariance. Forward selection adds, at each step, the column that lowers it most, and stops
when the best gain falls below ``tol`` (``y`` is standardised first, so ``tol`` is a fraction of
Var(y)) or when ``max_features`` are chosen.

The selector only reads the ``(X, y)`` it is given, so it can run inside each evaluation fold.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from timetic.errors import TimeticInputError


def total_variance(Z: np.ndarray, y: np.ndarray, n_groups: int, seed: int = 0) -> float:
    """TotalVariance of y over groups of the rows of Z.

    Args:
        Z: shape (n, p), the candidate feature columns (any scale).
        y: shape (n,), the observed score.
        n_groups: K, the number of k-means groups (capped at the number of distinct rows).
    """
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA

    Z = np.asarray(Z, dtype=np.float64)
    sd = Z.std(axis=0)
    Z = (Z - Z.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    if Z.shape[1] > 2:
        Z = PCA(n_components=2, random_state=seed).fit_transform(Z)
    k = int(min(n_groups, len(np.unique(Z.round(12), axis=0))))
    if k <= 1:
        return float(np.var(y))
    labels = KMeans(n_clusters=k, n_init=1, max_iter=100, random_state=seed).fit_predict(Z)
    counts = np.bincount(labels, minlength=k)
    sums = np.bincount(labels, weights=y, minlength=k)
    sq = np.bincount(labels, weights=y * y, minlength=k)
    nz = counts > 0
    var = sq[nz] / counts[nz] - (sums[nz] / counts[nz]) ** 2
    return float(np.mean(np.maximum(var, 0.0)))


class TotalVarianceSelector:
    """Greedy forward selection minimising TotalVariance (scikit-learn style).

    Args:
        n_groups: K; ``None`` = min(100, n_rows // 10) (at least 2).
        max_features: stop after this many columns (TimeTic keeps ~20).
        tol: stop when the best improvement of TotalVariance (in units of Var(y)) is below it.
        seed: seeds PCA and k-means.

    Attributes (after ``fit``):
        selected_: chosen column names, in order of selection.
        scores_: TotalVariance (relative to Var(y)) after each addition.
        n_groups_: the K used.
    """

    def __init__(
        self,
        n_groups: int | None = None,
        max_features: int = 20,
        tol: float = 1e-3,
        seed: int = 0,
    ):
        self.n_groups = n_groups
        self.max_features = max_features
        self.tol = tol
        self.seed = seed

    def fit(self, X: pl.DataFrame | np.ndarray, y: np.ndarray) -> "TotalVarianceSelector":
        """X: (n, p) frame or array; y: (n,) observed scores (finite)."""
        names, A = _as_matrix(X)
        y = np.asarray(y, dtype=np.float64).ravel()
        if A.shape[0] != y.shape[0]:
            raise TimeticInputError(f"X has {A.shape[0]} rows but y has {y.shape[0]}; pass matching rows")
        if not np.isfinite(y).all() or not np.isfinite(A).all():
            raise TimeticInputError("feature selection needs finite X and y; drop or fill NaN/inf first")
        if A.shape[0] < 4:
            raise TimeticInputError(f"feature selection needs at least 4 rows (got {A.shape[0]})")
        sd = y.std()
        y = (y - y.mean()) / (sd if sd > 0 else 1.0)
        k = self.n_groups or max(2, min(100, A.shape[0] // 10))
        self.n_groups_ = int(k)
        usable = [j for j in range(A.shape[1]) if A[:, j].std() > 0]
        chosen: list[int] = []
        scores: list[float] = []
        current = float(np.var(y))
        while len(chosen) < min(self.max_features, len(usable)):
            best_j, best = None, np.inf
            for j in usable:
                if j in chosen:
                    continue
                tv = total_variance(A[:, chosen + [j]], y, k, self.seed)
                if tv < best - 1e-15:
                    best_j, best = j, tv
            if best_j is None or current - best < self.tol:
                break
            chosen.append(best_j)
            scores.append(best)
            current = best
        if not chosen and usable:  # keep at least the single best column
            tvs = [total_variance(A[:, [j]], y, k, self.seed) for j in usable]
            chosen, scores = [usable[int(np.argmin(tvs))]], [float(np.min(tvs))]
        self.selected_ = [names[j] for j in chosen]
        self.scores_ = scores
        return self

    def transform(self, X: pl.DataFrame) -> pl.DataFrame:
        if not hasattr(self, "selected_"):
            raise RuntimeError("call fit before transform")
        return X.select(self.selected_)

    def fit_transform(self, X: pl.DataFrame, y: np.ndarray) -> pl.DataFrame:
        return self.fit(X, y).transform(X)


def _as_matrix(X: pl.DataFrame | np.ndarray) -> tuple[list[str], np.ndarray]:
    if isinstance(X, pl.DataFrame):
        return list(X.columns), X.to_numpy().astype(np.float64)
    A = np.asarray(X, dtype=np.float64)
    if A.ndim != 2:
        raise TimeticInputError(f"X must be 2-D (rows, features); got shape {A.shape}")
    return [f"x{j}" for j in range(A.shape[1])], A
