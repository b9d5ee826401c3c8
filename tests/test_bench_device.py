"""benchmarks/device_vs_cpu.py: CUDA runs of the network learners beside the CPU W+ run."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from device_vs_cpu import compare, main  # noqa: E402


def _run(learner_seconds: dict, towers: int = 204, params: dict | None = None, commit: str = "abc") -> dict:
    return {"workload": {"params": params or {}, "jobs": 2},
            "machine": {"cpu_count": 2, "note": "n"},
            "environment": {"git_commit": commit, "packages": {"torch": "2.13.0+cpu"}},
            "points": [{"world": "fluxnet2015", "towers": 25, "site_days": 10, "wall_seconds": 1.0,
                        "learner_seconds": {k: 1.0 for k in learner_seconds}},
                       {"world": "fluxnet2015", "towers": towers, "site_days": 500, "wall_seconds": 99.0,
                        "learner_seconds": learner_seconds, "peak_memory_mb": {"self": 1.0}},
                       {"world": "synthetic demo (1000 towers)", "towers": 1000, "site_days": 9,
                        "wall_seconds": 5.0, "learner_seconds": learner_seconds}]}


CPU = _run({"lstm": 160.0, "rf": 200.0, "tamrl": 210.0, "pmtl": 190.0, "mlp": 170.0})


def test_compare_reads_the_largest_real_point_and_pairs_each_network_learner():
    cuda = _run({"lstm": 80.0}, params={"lstm": {"device": "cuda"}}, commit="def")
    out = compare(CPU, [("lstm.json", cuda)], not_finished={"mlp": "206"}, not_run={"pmtl": "no time"})
    assert set(out["learners"]) == {"lstm", "tamrl", "pmtl", "mlp"}  # rf is no network learner
    lstm = out["learners"]["lstm"]
    assert lstm["cpu_seconds"] == 160.0 and lstm["cuda_seconds"] == 80.0 and lstm["cpu_over_cuda"] == 2.0
    assert lstm["cuda_run_wall_seconds"] == 99.0 and lstm["cuda_file"] == "lstm.json"
    assert out["learners"]["mlp"]["cuda_seconds"] is None
    assert out["learners"]["mlp"]["cuda_run_stopped_after_seconds"] == 206.0
    assert out["learners"]["pmtl"]["why"] == "no time"
    assert out["learners"]["tamrl"]["why"] == "no CUDA run given"
    assert out["cuda_runs"][0]["git_commit"] == "def" and out["towers"] == 204


def test_compare_refuses_a_run_not_on_cuda_or_on_other_towers():
    with pytest.raises(SystemExit, match="did not run with device=cuda"):
        compare(CPU, [("cpu.json", _run({"lstm": 80.0}, params={"lstm": {"device": "cpu"}}))])
    with pytest.raises(SystemExit, match="50 towers"):
        compare(CPU, [("x.json", _run({"lstm": 80.0}, towers=50, params={"lstm": {"device": "cuda"}}))])


def test_main_names_an_unreadable_file_and_a_bad_pair(tmp_path, capsys):
    cpu = tmp_path / "cpu.json"
    cpu.write_text(json.dumps(CPU))
    with pytest.raises(SystemExit, match="missing.json: cannot read"):
        main(["--cpu", str(cpu), "--cuda", str(tmp_path / "missing.json"), "--out", str(tmp_path / "o.json")])
    with pytest.raises(SystemExit, match="expected LEARNER=VALUE"):
        main(["--cpu", str(cpu), "--not-run", "pmtl", "--out", str(tmp_path / "o.json")])
    cuda = tmp_path / "cuda.json"
    cuda.write_text(json.dumps(_run({"tamrl": 105.0}, params={"tamrl": {"device": "cuda"}})))
    assert main(["--cpu", str(cpu), "--cuda", str(cuda), "--out", str(tmp_path / "o.json")]) == 0
    assert json.loads((tmp_path / "o.json").read_text())["learners"]["tamrl"]["cpu_over_cuda"] == 2.0
