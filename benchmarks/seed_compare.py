"""Two or more settings of one learner, each run with several seeds: skill against seed noise.

Usage::

    python benchmarks/seed_compare.py previous=RUN_S0,RUN_S1,RUN_S2 groups3=RUN_S0,RUN_S1,RUN_S2 \\
        --learner rf --zone arid --out benchmarks/results/zone_seeds.json

Each ``LABEL=RUN[,RUN...]`` is one setting, its runs differing only by seed, read with
:func:`fluxcore.runstore.load_run`; the first setting is the reference. The median per-site
R² of 12 towers moves by a few hundredths between seeds, more than the 0.01 tolerance of
issue 21, so one seed per setting cannot tell two settings apart. Per target, the JSON holds:

* per setting: each seed's median per-site R² (1 - SSE/SST) and r² (squared Pearson), their
  mean and range (the seed spread), and the median over sites of the seed-averaged R²;
* per setting after the first, against the reference: the paired per-site difference of the
  seed-averaged R² (median, percentile-bootstrap 95 % interval over sites, sites not worse
  than -0.01), the difference of the mean of per-seed medians with a 95 % interval from
  resampling each setting's seeds (how much of it the seeds alone could make), and the paired
  difference of each seed pair (seed i of both, same folds); per setting also the standard
  error of its mean of per-seed medians;
* over the seeds both settings ran (pairs), the mean of each pair's paired median difference
  and the mean of each pair's difference of medians, each with a 95 % interval from
  resampling the pairs: seed i of both settings shares its folds, groups and row samples, so
  a pair's difference holds less seed noise than two independent means;
* ``within_tolerance``: the mean of per-seed medians at most 0.01 below the reference's;
  ``paired_within_tolerance``: the paired median difference of the seed means at least -0.01.
  The two can disagree: the median of 12 towers sits between two towers whose order changes
  between seeds, while the paired difference follows every tower.

The metrics are the runs' own (``metrics.parquet``); nothing is recomputed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_speed import learner_seconds  # noqa: E402
from benchio import write_json  # noqa: E402
from site_skill import site_scores  # noqa: E402

from fluxcore.errors import ConfigError, FluxcoreError  # noqa: E402
from fluxcore.runstore import load_run  # noqa: E402

TOLERANCE = 0.01


def _r(x) -> float | None:
    x = float(x)
    return round(x, 4) if np.isfinite(x) else None


def compare_settings(settings: dict[str, list[pd.DataFrame]], tolerance: float = TOLERANCE,
                     n_boot: int = 2000, seed: int = 0) -> dict:
    """Seed spread of each setting and paired differences against the first setting.

    Parameters
    ----------
    settings : dict
        Label -> per-seed score tables (``site_skill.site_scores``), in seed order; the first label
        is the reference.
    tolerance : float
        Allowed loss of the mean of per-seed medians of R² [-].
    """
    rng = np.random.default_rng(seed)
    labels = list(settings)
    common = sorted(set.intersection(*(set(t.index) for runs in settings.values() for t in runs)))
    out: dict = {"n_sites": len(common), "settings": {}}
    mean_site: dict[str, pd.Series] = {}
    seed_meds: dict[str, np.ndarray] = {}
    for label, runs in settings.items():
        r2 = pd.concat([t.loc[common, "R2"] for t in runs], axis=1)
        pr = pd.concat([t.loc[common, "r2"] for t in runs], axis=1)
        meds = r2.median(axis=0).to_numpy(dtype=float)
        seed_meds[label] = meds
        mean_site[label] = r2.mean(axis=1)
        out["settings"][label] = {
            "n_seeds": len(runs), "seed_median_R2": [_r(v) for v in meds],
            "seed_median_r2": [_r(v) for v in pr.median(axis=0)],
            "mean_of_medians_R2": _r(meds.mean()), "seed_range_R2": _r(meds.max() - meds.min()),
            "mean_of_medians_se": _r(meds.std(ddof=1) / np.sqrt(len(meds))) if len(meds) > 1 else None,
            "median_of_seed_mean_R2": _r(mean_site[label].median()),
            "site_seed_mean_R2": {str(k): _r(v) for k, v in mean_site[label].items()}}
    ref = labels[0]
    base = out["settings"][ref]
    for label in labels[1:]:
        d = (mean_site[label] - mean_site[ref]).to_numpy(dtype=float)
        d = d[np.isfinite(d)]
        boots = np.median(rng.choice(d, size=(n_boot, len(d))), axis=1) if len(d) else np.array([np.nan])
        k = min(len(settings[ref]), len(settings[label]))
        per_seed, med_diff = [], []
        for i in range(k):
            di = (settings[label][i].loc[common, "R2"] - settings[ref][i].loc[common, "R2"]).to_numpy(dtype=float)
            per_seed.append(float(np.median(di[np.isfinite(di)])))
            med_diff.append(float(seed_meds[label][i] - seed_meds[ref][i]))
        mine = out["settings"][label]
        mine[f"vs_{ref}"] = {
            "paired_median_difference_of_seed_means": _r(np.median(d)) if len(d) else None,
            "paired_ci95": [_r(np.percentile(boots, 2.5)), _r(np.percentile(boots, 97.5))],
            "sites_not_worse_than_tolerance": int((d >= -tolerance).sum()),
            "difference_of_mean_medians": _r(mine["mean_of_medians_R2"] - base["mean_of_medians_R2"]),
            "difference_of_mean_medians_ci95": _seed_bootstrap(seed_meds[label], seed_meds[ref], rng, n_boot),
            "paired_median_difference_per_seed": [_r(v) for v in per_seed],
            "paired_seeds": k,
            "mean_paired_median_difference": _r(np.mean(per_seed)) if k else None,
            "mean_paired_median_difference_ci95": _pair_bootstrap(np.array(per_seed), rng, n_boot),
            "difference_of_medians_per_seed": [_r(v) for v in med_diff],
            "mean_difference_of_medians_paired": _r(np.mean(med_diff)) if k else None,
            "mean_difference_of_medians_paired_ci95": _pair_bootstrap(np.array(med_diff), rng, n_boot),
            "within_tolerance": bool(mine["mean_of_medians_R2"] >= base["mean_of_medians_R2"] - tolerance - 1e-12),
            "paired_within_tolerance": bool(len(d) and np.median(d) >= -tolerance - 1e-12)}
    return out


def _seed_bootstrap(a: np.ndarray, b: np.ndarray, rng: np.random.Generator, n_boot: int) -> list:
    """95 % percentile-bootstrap interval of ``mean(a) - mean(b)``, seeds resampled within each
    setting: how far the difference of two means of per-seed medians moves with the seeds."""
    if len(a) < 2 or len(b) < 2:
        return [None, None]
    da = rng.choice(a, size=(n_boot, len(a))).mean(axis=1)
    db = rng.choice(b, size=(n_boot, len(b))).mean(axis=1)
    return [_r(np.percentile(da - db, 2.5)), _r(np.percentile(da - db, 97.5))]


def _pair_bootstrap(d: np.ndarray, rng: np.random.Generator, n_boot: int) -> list:
    """95 % percentile-bootstrap interval of the mean of ``d``, one value per seed pair (seed i
    of both settings: the same folds, groups and row samples), the pairs resampled."""
    d = d[np.isfinite(d)]
    if len(d) < 2:
        return [None, None]
    m = rng.choice(d, size=(n_boot, len(d))).mean(axis=1)
    return [_r(np.percentile(m, 2.5)), _r(np.percentile(m, 97.5))]


def _load(label: str, path: Path):
    """``load_run`` with its error turned into one message naming the setting."""
    try:
        return load_run(path)
    except ConfigError as exc:  # not a run folder
        raise SystemExit(f"{label}: not a run folder: {path} ({exc})") from None
    except FluxcoreError as exc:  # a damaged file that cannot be rebuilt
        raise SystemExit(f"{label}: {exc}") from None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("settings", nargs="+", help="LABEL=RUN[,RUN...] (runs differing only by seed)")
    ap.add_argument("--learner", default="rf")
    ap.add_argument("--zone", default="")
    ap.add_argument("--targets", default="GPP,ER")
    ap.add_argument("--note", default="")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    runs: dict[str, list] = {}
    for text in args.settings:
        label, _, folders = text.partition("=")
        if not folders:
            raise SystemExit(f"{text!r}: expected LABEL=RUN[,RUN...]")
        paths = [Path(f) for f in folders.split(",") if f]
        if not paths:
            raise SystemExit(f"{label}: no run folder given")
        runs[label] = [_load(label, f) for f in paths]
    result: dict = {"learner": args.learner, "zone": args.zone or None, "note": args.note, "tolerance": TOLERANCE,
                    "runs": {label: [{"run_dir": str(r.path), "seed": r.config.seed,
                                      "git_commit": r.manifest.get("git_commit"),
                                      "params": r.config.params.get(args.learner, {}),
                                      "strategy_options": r.config.strategy_options.get(args.learner, {}),
                                      "learner_seconds": learner_seconds(r.manifest).get(args.learner)}
                                     for r in rs] for label, rs in runs.items()},
                    "targets": {}}
    for tgt in [t for t in args.targets.split(",") if t]:
        result["targets"][tgt] = compare_settings(
            {label: [site_scores(r.metrics, args.learner, tgt, args.zone) for r in rs] for label, rs in runs.items()})
    write_json(args.out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
