"""Readable summaries of a finished run (``summary.md``)."""

from __future__ import annotations

import pandas as pd

from .config import RunConfig
from .fewshot import evaluation_text, few_shot_note
from .metrics import ZONE_VAR_DDOF, skill_summary, table3

__all__ = ["summary_markdown"]


def _evaluation_line(rc: RunConfig) -> str:
    """``* evaluation: <learner> zero-shot | k-shot; ...`` (:func:`fluxcore.fewshot.evaluation_text`)."""
    line = "* evaluation: " + evaluation_text(rc)
    if few_shot_note(rc):
        line += (" (k-shot: the first k months of each test site's fluxes entered the learner's "
                 "site embedding and are left out of that site's scores)")
    return line


def summary_markdown(rc: RunConfig, manifest: dict, metrics: pd.DataFrame, zs: pd.DataFrame,
                     dataset=None) -> str:
    """Readable Markdown summary of a finished run."""
    data = manifest.get("data", {})
    lines = [f"# Leave-one-site-out run `{manifest.get('key')}`", ""]
    if data.get("synthetic"):
        lines += ["**SYNTHETIC demo data: these numbers describe a generated world, not real towers.**", ""]
    lines += [
        f"* data: {data.get('name')} ({data.get('source')}), fingerprint `{data.get('fingerprint')}`",
        f"* learners: {', '.join(rc.learners)}; targets: {', '.join(rc.targets)}; pool: {rc.pool}; seed: {rc.seed}",
        _evaluation_line(rc),
        f"* test sites: {manifest.get('n_test_sites')}; folds: {manifest.get('n_folds')}"
        + (f"; skipped: {len(manifest.get('skipped', []))}" if manifest.get("skipped") else ""),
    ]
    if rc.pretrain:
        p = rc.pretrain
        lines.append(f"* pre-training: source {p.get('source')}, {p.get('epochs')} epochs, fine-tuning "
                     f"{p.get('finetune_epochs')} epochs of parts '{p.get('parts')}'"
                     + (" (TRANSDUCTIVE: the predicted sites' drivers entered pre-training)"
                        if p.get("transductive") else ""))
    lines += [
        f"* code: {manifest.get('code_version')} (git {manifest.get('git_commit')})",
        f"* finished: {manifest.get('finished')}; compute time {sum(manifest.get('fold_seconds', {}).values()):.1f} s",
        "",
        "## Skill per site (median / mean over test sites)",
        "",
        "R² = 1 - SSE/SST (can be negative); r² = squared Pearson correlation. RMSE in gC m-2 d-1.",
        "",
        "| learner | target | sites | median R² | mean R² | median r² | mean r² | mean RMSE |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in skill_summary(metrics).itertuples(index=False):
        lines.append(f"| {r.learner} | {r.target} | {r.n_sites} | {r.R2_median:.3f} | {r.R2_mean:.3f} | "
                     f"{r.r2_median:.3f} | {r.r2_mean:.3f} | {r.RMSE_mean:.3f} |")
    for tgt in rc.targets:
        t3 = table3(zs, tgt)
        if t3.empty:
            continue
        lrns = list(dict.fromkeys(zs.loc[zs["target"] == tgt, "learner"]))
        lines += ["", f"## {tgt}: RMSE by aridity zone (mean / variance over sites, ddof={ZONE_VAR_DDOF})", "",
                  "| zone | " + " | ".join(lrns) + " |", "|---|" + "---|" * len(lrns)]
        for zone in t3.index:
            cells = []
            for lrn in lrns:
                mean = t3.get((lrn, "rmse_mean"), pd.Series(dtype=float)).get(zone, float("nan"))
                var = t3.get((lrn, "rmse_var"), pd.Series(dtype=float)).get(zone, float("nan"))
                cells.append(f"{mean:.3f} / {var:.3f}")
            lines.append(f"| {zone} | " + " | ".join(cells) + " |")
    if manifest.get("skipped"):
        lines += ["", "## Skipped folds", ""] + [f"* {s['fold']}: {s['reason']}" for s in manifest["skipped"]]
    return "\n".join(lines) + "\n"
