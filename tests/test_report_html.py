"""Tests of fluxcore.report_html: one self-contained, offline HTML report of a run."""

from __future__ import annotations

import re

import pytest
from factories_heterogeneity import make_world

from fluxcore import report_html
from fluxcore.errors import ConfigError


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """A real leave-one-site-out run (MLR) on 8 small synthetic sites."""
    from threadpoolctl import threadpool_limits

    from fluxcore.config import RunConfig
    from fluxcore.loso import run_loso

    world = make_world(n_sites=8, years=1, seed=21, prefix=["US-", "DE-"])
    cfg = RunConfig(data="synthetic-test", learners=["mlr"], targets=["GPP"], seed=1)
    with threadpool_limits(1):
        run = run_loso(cfg, dataset=world, runs_dir=tmp_path_factory.mktemp("runs"))
    return world, run.path if hasattr(run, "path") else run


def _external(html: str) -> list[str]:
    srcs = re.findall(r"<(?:script|link|img)[^>]+(?:src|href)=[\"']([^\"']+)", html)
    return [u for u in srcs if not u.startswith("data:")]


@pytest.mark.slow
def test_html_report_is_self_contained_and_complete(small_run, tmp_path):
    world, run_dir = small_run
    path = report_html.write_html_report(run_dir, dataset=world, out=tmp_path / "r.html")
    assert path == tmp_path / "r.html" and path.is_file()
    html = path.read_text(encoding="utf-8")
    assert _external(html) == []  # nothing fetched from the network
    # scatter, heterogeneity figure and skill map, each inline
    assert all(f'id="fig{i}"' in html for i in (1, 2, 3)) and html.count("Plotly.newPlot") >= 3
    assert len(re.findall(r"plotly\.js v\d", html)) == 1  # plotly.js embedded exactly once
    assert "SYNTHETIC demo world" in html or "SYNTHETIC" in html
    assert "CC-BY-4.0" not in html  # no FLUXNET attribution on synthetic data
    for s in ("Settings", "Data provenance", "Table 3", "paper LSTM", "Heterogeneity and skill",
              "Predicted skill map", "Spearman", "R² ≈", "fingerprint", "zero-shot"):
        assert s in html, s
    assert "negative relation" in html  # the sentence against the paper
    assert "None" not in re.sub(r"<script.*?</script>", "", html, flags=re.S)


@pytest.mark.slow
def test_html_report_real_data_attribution(small_run, tmp_path):
    from dataclasses import replace

    world, run_dir = small_run
    real = replace(world, synthetic=False)
    html = report_html.write_html_report(run_dir, dataset=real, out=tmp_path).read_text(encoding="utf-8")
    assert "CC-BY-4.0" in html and "Pastorello" in html and "doi:10.1038/s41597-020-0534-3" in html
    assert "SYNTHETIC demo world:" not in html
    assert (tmp_path / "report.html").is_file()


def test_html_report_bad_folder(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        report_html.write_html_report(tmp_path / "missing")


@pytest.mark.slow
def test_cli_report_html(small_run, tmp_path, capsys):
    from fluxcore.cli import main

    _, run_dir = small_run
    out = tmp_path / "cli.html"
    # the run's data "synthetic-test" cannot be re-loaded: the report says so instead of failing
    assert main(["report", str(run_dir), "--html", "--out", str(out)]) == 0
    assert out.is_file() and "report: " in capsys.readouterr().out
    assert "cannot be loaded" in out.read_text(encoding="utf-8")
