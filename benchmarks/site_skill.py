"""Per-site skill of learners in several stored runs, side by side (optionally one zone).

Usage::

    python benchmarks/site_skill.py breiman=RUN_A extratrees=RUN_B --learner rf --zone arid \\
        --out benchmarks/results/site_skill.json

Each ``LABEL=RUN`` is read with :func:`fluxcore.runstore.load_run`. Writes JSON: per learner
(``--learner a,b``: one key ``learner/target`` each; one learner: the target alone) and target,
each run's per-site R² (1 - SSE/SST) and r² (squared Pearson) of the learner on the sites of
``--zone`` (all sites when empty), their medians, and each run's git commit and parameters of
the learner, and for every run after the first the paired per-site difference against the
first (median, sites not worse than -0.01). The metrics are the runs' own.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchio import write_json  # noqa: E402

from fluxcore.runstore import load_run  # noqa: E402


def site_scores(metrics, learner: str, target: str, zone: str = ""):
    """Per-site ``R2`` and ``r2`` of one learner and target from a run's metrics (index ``SITE_ID``)."""
    m = metrics[(metrics["learner"] == learner) & (metrics["target"] == target)]
    if zone:
        m = m[m["zone"] == zone]
    return m.set_index("SITE_ID")[["R2", "r2"]].sort_index()


def per_site(metrics, learner: str, target: str, zone: str = "") -> dict:
    """Per-site R² and r² of one learner and target from a run's metrics (medians included)."""
    m = site_scores(metrics, learner, target, zone)
    return {"median_R2": round(float(m["R2"].median()), 4), "median_r2": round(float(m["r2"].median()), 4),
            "n_sites": int(len(m)),
            "site_R2": {str(k): round(float(v), 4) for k, v in m["R2"].items()},
            "site_r2": {str(k): round(float(v), 4) for k, v in m["r2"].items()}}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+", help="LABEL=RUN_FOLDER")
    ap.add_argument("--learner", default="rf", help="one learner or several, comma-separated")
    ap.add_argument("--zone", default="")
    ap.add_argument("--targets", default="GPP,ER")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    runs = {}
    for text in args.runs:
        label, _, folder = text.partition("=")
        if not folder:
            raise SystemExit(f"{text!r}: expected LABEL=RUN_FOLDER")
        runs[label] = load_run(Path(folder))
    learners = [s for s in args.learner.split(",") if s]
    result: dict = {"learner": args.learner, "zone": args.zone or None, "runs": {}, "targets": {}}
    for label, res in runs.items():
        result["runs"][label] = {"run_dir": str(res.path), "git_commit": res.manifest.get("git_commit"),
                                 "params": {lrn: res.config.params.get(lrn, {}) for lrn in learners}}
    targets = [t for t in args.targets.split(",") if t]
    for lrn in learners:
        for tgt in targets:
            key = tgt if len(learners) == 1 else f"{lrn}/{tgt}"
            per = {label: per_site(res.metrics, lrn, tgt, args.zone) for label, res in runs.items()}
            first = next(iter(per))
            for label in list(per)[1:]:  # paired against the first run, site by site
                d = np.array([per[label]["site_R2"][k] - v for k, v in per[first]["site_R2"].items()
                              if k in per[label]["site_R2"]])
                d = d[np.isfinite(d)]
                per[label][f"paired_vs_{first}"] = {
                    "median_difference": round(float(np.median(d)), 4) if len(d) else None,
                    "sites_not_worse_than_0.01": int((d >= -0.01).sum()), "n_sites": int(len(d))}
            result["targets"][key] = per
    write_json(args.out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
