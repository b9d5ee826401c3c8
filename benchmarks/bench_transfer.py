"""Process-model-guided transfer learning benchmark (issue 18).

Arms on identical data, features, quality control, test sites, training pools and seeds:

* ``processmodel`` (literature parameters: MOD17 C6 look-up table, Lloyd-Taylor) - run A;
* ``processmodel_cal`` (``processmodel`` with ``calibrate=True``: eps_max, r_ref, k_gpp per
  IGBP class on each fold's training sites) - run B;
* ``lstm`` (tower-only) - run B;
* ``pmtl`` (the same LSTM pre-trained on the process model - calibrated on the group's
  training sites, plus synthetic driver years T+2 / T-2 - then fine-tuned on towers) - run B.

The runner keys hyperparameters by learner name, so the two process-model arms are two runs
(the process model has no seed: run A is computed once). Per arm: median per-site R², r²,
RMSE for GPP and ER, daily and monthly (per site-month means of observed and predicted over
the days where both exist, months with at least 10 such days), overall and by aridity zone;
paired per-site ΔR² and ΔRMSE of ``pmtl`` against each parent with a bootstrap 95 % interval
of the median difference; per seed and on the seed-averaged per-site metrics; everything
for the full training pool and for ``pool_fraction`` 0.25 (a fixed seeded quarter of the
towers are the only training sites; every tower is still a test site).

Usage::

    python benchmarks/bench_transfer.py --n-sites 24 --seeds 0 --pool-fractions 1 --out benchmarks/out/transfer_24.json
    flock /work/bench.lock python benchmarks/bench_transfer.py --seeds 0,1 --pool-fractions 1,0.25 \\
        --out benchmarks/results/transfer_204.json

Writes JSON after every (pool, seed); nothing is asserted. Timings: 2-core machine shared
with other work.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_speed import learner_seconds, peak_mb, subset_sites  # noqa: E402

from fluxcore.config import RunConfig  # noqa: E402
from fluxcore.loso import load_run, run_loso  # noqa: E402
from fluxcore.provenance import environment  # noqa: E402
from fluxcore.sources import load_dataset  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "fluxnet2015"
TARGETS = ["GPP", "ER"]
PRETRAIN = {"source": "processmodel", "epochs": 5, "finetune_epochs": 5, "lr": 5e-4, "parts": "all",
            "calibrate": True, "synthetic": ["T+2", "T-2"], "learners": ["pmtl"]}
FEATURES = {"latitude": True}
MIN_DAYS = 10


def _f(x) -> float | None:
    x = float(x)
    return None if not np.isfinite(x) else round(x, 4)


def site_scores(pred: pd.DataFrame, monthly: bool) -> pd.DataFrame:
    """Per (learner, target, site): R2, r2, RMSE (daily, or of site-month means)."""
    p = pred.dropna(subset=["observed", "predicted"])
    if monthly:
        p = p.assign(MONTH=pd.to_datetime(p["DATE"]).dt.to_period("M"))
        g = p.groupby(["learner", "target", "SITE_ID", "MONTH"], observed=True)
        p = g[["observed", "predicted"]].mean()[g.size() >= MIN_DAYS].reset_index()
    rows = []
    for (lrn, tgt, site), d in p.groupby(["learner", "target", "SITE_ID"], observed=True):
        o, q = d["observed"].to_numpy(float), d["predicted"].to_numpy(float)
        if len(o) < 3:
            continue
        sst = np.sum((o - o.mean()) ** 2)
        r2 = 1 - np.sum((o - q) ** 2) / sst if sst > 0 else np.nan
        rr = np.corrcoef(o, q)[0, 1] ** 2 if np.std(o) > 0 and np.std(q) > 0 else np.nan
        rows.append({"learner": lrn, "target": tgt, "SITE_ID": site, "R2": r2, "r2": rr,
                     "RMSE": float(np.sqrt(np.mean((o - q) ** 2)))})
    return pd.DataFrame(rows)


def bootstrap_median(d: np.ndarray, n_boot: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap 95 % interval of the median of ``d`` (sites resampled)."""
    rng = np.random.default_rng(seed)
    meds = np.median(d[rng.integers(0, len(d), size=(n_boot, len(d)))], axis=1)
    return float(np.percentile(meds, 2.5)), float(np.percentile(meds, 97.5))


def paired(scores: pd.DataFrame, arm: str, parent: str, target: str) -> dict:
    s = scores[scores["target"] == target]
    out = {}
    for metric in ("R2", "RMSE"):
        a = s[s["learner"] == arm].set_index("SITE_ID")[metric]
        b = s[s["learner"] == parent].set_index("SITE_ID")[metric]
        d = (a - b.reindex(a.index)).dropna().to_numpy()
        if len(d) == 0:
            continue
        lo, hi = bootstrap_median(d)
        out[f"delta_{metric}"] = {"median": _f(np.median(d)), "ci95": [_f(lo), _f(hi)], "mean": _f(np.mean(d)),
                                  "n_sites": int(len(d)), "sites_improved": int(np.sum(d > 0 if metric == "R2" else d < 0))}
    return out


def summary(scores: pd.DataFrame, zones: pd.Series) -> dict:
    s = scores.assign(zone=scores["SITE_ID"].map(zones))
    out: dict = {}
    for (lrn, tgt), d in s.groupby(["learner", "target"]):
        e = {"n_sites": int(len(d)), "median_R2": _f(d["R2"].median()), "median_r2": _f(d["r2"].median()),
             "median_RMSE": _f(d["RMSE"].median()), "by_zone": {}}
        for z, dz in d.groupby("zone"):
            e["by_zone"][str(z)] = {"n": int(len(dz)), "median_R2": _f(dz["R2"].median()),
                                    "median_RMSE": _f(dz["RMSE"].median())}
        out.setdefault(lrn, {})[tgt] = e
    return out


def comparisons(scores: pd.DataFrame) -> dict:
    out = {}
    for parent in ("lstm", "processmodel", "processmodel_cal"):
        if parent in set(scores["learner"]):
            out[f"pmtl_vs_{parent}"] = {t: paired(scores, "pmtl", parent, t) for t in TARGETS}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--n-sites", type=int, default=0, help="restrict the dataset to N towers (0: all)")
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--pool-fractions", default="1,0.25")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="tiny networks (pipeline check, no skill)")
    ap.add_argument("--runs-dir", default=None)
    ap.add_argument("--out", default="benchmarks/out/transfer.json")
    args = ap.parse_args(argv)

    ds = load_dataset(args.data)
    if args.n_sites:
        ds = ds.subset(sites=subset_sites(ds, args.n_sites, 0))
    zones = ds.sites["ARIDITY_ZONE"]
    zones.index = zones.index.astype(str)
    runs_dir = Path(args.runs_dir or tempfile.mkdtemp(prefix="fluxcore-transfer-"))
    net = ({"lookback": 10, "hidden_size": 8, "max_epochs": 2, "max_windows_per_epoch": 2000, "max_val_windows": 1000}
           if args.quick else {})
    pre = {**PRETRAIN, **({"epochs": 1, "finetune_epochs": 1} if args.quick else {})}
    result: dict = {
        "workload": {"data": args.data, "n_sites": ds.n_sites, "fingerprint": ds.fingerprint(), "targets": TARGETS,
                     "features": FEATURES, "pretrain": pre, "lstm_params": net or "defaults", "quick": args.quick,
                     "monthly": f"site-month means of observed and predicted over days with both, >= {MIN_DAYS} days",
                     "note": ("run A: processmodel (literature); run B: processmodel_cal (= processmodel with "
                              "calibrate=True), lstm, pmtl; same data, features, seed, test sites and pools. "
                              "Timings on a 2-core machine shared with other work.")},
        "environment": environment(), "pools": {}}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for frac in [float(x) for x in args.pool_fractions.split(",") if x]:
        per_seed_scores = {"daily": [], "monthly": []}
        entry: dict = {"seeds": {}}
        for seed in [int(s) for s in args.seeds.split(",") if s]:
            common = {"data": args.data, "targets": TARGETS, "seed": seed, "features": FEATURES, "pool_fraction": frac}
            cfg_a = RunConfig(learners=["processmodel"], **common)
            cfg_b = RunConfig(learners=["processmodel", "lstm", "pmtl"], **common, pretrain=pre,
                              params={"processmodel": {"calibrate": True}, **({"lstm": net, "pmtl": net} if net else {})})
            wall, secs, preds = {}, {}, []
            for key, cfg in (("A", cfg_a), ("B", cfg_b)):
                t0 = time.perf_counter()
                run = run_loso(cfg, dataset=ds, runs_dir=runs_dir, jobs=args.jobs)
                wall[key] = round(time.perf_counter() - t0, 1)
                r = load_run(run)
                p = r.predictions
                if key == "B":
                    p = p.assign(learner=p["learner"].astype(str).replace({"processmodel": "processmodel_cal"}))
                preds.append(p)
                secs[key] = learner_seconds(json.loads((run / "manifest.json").read_text()))
                print(json.dumps({"pool_fraction": frac, "seed": seed, "run": key, "seconds": wall[key]}), flush=True)
            pred = pd.concat(preds, ignore_index=True)
            se = {}
            for res in ("daily", "monthly"):
                sc = site_scores(pred, monthly=res == "monthly")
                per_seed_scores[res].append(sc)
                se[res] = {"arms": summary(sc, zones), "paired": comparisons(sc)}
            se["wall_seconds"] = wall
            se["learner_seconds"] = secs
            se["peak_memory_mb"] = peak_mb()
            entry["seeds"][str(seed)] = se
            result["pools"][str(frac)] = entry
            out.write_text(json.dumps(result, indent=2) + "\n")
        for res in ("daily", "monthly"):
            both = pd.concat(per_seed_scores[res]).groupby(["learner", "target", "SITE_ID"], as_index=False)[
                ["R2", "r2", "RMSE"]].mean()
            entry[f"seed_mean_{res}"] = {"arms": summary(both, zones), "paired": comparisons(both)}
        result["pools"][str(frac)] = entry
        out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
