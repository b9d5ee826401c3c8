"""Conformance checks for learners, usable on a learner written outside fluxcore.

``fluxcore.testing.check_learner(learner)`` runs the contract every fluxcore learner follows
(:mod:`fluxcore.learners.base`) and the leakage checks of its fast strategy on a small,
seeded synthetic problem, and raises :class:`AssertionError` naming the first broken rule::

    from fluxcore.testing import check_learner
    check_learner(MyLearner(hidden=8, max_epochs=2))      # returns the names of the checks run

fluxcore's own test suite runs it for every registered learner and every parameter set of
its ``get_test_params()``.
"""

from __future__ import annotations

import copy
import inspect
import pickle
from collections.abc import Callable

import numpy as np
import pandas as pd

from .errors import ConfigError
from .learners.base import FluxLearner, check_params
from .strategies import StrategyContext, get_strategy

__all__ = ["make_synthetic", "check_learner", "CHECKS", "KNOWN_TAGS"]

#: Tags a learner may declare, with the type of their value.
KNOWN_TAGS: dict[str, type | tuple] = {
    "multi_target": bool, "sequence": bool, "fine_tune": bool, "sample_weight": bool,
    "fast_strategy": (str, type(None)), "time_resolution": (tuple, list), "few_shot": bool,
}


def make_synthetic(n_sites: int = 8, n_days: int = 200, seed: int = 0, noise: float = 0.3,
                   start: str = "2010-01-01"):
    """Site-day features and targets with a known nonlinear relation.

    Drivers per site: TA (seasonal cycle + site offset) [degC], SW_IN [W m-2], VPD [hPa],
    P [mm d-1], a 10-day trailing mean of TA is *not* given (so that memory helps sequence
    models), and two static columns ELEV [m] and CLAY [%].

    GPP = light-use and temperature response, reduced by VPD; ER = exponential in TA (Q10) with
    a carry-over of the last 10 days of GPP; NEE = ER - GPP.

    Returns
    -------
    X : pandas.DataFrame, y : pandas.DataFrame (GPP, ER, NEE), sites : ndarray of str,
    dates : ndarray of datetime64[ns]
    """
    rng = np.random.default_rng(seed)
    rows_X, rows_y, sites, dates = [], [], [], []
    day = np.arange(n_days)
    d = pd.date_range(start, periods=n_days, freq="D").to_numpy()
    for s in range(n_sites):
        sid = f"S{s:02d}"
        t_off = rng.normal(0.0, 4.0)
        elev = rng.uniform(0.0, 1500.0)
        clay = rng.uniform(5.0, 50.0)
        season = np.sin(2 * np.pi * (day + 80) / 365.0)
        ta = 10 + t_off + 12 * season + rng.normal(0, 2.0, n_days) - elev / 300.0
        sw = np.clip(180 + 120 * season + rng.normal(0, 40, n_days), 5, None)
        vpd = np.clip(0.4 * np.maximum(ta, 0) + rng.normal(0, 1.5, n_days), 0, None)
        p = rng.gamma(0.4, 5.0, n_days)
        ws = np.clip(rng.normal(3, 1, n_days), 0, None)
        gpp = (0.03 * sw * np.clip((ta + 2) / 20, 0, 1.3) * np.exp(-vpd / 15)
               * (1 + clay / 100))
        kernel = np.ones(10) / 10
        gpp_mem = np.convolve(gpp, kernel)[:n_days]
        er = 0.8 * 2.0 ** ((ta - 10) / 10) + 0.4 * gpp_mem
        gpp = gpp + rng.normal(0, noise, n_days)
        er = er + rng.normal(0, noise, n_days)
        rows_X.append(pd.DataFrame({"TA": ta, "SW_IN": sw, "VPD": vpd, "P": p, "WS": ws,
                                    "ELEV": elev, "CLAY": clay}))
        rows_y.append(pd.DataFrame({"GPP": gpp, "ER": er, "NEE": er - gpp}))
        sites.append(np.full(n_days, sid))
        dates.append(d)
    X = pd.concat(rows_X, ignore_index=True)
    y = pd.concat(rows_y, ignore_index=True)
    return X, y, np.concatenate(sites).astype(str), np.concatenate(dates).astype("datetime64[ns]")


# ------------------------------------------------------------------ the problem
def _problem(n_sites: int, n_days: int, seed: int, targets: list[str]):
    X, y, sites, dates = make_synthetic(n_sites=n_sites, n_days=n_days, seed=seed)
    return X, y[targets], sites, dates


def _split(data, test_sites):
    X, y, sites, dates = data
    te = np.isin(sites, test_sites)
    return (X[~te], y[~te], sites[~te], dates[~te]), (X[te], y[te], sites[te], dates[te])


def _fit_predict(est: FluxLearner, train, test, **kw) -> np.ndarray:
    X, y, s, d = train
    out = est.fit(X, y, sites=s, dates=d, **kw)
    assert out is est, f"{type(est).__name__}.fit must return self"
    return np.asarray(est.predict(test[0], sites=test[2], dates=test[3]), dtype=float)


def _targets(learner: FluxLearner) -> list[str]:
    return ["GPP", "ER", "NEE"] if learner.get_tag("multi_target", False) else ["GPP"]


# ------------------------------------------------------------------ the checks
def check_tags(learner: FluxLearner, data) -> None:
    """Tags are known, of the right type, and a named fast strategy is registered."""
    tags = type(learner).get_class_tags()
    for name, value in tags.items():
        if name in KNOWN_TAGS:
            assert isinstance(value, KNOWN_TAGS[name]), f"tag {name!r} has type {type(value).__name__}"
    fs = tags.get("fast_strategy")
    if fs:
        try:
            get_strategy(fs)
        except ConfigError as exc:
            raise AssertionError(f"tag fast_strategy={fs!r}: {exc}") from None
    if tags.get("fine_tune"):
        params = inspect.signature(type(learner).fine_tune).parameters
        takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        assert "epochs" in params or takes_any, "fine_tune must accept epochs="


def check_params_api(learner: FluxLearner, data) -> None:
    """``__init__`` stores its parameters; clone copies them; unknown names are refused."""
    params = learner.get_params()
    names = set(inspect.signature(type(learner).__init__).parameters) - {"self"}
    assert set(params) <= names | set(type(learner)._param_names()), "get_params names are not __init__ parameters"
    clone = learner.clone()
    assert type(clone) is type(learner) and clone.get_params().keys() == params.keys()
    for k, v in params.items():
        cv = clone.get_params()[k]
        assert cv is v or _equal(cv, v), f"clone() changed parameter {k!r}"
    try:
        learner.clone().set_params(__no_such_parameter__=1)
    except ConfigError:
        pass
    else:
        raise AssertionError("set_params must refuse unknown parameters with ConfigError")
    check_params(learner)


def check_fit_returns_self_and_fitted_state(learner: FluxLearner, data) -> None:
    """``fit`` returns self, adds fitted attributes ending in ``_``, leaves parameters alone."""
    train, test = _split(data, ["S04", "S05"])
    est = learner.clone()
    before = copy.deepcopy(est.get_params())
    _fit_predict(est, train, test)
    fitted = [k for k in vars(est) if k.endswith("_") and not k.startswith("_")]
    assert fitted, "fit must set fitted attributes ending in '_'"
    for k, v in before.items():
        assert _equal(est.get_params()[k], v), f"fit changed hyperparameter {k!r}"


def check_predict_shape_and_finite(learner: FluxLearner, data) -> None:
    """Predictions have shape (rows, targets) and are finite where drivers are."""
    train, test = _split(data, ["S04", "S05"])
    pred = _fit_predict(learner.clone(), train, test)
    assert pred.shape == (len(test[0]), test[1].shape[1]), f"predict shape {pred.shape}"
    assert np.isfinite(pred).mean() > 0.9, "most predictions must be finite"


def check_deterministic(learner: FluxLearner, data) -> None:
    """Same parameters (``random_state``) -> identical predictions."""
    train, test = _split(data, ["S04", "S05"])
    a = _fit_predict(learner.clone(), train, test)
    b = _fit_predict(learner.clone(), train, test)
    np.testing.assert_array_equal(a, b, err_msg="same random_state must give identical predictions")


def check_inputs_not_modified(learner: FluxLearner, data) -> None:
    """``fit`` and ``predict`` never modify their inputs."""
    train, test = _split(data, ["S04", "S05"])
    copies = [c.copy() for c in (*train, *test)]
    _fit_predict(learner.clone(), train, test)
    for orig, cp in zip((*train, *test), copies, strict=True):
        if isinstance(orig, pd.DataFrame):
            pd.testing.assert_frame_equal(orig, cp)
        else:
            np.testing.assert_array_equal(orig, cp)


def check_refit_starts_fresh(learner: FluxLearner, data) -> None:
    """A second ``fit`` forgets the first."""
    train, test = _split(data, ["S04", "S05"])
    other, _ = _split(data, ["S00", "S01", "S04", "S05"])
    est = learner.clone()
    est.fit(*other[:2], sites=other[2], dates=other[3])
    a = _fit_predict(est, train, test)
    b = _fit_predict(learner.clone(), train, test)
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6, err_msg="refit must start from scratch")


def check_missing_targets(learner: FluxLearner, data) -> None:
    """Rows with a missing target are ignored for that target, without failing."""
    train, test = _split(data, ["S04", "S05"])
    X, y, s, d = train
    y = y.copy()
    rng = np.random.default_rng(0)
    y.iloc[rng.random(len(y)) < 0.2, 0] = np.nan
    pred = _fit_predict(learner.clone(), (X, y, s, d), test)
    assert np.isfinite(pred).mean() > 0.9


def check_held_out_fluxes_never_matter(learner: FluxLearner, data) -> None:
    """A fold's predictions do not change when the held-out site's fluxes change.

    With a fast strategy (tag ``fast_strategy``) the strategy computes every fold at once on
    the whole table, so this is where a leak would show.
    """
    X, y, sites, dates = data
    uniq = sorted(set(sites))
    pools = {s: [x for x in uniq if x != s] for s in uniq}
    name = learner.get_tag("fast_strategy")
    victim = uniq[1]
    y2 = y.copy()
    y2.loc[sites == victim, :] = 1e3
    if name:
        strategy = get_strategy(name)
        if not strategy.supports(learner):
            return
        opts = strategy.check_options({"n_groups": 2} if "n_groups" in strategy.default_options else {})

        def run(yy):
            return strategy.run(learner.clone(), X, yy, sites, dates, pools, opts,
                                StrategyContext(n_jobs=1, n_processes=1))

        a, b = run(y), run(y2)
        np.testing.assert_array_equal(a[victim], b[victim],
                                      err_msg=f"fast strategy {name!r}: a site's own fluxes changed its prediction")
    train, test = _split((X, y, sites, dates), [victim])
    train2, _ = _split((X, y2, sites, dates), [victim])
    np.testing.assert_array_equal(_fit_predict(learner.clone(), train, test),
                                  _fit_predict(learner.clone(), train2, test))


def check_fine_tune(learner: FluxLearner, data) -> None:
    """Learners with the ``fine_tune`` tag continue training and return self."""
    if not learner.get_tag("fine_tune", False):
        return
    train, test = _split(data, ["S04", "S05"])
    more, _ = _split(data, ["S00", "S01", "S02", "S03"])
    est = learner.clone()
    a = _fit_predict(est, train, test)
    out = est.fine_tune(*more[:2], sites=more[2], dates=more[3], epochs=1)
    assert out is est, "fine_tune must return self"
    b = np.asarray(est.predict(test[0], sites=test[2], dates=test[3]), dtype=float)
    assert not np.array_equal(a, b), "fine_tune changed nothing"


def check_state_round_trip(learner: FluxLearner, data) -> None:
    """``get_state`` / ``set_state`` (saved models) reproduce predictions exactly; pickling too."""
    train, test = _split(data, ["S04", "S05"])
    est = learner.clone()
    a = _fit_predict(est, train, test)
    b = np.asarray(pickle.loads(pickle.dumps(est)).predict(test[0], sites=test[2], dates=test[3]))
    np.testing.assert_array_equal(a, b, err_msg="pickling changed predictions")
    if hasattr(est, "get_state") and hasattr(est, "set_state"):
        other = learner.clone().set_state(est.get_state())
        c = np.asarray(other.predict(test[0], sites=test[2], dates=test[3]), dtype=float)
        np.testing.assert_array_equal(a, c, err_msg="set_state(get_state()) changed predictions")


#: The checks run by :func:`check_learner`, in order.
CHECKS: dict[str, Callable] = {
    "tags": check_tags,
    "params_api": check_params_api,
    "fit_returns_self_and_fitted_state": check_fit_returns_self_and_fitted_state,
    "predict_shape_and_finite": check_predict_shape_and_finite,
    "deterministic": check_deterministic,
    "inputs_not_modified": check_inputs_not_modified,
    "refit_starts_fresh": check_refit_starts_fresh,
    "missing_targets": check_missing_targets,
    "held_out_fluxes_never_matter": check_held_out_fluxes_never_matter,
    "fine_tune": check_fine_tune,
    "state_round_trip": check_state_round_trip,
}


def check_learner(learner: FluxLearner, *, checks: list[str] | None = None, n_sites: int = 6,
                  n_days: int = 120, seed: int = 0) -> list[str]:
    """Run the conformance checks on an unfitted learner; return the names of those run.

    Parameters
    ----------
    learner : FluxLearner
        Unfitted, with small hyperparameters (e.g. from its ``get_test_params()``).
    checks : list of str, optional
        Subset of :data:`CHECKS` (default all).
    n_sites, n_days, seed
        Size and seed of the synthetic problem (:func:`make_synthetic`; sites ``S00``...).

    Raises
    ------
    AssertionError
        Naming the check and the rule the learner broke.
    """
    if not isinstance(learner, FluxLearner):
        raise TypeError("check_learner needs a fluxcore.learners.base.FluxLearner")
    names = list(CHECKS) if checks is None else list(checks)
    unknown = sorted(set(names) - set(CHECKS))
    if unknown:
        raise ValueError(f"unknown check(s) {unknown}; available: {list(CHECKS)}")
    data = _problem(n_sites, n_days, seed, _targets(learner))
    for name in names:
        try:
            CHECKS[name](learner, data)
        except AssertionError as exc:
            raise AssertionError(f"{type(learner).__name__}: check {name!r} failed: {exc}") from exc
    return names


def _equal(a, b) -> bool:
    try:
        return bool(a == b) if not isinstance(a, (np.ndarray, list, dict, tuple)) else repr(a) == repr(b)
    except (TypeError, ValueError):
        return repr(a) == repr(b)
