"""Paper report of a finished run: Markdown plus CSV tables (``fluxcore report RUN_DIR``).

The report sets a leave-one-site-out run beside Gao et al. (2025):

* ``table3.csv``: mean and sample variance (ddof = 1) of per-site RMSE [gC m-2 d-1] by
  target, aridity zone and learner (the paper's Table 3), with the paper's LSTM values;
* ``us_skill.csv``: mean R² (1 - SSE/SST) and mean r² (squared Pearson) of the US sites
  (``SITE_ID`` starting with ``US-``) per learner and target, beside the paper's 0.72;
* ``published_skill.csv``: median per-site R² and r² per learner and target beside the
  CarbonFluxBench TAM-RL median and FLUXCOM's site-level R² (:mod:`fluxcore.anchors`);
* ``carbonfluxbench.csv``: median per-site R² of the run and of CarbonFluxBench's models
  (TAM-RL, LSTM, LightGBM, XGBoost) on the sites both have (real data only; skipped for a
  synthetic world, whose site ids mean nothing);
* ``distances.csv`` (also ``distances.parquet`` in the run folder) and
  ``distance_skill.csv``: per-site heterogeneity (:func:`fluxcore.heterogeneity.run_distances`)
  and its Pearson / Spearman correlation with R² per learner, target and zone;
* ``skill_models.csv``: the OLS distance-R² line used by :mod:`fluxcore.skill`;
* ``fuzzy_vs_plain.csv`` (+ per-site ``fuzzy_pairs.csv``): every fuzzy variant ``X_fuzzy*``
  against its plain learner ``X`` run in the same run: per-site paired differences
  (variant minus plain) of R² and RMSE, their mean and median, the number of sites where the
  variant is better, and the two-sided Wilcoxon signed-rank p-value (Wilcoxon 1945).

References
----------
Gao et al. (2025) (see :mod:`fluxcore.heterogeneity`).
Wilcoxon, F. (1945) Individual comparisons by ranking methods. Biometrics Bulletin 1(6),
80-83. doi:10.2307/3001968
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .anchors import (
    CFB_CAVEAT,
    CFB_TAMRL_MEDIAN_R2,
    FLUXCOM_SITE_R2,
    PAPER_TABLE3_LSTM_RMSE,
    PAPER_US_MEAN_R2,
    PUBLISHED_CAVEAT,
    common_site_comparison,
)
from .config import RunConfig
from .errors import ConfigError, DataError, FluxcoreError
from .metrics import skill_summary
from .runner import load_config_dataset
from .variables import ZONES

#: Variance of per-site RMSE: sample variance (same as :data:`fluxcore.metrics.ZONE_VAR_DDOF`).
RMSE_VAR_DDOF = 1
FUZZY_MARKER = "_fuzzy"


# ------------------------------------------------------------------ tables
def table3(metrics: pd.DataFrame, ddof: int = RMSE_VAR_DDOF) -> pd.DataFrame:
    """Mean and variance of per-site RMSE by target, zone (and ``all``) and learner.

    Returns
    -------
    pandas.DataFrame
        ``target, zone, learner, rmse_mean, rmse_var, n_sites, paper_lstm_rmse`` (the
        paper's LSTM value for the target and zone, NaN where it has none).
    """
    m = metrics[np.isfinite(metrics["RMSE"].astype(float))]
    rows = []
    for (target, learner), g in m.groupby(["target", "learner"], sort=False):
        for zone in [*ZONES, "all"]:
            r = (g if zone == "all" else g[g["zone"] == zone])["RMSE"].astype(float).to_numpy()
            if r.size == 0:
                continue
            rows.append({"target": target, "zone": zone, "learner": learner,
                         "rmse_mean": float(r.mean()),
                         "rmse_var": float(np.var(r, ddof=ddof)) if r.size > ddof else np.nan,
                         "n_sites": int(r.size),
                         "paper_lstm_rmse": PAPER_TABLE3_LSTM_RMSE.get(str(target), {}).get(zone, np.nan)})
    out = pd.DataFrame(rows, columns=["target", "zone", "learner", "rmse_mean", "rmse_var", "n_sites",
                                      "paper_lstm_rmse"])
    order = {z: i for i, z in enumerate([*ZONES, "all"])}
    return out.assign(_o=out["zone"].map(order)).sort_values(["target", "learner", "_o"]).drop(
        columns="_o").reset_index(drop=True)


def us_skill(metrics: pd.DataFrame) -> pd.DataFrame:
    """Mean R² and r² of the US sites (``US-*``) per learner and target, with the paper's 0.72."""
    us = [s for s in metrics["SITE_ID"].astype(str).unique() if s.startswith("US-")]
    sk = skill_summary(metrics, sites=us).sort_values(["learner", "target"]).reset_index(drop=True)
    sk["n_sites"] = [int(metrics.loc[(metrics["learner"] == r.learner) & (metrics["target"] == r.target)
                                     & metrics["SITE_ID"].isin(us), "SITE_ID"].nunique()) for r in sk.itertuples()]
    sk["paper_R2"] = [PAPER_US_MEAN_R2.get(str(t), np.nan) for t in sk["target"]]
    return sk[["learner", "target", "n_sites", "R2_mean", "R2_median", "r2_mean", "paper_R2"]]


def published_skill(metrics: pd.DataFrame) -> pd.DataFrame:
    """Median per-site R² and r² per learner and target beside published site-level skill.

    Returns
    -------
    pandas.DataFrame
        ``learner, target, n_sites, R2_median, r2_median, tamrl_R2_median, fluxcom_R2``:
        CarbonFluxBench TAM-RL median per-site R² and FLUXCOM's site-level R² (lower bound)
        for the target, NaN where there is none (:mod:`fluxcore.anchors`).
    """
    sk = skill_summary(metrics).sort_values(["learner", "target"]).reset_index(drop=True)
    sk["n_sites"] = [int(metrics.loc[(metrics["learner"] == r.learner) & (metrics["target"] == r.target),
                                     "SITE_ID"].nunique()) for r in sk.itertuples()]
    sk["tamrl_R2_median"] = [CFB_TAMRL_MEDIAN_R2.get(str(t), np.nan) for t in sk["target"]]
    sk["fluxcom_R2"] = [FLUXCOM_SITE_R2.get(str(t), np.nan) for t in sk["target"]]
    return sk[["learner", "target", "n_sites", "R2_median", "r2_median", "tamrl_R2_median", "fluxcom_R2"]]


def fuzzy_pairs(metrics: pd.DataFrame) -> pd.DataFrame:
    """Per-site paired differences of every fuzzy variant against its plain learner.

    A learner ``X_fuzzy...`` (e.g. ``rf_fuzzy``, ``lstm_fuzzyzones``) is paired with ``X``
    when both are in the run; differences are variant minus plain (positive dR2 and
    negative dRMSE favour the variant).
    """
    learners = set(metrics["learner"].astype(str))
    rows = []
    for v in sorted(learners):
        if FUZZY_MARKER not in v:
            continue
        base = v.split(FUZZY_MARKER)[0]
        if base not in learners:
            continue
        a = metrics[metrics["learner"] == v][["SITE_ID", "target", "zone", "R2", "RMSE"]]
        b = metrics[metrics["learner"] == base][["SITE_ID", "target", "R2", "RMSE"]]
        j = a.merge(b, on=["SITE_ID", "target"], suffixes=("_variant", "_plain"))
        j = j.assign(variant=v, plain=base, dR2=j["R2_variant"] - j["R2_plain"],
                     dRMSE=j["RMSE_variant"] - j["RMSE_plain"])
        rows.append(j)
    cols = ["variant", "plain", "target", "SITE_ID", "zone", "R2_plain", "R2_variant", "dR2",
            "RMSE_plain", "RMSE_variant", "dRMSE"]
    if not rows:
        return pd.DataFrame(columns=cols)
    return pd.concat(rows, ignore_index=True)[cols]


def _wilcoxon_p(d: np.ndarray) -> float:
    from scipy import stats

    d = d[np.isfinite(d)]
    if d.size < 2 or np.all(d == 0):
        return float("nan")
    return float(stats.wilcoxon(d, zero_method="wilcox", alternative="two-sided").pvalue)


def fuzzy_vs_plain(metrics: pd.DataFrame) -> pd.DataFrame:
    """Summary of :func:`fuzzy_pairs` per variant and target (and zone ``all`` / per zone).

    Returns
    -------
    pandas.DataFrame
        ``variant, plain, target, zone, n_sites, R2_plain_mean, R2_variant_mean, dR2_mean,
        dR2_median, n_better_R2, p_wilcoxon_R2, RMSE_plain_mean, RMSE_variant_mean,
        dRMSE_mean, dRMSE_median, n_better_RMSE, p_wilcoxon_RMSE``.
    """
    pairs = fuzzy_pairs(metrics)
    rows = []
    for (v, base, target), g in pairs.groupby(["variant", "plain", "target"], sort=True):
        items = [("all", g)] + [(z, gz) for z in ZONES for gz in [g[g["zone"] == z]] if len(gz)]
        for zone, gz in items:
            dr2 = gz["dR2"].to_numpy(dtype=float)
            drm = gz["dRMSE"].to_numpy(dtype=float)
            rows.append({"variant": v, "plain": base, "target": target, "zone": zone,
                         "n_sites": int(len(gz)),
                         "R2_plain_mean": float(gz["R2_plain"].mean()),
                         "R2_variant_mean": float(gz["R2_variant"].mean()),
                         "dR2_mean": float(np.nanmean(dr2)), "dR2_median": float(np.nanmedian(dr2)),
                         "n_better_R2": int((dr2 > 0).sum()), "p_wilcoxon_R2": _wilcoxon_p(dr2),
                         "RMSE_plain_mean": float(gz["RMSE_plain"].mean()),
                         "RMSE_variant_mean": float(gz["RMSE_variant"].mean()),
                         "dRMSE_mean": float(np.nanmean(drm)), "dRMSE_median": float(np.nanmedian(drm)),
                         "n_better_RMSE": int((drm < 0).sum()), "p_wilcoxon_RMSE": _wilcoxon_p(drm)})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------ markdown helpers
def _fmt(x: Any, nd: int = 3) -> str:
    if x is None:
        return ""
    if isinstance(x, (bool, np.bool_)):
        return str(bool(x))
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    try:
        xf = float(x)
    except (TypeError, ValueError):
        return str(x)
    if not np.isfinite(xf):
        return "-"
    if xf != 0 and (abs(xf) < 10 ** -nd or abs(xf) >= 1e5):
        return f"{xf:.2e}"
    return f"{xf:.{nd}f}"


def _md_table(df: pd.DataFrame, nd: int = 3) -> str:
    if df.empty:
        return "_(none)_\n"
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, r in df.iterrows():
        lines.append("| " + " | ".join(_fmt(v, nd) for v in r.to_numpy()) + " |")
    return "\n".join(lines) + "\n"


def _table3_wide(t3: pd.DataFrame, target: str) -> pd.DataFrame:
    t = t3[t3["target"] == target]
    if t.empty:
        return pd.DataFrame()
    t = t.assign(cell=[f"{_fmt(a)} ({_fmt(b)})" for a, b in zip(t["rmse_mean"], t["rmse_var"], strict=True)])
    wide = t.pivot(index="zone", columns="learner", values="cell")
    n = t.groupby("zone")["n_sites"].max()
    order = [z for z in [*ZONES, "all"] if z in wide.index]
    wide = wide.loc[order]
    wide.insert(0, "n_sites", n.reindex(order).to_numpy())
    wide["paper LSTM"] = [PAPER_TABLE3_LSTM_RMSE.get(target, {}).get(z, np.nan) for z in order]
    return wide.reset_index()


# ------------------------------------------------------------------ report
@dataclass
class ReportInputs:
    """What both reports (Markdown and HTML) read of a finished run."""

    run_dir: Path
    config: Any
    metrics: pd.DataFrame
    manifest: dict
    cfg: dict
    dataset: Any
    notes: list[str]


def report_inputs(run_dir, dataset=None, what_skipped: str = "heterogeneity sections skipped") -> ReportInputs:
    """Config, metrics, manifest and dataset of a run (the data re-loaded from its config).

    Raises :class:`ConfigError` when ``run_dir`` is not a run folder or has no metrics. A
    dataset that cannot be loaded, or whose fingerprint differs from the run's, becomes a
    note (``what_skipped`` says what the report leaves out).
    """
    from .heterogeneity import _load_run_parts

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ConfigError(f"{run_dir}: run folder not found")
    config, metrics, _ = _load_run_parts(run_dir)
    if metrics is None or len(metrics) == 0:
        raise ConfigError(f"{run_dir}: run has no metrics yet")
    manifest = {}
    if (run_dir / "manifest.json").is_file():
        manifest = json.loads((run_dir / "manifest.json").read_text())
    cfg = config.to_dict() if hasattr(config, "to_dict") else dict(config or {})
    notes: list[str] = []
    if dataset is None:
        try:
            if not cfg.get("data"):
                raise ConfigError(f"{run_dir / 'config.json'} names no data")
            # an exported run (config.json + metrics.parquet) gives its config as a plain dict
            run_cfg = config if isinstance(config, RunConfig) else RunConfig.from_dict(
                cfg, source=str(run_dir / "config.json"))
            dataset = load_config_dataset(run_cfg)
        except (FluxcoreError, ImportError, OSError) as exc:
            notes.append(f"{what_skipped}: the run's data {cfg.get('data')!r} cannot be loaded: {exc}")
    data = manifest.get("data") if isinstance(manifest, dict) else None
    fp = data.get("fingerprint") if isinstance(data, dict) else None
    if dataset is not None and fp and dataset.fingerprint() != fp:
        notes.append(f"warning: the dataset given ({dataset.fingerprint()}) differs from the run's "
                     f"data (fingerprint {fp}); distances may not match the folds")
    return ReportInputs(run_dir, config, metrics, manifest, cfg, dataset, notes)


def make_output_folder(folder: Path) -> None:
    """``mkdir -p`` for a report's folder; :class:`DataError` (not an OSError traceback) when a
    file is in the way or the folder cannot be made."""
    for p in (folder, *folder.parents):
        if p.exists():
            if not p.is_dir():
                raise DataError(p, "is a file, not a folder for the report (give another --out)")
            break
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(folder, f"cannot be made for the report: {exc.strerror or exc}") from None


def write_report(run_dir, dataset=None, out_dir=None) -> Path:
    """Write the paper report of a run (Markdown + CSV) and return the path of ``report.md``.

    Parameters
    ----------
    run_dir : str or Path
        A finished run folder (``config.json``, ``metrics.parquet`` ...).
    dataset : fluxcore.dataset.FluxDataset, optional
        The run's dataset; re-loaded from the run's ``config.json`` ``data`` field (and QC
        options) when None. Without a dataset the heterogeneity sections are skipped (and
        the report says why).
    out_dir : str or Path, optional
        Output folder (default ``<run_dir>/report``).

    Returns
    -------
    pathlib.Path
        ``<out_dir>/report.md``.
    """
    from .heterogeneity import distance_skill, run_distances

    inp = report_inputs(run_dir, dataset)
    run_dir, metrics, manifest, cfg, dataset, notes = (
        inp.run_dir, inp.metrics, inp.manifest, inp.cfg, inp.dataset, inp.notes)
    out = Path(out_dir) if out_dir is not None else run_dir / "report"
    make_output_folder(out)

    t3 = table3(metrics)
    t3.to_csv(out / "table3.csv", index=False)
    us = us_skill(metrics)
    us.to_csv(out / "us_skill.csv", index=False)
    pub = published_skill(metrics)
    pub.to_csv(out / "published_skill.csv", index=False)
    fz = fuzzy_vs_plain(metrics)
    fz.to_csv(out / "fuzzy_vs_plain.csv", index=False)
    fuzzy_pairs(metrics).to_csv(out / "fuzzy_pairs.csv", index=False)

    dist = ds_tab = models = None
    if dataset is not None:
        dist = run_distances(run_dir, dataset)
        dist.to_csv(out / "distances.csv", index=False)
        try:
            dist.to_parquet(run_dir / "distances.parquet", index=False)
        except OSError as exc:  # read-only run folder
            notes.append(f"distances.parquet not written next to the run: {exc}")
        parts = []
        for dcol in ("D_mean", "D_centroid", "D_knn", "DI"):
            for metric in ("R2", "r2"):
                parts.append(distance_skill(metrics, dist, distance=dcol, metric=metric))
        ds_tab = pd.concat(parts, ignore_index=True)
        ds_tab.to_csv(out / "distance_skill.csv", index=False)
        from .skill import fit_skill_model

        rows = []
        for (learner, target), _ in metrics.groupby(["learner", "target"], sort=True):
            try:
                rows.append(fit_skill_model(metrics, dist, learner, target).summary())
            except ConfigError as exc:
                notes.append(f"no skill model for {learner}/{target}: {exc}")
        models = pd.DataFrame(rows)
        models.to_csv(out / "skill_models.csv", index=False)

    # ---------------------------------------------------------------- markdown
    label = manifest.get("data", {}).get("name") or cfg.get("data")
    synthetic = (bool(getattr(dataset, "synthetic", False)) if dataset is not None
                 else bool(manifest.get("data", {}).get("synthetic", False)))
    cfb, why_not = common_site_comparison(metrics, synthetic=synthetic)
    if cfb is None:
        notes.append(f"CarbonFluxBench comparison skipped: {why_not}")
    else:
        cfb.to_csv(out / "carbonfluxbench.csv", index=False)
    lines = [f"# fluxcore paper report: run `{run_dir.name}`", ""]
    if synthetic:
        lines += ["> **SYNTHETIC data** (demo world): figures below are not FLUXNET results.", ""]
    lines += [
        f"* data: {label}" + (" (SYNTHETIC)" if synthetic else ""),
        f"* learners: {', '.join(map(str, sorted(metrics['learner'].unique())))}",
        f"* targets: {', '.join(map(str, sorted(metrics['target'].unique())))}",
        f"* test sites: {metrics['SITE_ID'].nunique()}; training pool: {cfg.get('pool', 'all')}; "
        f"seed {cfg.get('seed', '-')}",
        f"* run status: {manifest.get('status', 'unknown')}; created {manifest.get('created', '-')}",
        "",
        "R² = 1 - SSE/SST (can be negative); r² = squared Pearson correlation. RMSE in gC m-2 d-1.",
        "",
    ]
    lines += ["## Table 3 analogue: per-site RMSE by aridity zone, mean (variance)", "",
              "Variance is the sample variance (ddof = 1) of per-site RMSE; `paper LSTM` is Gao et al. "
              "(2025) Table 3 (LSTM).", ""]
    for target in sorted(t3["target"].unique()):
        lines += [f"### {target}", "", _md_table(_table3_wide(t3, target)), ""]
    lines += ["## Mean skill at US sites (paper: mean R² 0.72)", "", _md_table(us), ""]
    lines += ["## Median per-site skill beside published site-level skill", "",
              "`tamrl_R2_median`: CarbonFluxBench TAM-RL (Koppen split, minimal features); `fluxcom_R2`: "
              f"FLUXCOM site-level R² (lower bound). {PUBLISHED_CAVEAT}", "", _md_table(pub), ""]
    if cfb is not None:
        lines += ["## Beside CarbonFluxBench on the common sites", "",
                  f"Median (and mean) per-site R² on the test sites both have. {CFB_CAVEAT}", "",
                  _md_table(cfb), ""]
    if ds_tab is not None:
        main = ds_tab[(ds_tab["distance"] == "D_mean") & (ds_tab["metric"] == "R2")]
        lines += ["## Heterogeneity versus skill", "",
                  "D_mean: mean comprehensive Euclidean distance of the test site to its fold's training "
                  "sites (group-balanced z-scores, training statistics only; docs/heterogeneity.md). "
                  "Correlation with per-site R²; the paper reports a significant negative correlation. "
                  "R² is unbounded below, so a few sites with very negative R² dominate Pearson r; "
                  "Spearman rho is rank-based and robust to them.", "",
                  _md_table(main[["learner", "target", "zone", "n", "pearson_r", "pearson_p", "spearman_rho",
                                  "spearman_p", "slope", "intercept"]]), ""]
        alld = ds_tab[(ds_tab["zone"] == "all") & (ds_tab["metric"] == "R2")]
        lines += ["All distance definitions (all zones, R²):", "",
                  _md_table(alld[["learner", "target", "distance", "n", "pearson_r", "pearson_p",
                                  "spearman_rho", "spearman_p"]]), ""]
        n_out = int((~dist["AOA"]).sum())
        lines += [f"Area of applicability (Meyer & Pebesma 2021): {n_out} of {len(dist)} test sites lie "
                  "outside their fold's AOA (DI above the training threshold).", ""]
    if len(fz):
        lines += ["## Fuzzy variants versus plain learners (same run, paired by site)", "",
                  "d = variant - plain; positive dR2 / negative dRMSE favour the fuzzy variant; p: two-sided "
                  "Wilcoxon signed-rank test.", "",
                  _md_table(fz[fz["zone"] == "all"][["variant", "plain", "target", "n_sites", "R2_plain_mean",
                                                     "R2_variant_mean", "dR2_mean", "dR2_median", "n_better_R2",
                                                     "p_wilcoxon_R2", "dRMSE_mean", "n_better_RMSE",
                                                     "p_wilcoxon_RMSE"]]), ""]
    else:
        lines += ["## Fuzzy variants versus plain learners", "",
                  "_No fuzzy variant with its plain learner in this run._", ""]
    if notes:
        lines += ["## Notes", ""] + [f"* {n}" for n in notes] + [""]
    lines += ["Files: " + ", ".join(sorted(p.name for p in out.glob("*.csv"))), ""]
    path = out / "report.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


__all__ = ["table3", "us_skill", "fuzzy_pairs", "fuzzy_vs_plain", "write_report"]
