"""Entropy profiles: how much information each layer of a model keeps, from input to output.

A model's *entropy profile* is the entropy of its token embeddings at every layer (input embedding
first), measured on a probe set of series (:mod:`timetic.probe`) and resampled to a fixed number
of points over relative depth so that models of any depth compare.

Standardisation (:func:`standardize_tokens`), so that entropies of layers of different widths ``d``
and scales compare. For tokens ``X`` of shape (N, d):

1. centre and z-score every dimension (dimensions with zero variance become 0), which removes the
   scale of each dimension, including the few huge "outlier" dimensions of transformer residual
   streams that would otherwise dominate every distance;
2. when ``d > dim`` (default 32), project onto a seeded random ``dim``-dimensional subspace: ``Q``
   of shape (d, dim) with orthonormal columns (QR of a seeded Gaussian matrix, i.e. Haar-random).
   Every width lands in the same ``dim``-dimensional space; an isotropic cloud stays exactly
   isotropic (a plain Gaussian projection would not: its covariance spectrum spreads like
   Marchenko-Pastur when ``d`` is close to ``dim``, which would make the entropy depend on ``d``),
   and distances shrink by about ``sqrt(dim / d)`` uniformly (Johnson-Lindenstrauss), which step
   3 undoes. ``Q`` depends only on ``(d, dim, seed)``, so all layers of one width share it;
   when ``d <= dim`` the tokens keep their ``d`` dimensions (entropies of models narrower than
   ``dim`` are therefore on a different scale; every zoo model should be at least ``dim`` wide);
3. rescale globally so that the mean squared norm of the tokens equals the number of dimensions
   ``p = min(d, dim)`` (average variance 1 per dimension).

After this, the entropy depends only on the *shape* of the token cloud (its correlation structure,
clustering, collapse onto few directions), not on the width or scale of the layer. An isotropic
Gaussian cloud gives the maximum of both estimators for its ``p``.

Estimators:

* ``"knn"``: Kozachenko-Leonenko differential entropy (nats) with ``k`` = 3 Euclidean nearest
  neighbours, ``H = psi(N) - psi(k) + log V_p + (p / N) sum_i log eps_i`` where ``eps_i`` is the
  distance of token ``i`` to its k-th neighbour and ``V_p`` the volume of the unit ball in ``p``
  dimensions. Duplicate tokens (e.g. identical padding tokens) give zero distances; distances are
  floored at ``max(1e-3 * median(eps), 1e-8)``. Neighbours: scipy's cKDTree for p <= 8, else
  sklearn's exact brute-force search (faster in 16-64 dimensions).
* ``"renyi"``: matrix-based Rényi entropy of order alpha = 1 (von Neumann), with the linear kernel on
  the standardised tokens: ``A = K / trace(K)``, ``K = Y Y^T``, ``S = -sum lambda log lambda`` over
  the eigenvalues of ``A`` (nats, in [0, log p]). The nonzero eigenvalues of ``Y Y^T`` are those of
  the p x p matrix ``Y^T Y``, so the cost is O(N p^2).

Tokens: at most ``max_tokens`` (default 10,000) tokens per layer, a seeded uniform subsample of all
(series, position) tokens of the probe.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Callable

import numpy as np

from timetic.errors import TimeticInputError
from timetic.probe import probe_corpus

ESTIMATORS = ("knn", "renyi")
#: fixed dimension every layer is projected to before estimating its entropy.
DEFAULT_DIM = 32
#: number of points of a resampled profile.
PROFILE_LENGTH = 6


# ---------------------------------------------------------------------------------------------
# estimators


def knn_entropy(x: np.ndarray, k: int = 3) -> float:
    """Kozachenko-Leonenko differential entropy (nats) of samples ``x`` of shape (N, p).

    No standardisation (see :func:`layer_entropy` for that). Needs N > k.
    """
    from scipy.special import digamma, gammaln

    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    n, p = x.shape
    if n <= k:
        raise TimeticInputError(f"kNN entropy needs more than k={k} tokens (got {n})")
    eps = _kth_neighbour_distance(x, k)
    positive = eps[eps > 0]
    floor = max(1e-3 * float(np.median(positive)) if positive.size else 0.0, 1e-8)
    eps = np.maximum(eps, floor)
    log_vp = (p / 2) * math.log(math.pi) - gammaln(p / 2 + 1)
    return float(digamma(n) - digamma(k) + log_vp + p * np.mean(np.log(eps)))


def _kth_neighbour_distance(x: np.ndarray, k: int) -> np.ndarray:
    """Distance of every row of x (N, p) to its k-th nearest other row; shape (N,)."""
    n, p = x.shape
    if p <= 8:
        from scipy.spatial import cKDTree

        dist, _ = cKDTree(x).query(x, k=k + 1, workers=-1)
    else:
        from sklearn.neighbors import NearestNeighbors

        dist, _ = NearestNeighbors(n_neighbors=k + 1, algorithm="brute").fit(x).kneighbors(x)
    # column 0 is the point itself (distance 0); with duplicates the sorted distances still give
    # the k-th neighbour in column k
    return dist[:, k]


def renyi_entropy(x: np.ndarray) -> float:
    """Matrix-based von Neumann (Rényi alpha = 1) entropy of samples ``x`` (N, p), linear kernel.

    ``A = X X^T / trace(X X^T)``; returns ``-sum lambda log lambda`` over its eigenvalues (nats),
    computed from the p x p matrix ``X^T X``. No centring or standardisation. 0 for all-zero x.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    gram = x.T @ x
    tr = float(np.trace(gram))
    if not tr > 0:
        return 0.0
    lam = np.clip(np.linalg.eigvalsh(gram / tr), 0.0, None)
    lam = lam[lam > 1e-15]
    lam = lam / lam.sum()
    return float(-(lam * np.log(lam)).sum())


# ---------------------------------------------------------------------------------------------
# standardisation and per-layer entropy


def standardize_tokens(x: np.ndarray, dim: int = DEFAULT_DIM, seed: int = 0) -> np.ndarray:
    """Z-score per dimension, Gaussian projection to ``dim`` dims when wider, unit mean variance.

    Shape (N, d) -> (N, min(d, dim)), float64. See the module docstring.
    """
    x = np.asarray(x, dtype=np.float64)
    x = x - x.mean(axis=0)
    std = x.std(axis=0)
    scale = np.where(std > 1e-12 * max(float(std.max(initial=0.0)), 1e-300), std, np.inf)
    x = x / scale
    n, d = x.shape
    if d > dim:
        gauss = np.random.default_rng([seed, d, dim]).standard_normal((d, dim))
        q, r = np.linalg.qr(gauss)
        x = x @ (q * np.sign(np.diag(r)))  # Haar-random orthonormal columns
    p = x.shape[1]
    ms = float(np.mean(np.sum(x * x, axis=1)))
    if ms > 0:
        x = x * math.sqrt(p / ms)
    return x


def subsample_tokens(tokens: np.ndarray, max_tokens: int, seed: int = 0) -> np.ndarray:
    """At most ``max_tokens`` rows of tokens (N, d), a seeded uniform subset in original order."""
    n = tokens.shape[0]
    if n <= max_tokens:
        return tokens
    rows = np.sort(np.random.default_rng(seed).choice(n, size=max_tokens, replace=False))
    return tokens[rows]


def layer_entropy(
    tokens: Any,
    estimator: str = "knn",
    k: int = 3,
    max_tokens: int = 10_000,
    seed: int = 0,
    dim: int = DEFAULT_DIM,
) -> float:
    """Entropy (nats) of one layer's tokens after standardisation (see the module docstring).

    Args:
        tokens: shape (N, d), a torch tensor or numpy array; non-finite rows are dropped.
        estimator: ``"knn"`` (Kozachenko-Leonenko, ``k`` neighbours) or ``"renyi"`` (von Neumann).
        max_tokens: at most this many tokens are used (seeded subsample).
        seed: seeds the subsample and the random projection.
        dim: fixed dimension of the projection.
    """
    if estimator not in ESTIMATORS:
        raise TimeticInputError(f"unknown entropy estimator {estimator!r}; use 'knn' or 'renyi'")
    x = _to_numpy(tokens)
    if x.ndim != 2:
        raise TimeticInputError(f"layer tokens must have shape (N, d); got {x.shape}")
    x = x[np.isfinite(x).all(axis=1)]
    x = subsample_tokens(x, max_tokens, seed)
    if x.shape[0] < max(k + 2, 3):
        fix = (f"raise max_tokens (--max-tokens; now {max_tokens})" if max_tokens < max(k + 2, 3)
               else "use a larger probe")
        raise TimeticInputError(
            f"too few tokens ({x.shape[0]}) to estimate a layer's entropy (needs {max(k + 2, 3)}); {fix}"
        )
    y = standardize_tokens(x, dim=dim, seed=seed)
    return knn_entropy(y, k=k) if estimator == "knn" else renyi_entropy(y)


def _to_numpy(tokens: Any) -> np.ndarray:
    if hasattr(tokens, "detach"):
        tokens = tokens.detach().to("cpu").float().numpy()
    return np.asarray(tokens, dtype=np.float64)


# ---------------------------------------------------------------------------------------------
# profiles


def resample_profile(values: np.ndarray, length: int = PROFILE_LENGTH) -> np.ndarray:
    """Linear interpolation of per-layer values over relative depth.

    Args:
        values: shape (D + 1,), input embedding first; D >= 1 (at least 2 points).
        length: number of output points, at relative depths ``linspace(0, 1, length)``.
    Returns:
        shape (length,); the first and last values are kept exactly.
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    if values.size < 2:
        raise TimeticInputError(
            f"a profile needs at least 2 layers (input embedding and one layer); got {values.size}"
        )
    if length < 2:
        raise TimeticInputError(f"profile length must be >= 2 (got {length})")
    depth = np.linspace(0.0, 1.0, values.size)
    return np.interp(np.linspace(0.0, 1.0, length), depth, values)


@dataclass
class ProfileResult:
    """An entropy profile and how it was measured.

    Attributes:
        raw: shape (D + 1,), entropy of each layer (input embedding first), nats.
        profile: shape (length,), ``raw`` resampled over relative depth.
        estimator, k, dim, max_tokens, seed: the estimator settings.
        n_tokens: shape (D + 1,), tokens used per layer (after subsampling).
        widths: shape (D + 1,), width d of each layer.
        probe_shape: (n, C) of the probe.
    """

    raw: np.ndarray
    profile: np.ndarray
    estimator: str
    k: int
    dim: int
    max_tokens: int
    seed: int
    n_tokens: np.ndarray
    widths: np.ndarray
    probe_shape: tuple[int, int]

    def to_dict(self) -> dict:
        d = asdict(self)
        for key in ("raw", "profile", "n_tokens", "widths"):
            d[key] = np.asarray(d[key]).tolist()
        d["probe_shape"] = list(self.probe_shape)
        return d


def compute_profile(
    adapter: Any,
    probe: np.ndarray | None = None,
    estimator: str = "knn",
    length: int = PROFILE_LENGTH,
    max_tokens: int = 10_000,
    seed: int = 0,
    k: int = 3,
    dim: int = DEFAULT_DIM,
    batch_size: int = 64,
    progress: Callable[[int, int], None] | None = None,
) -> ProfileResult:
    """Entropy of every layer of ``adapter`` on a probe, raw and resampled.

    Args:
        adapter: a :class:`timetic.adapters.Adapter`.
        probe: shape (n, C); default ``probe_corpus(64, adapter.context_length, seed)``. Probes longer
            than the adapter's ``context_length`` keep their last ``context_length`` points; shorter
            ones are passed as they are (the adapter pads them as its library expects).
        batch_size: probe series per ``layer_embeddings`` call; each call's tokens are subsampled
            to their share of ``max_tokens`` right away, which bounds memory for long probes.
        progress: called as ``progress(done, total)`` over the embedding batches.
    """
    if estimator not in ESTIMATORS:
        raise TimeticInputError(f"unknown entropy estimator {estimator!r}; use 'knn' or 'renyi'")
    C = int(getattr(adapter, "context_length", 512) or 512)
    if probe is None:
        probe = probe_corpus(64, C, seed=seed)
    probe = np.asarray(probe, dtype=np.float64)
    if probe.ndim != 2 or probe.shape[0] == 0:
        raise TimeticInputError(f"probe must have shape (n, C) with n >= 1; got {probe.shape}")
    if probe.shape[1] > C:
        probe = probe[:, -C:]
    n = probe.shape[0]
    starts = list(range(0, n, batch_size))
    per_layer: list[list[np.ndarray]] | None = None
    for b, s in enumerate(starts):
        chunk = probe[s : s + batch_size]
        layers = adapter.layer_embeddings(chunk, batch_size=batch_size)
        if per_layer is None:
            per_layer = [[] for _ in layers]
        elif len(layers) != len(per_layer):
            raise RuntimeError("layer_embeddings returned a different number of layers per call")
        share = math.ceil(max_tokens * chunk.shape[0] / n)
        for li, emb in enumerate(layers):
            tok = _to_numpy(emb)
            tok = tok.reshape(-1, tok.shape[-1])
            per_layer[li].append(subsample_tokens(tok, share, seed=seed * 1_000_003 + 7919 * b + li))
        del layers
        if progress is not None:
            progress(b + 1, len(starts))
    assert per_layer is not None
    raw, n_tokens, widths = [], [], []
    for li, parts in enumerate(per_layer):
        tok = subsample_tokens(np.concatenate(parts), max_tokens, seed=seed + li)
        raw.append(layer_entropy(tok, estimator=estimator, k=k, max_tokens=max_tokens, seed=seed, dim=dim))
        n_tokens.append(int(np.isfinite(tok).all(axis=1).sum()))
        widths.append(int(tok.shape[1]))
    raw_arr = np.asarray(raw)
    return ProfileResult(
        raw=raw_arr,
        profile=resample_profile(raw_arr, length),
        estimator=estimator,
        k=k,
        dim=dim,
        max_tokens=max_tokens,
        seed=seed,
        n_tokens=np.asarray(n_tokens),
        widths=np.asarray(widths),
        probe_shape=(int(probe.shape[0]), int(probe.shape[1])),
    )


def entropy_profile(
    adapter: Any,
    probe: np.ndarray | None = None,
    estimator: str = "knn",
    length: int = PROFILE_LENGTH,
    max_tokens: int = 10_000,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    **kwargs: Any,
) -> np.ndarray:
    """The resampled entropy profile, shape (length,); see :func:`compute_profile`."""
    return compute_profile(
        adapter, probe, estimator=estimator, length=length, max_tokens=max_tokens, seed=seed,
        progress=progress, **kwargs,
    ).profile
