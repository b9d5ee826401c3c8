"""Regional (NARCF) benchmark, tower part: monthly North-American towers, honest vs NARCF protocol.

NARCF (seed ``001``, ``../shared/notes/seed-methods.md``) reports r = 0.90 for a dense network
on monthly 1° inversion fluxes, and r = 0.57-0.63 with meteorology alone; its evaluation
scales the test inputs with a scaler fitted on the test inputs, maps the predictions back
with a quantile transformer fitted on the test *targets*, and validates (early stopping /
model choice) on the test year. No gridded inversion is available here, so this benchmark
uses the North-American towers (site ids ``US-``, ``CA-``, ``MX-``) aggregated to months
(``fluxcore.monthly.load_monthly_towers``, fluxes in gC m-2 month-1) with the NARCF inputs
available at the towers (``fluxcore.monthly.narcf_feature_config``: meteorology, LAI/EVI,
IGBP land cover), target NEE.

Sections of the JSON:

``temporal``
    ``fluxcore.monthly.temporal_holdout`` (last 30 % of each site's years) for mlp, rf, mlr.
``loso``
    ``fluxcore.monthly.monthly_loso`` (North-American towers only, fast strategies) for mlp,
    rf, mlr.
``leakage``
    One calendar split like NARCF's (train ``--years`` up to the year before ``--cutoff``,
    test the cutoff year; the towers have no 2015, so 2007-2013 / 2014 by default). The mlp
    (a) honestly (``fluxcore``: scalers fitted on training rows, validation on each site's
    last training years) and (b) with NARCF's protocol, in full and one leak at a time:
    ``test_scaler`` (inputs of the test rows standardised with their own mean / sd),
    ``quantile_map`` (targets quantile-transformed with a transformer fitted on the training
    targets; predictions mapped back with one fitted on the *test* targets), ``test_validation``
    (early stopping on the test rows). ``delta_r`` = r(protocol) - r(honest). rf and mlr
    honest and with the two leaks that apply to them (they have no early stopping).

The leaky protocol lives only in this file (``_narcf_*`` functions, ``LeakyValidationMLP``);
fluxcore has none of it. Usage (heavy: run under the shared lock)::

    flock /work/bench.lock python benchmarks/bench_regional.py \\
        --out benchmarks/results/regional_$(date +%F).json

Writes JSON; nothing is asserted. The machine is shared with other work: timings are
indicative only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fluxcore.features import build_features  # noqa: E402
from fluxcore.learners import make_learner  # noqa: E402
from fluxcore.learners.mlp import MLPLearner  # noqa: E402
from fluxcore.metrics import scores  # noqa: E402
from fluxcore.monthly import (  # noqa: E402
    MONTHLY_PARAMS,
    load_monthly_towers,
    monthly_loso,
    narcf_feature_config,
    north_american_sites,
    pearson_r,
    temporal_holdout,
    temporal_split,
    tower_feature_config,
)
from fluxcore.provenance import environment  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "fluxnet2015"
ANCHORS = {
    "narcf_r_reported": 0.90,
    "narcf_r_reported_note": "NARCF, dense 50-100-100-100-50-50 on monthly 1 deg inversion NEE, test 2015; "
                             "inflated by test-fitted scaler, test-fitted quantile mapping, test-year validation",
    "narcf_r_meteorology_only": [0.57, 0.63],
    "narcf_r_25_units_with_lat_lon_month": 0.92,
}
LEARNERS = ("mlp", "rf", "mlr")


def _round(x, k=4):
    return None if x is None or not np.isfinite(x) else round(float(x), k)


def _score(o, p) -> dict:
    sc = scores(o, p)
    return {"r": _round(pearson_r(o, p)), "R2": _round(sc["R2"]), "RMSE": _round(sc["RMSE"], 3),
            "MAE": _round(sc["MAE"], 3), "bias": _round(sc["bias"], 3), "n": sc["n"]}


def _scores_records(df: pd.DataFrame) -> list[dict]:
    out = []
    for rec in df.to_dict("records"):
        out.append({k: (_round(v) if isinstance(v, float) else v) for k, v in rec.items()})
    return out


# ------------------------------------------------------------- NARCF's protocol (leaky)
class LeakyValidationMLP(MLPLearner):
    """The mlp whose early-stopping rows are given from outside (NARCF: the test year).

    ``fit`` receives training *and* validation rows; the rows whose (site, date) is in
    ``val_keys`` are used for validation only (never for a gradient step), and the scalers
    are fitted on the first ``n_train`` rows (the training rows) only, so that this class adds
    the one leak of validating on the test rows and nothing else. Benchmark only.
    """

    val_keys: frozenset = frozenset()
    n_train: int = 0

    def _fit_feature_scaler(self, Xa):
        return super()._fit_feature_scaler(Xa[: self.n_train])

    def _fit_target_scaler(self, ya):
        return super()._fit_target_scaler(ya[: self.n_train])

    def _split(self, sites, dates, rows, rng):
        key = pd.Series([f"{s}|{d}" for s, d in zip(sites[rows], pd.DatetimeIndex(dates[rows]), strict=True)])
        is_val = key.isin(self.val_keys).to_numpy()
        self.val_years_ = np.unique(pd.DatetimeIndex(dates[rows[is_val]]).year).astype(np.int64)
        return rows[~is_val], rows[is_val], np.array([], dtype=str), "test"


def _narcf_test_scaler(Xtr: pd.DataFrame, Xte: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """NARCF leak 1: training inputs standardised with training statistics, test inputs with
    the *test* inputs' own mean and sd."""
    def std(a: pd.DataFrame) -> pd.DataFrame:
        mu, sd = a.mean(), a.std(ddof=0).replace(0.0, 1.0)
        return (a - mu) / sd

    return std(Xtr), std(Xte)


def _narcf_quantile_maps(ytr: np.ndarray, yte: np.ndarray, seed: int):
    """NARCF leak 2: target transformer fitted on training targets; inverse fitted on *test* targets."""
    from sklearn.preprocessing import QuantileTransformer

    def qt(y):
        ok = np.isfinite(y)
        t = QuantileTransformer(n_quantiles=int(min(1000, ok.sum())), random_state=seed)
        t.fit(y[ok].reshape(-1, 1))
        return t

    q_tr, q_te = qt(ytr), qt(yte)

    def forward(y):
        out = np.full(len(y), np.nan)
        ok = np.isfinite(y)
        out[ok] = q_tr.transform(y[ok].reshape(-1, 1)).ravel()
        return out

    return forward, lambda p: q_te.inverse_transform(np.asarray(p, float).reshape(-1, 1)).ravel()


def _fit_predict(name: str, params: dict, X, y, s, d, tr, te, *, test_scaler=False, quantile_map=False,
                 test_validation=False, seed=0) -> np.ndarray:
    """Predictions of the test rows under the chosen leaks (none: fluxcore's honest protocol)."""
    Xtr, Xte = X.iloc[tr].reset_index(drop=True), X.iloc[te].reset_index(drop=True)
    ytr, yte = y[tr], y[te]
    if test_scaler:
        Xtr, Xte = _narcf_test_scaler(Xtr, Xte)
    back = None
    if quantile_map:
        fwd, back = _narcf_quantile_maps(ytr, yte, seed)
        ytr_fit, yte_fit = fwd(ytr), fwd(yte)
    else:
        ytr_fit, yte_fit = ytr, yte
    if test_validation:
        est = LeakyValidationMLP(**{**params, "val_fraction": 0.2})
        est.val_keys = frozenset(f"{a}|{b}" for a, b in zip(s[te], pd.DatetimeIndex(d[te]), strict=True))
        okv = np.isfinite(yte_fit)
        est.n_train = len(Xtr)
        Xfit = pd.concat([Xtr, Xte[okv]], ignore_index=True)
        yfit = pd.DataFrame({"NEE": np.r_[ytr_fit, yte_fit[okv]]})
        est.fit(Xfit, yfit, sites=np.r_[s[tr], s[te][okv]], dates=np.r_[d[tr], d[te][okv]])
    else:
        est = make_learner(name, **params)
        est.fit(Xtr, pd.DataFrame({"NEE": ytr_fit}), sites=s[tr], dates=d[tr])
    p = np.asarray(est.predict(Xte, sites=s[te], dates=d[te]), dtype=float)[:, 0]
    return back(p) if back is not None else p


def leakage_section(ds, features, cutoff: int, seed: int, mlp_params: dict) -> dict:
    ft = build_features(ds, features, ["NEE"])
    X = ft.X.reset_index(drop=True)
    y = ft.y["NEE"].to_numpy(dtype=float)
    s, d = np.asarray(ft.sites).astype(str), np.asarray(ft.dates)
    test = temporal_split(s, d, cutoff_year=cutoff)
    tr = np.flatnonzero(~test & np.isfinite(y))
    te = np.flatnonzero(test & np.isfinite(y))
    out = {"split": f"train < {cutoff}, test {cutoff}", "train_months": int(len(tr)), "test_months": int(len(te)),
           "train_sites": int(len(set(s[tr]))), "test_sites": int(len(set(s[te]))),
           "features": list(X.columns), "mlp": {}, "rf": {}, "mlr": {}}
    variants = {
        "honest": {},
        "narcf_full": {"test_scaler": True, "quantile_map": True, "test_validation": True},
        "test_scaler_only": {"test_scaler": True},
        "quantile_map_only": {"quantile_map": True},
        "test_validation_only": {"test_validation": True},
    }
    for name in LEARNERS:
        params = {**MONTHLY_PARAMS.get(name, {}), "random_state": seed}
        if name == "mlp":
            params.update({"val_by": "years", **mlp_params})
        for label, leaks in variants.items():
            if name != "mlp":  # rf and mlr have no early stopping to leak into
                if label == "test_validation_only":
                    continue
                leaks = {k: v for k, v in leaks.items() if k != "test_validation"}
            t0 = time.perf_counter()
            p = _fit_predict(name, params, X, y, s, d, tr, te, seed=seed, **leaks)
            out[name][label] = {**_score(y[te], p), "leaks": sorted(leaks),
                                "seconds": round(time.perf_counter() - t0, 1)}
            print(name, label, out[name][label], flush=True)
        base = out[name]["honest"]["r"]
        for label, v in out[name].items():
            if label != "honest" and base is not None and v.get("r") is not None:
                v["delta_r"] = round(v["r"] - base, 4)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "out" / "regional.json"))
    ap.add_argument("--years", default="2007-2014", help="years of the leakage section (NARCF: 2007-2015)")
    ap.add_argument("--cutoff", type=int, default=2014, help="test year of the leakage section")
    ap.add_argument("--features", choices=("narcf", "tower"), default="narcf")
    ap.add_argument("--sections", default="temporal,loso,leakage")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--mlp-groups", type=int, default=10, help="group_holdout groups of the mlp LOSO")
    ap.add_argument("--runs-dir", default=None)
    args = ap.parse_args(argv)
    sections = [x.strip() for x in args.sections.split(",") if x.strip()]

    t_all = time.perf_counter()
    full = load_monthly_towers(args.data)
    na = full.subset(sites=north_american_sites(full))
    feats = narcf_feature_config(na) if args.features == "narcf" else tower_feature_config()
    env = environment()
    res: dict = {
        "benchmark": "bench_regional (tower part)",
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"shared machine, {os.cpu_count()} cores, other work running: timings indicative only",
        "code_version": env["code_version"], "git_commit": env["git_commit"],
        "data": {"source": args.data, "time_step": na.time_step, "n_sites_north_america": na.n_sites,
                 "n_site_months": na.n_site_days, "target": "NEE", "unit": "gC m-2 month-1",
                 "sites_rule": "SITE_ID starts with US-, CA- or MX-"},
        "features": args.features, "feature_config": feats.to_dict(), "seed": args.seed,
        "anchors": ANCHORS,
    }
    if "temporal" in sections:
        t0 = time.perf_counter()
        ev = temporal_holdout(na, LEARNERS, targets=["NEE"], features=feats, seed=args.seed)
        res["temporal"] = {"split": ev.info["split"], "train_rows": ev.info["train_rows"],
                           "test_rows": ev.info["test_rows"], "n_test_sites": len(ev.info["test_sites"]),
                           "scores": _scores_records(ev.scores[ev.scores["subset"] == "north_america"]),
                           "seconds": round(time.perf_counter() - t0, 1)}
        print("temporal", json.dumps(res["temporal"]["scores"], indent=1), flush=True)
    if "loso" in sections:
        t0 = time.perf_counter()
        runs = args.runs_dir or tempfile.mkdtemp(prefix="bench_regional_runs_")
        ev = monthly_loso(na, LEARNERS, targets=["NEE"], features=feats, seed=args.seed, runs_dir=runs,
                          strategy_options={"mlp": {"n_groups": args.mlp_groups}})
        res["loso"] = {"n_test_sites": len(ev.info["test_sites"]), "strategy": "fast (mlr_exact, rf_site_oob, "
                       f"group_holdout n_groups={args.mlp_groups} for mlp)",
                       "scores": _scores_records(ev.scores[ev.scores["subset"] == "north_america"]),
                       "seconds": round(time.perf_counter() - t0, 1), "run_dir": ev.info["run_dir"]}
        print("loso", json.dumps(res["loso"]["scores"], indent=1), flush=True)
    if "leakage" in sections:
        y0, y1 = (int(x) for x in args.years.split("-"))
        daily = na.daily
        yr = pd.DatetimeIndex(daily["DATE"]).year
        sub = type(na)(sites=na.sites, daily=daily[(yr >= y0) & (yr <= y1)].reset_index(drop=True),
                       name=f"{na.name}-{y0}-{y1}", source=na.source, synthetic=na.synthetic, qc=na.qc,
                       problems=list(na.problems), meta=dict(na.meta), time_step="monthly")
        t0 = time.perf_counter()
        res["leakage"] = leakage_section(sub, feats if args.features == "tower" else narcf_feature_config(sub),
                                         args.cutoff, args.seed, {})
        res["leakage"]["years"] = [y0, y1]
        res["leakage"]["seconds"] = round(time.perf_counter() - t0, 1)
        print("leakage", json.dumps({k: res["leakage"][k] for k in LEARNERS}, indent=1), flush=True)
    res["total_seconds"] = round(time.perf_counter() - t_all, 1)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
