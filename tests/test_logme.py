import numpy as np
import pytest

from timetic.errors import TimeticInputError
from timetic.logme import forecasting_logme, logme


def test_informative_features_score_higher_than_noise():
    rng = np.random.default_rng(0)
    n, D = 400, 16
    F = rng.standard_normal((n, D))
    w = rng.standard_normal((D, 3))
    Y = F @ w + 0.1 * rng.standard_normal((n, 3))
    noise = rng.standard_normal((n, D))
    assert logme(F, Y) > logme(noise, Y) + 1.0


def test_evidence_matches_direct_formula():
    # log evidence of Bayesian linear regression at the fitted alpha, beta, computed densely
    rng = np.random.default_rng(1)
    n, D = 60, 5
    F = rng.standard_normal((n, D))
    y = F @ rng.standard_normal(D) + 0.5 * rng.standard_normal(n)
    score = logme(F, y, max_iter=500, tol=1e-10)
    # refit alpha, beta by the same fixed point, then the closed form with a dense covariance
    best = -np.inf
    for alpha in np.logspace(-3, 2, 60):
        for beta in np.logspace(-2, 2, 60):
            cov = np.eye(n) / beta + F @ F.T / alpha
            sign, logdet = np.linalg.slogdet(cov)
            ev = -0.5 * (logdet + y @ np.linalg.solve(cov, y) + n * np.log(2 * np.pi))
            best = max(best, ev / n)
    assert score == pytest.approx(best, abs=0.02)  # the evidence maximum (grid is coarse)


def test_forecasting_logme_shapes_and_errors():
    rng = np.random.default_rng(2)
    ctx = rng.standard_normal((50, 32))
    fut = rng.standard_normal((50, 8))
    fut[0, 0] = np.nan
    emb = rng.standard_normal((50, 4, 12))
    assert np.isfinite(forecasting_logme(emb, ctx, fut))
    with pytest.raises(TimeticInputError):
        logme(np.ones((3, 2)), np.ones((4,)))
    with pytest.raises(TimeticInputError):
        logme(np.full((3, 2), np.nan), np.ones(3))
