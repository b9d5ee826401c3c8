"""Compare two methods site by site: paired skill differences with bootstrap intervals.

Two learners of one run, or two runs on the same sites (e.g. a new learner's run beside
the paper's four, or the same learner with another seed), are compared on the sites both
scored, *paired by site*: for site i, ``d_i = score_A(i) - score_B(i)``. Pairing removes
the large site-to-site differences in difficulty that both methods share, so a paired
interval is usually much narrower than one that compares the two means as if they were
independent samples (both are given, to show why pairing matters).

Interval
    the percentile bootstrap (Efron & Tibshirani 1993, ch. 13) of the mean paired
    difference: sites are resampled with replacement ``n_boot`` times with a seeded
    generator (same seed, same interval); the interval is the ``(1 - level) / 2`` and
    ``(1 + level) / 2`` quantiles of the resampled means. With fewer than 3 sites no interval
    is given. The two-sided Wilcoxon signed-rank p-value (Wilcoxon 1945) is given beside it.

Seeds
    :func:`seed_spread`: with several runs of the same learner that differ only by seed,
    the standard deviation of the run-level mean score and the median per-site standard
    deviation: the part of a difference that is noise of training.

CarbonFluxBench
    :func:`benchmark_scores`: for real towers, the CarbonFluxBench per-site scores on the
    sites both sets have (:func:`fluxcore.anchors.common_site_comparison`).

References
----------
Efron, B., Tibshirani, R. J. (1993) An Introduction to the Bootstrap. Chapman & Hall.
Wilcoxon, F. (1945) Individual comparisons by ranking methods. Biometrics Bulletin 1(6),
80-83. doi:10.2307/3001968
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from .anchors import CFB_CAVEAT, common_site_comparison, default_anchor_dir
from .errors import ConfigError
from .heterogeneity import _load_run_parts
from .plots import TEMPLATE, ZONE_COLORS
from .variables import ZONES

#: Default number of bootstrap resamples.
N_BOOT = 5000

PAIR_COLUMNS = ("target", "SITE_ID", "zone", "a", "b", "diff")


# ------------------------------------------------------------------ pairing
def _scores(metrics: pd.DataFrame, learner: str, metric: str, what: str) -> pd.DataFrame:
    for c in ("SITE_ID", "learner", "target", metric):
        if c not in metrics.columns:
            raise ConfigError(f"{what}: metrics table has no column {c!r}")
    m = metrics[metrics["learner"].astype(str) == str(learner)]
    if m.empty:
        raise ConfigError(f"{what}: no learner {learner!r}; learners: "
                          f"{sorted(map(str, metrics['learner'].unique()))}")
    cols = ["target", "SITE_ID", *(["zone"] if "zone" in m.columns else []), metric]
    m = m[cols].astype({"SITE_ID": str, "target": str})
    return m.drop_duplicates(["target", "SITE_ID"])


def paired_scores(metrics_a: pd.DataFrame, learner_a: str, metrics_b: pd.DataFrame | None = None,
                  learner_b: str | None = None, metric: str = "R2",
                  target: str | None = None) -> pd.DataFrame:
    """Per-site scores of method A and method B on the sites both scored.

    Parameters
    ----------
    metrics_a : pandas.DataFrame
        ``metrics.parquet`` of the run of method A.
    learner_a : str
        Learner of method A.
    metrics_b : pandas.DataFrame, optional
        ``metrics.parquet`` of the run of method B (default: the same run as A).
    learner_b : str, optional
        Learner of method B (default: ``learner_a``, e.g. the same learner in two runs).
    metric : str
        Per-site score (``R2`` default; ``r2``, ``RMSE`` ...).
    target : str, optional
        Keep one target.

    Returns
    -------
    pandas.DataFrame
        ``target, SITE_ID, zone, a, b, diff`` with ``diff = a - b`` [metric units], sorted by
        target and site.

    Raises
    ------
    ConfigError
        Same method on both sides, unknown learner, or no site scored by both.
    """
    same_run = metrics_b is None
    metrics_b = metrics_a if same_run else metrics_b
    learner_b = learner_a if learner_b is None else learner_b
    if same_run and str(learner_a) == str(learner_b):
        raise ConfigError(f"compare two different learners of a run (got {learner_a!r} twice)")
    a = _scores(metrics_a, learner_a, metric, "method A")
    b = _scores(metrics_b, learner_b, metric, "method B")
    if target is not None:
        a, b = a[a["target"] == str(target)], b[b["target"] == str(target)]
    j = a.merge(b.drop(columns=["zone"], errors="ignore"), on=["target", "SITE_ID"], suffixes=("_a", "_b"))
    if j.empty:
        raise ConfigError(f"the two methods ({learner_a}, {learner_b}) have no site and target in common; "
                          "compare runs made on the same sites")
    if "zone" not in j.columns:
        j["zone"] = None
    out = pd.DataFrame({"target": j["target"], "SITE_ID": j["SITE_ID"], "zone": j["zone"],
                        "a": j[f"{metric}_a"].astype(float), "b": j[f"{metric}_b"].astype(float)})
    out["diff"] = out["a"] - out["b"]
    out = out[np.isfinite(out["diff"])]
    return out.sort_values(["target", "SITE_ID"]).reset_index(drop=True)


# ------------------------------------------------------------------ intervals
def bootstrap_mean_ci(values: Sequence[float], n_boot: int = N_BOOT, level: float = 0.95,
                      seed: int = 0) -> tuple[float, float, float]:
    """Mean of ``values`` and its percentile-bootstrap interval (seeded).

    Returns
    -------
    (mean, lo, hi) : tuple of float
        NaN interval with fewer than 3 finite values.
    """
    if not 0 < level < 1:
        raise ConfigError(f"interval level must be in (0, 1), got {level!r}")
    if int(n_boot) < 100:
        raise ConfigError(f"n_boot must be at least 100, got {n_boot!r}")
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return float("nan"), float("nan"), float("nan")
    if x.size < 3:
        return float(x.mean()), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(int(n_boot), x.size))].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(x.mean()), float(lo), float(hi)


def unpaired_mean_diff_ci(a: Sequence[float], b: Sequence[float], n_boot: int = N_BOOT,
                          level: float = 0.95, seed: int = 0) -> tuple[float, float, float]:
    """Difference of means ``mean(a) - mean(b)`` with a bootstrap interval that ignores the
    pairing (a and b resampled independently): for contrast with the paired interval."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if a.size < 3 or b.size < 3:
        d = float(a.mean() - b.mean()) if a.size and b.size else float("nan")
        return d, float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    ma = a[rng.integers(0, a.size, size=(int(n_boot), a.size))].mean(axis=1)
    mb = b[rng.integers(0, b.size, size=(int(n_boot), b.size))].mean(axis=1)
    lo, hi = np.quantile(ma - mb, [(1 - level) / 2, (1 + level) / 2])
    return float(a.mean() - b.mean()), float(lo), float(hi)


def _wilcoxon_p(d: np.ndarray) -> float:
    from scipy import stats

    d = d[np.isfinite(d)]
    if d.size < 2 or np.all(d == 0):
        return float("nan")
    return float(stats.wilcoxon(d, zero_method="wilcox", alternative="two-sided").pvalue)


def summarize_pairs(pairs: pd.DataFrame, n_boot: int = N_BOOT, level: float = 0.95, seed: int = 0,
                    higher_is_better: bool = True) -> pd.DataFrame:
    """Mean paired difference with its bootstrap interval, per target and zone (and ``all``).

    Parameters
    ----------
    pairs : pandas.DataFrame
        :func:`paired_scores` output.
    n_boot, level, seed :
        Bootstrap resamples, interval level, random seed.
    higher_is_better : bool
        True for R² / r² (A better where ``diff > 0``), False for RMSE / MAE.

    Returns
    -------
    pandas.DataFrame
        ``target, zone, n_sites, mean_a, mean_b, mean_diff, ci_lo, ci_hi, median_diff,
        n_a_better, p_wilcoxon, unpaired_lo, unpaired_hi, verdict``; ``verdict`` is
        ``"A better"``, ``"B better"`` (interval excludes 0) or ``"no clear difference"``.
    """
    rows = []
    for target, g in pairs.groupby("target", sort=True):
        items = [("all", g)] + [(z, g[g["zone"] == z]) for z in ZONES if (g["zone"] == z).any()]
        for zone, gz in items:
            d = gz["diff"].to_numpy(dtype=float)
            mean, lo, hi = bootstrap_mean_ci(d, n_boot, level, seed)
            _, ulo, uhi = unpaired_mean_diff_ci(gz["a"], gz["b"], n_boot, level, seed)
            better = (d > 0) if higher_is_better else (d < 0)
            if np.isfinite(lo) and lo > 0:
                verdict = "A better" if higher_is_better else "B better"
            elif np.isfinite(hi) and hi < 0:
                verdict = "B better" if higher_is_better else "A better"
            else:
                verdict = "no clear difference"
            rows.append({"target": target, "zone": zone, "n_sites": int(d.size),
                         "mean_a": float(gz["a"].mean()), "mean_b": float(gz["b"].mean()),
                         "mean_diff": mean, "ci_lo": lo, "ci_hi": hi,
                         "median_diff": float(np.median(d)) if d.size else np.nan,
                         "n_a_better": int(better.sum()), "p_wilcoxon": _wilcoxon_p(d),
                         "unpaired_lo": ulo, "unpaired_hi": uhi, "verdict": verdict})
    cols = ["target", "zone", "n_sites", "mean_a", "mean_b", "mean_diff", "ci_lo", "ci_hi", "median_diff",
            "n_a_better", "p_wilcoxon", "unpaired_lo", "unpaired_hi", "verdict"]
    return pd.DataFrame(rows, columns=cols)


def seed_spread(metrics_list: Sequence[pd.DataFrame], learner: str, metric: str = "R2") -> pd.DataFrame:
    """How much a learner's score moves between runs that differ only by seed.

    Parameters
    ----------
    metrics_list : sequence of pandas.DataFrame
        ``metrics.parquet`` of two or more runs (same sites, different seeds).
    learner : str
    metric : str

    Returns
    -------
    pandas.DataFrame
        ``target, zone, n_runs, n_sites, mean, sd_of_run_means, median_site_sd`` (per target
        and zone, plus ``all``), on the sites every run scored.
    """
    if len(metrics_list) < 2:
        raise ConfigError("the seed spread needs at least two runs")
    parts = []
    for i, m in enumerate(metrics_list):
        s = _scores(m, learner, metric, f"run {i + 1}")
        parts.append(s.assign(run=i))
    allm = pd.concat(parts, ignore_index=True)
    wide = allm.pivot_table(index=["target", "SITE_ID"], columns="run", values=metric, aggfunc="first")
    wide = wide.dropna()
    if wide.empty:
        raise ConfigError("the runs have no site scored in all of them")
    zone = allm.drop_duplicates(["target", "SITE_ID"]).set_index(["target", "SITE_ID"]).get("zone")
    rows = []
    for target in sorted(wide.index.get_level_values(0).unique()):
        w = wide.loc[target]
        z = zone.loc[target].reindex(w.index) if zone is not None else pd.Series(None, index=w.index)
        items = [("all", w)] + [(zz, w[z == zz]) for zz in ZONES if (z == zz).any()]
        for name, wz in items:
            run_means = wz.mean(axis=0).to_numpy(dtype=float)
            rows.append({"target": target, "zone": name, "n_runs": int(wz.shape[1]), "n_sites": int(len(wz)),
                         "mean": float(run_means.mean()), "sd_of_run_means": float(np.std(run_means, ddof=1)),
                         "median_site_sd": float(np.median(wz.std(axis=1, ddof=1)))})
    return pd.DataFrame(rows)


def benchmark_scores(pairs_metrics: pd.DataFrame, synthetic: bool, anchors=None) -> tuple[pd.DataFrame | None, str | None]:
    """CarbonFluxBench scores on the common sites (real data only); ``(None, why)`` otherwise.

    See :func:`fluxcore.anchors.common_site_comparison`.
    """
    return common_site_comparison(pairs_metrics, synthetic=synthetic, anchors=anchors)


# ------------------------------------------------------------------ one call
@dataclass
class Comparison:
    """Result of :func:`compare`.

    Attributes
    ----------
    label_a, label_b : str
        Names of the two methods (``"rf"``, ``"run 1a2b…: rf"``).
    metric : str
    pairs : pandas.DataFrame
        :func:`paired_scores`.
    summary : pandas.DataFrame
        :func:`summarize_pairs`.
    benchmark : pandas.DataFrame or None
        :func:`benchmark_scores` (None with the reason in ``notes``).
    notes : list of str
    """

    label_a: str
    label_b: str
    metric: str
    pairs: pd.DataFrame
    summary: pd.DataFrame
    benchmark: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)

    def sentence(self, target: str, zone: str = "all") -> str:
        """One plain sentence for a target and zone."""
        r = self.summary[(self.summary["target"] == target) & (self.summary["zone"] == zone)]
        if r.empty:
            return f"No sites of {target} in {zone}."
        r = r.iloc[0]
        where = "over all sites" if zone == "all" else f"in the {zone} zone"
        if not np.isfinite(r["ci_lo"]):
            return (f"{target} {where}: {self.label_a} minus {self.label_b} = {r['mean_diff']:+.3f} "
                    f"{self.metric} on {int(r['n_sites'])} site(s), too few for an interval.")
        verdict = {"A better": f"{self.label_a} is better", "B better": f"{self.label_b} is better",
                   "no clear difference": "no clear difference"}[r["verdict"]]
        return (f"{target} {where}: {self.label_a} minus {self.label_b} = {r['mean_diff']:+.3f} {self.metric} "
                f"(95 % paired bootstrap interval {r['ci_lo']:+.3f} .. {r['ci_hi']:+.3f}, "
                f"{int(r['n_sites'])} sites, {int(r['n_a_better'])} favour {self.label_a}): {verdict}.")


def _run_label(run: Any, run_dir) -> str:
    key = getattr(run, "key", None) or (run_dir.name if run_dir is not None else None)
    return str(key)[:8] if key else "run"


def compare(run_a, learner_a: str, learner_b: str | None = None, run_b=None, *, metric: str = "R2",
            target: str | None = None, n_boot: int = N_BOOT, level: float = 0.95, seed: int = 0,
            synthetic: bool | None = None, anchors=None) -> Comparison:
    """Compare two learners of one run, or two runs on the same sites.

    Parameters
    ----------
    run_a : str, Path or RunResult
        The (first) run.
    learner_a : str
        Method A's learner.
    learner_b : str, optional
        Method B's learner (default: ``learner_a``, for two runs of the same learner).
    run_b : str, Path or RunResult, optional
        Method B's run (default: ``run_a``).
    metric, target, n_boot, level, seed :
        As :func:`paired_scores` and :func:`summarize_pairs`.
    synthetic : bool, optional
        Whether the sites are synthetic (no CarbonFluxBench comparison); default: read from
        the runs' site ids (``SYN-`` prefix) when not given.
    anchors : pandas.DataFrame or callable, optional
        CarbonFluxBench table (default: loaded when needed).

    Returns
    -------
    Comparison
    """
    _, ma, dir_a = _load_run_parts(run_a)
    mb, dir_b = ma, dir_a
    if run_b is not None:
        _, mb, dir_b = _load_run_parts(run_b)
    learner_b = learner_a if learner_b is None else learner_b
    pairs = paired_scores(ma, learner_a, None if run_b is None else mb, learner_b, metric=metric, target=target)
    hib = metric.upper() not in ("RMSE", "MAE") and metric != "bias"
    summary = summarize_pairs(pairs, n_boot=n_boot, level=level, seed=seed, higher_is_better=hib)
    if run_b is None:
        la, lb = str(learner_a), str(learner_b)
    else:
        la, lb = f"{_run_label(run_a, dir_a)}: {learner_a}", f"{_run_label(run_b, dir_b)}: {learner_b}"
        if la == lb:
            la, lb = f"A ({la})", f"B ({lb})"
    notes = []
    n_a = ma[ma["learner"] == learner_a]["SITE_ID"].nunique()
    n_b = mb[mb["learner"] == learner_b]["SITE_ID"].nunique()
    n_common = pairs["SITE_ID"].nunique()
    if n_common < max(n_a, n_b):
        notes.append(f"compared on the {n_common} sites both scored ({la}: {n_a}, {lb}: {n_b})")
    if synthetic is None:
        synthetic = bool(pairs["SITE_ID"].astype(str).str.startswith("SYN-").any())
    sub = pd.concat([ma[(ma["learner"] == learner_a) & ma["SITE_ID"].isin(pairs["SITE_ID"])].assign(learner=la),
                     mb[(mb["learner"] == learner_b) & mb["SITE_ID"].isin(pairs["SITE_ID"])].assign(learner=lb)])
    bench, why = (None, "only R² is compared with CarbonFluxBench") if metric != "R2" else \
        benchmark_scores(sub, synthetic=synthetic, anchors=anchors)
    if bench is None:
        notes.append(f"CarbonFluxBench comparison skipped: {why}")
    return Comparison(label_a=la, label_b=lb, metric=metric, pairs=pairs, summary=summary, benchmark=bench,
                      notes=notes)


# ------------------------------------------------------------------ figures
def paired_difference_figure(cmp: Comparison, target: str) -> go.Figure:
    """Per-site paired differences (A - B), sorted, coloured by zone, with the mean and its
    bootstrap interval as a band.

    Returns
    -------
    plotly.graph_objects.Figure
        One marker trace per zone (x = rank of the site, y = difference), a ``"mean"`` line,
        an ``"interval"`` band and a ``"zero"`` line.
    """
    p = cmp.pairs[cmp.pairs["target"] == target].sort_values("diff").reset_index(drop=True)
    p["rank"] = np.arange(1, len(p) + 1)
    fig = go.Figure()
    r = cmp.summary[(cmp.summary["target"] == target) & (cmp.summary["zone"] == "all")]
    n = max(len(p), 1)
    if len(r) and np.isfinite(r["ci_lo"].iloc[0]):
        lo, hi = float(r["ci_lo"].iloc[0]), float(r["ci_hi"].iloc[0])
        fig.add_trace(go.Scatter(x=[0.5, n + 0.5, n + 0.5, 0.5, 0.5], y=[lo, lo, hi, hi, lo], fill="toself",
                                 mode="lines", line={"width": 0}, fillcolor="rgba(0,114,178,0.18)",
                                 name="interval", hoverinfo="skip"))
    if len(r):
        m = float(r["mean_diff"].iloc[0])
        fig.add_trace(go.Scatter(x=[0.5, n + 0.5], y=[m, m], mode="lines", name="mean",
                                 line={"color": "#0072B2", "width": 2}, hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=[0.5, n + 0.5], y=[0, 0], mode="lines", name="zero",
                             line={"color": "#333", "dash": "dash", "width": 1}, hoverinfo="skip"))
    zcol = p["zone"].where(p["zone"].notna(), "unknown").astype(str)
    for z in ZONE_COLORS:
        g = p[zcol == z]
        if len(g):
            fig.add_trace(go.Scatter(
                x=g["rank"], y=g["diff"], mode="markers", name=z, customdata=np.c_[g["SITE_ID"], g["a"], g["b"]],
                marker={"color": ZONE_COLORS[z], "size": 8, "line": {"color": "#333", "width": 0.5}},
                hovertemplate="%{customdata[0]}<br>" + f"{cmp.label_a} " + "%{customdata[1]:.3f}<br>"
                + f"{cmp.label_b} " + "%{customdata[2]:.3f}<br>difference %{y:+.3f}<extra></extra>"))
    fig.update_layout(template=TEMPLATE, title=f"{target}: {cmp.label_a} minus {cmp.label_b}, per site",
                      xaxis_title="site (sorted by difference)", yaxis_title=f"Δ{cmp.metric} (A − B)",
                      height=420, margin={"l": 60, "r": 20, "t": 50, "b": 50})
    return fig


def zone_difference_figure(cmp: Comparison, target: str) -> go.Figure:
    """Mean paired difference by zone (bars) with the bootstrap interval as error bars."""
    s = cmp.summary[cmp.summary["target"] == target]
    err_hi = (s["ci_hi"] - s["mean_diff"]).to_numpy(dtype=float)
    err_lo = (s["mean_diff"] - s["ci_lo"]).to_numpy(dtype=float)
    fig = go.Figure(go.Bar(
        x=s["zone"], y=s["mean_diff"], name="mean difference",
        marker_color=[ZONE_COLORS.get(z, "#0072B2") for z in s["zone"]],
        error_y={"type": "data", "symmetric": False, "array": np.nan_to_num(err_hi),
                 "arrayminus": np.nan_to_num(err_lo), "color": "#333"},
        text=[f"n = {n}" for n in s["n_sites"]], textposition="outside",
        hovertemplate="%{x}: %{y:+.3f}<extra></extra>"))
    fig.add_hline(y=0, line={"color": "#333", "width": 1})
    fig.update_layout(template=TEMPLATE, title=f"{target}: {cmp.label_a} minus {cmp.label_b} by zone "
                      "(95 % paired bootstrap interval)", yaxis_title=f"mean Δ{cmp.metric} (A − B)",
                      height=380, margin={"l": 60, "r": 20, "t": 50, "b": 40}, showlegend=False)
    return fig


__all__ = ["CFB_CAVEAT", "default_anchor_dir", "N_BOOT", "Comparison", "paired_scores", "bootstrap_mean_ci", "unpaired_mean_diff_ci",
           "summarize_pairs", "seed_spread", "benchmark_scores", "compare", "paired_difference_figure",
           "zone_difference_figure"]
