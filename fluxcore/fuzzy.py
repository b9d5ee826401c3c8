"""Fuzzy inversion: fuzzy site weighting and fuzzy aridity zones for any learner.

Gao et al. (2025) "incorporate fuzzy mathematics into the inversion" (their "LSTM + fuzzy")
without giving formulas. fluxcore offers two documented interpretations, both usable with
every learner (see ``docs/heterogeneity.md``):

Fuzzy site weighting (``<learner>_fuzzy``)
    the training sites form a fuzzy set "similar to the test site" (Zadeh 1965) whose
    membership is a non-increasing function of the comprehensive distance D of
    :mod:`fluxcore.heterogeneity` (normalised with training-site statistics only):
    Gaussian ``mu = exp(-D^2 / (2 sigma^2))`` or Cauchy ``mu = 1 / (1 + (D / gamma)^2)``; the
    width is, by default, the median pairwise D among the training sites (so it is set
    without the test site). An alpha-cut sets memberships below ``alpha`` to 0 (keeping at
    least ``min_sites`` training sites). Each training row gets its site's membership as
    ``sample_weight``; the runner drops rows of weight 0.

Fuzzy aridity zones (``<learner>_fuzzyzones``)
    overlapping zone memberships on the log10 aridity-index axis (trapezoids, a partition
    of unity, see :func:`zone_memberships`); :class:`FuzzyZoneLearner` trains one base model
    per zone on the rows of sites with membership >= ``min_membership``, weighted by that
    membership, and predicts the membership-weighted average of the zone models.

References
----------
Zadeh, L. A. (1965) Fuzzy sets. Information and Control 8(3), 338-353.
doi:10.1016/S0019-9958(65)90241-X
Gao, Y. et al. (2025) (see :mod:`fluxcore.heterogeneity`).
UNEP (1992) World Atlas of Desertification (aridity classes; :mod:`fluxcore.aridity`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .aridity import ZONE_BOUNDS, site_aridity_from_daily
from .errors import ConfigError
from .heterogeneity import pairwise_distances, site_descriptors, site_distances
from .learners.base import FluxLearner, make_learner
from .variables import ZONES
from .variants import MIN_SITES, PRESETS, ZONE_OVERLAP, preset_options


# ------------------------------------------------------------------ membership functions
def gaussian(d, sigma: float) -> np.ndarray:
    """Gaussian membership ``exp(-d^2 / (2 sigma^2))`` in (0, 1], non-increasing in d >= 0.

    Parameters
    ----------
    d : array_like
        Distance(s) [-], >= 0.
    sigma : float
        Width [same unit as d], > 0; membership 0.61 at ``d = sigma``.
    """
    if not np.isfinite(sigma) or sigma <= 0:
        raise ConfigError(f"Gaussian membership width must be > 0, got {sigma!r}")
    d = np.abs(np.asarray(d, dtype=float))
    return np.exp(-0.5 * (d / sigma) ** 2)


def cauchy(d, gamma: float) -> np.ndarray:
    """Cauchy (bell) membership ``1 / (1 + (d / gamma)^2)`` in (0, 1], heavier tail than Gaussian.

    Parameters
    ----------
    d : array_like
        Distance(s) [-], >= 0.
    gamma : float
        Half-membership distance [same unit as d], > 0.
    """
    if not np.isfinite(gamma) or gamma <= 0:
        raise ConfigError(f"Cauchy membership width must be > 0, got {gamma!r}")
    d = np.abs(np.asarray(d, dtype=float))
    return 1.0 / (1.0 + (d / gamma) ** 2)


MEMBERSHIP_FUNCTIONS: dict[str, Callable[[Any, float], np.ndarray]] = {"gaussian": gaussian, "cauchy": cauchy}


def training_width(descriptors: pd.DataFrame, train_sites: Sequence[str],
                   weights: Mapping[str, float] | None = None) -> float:
    """Median pairwise comprehensive distance among the training sites (default width) [-]."""
    d = pairwise_distances(descriptors, train_sites, weights=weights).to_numpy(dtype=float)
    iu = np.triu_indices_from(d, k=1)
    v = d[iu]
    v = v[np.isfinite(v)]
    if v.size == 0 or np.median(v) <= 0:
        raise ConfigError("cannot set a membership width: training sites have no usable pairwise distance")
    return float(np.median(v))


def apply_alpha_cut(memberships: pd.Series, alpha: float, min_sites: int = MIN_SITES) -> pd.Series:
    """Set memberships below ``alpha`` to 0, keeping at least ``min_sites`` sites.

    The ``min_sites`` sites with the largest membership (ties broken by site id) keep their
    membership even when it is below ``alpha``, so that a test site far from every training
    site still has a training set.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ConfigError(f"alpha-cut must be in [0, 1], got {alpha!r}")
    mu = memberships.astype(float)
    if alpha <= 0:
        return mu
    order = sorted(mu.index, key=lambda s: (-mu[s], str(s)))
    keep = set(order[: max(0, int(min_sites))])
    cut = (mu < alpha) & ~mu.index.isin(list(keep))
    return mu.where(~cut, 0.0)


def site_memberships(descriptors: pd.DataFrame, train_sites: Sequence[str], test_site: str,
                     kind: str = "gaussian", width: float | None = None, alpha_cut: float = 0.0,
                     min_sites: int = MIN_SITES, weights: Mapping[str, float] | None = None) -> pd.Series:
    """Membership of each training site in the fuzzy set "similar to ``test_site``".

    ``mu_j = f(D(test, j); width)`` with ``f`` = :func:`gaussian` or :func:`cauchy` and D the
    comprehensive distance standardised with training-site statistics only. The default
    width is :func:`training_width` (median pairwise D among training sites), so neither
    the normalisation nor the width sees the test site's values.

    Parameters
    ----------
    descriptors : pandas.DataFrame
        :func:`fluxcore.heterogeneity.site_descriptors`.
    train_sites : sequence of str
        The fold's training sites (the test site is removed if listed).
    test_site : str
    kind : {"gaussian", "cauchy"}
    width : float, optional
        sigma (Gaussian) or gamma (Cauchy) in units of D; default the training median.
    alpha_cut : float
        Memberships below this level are set to 0 (:func:`apply_alpha_cut`), 0 = no cut.
    min_sites : int
        Sites the alpha-cut always keeps.
    weights : mapping, optional
        Group weights of D.

    Returns
    -------
    pandas.Series
        Membership in [0, 1] indexed by training site (name ``"membership"``). A training
        site with no descriptor in common with the test site gets 0; if no training site
        has a usable distance, all get 1 (no information, no weighting) with a warning.
    """
    if kind not in MEMBERSHIP_FUNCTIONS:
        raise ConfigError(f"unknown membership function {kind!r}; use {sorted(MEMBERSHIP_FUNCTIONS)}")
    test_site = str(test_site)
    train = [str(s) for s in train_sites if str(s) != test_site]
    d = site_distances(descriptors, train, test_site, weights)
    if width is None:
        width = training_width(descriptors, train, weights)
    if not d.notna().any():
        warnings.warn(f"site {test_site}: no usable descriptor distance; fuzzy weights set to 1",
                      stacklevel=2)
        return pd.Series(1.0, index=pd.Index(train, name="SITE_ID"), name="membership")
    mu = pd.Series(MEMBERSHIP_FUNCTIONS[kind](d.to_numpy(dtype=float), float(width)), index=d.index)
    mu = mu.fillna(0.0)
    mu = apply_alpha_cut(mu, alpha_cut, min_sites)
    mu.index.name = "SITE_ID"
    return mu.rename("membership")


# ------------------------------------------------------------------ fuzzy aridity zones
def zone_memberships(ai, overlap: float = ZONE_OVERLAP) -> pd.DataFrame:
    """Fuzzy aridity-zone memberships (a partition of unity on the log10 AI axis).

    With ``x = log10(AI)``, boundaries ``b = log10(0.2, 0.5, 0.65)`` (UNEP 1992) and the
    ramps ``r_i(x) = clip((x - b_i + h) / (2 h), 0, 1)`` (h = ``overlap``), the memberships
    are trapezoids::

        arid = 1 - r_1,  semi-arid = r_1 - r_2,  semi-humid = r_2 - r_3,  humid = r_3

    They lie in [0, 1], sum to 1, equal 0.5 / 0.5 at a boundary and recover the hard zone
    of :func:`fluxcore.aridity.aridity_zone` farther than h from every boundary.

    Parameters
    ----------
    ai : float, array_like or pandas.Series
        Aridity index P/PET [-]; AI <= 0 counts as arid, NaN gives a NaN row.
    overlap : float
        Half-width h of each transition [log10 units], 0 < h <= 0.057 (half the log-width of
        the narrow semi-humid zone, so that ramps do not overlap); default 0.05 (+-12 % AI).

    Returns
    -------
    pandas.DataFrame
        Columns ``arid, semi-arid, semi-humid, humid``; the Series' index if ``ai`` is one.
    """
    bounds = np.log10(np.array([ZONE_BOUNDS[z] for z in ZONES[:-1]]))
    hmax = float(np.min(np.diff(bounds)) / 2)
    if not (0 < overlap <= hmax + 1e-12):
        raise ConfigError(f"zone overlap must be in (0, {hmax:.3f}] log10 units, got {overlap!r}")
    index = ai.index if isinstance(ai, pd.Series) else None
    a = np.atleast_1d(np.asarray(ai, dtype=float))
    x = np.log10(np.where(a > 0, a, 1e-9))
    r = [np.clip((x - b + overlap) / (2 * overlap), 0.0, 1.0) for b in bounds]
    m = np.column_stack([1 - r[0], r[0] - r[1], r[1] - r[2], r[2]])
    m[~np.isfinite(a)] = np.nan
    return pd.DataFrame(m, columns=list(ZONES), index=index)


def _make_base(base: str, params: Mapping[str, Any] | None, random_state,
               multi_target: bool = False) -> FluxLearner:
    params = dict(params or {})
    learner = make_learner(base, **params)
    if random_state is not None and "random_state" not in params:
        try:
            if "random_state" in learner.get_params():
                learner.set_params(random_state=random_state)
        except (ConfigError, AttributeError):
            pass
    if multi_target and not getattr(learner, "multi_target", False):
        from .learners import PerTarget  # single-output plug-in: one clone per target

        learner = PerTarget(learner)
    return learner


class FuzzyZoneLearner(FluxLearner):
    """One base learner per fuzzy aridity zone, combined by the test site's memberships.

    ``fit``: for each zone z, the rows of the training sites with membership
    ``mu_z(site) >= min_membership`` train a base model with ``sample_weight = mu_z(site)``
    (times any ``sample_weight`` given); a zone with fewer than ``min_sites`` such sites gets
    no model (a model fitted on one or two sites cannot generalise across sites). If no zone
    has enough sites, a single base model is fitted on all training rows (``fallback_`` is
    True) and used for every prediction. ``predict``: for a row of site s,
    ``yhat = sum_z mu_z(s) yhat_z / sum_z mu_z(s)`` over the zones that have a model; a site
    whose zones all lack a model uses the model of the nearest zone (in zone order) that has
    one (the mean of the two if equally near).

    Parameters
    ----------
    base : str
        Registry name of the base learner (``"lstm"``, ``"rf"``, ``"svm"``, ``"mlr"``).
    base_params : dict, optional
        Hyperparameters of the base learner.
    aridity : mapping or pandas.Series
        Aridity index per site id [-] (a site attribute from climate, never from fluxes).
        Must cover the training and the test sites.
    min_membership : float
        Sites below this membership are left out of a zone's training set.
    min_sites : int
        Fewest training sites a zone model needs.
    overlap : float
        Zone transition half-width (:func:`zone_memberships`).
    random_state : int, optional
        Seed given to every base model (results are deterministic for a fixed seed).
    """

    name = "fuzzyzones"
    _tags = {"multi_target": True}

    def __init__(self, base: str = "lstm", base_params: dict | None = None, aridity=None,
                 min_membership: float = 0.05, min_sites: int = 3, overlap: float = ZONE_OVERLAP,
                 random_state=None):
        self.base = base
        self.base_params = base_params
        self.aridity = aridity
        self.min_membership = min_membership
        self.min_sites = min_sites
        self.overlap = overlap
        self.random_state = random_state

    def _memberships(self, sites: np.ndarray) -> pd.DataFrame:
        if self.aridity is None:
            raise ConfigError("FuzzyZoneLearner needs the aridity index of each site (aridity=...)")
        ai = pd.Series(self.aridity, dtype=float) if not isinstance(self.aridity, pd.Series) \
            else self.aridity.astype(float)
        ai.index = ai.index.astype(str)
        uniq = pd.unique(np.asarray(sites).astype(str))
        missing = [s for s in uniq if s not in ai.index or not np.isfinite(ai[s])]
        if missing:
            raise ConfigError(f"FuzzyZoneLearner: no aridity index for site(s) {', '.join(missing[:10])}")
        return zone_memberships(ai.loc[list(uniq)], self.overlap)

    def fit(self, X: pd.DataFrame, y, *, sites, dates, sample_weight=None) -> FuzzyZoneLearner:
        sites = np.asarray(sites).astype(str)
        zm = self._memberships(sites)
        sw = np.ones(len(sites)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
        self.models_: dict[str, FluxLearner] = {}
        self.zone_sites_: dict[str, list[str]] = {}
        for z in ZONES:
            mu_site = zm[z]
            ok_sites = mu_site.index[mu_site >= self.min_membership]
            if len(ok_sites) == 0 or len(ok_sites) < self.min_sites:
                continue
            rows = np.isin(sites, ok_sites)
            w = mu_site.reindex(sites[rows]).to_numpy(dtype=float) * sw[rows]
            if not (w > 0).any():
                continue
            model = _make_base(self.base, self.base_params, self.random_state, multi_target=True)
            yz = y.iloc[rows] if hasattr(y, "iloc") else np.asarray(y)[rows]
            model.fit(X.iloc[rows], yz, sites=sites[rows], dates=np.asarray(dates)[rows], sample_weight=w)
            self.models_[z] = model
            self.zone_sites_[z] = sorted(map(str, ok_sites))
        self.fallback_ = not self.models_
        if self.fallback_:
            model = _make_base(self.base, self.base_params, self.random_state, multi_target=True)
            model.fit(X, y, sites=sites, dates=np.asarray(dates), sample_weight=sample_weight)
            self.models_["all"] = model
            self.zone_sites_["all"] = sorted(set(sites))
        return self

    def _zone_weights(self, site: str, mu: pd.Series) -> dict[str, float]:
        if self.fallback_:
            return {"all": 1.0}
        w = {z: float(mu[z]) for z in self.models_ if mu[z] > 0}
        if w:
            return w
        zi = int(np.argmax(mu.to_numpy()))
        dist = {z: abs(ZONES.index(z) - zi) for z in self.models_}
        dmin = min(dist.values())
        return {z: 1.0 for z, d in dist.items() if d == dmin}

    def predict(self, X: pd.DataFrame, *, sites, dates) -> np.ndarray:
        self._check_fitted()
        sites = np.asarray(sites).astype(str)
        dates = np.asarray(dates)
        zm = self._memberships(sites)
        out = None
        for s in pd.unique(sites):
            rows = np.flatnonzero(sites == s)
            w = self._zone_weights(s, zm.loc[s])
            acc = None
            for z, wz in w.items():
                p = np.asarray(self.models_[z].predict(X.iloc[rows], sites=sites[rows], dates=dates[rows]),
                               dtype=float)
                if p.ndim == 1:
                    p = p[:, None]
                acc = wz * p if acc is None else acc + wz * p
            pred = acc / sum(w.values())
            if out is None:
                out = np.full((len(sites), pred.shape[1]), np.nan)
            out[rows] = pred
        return out if out is not None else np.empty((0, 1))


# ------------------------------------------------------------------ presets and variants
@dataclass
class Variant:
    """A learner variant resolved by :func:`make_variant`.

    Attributes
    ----------
    learner : FluxLearner
        Unfitted learner.
    weight_fn : callable or None
        ``weight_fn(train_sites, test_site) -> pandas.Series`` of memberships in [0, 1] per
        training site; the runner multiplies them into ``sample_weight`` (rows of weight 0
        are dropped). None: no site weighting.
    name : str
    description : str
    """

    learner: FluxLearner
    weight_fn: Callable[[list[str], str], pd.Series] | None = None
    name: str = ""
    description: str = ""


_DESC_CACHE: list[tuple[Any, pd.DataFrame]] = []


def cached_descriptors(dataset) -> pd.DataFrame:
    """:func:`site_descriptors` of a dataset, computed once per dataset object."""
    for ds, desc in _DESC_CACHE:
        if ds is dataset:
            return desc
    desc = site_descriptors(dataset)
    _DESC_CACHE.append((dataset, desc))
    del _DESC_CACHE[:-4]
    return desc


def site_aridity(dataset) -> pd.Series:
    """Aridity index per site: the catalogue's ``ARIDITY_INDEX``, else from daily drivers.

    Sites without a catalogue value get the Hargreaves-based index of
    :func:`fluxcore.aridity.site_aridity_from_daily` (P, TMIN, TMAX, latitude; never fluxes).
    """
    cat = pd.to_numeric(pd.Series(dataset.sites["ARIDITY_INDEX"].to_numpy(),
                                  index=dataset.sites.index.astype(str)), errors="coerce")
    if cat.isna().any():
        lat = pd.Series(dataset.sites["LAT"].to_numpy(dtype=float), index=dataset.sites.index.astype(str))
        est = site_aridity_from_daily(dataset.daily, lat)
        cat = cat.fillna(est.reindex(cat.index))
    return cat


def make_variant(name: str, dataset, params: Mapping[str, Any] | None = None,
                 random_state=None) -> Variant:
    """Resolve a fuzzy learner variant by name (see :data:`PRESETS`).

    Parameters
    ----------
    name : str
        Preset name, e.g. ``"lstm_fuzzy"`` (the paper's "LSTM + fuzzy"), ``"rf_fuzzyzones"``.
    dataset : fluxcore.dataset.FluxDataset
        The run's dataset (descriptors / aridity are computed once per dataset).
    params : mapping, optional
        Hyperparameters of the base learner; keys named like preset options (``kind, width,
        alpha_cut, min_sites, group_weights, rescale`` for site weighting; ``min_membership,
        zone_min_sites, overlap`` for zones) override the preset instead.
    random_state : int, optional
        Seed of the base learner(s).

    Returns
    -------
    Variant
    """
    if name not in PRESETS:
        raise ConfigError(f"unknown learner variant {name!r}; fuzzy presets: {', '.join(sorted(PRESETS))}")
    spec = dict(PRESETS[name])
    params = dict(params or {})
    options = preset_options(name)
    for k in list(params):
        if k in options:
            spec[k] = params.pop(k)
    if spec["mode"] == "zones":
        learner = FuzzyZoneLearner(base=spec["base"], base_params=params or None,
                                   aridity=site_aridity(dataset).to_dict(),
                                   min_membership=spec["min_membership"],
                                   min_sites=int(spec["zone_min_sites"]), overlap=spec["overlap"],
                                   random_state=random_state)
        return Variant(learner=learner, weight_fn=None, name=name, description=spec["description"])

    learner = _make_base(spec["base"], params, random_state)
    descriptors = cached_descriptors(dataset)
    kind, width, cut = spec["kind"], spec["width"], float(spec["alpha_cut"])
    min_sites, gweights, rescale = int(spec["min_sites"]), spec["group_weights"], bool(spec["rescale"])

    def weight_fn(train_sites: list[str], test_site: str) -> pd.Series:
        mu = site_memberships(descriptors, train_sites, test_site, kind=kind, width=width,
                              alpha_cut=cut, min_sites=min_sites, weights=gweights)
        if rescale and mu.max() > 0:
            mu = mu / mu.max()
        return mu

    return Variant(learner=learner, weight_fn=weight_fn, name=name, description=spec["description"])


__all__ = [
    "gaussian", "cauchy", "MEMBERSHIP_FUNCTIONS", "training_width", "apply_alpha_cut",
    "site_memberships", "zone_memberships", "FuzzyZoneLearner", "Variant", "PRESETS",
    "make_variant", "site_aridity", "cached_descriptors",
]
