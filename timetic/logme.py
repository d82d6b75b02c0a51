"""LogME for regression: a transferability score from a model's embeddings of the target.

LogME (You et al., ICML 2021, "LogME: Practical Assessment of Pre-trained Models for Transfer
Learning") is the log of the maximum evidence of a Bayesian linear model ``y = F w + noise`` with
prior ``w ~ N(0, 1/alpha)`` and noise precision ``beta``, both set by evidence maximisation
(MacKay's fixed point), divided by the number of samples and averaged over target dimensions.
Higher means the features predict the target better with a linear head, i.e. the model is
expected to transfer better. No maintained package implements it, so it is written here, on the
SVD of F, following the paper's algorithm.

For forecasting (the baseline of ``benchmarks/evaluate.py``): F = a model's last-layer token
embeddings of each target window, mean-pooled over tokens; Y = the window's future values,
standardised by its context (mean and std), one target dimension per horizon step.
"""

from __future__ import annotations

import numpy as np

from timetic.errors import TimeticInputError


def logme(features: np.ndarray, targets: np.ndarray, max_iter: int = 100, tol: float = 1e-3) -> float:
    """LogME of ``features`` for regression ``targets``.

    Args:
        features: shape (n, D), finite.
        targets: shape (n,) or (n, K), finite; each column is scored and the mean is returned.
    Returns:
        mean over the K columns of log evidence / n (higher = more transferable).
    """
    F = np.asarray(features, dtype=np.float64)
    Y = np.asarray(targets, dtype=np.float64)
    if Y.ndim == 1:
        Y = Y[:, None]
    if F.ndim != 2 or Y.ndim != 2 or F.shape[0] != Y.shape[0]:
        raise TimeticInputError(f"logme needs features (n, D) and targets (n, K); got {F.shape} and {Y.shape}")
    if not (np.isfinite(F).all() and np.isfinite(Y).all()):
        raise TimeticInputError("logme needs finite features and targets; drop or fill NaN/inf first")
    n, D = F.shape
    u, s, _ = np.linalg.svd(F, full_matrices=False)  # u (n, r), s (r,)
    sigma = s**2
    r = sigma.shape[0]
    out = []
    for k in range(Y.shape[1]):
        y = Y[:, k]
        x = u.T @ y  # (r,)
        x2 = x**2
        res_x2 = max(float(y @ y - x2.sum()), 0.0)  # the part of y outside F's column space
        alpha, beta = 1.0, 1.0
        for _ in range(max_iter):
            t = alpha / beta
            gamma = float((sigma / (sigma + t)).sum())
            m2 = float((sigma * x2 / (t + sigma) ** 2).sum())
            res2 = float((x2 / (1.0 + sigma / t) ** 2).sum()) + res_x2
            alpha = gamma / (m2 + 1e-5)
            beta = (n - gamma) / (res2 + 1e-5)
            if abs(alpha / beta - t) / t <= tol:
                break
        t = alpha / beta
        m2 = float((sigma * x2 / (t + sigma) ** 2).sum())
        res2 = float((x2 / (1.0 + sigma / t) ** 2).sum()) + res_x2
        logdet = float(np.log(alpha + beta * sigma).sum()) + (D - r) * np.log(alpha)
        evidence = (
            D / 2.0 * np.log(alpha) + n / 2.0 * np.log(beta) - 0.5 * logdet
            - beta / 2.0 * res2 - alpha / 2.0 * m2 - n / 2.0 * np.log(2.0 * np.pi)
        )
        out.append(evidence / n)
    return float(np.mean(out))


def forecasting_logme(embeddings: np.ndarray, context: np.ndarray, future: np.ndarray) -> float:
    """LogME of pooled window embeddings for the standardised future of each window.

    Args:
        embeddings: shape (n, T, d) last-layer tokens, or (n, d) already pooled.
        context: shape (n, C), NaN = missing.
        future: shape (n, H), NaN = missing (filled with the window's context mean, i.e. 0 after
            standardising).
    """
    E = np.asarray(embeddings, dtype=np.float64)
    F = E.mean(axis=1) if E.ndim == 3 else E
    mu = np.nanmean(context, axis=1, keepdims=True)
    sd = np.nanstd(context, axis=1, keepdims=True)
    sd = np.where(np.isfinite(sd) & (sd > 0), sd, 1.0)
    mu = np.where(np.isfinite(mu), mu, 0.0)
    Y = np.nan_to_num((np.asarray(future, dtype=np.float64) - mu) / sd, nan=0.0, posinf=0.0, neginf=0.0)
    Y = np.clip(Y, -50.0, 50.0)
    F = np.nan_to_num(F)
    F = (F - F.mean(axis=0)) / np.where(F.std(axis=0) > 0, F.std(axis=0), 1.0)
    return logme(F, Y)
