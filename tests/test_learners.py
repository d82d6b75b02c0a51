"""Learners: shapes, calibration, determinism, group-mean samples, and the TabPFN / TabICL paths
run offline on tiny random-weight checkpoints (tests/checkpoints.py)."""

from __future__ import annotations

import socket

import numpy as np
import pytest

from timetic.errors import TimeticInputError, TimeticWarning
from timetic.learners import (
    DEFAULT_LEVELS,
    GaussianProcessLearner,
    Learner,
    Prediction,
    TabICLLearner,
    TabPFNLearner,
    _ard_nll_and_grad,
    available_learners,
    default_learner,
    get_learner,
)

from checkpoints import build_tabicl_checkpoint, build_tabpfn_v2_checkpoint


def make_data(n: int, seed: int, p: int = 6, noise: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """y = smooth function of features 0 and 1 of p, plus noise."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2, 2, size=(n, p))
    y = np.sin(1.5 * X[:, 0]) + 0.3 * X[:, 1] ** 2 + noise * rng.normal(size=n)
    return X, y


@pytest.fixture(scope="module")
def data():
    X, y = make_data(300, seed=0)
    Xt, yt = make_data(200, seed=1)
    return X, y, Xt, yt


@pytest.fixture(scope="module")
def fitted_gp(data):
    X, y, _, _ = data
    return get_learner("gp", seed=0).fit(X, y)


@pytest.fixture(scope="module")
def fitted_hgb(data):
    X, y, _, _ = data
    return get_learner("hgb", seed=0).fit(X, y)


@pytest.fixture(scope="module")
def tabpfn_ckpt(tmp_path_factory):
    return build_tabpfn_v2_checkpoint(tmp_path_factory.mktemp("tabpfn") / "tiny-tabpfn-v2-regressor.ckpt")


@pytest.fixture(scope="module")
def tabicl_ckpt(tmp_path_factory):
    pytest.importorskip("tabicl", reason="tabicl is not installed")
    return build_tabicl_checkpoint(tmp_path_factory.mktemp("tabicl") / "tiny-tabicl-regressor.ckpt")


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a network connection fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def check_prediction(pred: Prediction, m: int) -> None:
    assert isinstance(pred, Prediction)
    assert pred.mean.shape == (m,) and pred.std.shape == (m,)
    assert pred.quantiles.shape == (m, len(pred.levels))
    assert pred.levels == DEFAULT_LEVELS
    for a in (pred.mean, pred.std, pred.quantiles):
        assert np.isfinite(a).all()
    assert (pred.std > 0).all()
    assert (np.diff(pred.quantiles, axis=1) >= 0).all()


def r2(y, yhat) -> float:
    return 1.0 - np.mean((y - yhat) ** 2) / np.var(y)


# -- registry -------------------------------------------------------------------------------------


def test_registry():
    assert available_learners() == ["gp", "hgb", "tabpfn", "tabicl"]
    assert isinstance(get_learner("gp"), GaussianProcessLearner)
    assert get_learner("hgb", seed=3).seed == 3
    assert all(issubclass(type(get_learner(n)), Learner) for n in ("gp", "hgb"))


def test_unknown_learner_and_option():
    with pytest.raises(TimeticInputError, match="unknown learner 'xgb'"):
        get_learner("xgb")
    with pytest.raises(TimeticInputError, match="no option"):
        get_learner("gp", depth=3)


def test_no_network_fixture_works(no_network):
    with pytest.raises(AssertionError, match="network access attempted"):
        socket.create_connection(("example.org", 80), timeout=1)
    with socket.socket() as sock, pytest.raises(AssertionError, match="network access attempted"):
        sock.connect(("127.0.0.1", 9))


def test_default_learner_respects_env(monkeypatch, tmp_path):
    monkeypatch.delenv("TIMETIC_TABPFN_MODEL", raising=False)
    assert default_learner() == "gp"
    monkeypatch.setenv("TIMETIC_TABPFN_MODEL", str(tmp_path / "missing.ckpt"))
    assert default_learner() == "gp"
    ckpt = tmp_path / "model.ckpt"
    ckpt.write_bytes(b"x")
    monkeypatch.setenv("TIMETIC_TABPFN_MODEL", str(ckpt))
    assert default_learner() == "tabpfn"


@pytest.mark.parametrize("name,env", [("tabpfn", "TIMETIC_TABPFN_MODEL"), ("tabicl", "TIMETIC_TABICL_MODEL")])
def test_missing_checkpoint(monkeypatch, tmp_path, name, env, data):
    X, y, _, _ = data
    monkeypatch.delenv(env, raising=False)
    with pytest.raises(TimeticInputError, match=f"learner '{name}' needs .* checkpoint; set {env}="):
        get_learner(name)
    monkeypatch.setenv(env, str(tmp_path / "nope.ckpt"))
    with pytest.raises(TimeticInputError, match="nope.ckpt is not a file"):
        get_learner(name)
    cls = {"tabpfn": TabPFNLearner, "tabicl": TabICLLearner}[name]  # constructed without the check
    with pytest.raises(TimeticInputError, match="or use --learner gp"):
        cls(model_path=tmp_path / "nope.ckpt").fit(X, y)


def test_input_errors(fitted_gp, data):
    X, y, Xt, _ = data
    with pytest.raises(TimeticInputError, match="rows"):
        get_learner("gp").fit(X, y[:-1])
    bad = y.copy()
    bad[3] = np.nan
    with pytest.raises(TimeticInputError, match="finite y"):
        get_learner("gp").fit(X, bad)
    with pytest.raises(TimeticInputError, match="features"):
        fitted_gp.predict(Xt[:, :3])
    with pytest.raises(TimeticInputError, match="no rows"):
        fitted_gp.sample_group_means(Xt[:4], np.array([0, 0, 2, 2]))


# -- gp and hgb ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["gp", "hgb"])
def test_fit_predict_quality(name, fitted_gp, fitted_hgb, data):
    _, _, Xt, yt = data
    learner = {"gp": fitted_gp, "hgb": fitted_hgb}[name]
    pred = learner.predict(Xt)
    check_prediction(pred, len(yt))
    assert r2(yt, pred.mean) > 0.5


def test_gp_interval_coverage(fitted_gp, data):
    _, _, Xt, yt = data
    lo, hi = fitted_gp.predict(Xt).interval(0.9)
    coverage = np.mean((yt >= lo) & (yt <= hi))
    assert 0.75 <= coverage <= 0.99
    # the relevant features get the short length scales
    ell = fitted_gp.kernel_.k1.k2.length_scale
    assert max(ell[0], ell[1]) < min(ell[2:])


@pytest.mark.parametrize("name", ["gp", "hgb"])
def test_determinism(name, data):
    X, y, Xt, _ = data
    a = get_learner(name, seed=1).fit(X, y).predict(Xt)
    b = get_learner(name, seed=1).fit(X, y).predict(Xt)
    np.testing.assert_array_equal(a.mean, b.mean)
    np.testing.assert_array_equal(a.std, b.std)
    np.testing.assert_array_equal(a.quantiles, b.quantiles)


@pytest.mark.parametrize("kernel,nu", [("matern", 2.5), ("matern", 1.5), ("rbf", 2.5)])
def test_gp_gradient_matches_sklearn(kernel, nu):
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel, Matern, WhiteKernel

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 3)), rng.normal(size=40)
    base = RBF(np.ones(3)) if kernel == "rbf" else Matern(np.ones(3), nu=nu)
    gp = GaussianProcessRegressor(ConstantKernel(1.0) * base + WhiteKernel(0.1), alpha=1e-8, optimizer=None).fit(X, y)
    theta = np.log([1.3, 0.7, 1.5, 2.0, 0.2])
    lml, grad = gp.log_marginal_likelihood(theta, eval_gradient=True)
    nll, g = _ard_nll_and_grad(theta, X, y, kernel, nu, 1e-8)
    assert nll == pytest.approx(-lml, rel=1e-10)
    np.testing.assert_allclose(g, -grad, rtol=1e-8, atol=1e-10)


def test_gp_group_posterior_matches_return_cov(fitted_gp, data):
    _, _, Xt, _ = data
    groups = np.arange(40) % 4
    mu, cov = fitted_gp.group_mean_posterior(Xt[:40], groups)
    Xs = fitted_gp._transform(Xt[:40])
    m, S = fitted_gp.gp_.predict(Xs, return_cov=True)
    A = np.zeros((4, 40))
    A[groups, np.arange(40)] = 0.1
    np.testing.assert_allclose(mu, fitted_gp.y_mean_ + fitted_gp.y_scale_ * (A @ m), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(cov, fitted_gp.y_scale_**2 * (A @ S @ A.T), rtol=1e-6, atol=1e-10)


@pytest.mark.parametrize("name", ["gp", "hgb"])
def test_sample_group_means(name, fitted_gp, fitted_hgb, data):
    _, _, Xt, _ = data
    learner = {"gp": fitted_gp, "hgb": fitted_hgb}[name]
    groups = np.repeat(np.arange(5), 40)
    samples = learner.sample_group_means(Xt, groups, n_samples=4000, seed=0)
    assert samples.shape == (4000, 5)
    assert np.isfinite(samples).all()
    pred = learner.predict(Xt)
    expected = np.array([pred.mean[groups == g].mean() for g in range(5)])
    sd = samples.std(axis=0)
    assert (sd > 0).all()
    np.testing.assert_allclose(samples.mean(axis=0), expected, atol=float(4 * sd.max() / np.sqrt(4000)) + 1e-9)
    again = learner.sample_group_means(Xt, groups, n_samples=4000, seed=0)
    np.testing.assert_array_equal(samples, again)
    assert not np.array_equal(samples, learner.sample_group_means(Xt, groups, n_samples=4000, seed=1))


@pytest.mark.parametrize("name", ["gp", "hgb"])
def test_probability_best_picks_clear_winner(name, fitted_gp, fitted_hgb, data):
    """Groups = regions of X with very different y; the lowest group is best with P close to 1."""
    learner = {"gp": fitted_gp, "hgb": fitted_hgb}[name]
    rng = np.random.default_rng(5)
    X = rng.uniform(-0.3, 0.3, size=(60, 6))
    X[:20, 0] = -1.05  # sin(1.5 x0) ~ -1 : clearly the lowest
    X[20:40, 0] = 0.0
    X[40:, 0] = 1.05  # ~ +1
    groups = np.repeat(np.arange(3), 20)
    samples = learner.sample_group_means(X, groups, n_samples=2000, seed=0)
    p_best = np.bincount(samples.argmin(axis=1), minlength=3) / len(samples)
    assert p_best.argmax() == 0 and p_best[0] > 0.9


def test_constant_target_and_context_limit(data, monkeypatch):
    X, _, Xt, _ = data
    pred = get_learner("hgb").fit(X, np.full(len(X), 2.5)).predict(Xt[:7])
    check_prediction(pred, 7)
    np.testing.assert_allclose(pred.mean, 2.5)
    monkeypatch.setattr(GaussianProcessLearner, "max_context_rows", 100)
    with pytest.warns(TimeticWarning, match="at most 100 context rows"):
        gp = get_learner("gp").fit(X, data[1])
    assert gp.n_context_rows_ == 100


def test_gp_missing_values(data):
    X, y, Xt, _ = data
    X = X.copy()
    X[::7, 3] = np.nan
    X[:, 5] = np.nan  # an all-missing column
    pred = get_learner("gp").fit(X, y).predict(np.where(np.arange(6) == 2, np.nan, Xt))
    check_prediction(pred, len(Xt))


# -- tabpfn and tabicl on random-weight checkpoints -------------------------------------------------


@pytest.mark.parametrize("name", ["tabpfn", "tabicl"])
def test_foundation_learner_offline(name, request, data, no_network, monkeypatch):
    X, y, Xt, _ = data
    ckpt = request.getfixturevalue(f"{name}_ckpt")
    kwargs = {"n_estimators": 2, "seed": 0}
    a = get_learner(name, model_path=ckpt, **kwargs).fit(X, y)
    pred = a.predict(Xt)
    check_prediction(pred, len(Xt))
    assert np.ptp(pred.mean) > 0  # random weights, but the output still depends on X
    b = get_learner(name, model_path=ckpt, **kwargs).fit(X, y).predict(Xt)
    np.testing.assert_array_equal(pred.mean, b.mean)
    np.testing.assert_array_equal(pred.std, b.std)
    np.testing.assert_array_equal(pred.quantiles, b.quantiles)
    samples = a.sample_group_means(Xt, np.repeat(np.arange(4), 50), n_samples=100, seed=0)
    assert samples.shape == (100, 4) and np.isfinite(samples).all()
    # the checkpoint can also come from the environment
    env = {"tabpfn": "TIMETIC_TABPFN_MODEL", "tabicl": "TIMETIC_TABICL_MODEL"}[name]
    monkeypatch.setenv(env, str(ckpt))
    c = get_learner(name, **kwargs).fit(X, y).predict(Xt)
    np.testing.assert_array_equal(pred.mean, c.mean)
