"""Literature process-model parameters and their calibration (fluxcore.pmparams)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fluxcore.pmparams import (
    MOD17_BPLUT,
    calibrate,
    fluxes_from_basis,
    literature_params,
    process_basis,
    site_statistics,
)
from fluxcore.processmodel import IGBP_DEFAULTS, run_process_model
from fluxcore.sources import load_dataset


@pytest.fixture(scope="module")
def demo():
    ds = load_dataset("demo")
    return ds.subset(sites=ds.site_ids[:10])


def test_literature_table_is_the_mod17_lookup_table_not_the_demo_worlds():
    p = literature_params("DBF")
    assert p.eps_max == MOD17_BPLUT["DBF"]["eps_max"] == 1.526
    assert (p.vpd_open, p.vpd_close, p.t_min) == (6.5, 29.0, -6.0)
    assert (p.e0, p.t0) == (308.56, 227.13)
    assert literature_params("WET") == literature_params("GRA")
    assert literature_params("SNO").eps_max == literature_params(None).eps_max
    # the demo world's generating table differs (a skill claim on it would be circular)
    assert any(literature_params(c).eps_max != v["eps_max"] for c, v in IGBP_DEFAULTS.items())


def test_basis_reproduces_the_process_model_exactly(demo):
    d = demo.daily
    basis = process_basis(d, demo.sites)
    cls = demo.sites["IGBP"].reindex(d["SITE_ID"]).to_numpy()
    P = {s: literature_params(demo.sites.loc[s, "IGBP"]) for s in demo.site_ids}
    ref = run_process_model(d, demo.sites, P)
    get = {n: np.array([getattr(literature_params(c), n) for c in cls]) for n in ("eps_max", "r_ref", "k_gpp")}
    out = fluxes_from_basis(basis.to_numpy(), get["eps_max"], get["r_ref"], get["k_gpp"])
    np.testing.assert_allclose(out["GPP"], ref["GPP"], atol=1e-10, equal_nan=True)
    np.testing.assert_allclose(out["ER"], ref["ER"], atol=1e-10, equal_nan=True)


def test_calibration_recovers_known_parameters_within_bounds_and_reads_only_training_sites(demo):
    d = demo.daily
    basis = process_basis(d, demo.sites).to_numpy()
    codes, uniq = pd.factorize(d["SITE_ID"].astype(str))
    cls = [demo.sites.loc[s, "IGBP"] for s in uniq]
    truth = fluxes_from_basis(basis, 1.7, 0.9, 0.3)  # every class the same known values
    stats = site_statistics(basis, truth, codes, len(uniq))
    train = np.arange(len(uniq)) != 0
    res = calibrate(stats, cls, train)
    for r in res.values():
        if r["n_sites"]:
            assert r["calibrated"]
            np.testing.assert_allclose([r["params"][k] for k in ("eps_max", "r_ref", "k_gpp")], [1.7, 0.9, 0.3],
                                       rtol=1e-4)
    # spy: the held-out site's statistics may be anything
    poisoned = {k: v.copy() for k, v in stats.items()}
    for k in poisoned:
        poisoned[k][0] = np.nan if k not in ("ng", "ne") else 5.0
    assert calibrate(poisoned, cls, train) == res
    # bounds hold
    big = site_statistics(basis, fluxes_from_basis(basis, 50.0, 0.9, 0.3), codes, len(uniq))
    assert all(r["params"]["eps_max"] <= 4.0 for r in calibrate(big, cls, train).values())
