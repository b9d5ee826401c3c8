"""TAM-RL benchmark (issue 17): tamrl and lstm, each with and without the balance loss, and rf.

Arms: ``lstm`` (mse), ``lstm_bal`` (mse+balance), ``tamrl`` (mse), ``tamrl_bal``
(mse+balance), ``rf``. The runner keys hyperparameters by learner name, so the arms run as
two leave-one-site-out runs per seed with identical data, features, quality control, seed,
test sites and training pools (pool "all"; the group partition of ``group_finetune`` is seeded
by the learner seed, so it is identical too): run A = lstm, tamrl, rf with ``loss="mse"``;
run B = lstm, tamrl with ``loss="mse+balance"`` and the same ``balance_weight``.

Per arm and seed: median / mean per-site R² and r² for GPP, ER, NEE, by zone and for US
towers; the per-site closure residual ``mean |NEE - (ER - GPP)|`` of the predictions
[gC m-2 d-1] (median and 95th percentile over sites; the observed data's own residual beside
it); paired per-site R² differences against ``lstm`` with a bootstrap 95 % interval of the
median difference; seconds per learner (fast strategy, from the run manifest) and peak
resident memory; CarbonFluxBench TAM-RL / LSTM median R² on the common sites
(:func:`fluxcore.anchors.common_site_comparison`).

Usage::

    python benchmarks/bench_tamrl.py --n-sites 24 --seeds 0 --out benchmarks/results/tamrl_24.json
    flock /work/bench.lock python benchmarks/bench_tamrl.py --seeds 0,1 \\
        --out benchmarks/results/tamrl_204.json

``--n-sites N`` restricts the *dataset* to N towers (seeded, stratified by zone), so folds
train on the other N - 1 towers. Writes JSON; nothing is asserted.
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

from bench_loso import skill_summary  # noqa: E402
from bench_speed import learner_seconds, peak_mb, subset_sites  # noqa: E402

from fluxcore import anchors  # noqa: E402
from fluxcore.config import RunConfig  # noqa: E402
from fluxcore.loso import load_run, run_loso  # noqa: E402
from fluxcore.provenance import environment  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "fluxnet2015"
TARGETS = ["GPP", "ER", "NEE"]
ARMS = {"lstm": ("A", "lstm"), "lstm_bal": ("B", "lstm"), "tamrl": ("A", "tamrl"),
        "tamrl_bal": ("B", "tamrl"), "rf": ("A", "rf")}


def _f(x) -> float | None:
    x = float(x)
    return None if not np.isfinite(x) else round(x, 4)


def closure(pred: pd.DataFrame, column: str) -> pd.Series:
    """Per-site mean |NEE - (ER - GPP)| [gC m-2 d-1] of ``column`` (predicted or observed),
    over the days where all three values exist."""
    wide = pred.pivot_table(index=["SITE_ID", "DATE"], columns="target", values=column, observed=True)
    r = (wide["NEE"] - (wide["ER"] - wide["GPP"])).abs().dropna()
    return r.groupby(level="SITE_ID").mean()


def bootstrap_median(d: np.ndarray, n_boot: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap 95 % interval of the median of ``d`` (sites resampled)."""
    rng = np.random.default_rng(seed)
    meds = np.median(d[rng.integers(0, len(d), size=(n_boot, len(d)))], axis=1)
    return float(np.percentile(meds, 2.5)), float(np.percentile(meds, 97.5))


def paired(base: pd.DataFrame, other: pd.DataFrame) -> dict:
    a = base.set_index("SITE_ID")["R2"]
    b = other.set_index("SITE_ID")["R2"]
    common = a.index.intersection(b.index)
    d = (b[common] - a[common]).to_numpy(dtype=float)
    d = d[np.isfinite(d)]
    if not len(d):
        return {"n_sites": 0}
    lo, hi = bootstrap_median(d)
    return {"n_sites": int(len(d)), "median_difference": _f(np.median(d)), "ci95": [_f(lo), _f(hi)],
            "excludes_0": bool(lo > 0 or hi < 0), "sites_better": int((d > 0).sum())}


def arm_tables(runs: dict[str, Path]) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Metrics and predictions of every arm (learner column = arm name), and the runs."""
    res = {k: load_run(d) for k, d in runs.items()}
    mets, preds = [], []
    for arm, (run, learner) in ARMS.items():
        if run not in res:
            continue
        r = res[run]
        m = r.metrics[r.metrics["learner"].astype(str) == learner].assign(learner=arm)
        p = r.predictions[r.predictions["learner"].astype(str) == learner].assign(learner=arm)
        mets.append(m)
        preds.append(p)
    return pd.concat(mets, ignore_index=True), pd.concat(preds, ignore_index=True), res


def summarise(runs: dict[str, Path], synthetic: bool) -> dict:
    metrics, preds, res = arm_tables(runs)
    out: dict = {"runs": {k: {"run_dir": str(d), "learner_seconds": learner_seconds(res[k].manifest),
                              "params": res[k].config.params, "strategy_options": res[k].config.strategy_options,
                              "git_commit": res[k].manifest.get("git_commit")} for k, d in runs.items()},
                 "arms": {}}
    obs = closure(preds[preds["learner"] == "lstm"], "observed")
    out["observed_closure"] = {"median": _f(obs.median()), "p95": _f(obs.quantile(0.95)),
                               "note": "|NEE - (ER - GPP)| of the tower data themselves"}
    for arm in metrics["learner"].unique():
        run, learner = ARMS[arm]
        ma = metrics[metrics["learner"] == arm]
        entry: dict = {"run": run, "learner": learner,
                       "seconds": learner_seconds(res[run].manifest).get(learner), "skill": {}}
        for t in TARGETS:
            mt = ma[ma["target"] == t]
            s = skill_summary(mt)
            if arm != "lstm":
                s["paired_vs_lstm"] = paired(metrics[(metrics["learner"] == "lstm") & (metrics["target"] == t)], mt)
            entry["skill"][t] = s
        c = closure(preds[preds["learner"] == arm], "predicted")
        entry["closure_residual"] = {"median": _f(c.median()), "p95": _f(c.quantile(0.95)),
                                     "n_sites": int(len(c))}
        out["arms"][arm] = entry
    table, why = anchors.common_site_comparison(metrics, synthetic=synthetic)
    out["carbonfluxbench"] = (table.round(4).to_dict(orient="records") if table is not None
                              else {"not_compared": why})
    out["carbonfluxbench_caveat"] = anchors.CFB_CAVEAT
    return out


def across_seeds(result: dict) -> dict:
    """Seed spread and seed-averaged paired differences, from the runs of every seed.

    Per arm and target: the median per-site R² of each seed and their range; on the per-site
    R² averaged over the seeds an arm has, the paired median difference against ``lstm``
    with its bootstrap interval (sites where both arms exist).
    """
    per_seed: dict[str, pd.DataFrame] = {}
    for seed, entry in result["seeds"].items():
        runs = {k: Path(v["run_dir"]) for k, v in entry["runs"].items()}
        per_seed[seed], _, _ = arm_tables(runs)
    allm = pd.concat([m.assign(seed=s) for s, m in per_seed.items()], ignore_index=True)
    out: dict = {"seeds": sorted(per_seed), "arms": {}}
    mean = allm.groupby(["learner", "target", "SITE_ID"], observed=True)["R2"].mean().reset_index()
    for arm in allm["learner"].unique():
        out["arms"][arm] = {}
        for t in TARGETS:
            meds = {s: _f(m[(m["learner"] == arm) & (m["target"] == t)]["R2"].median())
                    for s, m in per_seed.items() if (m["learner"] == arm).any()}
            vals = [v for v in meds.values() if v is not None]
            e = {"median_R2_by_seed": meds, "seed_range": _f(max(vals) - min(vals)) if len(vals) > 1 else None,
                 "median_R2_seed_mean": _f(np.median(mean[(mean["learner"] == arm) & (mean["target"] == t)]["R2"]))}
            if arm != "lstm":
                e["paired_vs_lstm_seed_mean"] = paired(mean[(mean["learner"] == "lstm") & (mean["target"] == t)],
                                                       mean[(mean["learner"] == arm) & (mean["target"] == t)])
            out["arms"][arm][t] = e
    return out


def _quick_params() -> dict:
    from fluxcore.learners import make_learner

    return {name: type(make_learner(name)).get_test_params()[0] for name in ("lstm", "tamrl", "rf")}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--n-sites", type=int, default=0, help="restrict the dataset to N towers (0: all)")
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--balance-weight", type=float, default=1.0)
    ap.add_argument("--runs-dir", default=None)
    ap.add_argument("--quick", action="store_true",
                    help="tiny networks and forests (get_test_params): checks the pipeline, no skill")
    ap.add_argument("--rf-seeds", default=None,
                    help="seeds that also run the rf reference arm (default: every seed)")
    ap.add_argument("--append", action="store_true",
                    help="add the seeds to an existing --out file of the same workload")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "tamrl.json"))
    args = ap.parse_args(argv)
    rf_seeds = None if args.rf_seeds is None else {int(s) for s in args.rf_seeds.split(",") if s}
    from fluxcore.sources import load_dataset

    ds = load_dataset(args.data)
    if args.n_sites:
        ds = ds.subset(sites=subset_sites(ds, args.n_sites, 0))
    runs_dir = Path(args.runs_dir or tempfile.mkdtemp(prefix="fluxcore-tamrl-"))
    result: dict = {
        "workload": {"data": args.data, "n_sites": ds.n_sites, "fingerprint": ds.fingerprint(),
                     "targets": TARGETS, "jobs": args.jobs, "balance_weight": args.balance_weight,
                     "mode": "zero-shot (context_months=0)", "quick": args.quick,
                     "arms": {k: f"run {r}, learner {lrn}" for k, (r, lrn) in ARMS.items()},
                     "note": ("separate runs A (mse, + rf) and B (mse+balance) per seed: the runner keys "
                              "hyperparameters by learner name; data, features, seed, test sites and "
                              "pools are identical. Timings on a 2-core machine shared with other work.")},
        "environment": environment(), "seeds": {}}
    if args.append and Path(args.out).is_file():
        before = json.loads(Path(args.out).read_text())
        if before["workload"]["fingerprint"] != result["workload"]["fingerprint"]:
            raise SystemExit(f"{args.out}: another dataset (fingerprint {before['workload']['fingerprint']})")
        result["seeds"] = before["seeds"]
        result["environment_earlier_seeds"] = before["environment"]
    for seed in [int(s) for s in args.seeds.split(",") if s]:
        runs: dict[str, Path] = {}
        wall: dict[str, float] = {}
        bw = {"loss": "mse+balance", "balance_weight": args.balance_weight}
        tiny = _quick_params() if args.quick else {"lstm": {}, "tamrl": {}, "rf": {}}
        for key, learners, params in (
                ("A", ["lstm", "tamrl"] + (["rf"] if rf_seeds is None or seed in rf_seeds else []),
                 {"lstm": {**tiny["lstm"], "loss": "mse"}, "tamrl": {**tiny["tamrl"], "loss": "mse"},
                  "rf": tiny["rf"]}),
                ("B", ["lstm", "tamrl"], {"lstm": {**tiny["lstm"], **bw}, "tamrl": {**tiny["tamrl"], **bw}})):
            params = {k: v for k, v in params.items() if v and k in learners}
            cfg = RunConfig(data=args.data, learners=learners, targets=TARGETS, seed=seed, params=params)
            t0 = time.perf_counter()
            runs[key] = run_loso(cfg, dataset=ds, runs_dir=runs_dir, jobs=args.jobs)
            wall[key] = round(time.perf_counter() - t0, 1)
            print(json.dumps({"seed": seed, "run": key, "seconds": wall[key]}), flush=True)
        entry = summarise(runs, synthetic=bool(ds.synthetic))
        entry["wall_seconds"] = wall
        entry["peak_memory_mb"] = peak_mb()
        result["seeds"][str(seed)] = entry
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")  # after every seed
    if len(result["seeds"]) > 1:
        result["across_seeds"] = across_seeds(result)
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
