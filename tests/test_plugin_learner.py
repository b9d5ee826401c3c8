"""A learner written outside fluxcore plugs into everything, with no other file edited.

The learner below exists only in this file: a small torch network subclassing
:class:`fluxcore.learners.torchbase.TorchLearner`, registered under ``test_plugin``. It must
pass the public conformance checks and run through the fast leave-one-site-out path (the
generic ``group_finetune`` strategy, chosen by its tag), a pre-training stage with stored
models that a resumed run re-uses, the command line, the Train page and ``fluxcore report``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from fluxcore.cli import main  # noqa: E402
from fluxcore.config import RunConfig, learner_catalogue  # noqa: E402
from fluxcore.learners.base import _REGISTRY, Interval  # noqa: E402
from fluxcore.learners.torchbase import TorchLearner  # noqa: E402
from fluxcore.loso import load_run, run_loso  # noqa: E402
from fluxcore.sources import load_dataset  # noqa: E402
from fluxcore.testing import check_learner  # noqa: E402

pytestmark = [pytest.mark.requires_torch, pytest.mark.slow]


class _TwoLayer(nn.Module):
    def __init__(self, n_in: int, width: int, n_out: int):
        super().__init__()
        self.body = nn.Linear(n_in, width)
        self.head = nn.Linear(width, n_out)

    def forward(self, x):
        return self.head(torch.tanh(self.body(x[:, -1])))


class PluginNet(TorchLearner):
    """A two-layer network on single days, defined in a test file only."""

    name = "test_plugin"
    description = "plug-in two-layer network (test)"
    main_params = {"width": "hidden units", "max_epochs": "upper limit"}
    _tags = {"fast_strategy": "group_finetune", "time_resolution": ("daily", "monthly")}
    _parameter_constraints = {"width": [Interval(int, 1)]}

    def __init__(self, width: int = 8, **kwargs):
        super().__init__(**kwargs)
        self.width = width

    def _build_network(self, n_in, n_out):
        return _TwoLayer(n_in, int(self.width), n_out)

    def _parts(self, net):
        return {"head": list(net.head.parameters()), "last": list(net.body.parameters())}

    @classmethod
    def get_test_params(cls, parameter_set: str = "default"):
        return [{"width": 6, "max_epochs": 2, "max_windows_per_epoch": 200, "max_val_windows": 200,
                 "batch_size": 64, "lr": 1e-2}]


SMALL = {"width": 6, "max_epochs": 1, "max_windows_per_epoch": 150, "max_val_windows": 150,
         "batch_size": 64}
FAST_OPTIONS = {"test_plugin": {"n_groups": 2, "finetune_windows": 100}}


@pytest.fixture(scope="module", autouse=True)
def registered():
    _REGISTRY["test_plugin"] = PluginNet
    yield
    _REGISTRY.pop("test_plugin", None)


@pytest.fixture(scope="module")
def demo():
    return load_dataset("demo")


@pytest.fixture(scope="module")
def small(demo):
    """Six demo sites, two per zone where possible (the dataset itself is small)."""
    picked = []
    for z in ("arid", "semi-arid", "humid"):
        picked += [s for s in demo.site_ids if demo.zone_of(s) == z][:2]
    return demo.subset(sites=picked)


class _FitCounter:
    """Counts fits of PluginNet (pre-training and group models) through a wrapper."""

    def __init__(self, monkeypatch):
        self.n = 0
        orig = PluginNet.fit

        def fit(est, *a, **k):
            self.n += 1
            return orig(est, *a, **k)

        monkeypatch.setattr(PluginNet, "fit", fit)


def test_plugin_passes_the_public_conformance_checks():
    check_learner(PluginNet(**PluginNet.get_test_params()[0]))


def test_fast_loso_uses_the_generic_strategy_and_stores_group_models(small, tmp_path):
    cfg = RunConfig(learners=["test_plugin"], targets=["GPP", "ER"], params={"test_plugin": SMALL},
                    strategy_options=FAST_OPTIONS)
    run = run_loso(cfg, dataset=small, runs_dir=tmp_path)
    res = load_run(run)
    info = res.manifest["fold_info"]
    assert len(info) == small.n_sites
    assert {v["strategy"] for v in info.values()} == {"group_finetune"}
    models = sorted((run / "models" / "test_plugin").glob("*.pt"))
    assert len(models) == 2  # one per group
    assert set(res.metrics["learner"]) == {"test_plugin"}
    assert res.metrics["R2"].notna().all()
    # the resolved config records the strategy options and the learner's hyperparameters
    assert res.config.strategy_options["test_plugin"]["n_groups"] == 2
    assert res.config.params["test_plugin"]["width"] == 6


def test_pretraining_stage_runs_once_and_a_resumed_run_reuses_the_stored_models(small, tmp_path, monkeypatch):
    cfg = RunConfig(learners=["test_plugin"], targets=["GPP", "ER"], params={"test_plugin": SMALL},
                    strategy_options=FAST_OPTIONS,
                    pretrain={"source": "processmodel", "epochs": 1, "finetune_epochs": 1, "parts": "head+last"})
    counter = _FitCounter(monkeypatch)
    run = run_loso(cfg, dataset=small, runs_dir=tmp_path)
    names = sorted(p.stem for p in (run / "models" / "test_plugin").glob("*.pt"))
    assert sum(n.startswith("pretrain-") for n in names) == 2 and len(names) == 4
    assert counter.n == 2  # one pre-training fit per group; towers enter by fine-tuning
    first = load_run(run).predictions
    config = json.loads((run / "config.json").read_text())
    assert config["pretrain"]["source"] == "processmodel" and config["pretrain"]["transductive"] is False
    # the stage is part of the run key
    plain = RunConfig(learners=["test_plugin"], targets=["GPP", "ER"], params={"test_plugin": SMALL},
                      strategy_options=FAST_OPTIONS)
    assert run_loso(plain, dataset=small, runs_dir=tmp_path) != run

    # interrupt: drop the fold files and results; a resumed run trains nothing again
    for f in (run / "folds").rglob("*.parquet"):
        f.unlink()
    for f in ("predictions.parquet", "metrics.parquet", "zone_summary.csv"):
        (run / f).unlink()
    m = json.loads((run / "manifest.json").read_text())
    m["status"], m["fold_seconds"], m["fold_info"] = "running", {}, {}
    (run / "manifest.json").write_text(json.dumps(m))
    counter.n = 0
    assert run_loso(cfg, dataset=small, runs_dir=tmp_path) == run
    assert counter.n == 0
    again = load_run(run).predictions
    np.testing.assert_array_equal(again["predicted"].to_numpy(), first["predicted"].to_numpy())


def test_stored_models_load_with_weights_only(small, tmp_path):
    cfg = RunConfig(learners=["test_plugin"], targets=["GPP"], params={"test_plugin": SMALL},
                    strategy_options=FAST_OPTIONS)
    run = run_loso(cfg, dataset=small, runs_dir=tmp_path)
    path = next((run / "models" / "test_plugin").glob("*.pt"))
    state = torch.load(path, weights_only=True)
    model = PluginNet().set_state(state)
    X = np.zeros((3, len(model.feature_names_in_)))
    import pandas as pd

    frame = pd.DataFrame(X, columns=model.feature_names_in_)
    pred = model.predict(frame, sites=np.array(["A"] * 3), dates=pd.date_range("2010-01-01", periods=3).to_numpy())
    assert pred.shape == (3, 1) and np.isfinite(pred).all()


def test_command_line_and_report(demo, tmp_path, capsys):
    sites = [s for s in demo.site_ids if demo.zone_of(s) == "arid"][:2]
    runs = tmp_path / "runs"
    argv = ["loso", "--data", "demo", "--learners", "test_plugin", "--targets", "GPP", "--sites", ",".join(sites),
            "--runs-dir", str(runs), "--quiet"]
    for k, v in SMALL.items():
        argv += ["--param", f"test_plugin.{k}={v}"]
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 0, err
    run = Path(out.strip().splitlines()[-1])
    assert load_run(run).manifest["fold_info"][f"test_plugin/{sites[0]}"]["strategy"] == "group_finetune"
    code = main(["report", str(run)])
    out, err = capsys.readouterr()
    assert code == 0, err
    report = Path(out.strip().split("report: ")[-1])
    text = report.read_text()
    assert "test_plugin" in text


def test_train_page_offers_the_plugin_with_its_metadata(demo, tmp_path, monkeypatch):
    pytest.importorskip("streamlit")
    from streamlit.testing.v1 import AppTest

    row = {r["name"]: r for r in learner_catalogue()}["test_plugin"]
    assert row["description"] == PluginNet.description and row["fast_strategy"] == "group_finetune"
    monkeypatch.setenv("FLUXCORE_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.delenv("FLUXCORE_DATA", raising=False)
    root = Path(__file__).resolve().parents[1]
    at = AppTest.from_file(str(root / "app.py"), default_timeout=120)
    at.run()
    at.switch_page("pages/train.py").run()
    assert not at.exception, [e.value for e in at.exception]
    box = at.pills(key="learners")
    assert "test_plugin" in box.options or any("test_plugin" in str(o) for o in box.options)
    sites = [s for s in demo.site_ids if demo.zone_of(s) == "humid"][:2]
    at.session_state["selected_sites"] = sites
    at.run()
    box = at.pills(key="learners")
    box.set_value(["test_plugin"]).run()
    at.multiselect(key="targets").set_value(["GPP"]).run()
    at.radio(key="scope").set_value("selected").run()
    # the plug-in's main hyperparameters come from its own metadata
    width = at.number_input(key="hp_test_plugin_width")
    assert width.value == 8
    width.set_value(6).run()
    at.number_input(key="hp_test_plugin_max_epochs").set_value(1).run()
    assert not at.exception, [e.value for e in at.exception]
    at.button(key="start").click().run()
    t0 = time.time()
    while time.time() - t0 < 600:
        texts = [s.value for s in at.success] + [e.value for e in at.error]
        if any("Finished" in t or "failed" in t for t in texts):
            break
        time.sleep(2.0)
        at.run()
    assert any("Finished" in s.value for s in at.success), [e.value for e in at.error]


def test_per_fold_pretraining_never_sees_the_held_out_site(small, tmp_path):
    """Spy for the per-fold path of the pre-training stage: a site's fluxes (and, without
    ``transductive``, its drivers' source targets) never reach the models that predict it."""
    from fluxcore.dataset import FluxDataset

    victim = small.site_ids[2]
    cfg = RunConfig(learners=["test_plugin"], targets=["GPP"], params={"test_plugin": SMALL},
                    strategy="per-fold", sites=[victim, small.site_ids[0]],
                    pretrain={"source": "processmodel", "epochs": 1, "finetune_epochs": 1})
    base = load_run(run_loso(cfg, dataset=small, runs_dir=tmp_path / "a")).predictions
    daily = small.daily.copy()
    rows = daily["SITE_ID"] == victim
    daily.loc[rows, "GPP"] = daily.loc[rows, "GPP"] * 50 + 100  # absurd fluxes at the test site
    poisoned = FluxDataset(sites=small.sites, daily=daily, name=small.name, source=small.source,
                           synthetic=True)
    after = load_run(run_loso(cfg, dataset=poisoned, runs_dir=tmp_path / "b")).predictions
    def pred(p, own: bool):
        sel = (p["SITE_ID"] == victim) == own
        return p[sel].sort_values(["SITE_ID", "DATE"])["predicted"].to_numpy()

    np.testing.assert_array_equal(pred(base, True), pred(after, True))
    assert not np.array_equal(pred(base, False), pred(after, False))  # the poison reaches other folds
