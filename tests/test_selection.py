import numpy as np
import polars as pl
import pytest

from timetic.errors import TimeticInputError
from timetic.selection import TotalVarianceSelector, total_variance


def _data(n=1500, p=30, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    y = 2.0 * np.tanh(X[:, 4]) + 1.5 * X[:, 11] + 0.1 * rng.normal(size=n)
    return pl.DataFrame(X, schema=[f"f{j}" for j in range(p)]), y


def test_two_informative_features_selected_first():
    X, y = _data()
    sel = TotalVarianceSelector(max_features=10, seed=0).fit(X, y)
    assert set(sel.selected_[:2]) == {"f4", "f11"}
    assert all(a > b for a, b in zip(sel.scores_, sel.scores_[1:]))  # each step lowers TotalVariance
    assert sel.transform(X).columns == sel.selected_


def test_stops_on_tolerance_and_is_deterministic():
    X, y = _data(seed=1)
    a = TotalVarianceSelector(tol=1e-3, seed=0).fit(X, y)
    b = TotalVarianceSelector(tol=1e-3, seed=0).fit(X, y)
    assert a.selected_ == b.selected_ and len(a.selected_) < 10
    strict = TotalVarianceSelector(tol=0.5, seed=0).fit(X, y)
    assert len(strict.selected_) == 1


def test_uses_only_given_rows_and_k_adapts():
    X, y = _data(n=60)
    sel = TotalVarianceSelector().fit(X, y)
    assert sel.n_groups_ == 6
    # permuting y breaks the relationship: total variance of the informative set goes up
    rng = np.random.default_rng(0)
    tv_true = total_variance(X.select("f4", "f11").to_numpy(), y, 6)
    tv_perm = total_variance(X.select("f4", "f11").to_numpy(), rng.permutation(y), 6)
    assert tv_true < tv_perm


def test_constant_columns_ignored_and_bad_input():
    X, y = _data(n=200)
    X = X.with_columns(pl.lit(1.0).alias("const"))
    assert "const" not in TotalVarianceSelector().fit(X, y).selected_
    with pytest.raises(TimeticInputError, match="rows"):
        TotalVarianceSelector().fit(X, y[:10])
    with pytest.raises(TimeticInputError, match="finite"):
        TotalVarianceSelector().fit(X, np.full(200, np.nan))
