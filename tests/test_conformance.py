"""``fluxcore.testing.check_learner`` on every registered learner and parameter set, and on
learners that break the contract (the checks must catch them)."""

from __future__ import annotations

import numpy as np
import pytest

import fluxcore.pmlearner  # noqa: F401  (registers "processmodel" whatever the test order)
from fluxcore.learners import available_learners, make_learner
from fluxcore.learners.base import FluxLearner
from fluxcore.testing import CHECKS, check_learner


def _cases():
    for name in available_learners():
        cls = type(make_learner(name))
        for i, params in enumerate(cls.get_test_params()):
            yield pytest.param(name, params, id=f"{name}-{i}")


@pytest.mark.parametrize("name, params", list(_cases()))
def test_registered_learner_conforms(name, params):
    ran = check_learner(make_learner(name, **params))
    assert ran == list(CHECKS)


class _Mean(FluxLearner):
    """Predicts the training mean (a valid, tiny learner)."""

    name = "test_mean"
    _tags = {"multi_target": True}

    def __init__(self, shift: float = 0.0, random_state: int = 0):
        self.shift = shift
        self.random_state = random_state

    def fit(self, X, y, *, sites, dates, sample_weight=None):
        self.mean_ = np.nanmean(y.to_numpy(float), axis=0) + self.shift
        return self

    def predict(self, X, *, sites, dates):
        return np.tile(self.mean_, (len(X), 1))


class _Peeks(_Mean):
    """Leaks: remembers every site's fluxes and predicts a site from its own."""

    _tags = {"multi_target": True, "fast_strategy": "group_holdout"}

    def fit(self, X, y, *, sites, dates, sample_weight=None):
        super().fit(X, y, sites=sites, dates=dates)
        self.by_site_ = {s: np.nanmean(y.to_numpy(float)[sites == s], axis=0) for s in set(sites)}
        return self

    def predict(self, X, *, sites, dates):
        return np.array([self.by_site_.get(s, self.mean_) for s in sites])


class _ReturnsNone(_Mean):
    def fit(self, X, y, *, sites, dates, sample_weight=None):
        super().fit(X, y, sites=sites, dates=dates)


class _Random(_Mean):
    def predict(self, X, *, sites, dates):
        return np.random.default_rng().normal(size=(len(X), len(self.mean_)))


class _Mutates(_Mean):
    def fit(self, X, y, *, sites, dates, sample_weight=None):
        X.iloc[0, 0] = -999.0
        return super().fit(X, y, sites=sites, dates=dates)


def test_a_valid_outside_learner_passes():
    assert "held_out_fluxes_never_matter" in check_learner(_Mean())


@pytest.mark.parametrize("bad, check", [
    (_ReturnsNone(), "fit_returns_self_and_fitted_state"),
    (_Random(), "deterministic"),
    (_Mutates(), "inputs_not_modified"),
])
def test_broken_learners_are_caught(bad, check):
    with pytest.raises(AssertionError, match=check):
        check_learner(bad)


def test_a_leaking_learner_is_caught_by_its_fast_strategy_check():
    """_Peeks is harmless per fold (never given the test site) but its group strategy is fine
    too; the check compares a site's prediction with its own fluxes changed."""
    # per fold and with group_holdout no model sees its test site, so _Peeks passes...
    check_learner(_Peeks(), checks=["held_out_fluxes_never_matter"])

    # ...but a strategy that trains on everything is caught
    from fluxcore.strategies import Strategy, register_strategy
    from fluxcore.strategies.base import _STRATEGIES

    class _AllSites(Strategy):
        name = "test_all_sites"

        def run(self, learner, X, Y, sites, dates, pools, options, context):
            m = learner.fit(X, Y, sites=sites, dates=dates)
            return {s: m.predict(X[sites == s], sites=sites[sites == s], dates=dates[sites == s]) for s in pools}

    register_strategy(_AllSites())
    try:
        class _Leaky(_Peeks):
            _tags = {"fast_strategy": "test_all_sites"}

        with pytest.raises(AssertionError, match="own fluxes"):
            check_learner(_Leaky(), checks=["held_out_fluxes_never_matter"])
    finally:
        _STRATEGIES.pop("test_all_sites", None)
