"""The speed benchmark's paired per-site comparison of a fast and a naive run."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from bench_speed import paired_r2, within_tolerance  # noqa: E402


def test_paired_r2_compares_site_by_site_on_common_sites():
    naive = pd.DataFrame({"SITE_ID": ["A", "B", "C", "D"], "R2": [0.5, 0.2, -1.0, 0.9]})
    fast = pd.DataFrame({"SITE_ID": ["B", "A", "C", "E"], "R2": [0.25, 0.48, -1.5, 0.1]})
    out = paired_r2(naive, fast, tolerance=0.01)
    # common sites A, B, C: differences -0.02, +0.05, -0.5
    assert out["n_sites"] == 3
    assert out["median_difference"] == -0.02
    assert out["sites_not_worse_than_tolerance"] == 1
    assert out["largest_loss"] == -0.5 and out["largest_gain"] == 0.05
    assert paired_r2(naive, fast.assign(SITE_ID=list("WXYZ")))["n_sites"] == 0


def test_within_tolerance_per_learner_and_target():
    per_learner = {
        "rf": {"naive_seconds": 10.0,
               "median_R2_GPP": {"naive": 0.4076, "fluxcore": 0.3544},
               "median_R2_ER": {"naive": -0.0948, "fluxcore": -0.035}},
        "svm": {"median_R2_GPP": {"naive": 0.50, "fluxcore": 0.49},
                "median_R2_ER": {"naive": 0.50, "fluxcore": None}},
    }
    out = within_tolerance(per_learner, tolerance=0.01)
    assert out == {"rf": {"GPP": False, "ER": True}, "svm": {"GPP": True, "ER": None}}


def test_seed_noise_compare_reports_median_shift_and_paired_differences():
    from bench_seed_noise import compare, subset_medians

    def metrics(gpp: list[float]) -> pd.DataFrame:
        sites = ["A", "B", "C", "Z"]
        return pd.DataFrame({"SITE_ID": sites, "learner": "rf", "target": "GPP", "R2": gpp})

    a = metrics([0.1, 0.5, 0.9, 5.0])  # Z is outside the subset
    b = metrics([0.2, 0.3, 0.9, -5.0])
    subset = ["A", "B", "C"]
    assert subset_medians(a, "rf", subset) == {"GPP": 0.5}
    out = compare(a, b, "rf", subset)["GPP"]
    assert out["median_b_minus_median_a"] == -0.2  # medians 0.3 vs 0.5
    assert out["paired_b_minus_a"]["n_sites"] == 3
    assert out["paired_b_minus_a"]["median_difference"] == 0.0  # +0.1, -0.2, 0
    assert subset_medians(a, "svm", subset) == {}


def test_bench_features_sets_resolve_to_features_and_forest_params():
    import pytest
    from bench_features import resolve_set

    assert resolve_set("default", "rf", 20) == ({}, {"rf": {"n_estimators": 20}})
    features, params = resolve_set("water", "rf", 20)
    assert features == {"water_balance": True} and params == {"rf": {"n_estimators": 20}}
    # a forest setting keeps the default features and changes one parameter on top of --trees
    assert resolve_set("rf:leaf50", "rf", 20) == ({}, {"rf": {"n_estimators": 20, "min_samples_leaf": 50}})
    assert resolve_set("water", "svm", 20) == ({"water_balance": True}, {})
    with pytest.raises(ValueError, match="needs --learner rf"):
        resolve_set("rf:ms0.3", "svm", 20)
    with pytest.raises(ValueError, match="unknown set 'nope'"):
        resolve_set("nope", "rf", 20)


def test_scaling_segments_show_a_steeper_top_end_than_the_fit():
    from bench_scaling import fit_exponent, segment_exponents

    towers = [100, 25, 50, 200]  # unsorted on purpose
    seconds = [40.0, 10.0, 20.0, 160.0]  # linear up to 100, then quadratic
    seg = segment_exponents(towers, seconds)
    assert [(s["from"], s["to"]) for s in seg] == [(25, 50), (50, 100), (100, 200)]
    assert [s["exponent"] for s in seg] == [1.0, 1.0, 2.0]
    assert 1.0 < fit_exponent(towers, seconds) < 2.0
    assert segment_exponents([25, 50], [10.0, float("nan")]) == []


def test_seed_compare_pairs_seed_means_and_reports_the_spread():
    from seed_compare import compare_settings

    sites = list("ABCDE")

    def table(r2):
        return pd.DataFrame({"R2": r2, "r2": [0.5] * 5}, index=pd.Index(sites, name="SITE_ID"))

    ref = [table([0.1, 0.2, 0.3, 0.4, 0.5]), table([0.3, 0.2, 0.5, 0.4, 0.7])]  # medians 0.3, 0.4
    new = [table([0.1, 0.2, 0.28, 0.4, 0.5]), table([0.3, 0.2, 0.48, 0.4, 0.7])]  # C is 0.02 lower
    out = compare_settings({"ref": ref, "new": new})
    r, n = out["settings"]["ref"], out["settings"]["new"]
    assert r["seed_median_R2"] == [0.3, 0.4] and r["seed_range_R2"] == 0.1
    assert r["mean_of_medians_R2"] == 0.35 and n["mean_of_medians_R2"] == 0.34
    vs = n["vs_ref"]
    assert vs["paired_median_difference_of_seed_means"] == 0.0  # four sites unchanged
    assert vs["sites_not_worse_than_tolerance"] == 4
    assert vs["paired_median_difference_per_seed"] == [0.0, 0.0]
    # seed pairs: the medians move with C (0.3 -> 0.28, 0.4 -> 0.4): -0.02 and 0.0, mean -0.01
    assert vs["paired_seeds"] == 2 and vs["difference_of_medians_per_seed"] == [-0.02, 0.0]
    assert vs["mean_difference_of_medians_paired"] == -0.01
    lo, hi = vs["mean_difference_of_medians_paired_ci95"]
    assert -0.02 - 1e-9 <= lo <= -0.01 <= hi <= 0.0 + 1e-9
    assert vs["mean_paired_median_difference"] == 0.0 and vs["mean_paired_median_difference_ci95"] == [0.0, 0.0]
    assert vs["difference_of_mean_medians"] == -0.01 and vs["within_tolerance"] is True
    assert vs["paired_within_tolerance"] is True
    # the seeds' own spread: se of the mean of medians 0.1 / sqrt(2) / sqrt(2) = 0.05; resampled
    # seed means lie in {0.28, 0.34, 0.40} (new) and {0.30, 0.35, 0.40} (ref), so the interval of
    # the difference lies within -0.12..+0.10 and holds the observed -0.01
    assert r["mean_of_medians_se"] == 0.05
    lo, hi = vs["difference_of_mean_medians_ci95"]
    assert -0.12 - 1e-9 <= lo < -0.01 < hi <= 0.10 + 1e-9
    worse = compare_settings({"ref": ref, "new": [table([0.0] * 5), table([0.1] * 5)]})
    assert worse["settings"]["new"]["vs_ref"]["within_tolerance"] is False
    assert worse["settings"]["new"]["vs_ref"]["paired_within_tolerance"] is False


def test_seed_compare_names_a_missing_run_folder(tmp_path):
    from seed_compare import main

    with pytest.raises(SystemExit, match="previous: not a run folder: .*nowhere"):
        main([f"previous={tmp_path / 'nowhere'}", f"new={tmp_path}", "--out", str(tmp_path / "out.json")])
    with pytest.raises(SystemExit, match="previous: no run folder given"):
        main(["previous=,", f"new={tmp_path}", "--out", str(tmp_path / "out.json")])
    assert not (tmp_path / "out.json").exists()


def test_scaling_draws_fit_on_each_counts_geometric_mean():
    from bench_scaling import count_means, draw_exponents, fit_exponent

    key = lambda p: p["s"]  # noqa: E731
    # two draws of 25 and 50 towers (the second draw's towers have longer records), all towers once
    points = [{"towers": 25, "draw": 0, "s": 10.0}, {"towers": 25, "draw": 1, "s": 40.0},
              {"towers": 50, "draw": 0, "s": 20.0}, {"towers": 50, "draw": 1, "s": 80.0},
              {"towers": 100, "s": 80.0}, {"towers": 100, "draw": 0, "s": float("nan")}]
    counts, means = count_means(points, key)
    assert counts == [25, 50, 100]
    assert np.allclose(means, [20.0, 40.0, 80.0])  # geometric means; the NaN is left out
    assert fit_exponent(counts, means) == 1.0
    per = draw_exponents(points, key)  # draw 0: 10, 20, 80 (steep top); draw 1: 40, 80, 80 (flat top)
    assert len(per) == 2 and per[0] > 1.0 > per[1]
    assert per[0] == fit_exponent([25, 50, 100], [10.0, 20.0, 80.0])


def test_scaling_synthetic_world_joins_the_curve_only_with_real_record_lengths(tmp_path):
    import json

    from bench_scaling import comparable_synthetic, finish, synthetic_years

    assert synthetic_years(2653.3) == 7 and synthetic_years(100.0) == 1
    long_ = {"world": "synthetic", "towers": 1000, "site_days": 2_556_000}  # 2,556 days per tower
    short = {"world": "synthetic", "towers": 1000, "site_days": 730_000}  # two years per tower
    assert comparable_synthetic([long_, short], 2653.3) == [long_]
    assert comparable_synthetic([long_], None) == []

    def point(world, towers, days, s):
        return {"world": world, "towers": towers, "site_days": days, "learner_seconds": {"rf": s}, "W_seconds": s}

    real = [point("fluxnet2015", n, n * 2653, 0.01 * n ** 1.3) for n in (25, 50, 100, 204)]
    for syn, joined in ((point("synthetic", 1000, 2_556_000, 15.0), True),
                        (point("synthetic", 1000, 730_000, 100.0), False)):
        result = {"workload": {"real_days_per_tower": 2653.3}, "machine": {}, "points": real + [syn]}
        finish(result, ["rf"], tmp_path / "s.json")
        ex = json.loads((tmp_path / "s.json").read_text())["exponents"]["rf"]
        assert ex["towers_real"] == pytest.approx(1.3, abs=1e-3)
        if joined:  # the flat top end (15 s at 1,000 towers, 10 s at 204) lowers the fit over all points
            assert ex["towers_all"] < 1.0
            assert ex["segments_all"][-1]["from"] == 204 and ex["segments_all"][-1]["exponent"] < 1.0
            assert "exponent_at_most_1.1_all_points" in result["targets_met"]
        else:
            assert "towers_all" not in ex and "exponent_at_most_1.1_all_points" not in result["targets_met"]
