"""LSTM seed-ensemble benchmark: what does ``strategy_options={"lstm": {"n_rounds": k}}`` buy?

Runs the fast LSTM (``fluxcore.strategies.group_finetune``) on all sites of
``../shared/data/fluxnet2015`` once per number of rounds, identical in everything else (seed,
hyperparameters, quality control), and reports per setting the LSTM's seconds, the median
per-site R² and r² overall, per zone and for US sites, the mean RMSE by zone, and site by site
the paired R² difference against one round. Round 0 of every setting is the one-round run
itself, so the paired difference is the gain of the added members.

Usage::

    python benchmarks/bench_lstm_rounds.py --rounds 1,2 --out benchmarks/out/lstm_rounds.json
    # summarise finished runs instead of computing them
    python benchmarks/bench_lstm_rounds.py --reuse 1=RUN_DIR --reuse 2=RUN_DIR

Writes JSON; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_loso import skill_summary  # noqa: E402
from bench_speed import learner_seconds, paired_r2  # noqa: E402

from fluxcore.config import RunConfig  # noqa: E402
from fluxcore.loso import load_run, run_loso  # noqa: E402
from fluxcore.provenance import environment  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "fluxnet2015"


def summarise(runs: dict[int, Path], targets: list[str]) -> dict:
    """Skill, time and paired gain per number of rounds from finished run folders."""
    out: dict = {}
    results = {k: load_run(d) for k, d in runs.items()}
    metrics = {k: res.metrics for k, res in results.items()}
    for k, d in sorted(runs.items()):
        res = results[k]
        m = metrics[k][metrics[k]["learner"] == "lstm"]
        entry = {"run_dir": str(d), "data": res.manifest.get("data"),
                 "code_version": res.manifest.get("code_version"), "git_commit": res.manifest.get("git_commit"),
                 "lstm_seconds": learner_seconds(res.manifest).get("lstm"),
                 "strategy_options": res.config.strategy_options.get("lstm"), "skill": {}}
        for tgt in targets:
            mt = m[m["target"] == tgt]
            s = skill_summary(mt)
            s["RMSE_mean_by_zone"] = {z: round(float(g["RMSE"].mean()), 3)
                                      for z, g in mt.groupby("zone", observed=True)}
            if k != 1 and 1 in metrics:
                base = metrics[1][(metrics[1]["learner"] == "lstm") & (metrics[1]["target"] == tgt)]
                s["paired_vs_one_round"] = paired_r2(base, mt)
            entry["skill"][tgt] = s
        out[str(k)] = entry
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--rounds", default="1,2", help="numbers of rounds to run, comma separated")
    ap.add_argument("--reuse", action="append", default=[], metavar="K=RUN_DIR",
                    help="summarise a finished run for K rounds instead of computing it")
    ap.add_argument("--targets", default="GPP,ER")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "out" / "lstm_rounds.json"))
    args = ap.parse_args(argv)
    targets = [t for t in args.targets.split(",") if t]
    runs: dict[int, Path] = {}
    for item in args.reuse:
        k, _, d = item.partition("=")
        if not k.isdigit() or not Path(d).is_dir():
            ap.error(f"--reuse {item!r}: expected K=RUN_DIR with an existing run folder")
        runs[int(k)] = Path(d)
    todo = [int(k) for k in args.rounds.split(",") if k and int(k) not in runs] if not args.reuse else []
    result: dict = {"workload": {"data": args.data, "learner": "lstm", "targets": targets, "seed": args.seed},
                    "environment": environment()}
    if todo:
        from fluxcore.sources import load_dataset

        ds = load_dataset(args.data)
        result["workload"].update(n_sites=ds.n_sites, fingerprint=ds.fingerprint())
        runs_dir = Path(tempfile.mkdtemp(prefix="fluxcore-lstm-rounds-"))
        for k in todo:
            cfg = RunConfig(data=args.data, learners=["lstm"], targets=targets, seed=args.seed,
                            strategy_options={"lstm": {"n_rounds": k}})
            t0 = time.perf_counter()
            runs[k] = run_loso(cfg, dataset=ds, runs_dir=runs_dir, jobs=args.jobs)
            print(json.dumps({"n_rounds": k, "seconds": round(time.perf_counter() - t0, 1)}), flush=True)
    result["rounds"] = summarise(runs, targets)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
