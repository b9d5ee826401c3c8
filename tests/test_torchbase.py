"""The torch learner base: a tiny subclass defined here, losses, saving, parts, device, leakage."""

from __future__ import annotations

import copy
import pickle
import types

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from factories_learners import make_synthetic  # noqa: E402
from torch import nn  # noqa: E402

from fluxcore.errors import ConfigError, DataError  # noqa: E402
from fluxcore.learners import make_learner, register  # noqa: E402
from fluxcore.learners.base import Interval  # noqa: E402
from fluxcore.learners.losses import available_losses, get_loss, register_loss  # noqa: E402
from fluxcore.learners.torchbase import TorchLearner, infer_time_step  # noqa: E402

pytestmark = pytest.mark.requires_torch


class _Dense(nn.Module):
    def __init__(self, n_in: int, hidden: int, n_out: int):
        super().__init__()
        self.body = nn.Linear(n_in, hidden)
        self.head = nn.Linear(hidden, n_out)

    def forward(self, x):
        return self.head(torch.relu(self.body(x[:, -1])))


@register("tiny_dense_test")
class TinyDense(TorchLearner):
    """A one-hidden-layer dense network on single rows (no sequence), for these tests only."""

    name = "tiny_dense_test"
    _parameter_constraints = {"hidden": [Interval(int, 1)]}  # merged with the base's

    def __init__(self, hidden: int = 8, **kwargs):
        super().__init__(**kwargs)
        self.hidden = hidden

    def _build_network(self, n_in, n_out):
        return _Dense(n_in, int(self.hidden), n_out)

    def _parts(self, net):
        return {"head": list(net.head.parameters()), "last": list(net.body.parameters())}


FAST = {"hidden": 8, "max_epochs": 3, "batch_size": 32, "max_windows_per_epoch": 200, "lr": 2e-2}


def dense(**kw) -> TinyDense:
    return TinyDense(**{**FAST, **kw})


@pytest.fixture(scope="module")
def data():
    X, y, s, d = make_synthetic(n_sites=6, n_days=60, seed=3)
    return X, y, s, d


@pytest.fixture(scope="module")
def fitted(data):
    X, y, s, d = data
    tr = s != "S05"
    return dense().fit(X[tr], y[tr][["GPP", "ER"]], sites=s[tr], dates=d[tr])


# --------------------------------------------------------------- subclass through the base
def test_subclass_fits_and_predicts_through_the_base(fitted, data):
    X, y, s, d = data
    te = s == "S05"
    p = fitted.predict(X[te], sites=s[te], dates=d[te])
    assert p.shape == (te.sum(), 2) and np.isfinite(p).all()
    assert fitted.val_mode_ == "sites" and len(fitted.val_sites_) == 1
    assert set(fitted.val_sites_) <= {f"S0{i}" for i in range(5)}
    assert fitted.time_step_ == "D" and fitted.device_ == "cpu"
    # seeded: same data and seed, bitwise the same predictions
    tr = ~te
    again = dense().fit(X[tr], y[tr][["GPP", "ER"]], sites=s[tr], dates=d[tr])
    assert np.array_equal(again.predict(X[te], sites=s[te], dates=d[te]), p)
    # rows are independent for a non-sequence learner: one row alone gives the same value
    # (up to float32 rounding of a different matrix shape)
    one = np.flatnonzero(te)[7:8]
    np.testing.assert_allclose(fitted.predict(X.iloc[one], sites=s[one], dates=d[one])[0], p[7], rtol=1e-6)
    # better than predicting the training mean
    obs = y[te][["GPP", "ER"]].to_numpy()
    assert ((p - obs) ** 2).mean() < ((fitted.y_mean_ - obs) ** 2).mean()


def test_params_follow_kwargs_to_the_base_and_constraints_merge():
    est = dense(patience=1)
    names = est._param_names()
    assert names[0] == "hidden" and {"max_epochs", "loss", "random_state", "n_threads"} <= set(names)
    assert est.get_params()["patience"] == 1
    cl = est.clone()
    assert type(cl) is TinyDense and cl.get_params() == est.get_params()
    assert "max_epochs" in TinyDense._parameter_constraints and "hidden" in TinyDense._parameter_constraints
    assert TinyDense.get_class_tags()["fine_tune"] and not TinyDense.get_class_tags()["sequence"]
    with pytest.raises(ConfigError, match="max_epochs"):
        dense(max_epochs=0).fit(*_xy(), sites=np.array(["A"] * 3), dates=_dates(3))
    with pytest.raises(ConfigError, match="hidden"):
        dense(hidden=0).fit(*_xy(), sites=np.array(["A"] * 3), dates=_dates(3))


def _xy():
    import pandas as pd

    return pd.DataFrame({"a": [1.0, 2.0, 3.0]}), pd.DataFrame({"GPP": [1.0, 2.0, 3.0]})


def _dates(n):
    return np.arange("2020-01-01", n, dtype="datetime64[D]").astype("datetime64[ns]")


def test_nan_targets_and_weights_are_masked(data):
    X, y, s, d = data
    y2 = y[["GPP", "ER"]].copy()
    half = np.arange(len(y2)) % 2 == 0
    y2.loc[half, "GPP"] = np.nan  # these rows count for ER only
    y2.loc[~half, "ER"] = np.nan  # these for GPP only
    est = dense(max_epochs=2).fit(X, y2, sites=s, dates=d)
    p = est.predict(X, sites=s, dates=d)
    assert np.isfinite(p).all()
    # rows count for the targets they have: changing ER where only ER is observed matters
    y3 = y2.copy()
    y3.loc[half, "ER"] += 5.0
    assert not np.array_equal(dense(max_epochs=2).fit(X, y3, sites=s, dates=d).predict(X, sites=s, dates=d), p)
    # rows of weight 0 do not count at all (but the scalers are those of all fit rows, so
    # compare two fits with the same target statistics: swap targets between weight-0 rows)
    w = np.ones(len(X))
    zero = np.flatnonzero(s == "S02")
    w[zero] = 0.0
    a = dense(max_epochs=2, val_fraction=0.0).fit(X, y2, sites=s, dates=d, sample_weight=w)
    y4 = y2.copy()
    y4.iloc[zero] = y2.iloc[zero[::-1]].to_numpy()
    b = dense(max_epochs=2, val_fraction=0.0).fit(X, y4, sites=s, dates=d, sample_weight=w)
    np.testing.assert_allclose(a.y_mean_, b.y_mean_)
    np.testing.assert_allclose(a.predict(X, sites=s, dates=d), b.predict(X, sites=s, dates=d), atol=1e-5)


# ------------------------------------------------------------------------------ losses
def test_loss_registry():
    assert {"mse", "mse+balance"} <= set(available_losses())
    with pytest.raises(ConfigError, match="unknown loss 'nope'"):
        get_loss("nope")
    X, y = _xy()
    with pytest.raises(ConfigError, match="loss must be one of"):
        dense(loss="nope").fit(X, y, sites=np.array(["A"] * 3), dates=_dates(3))

    calls = []

    @register_loss("mae_test")
    def _mae(learner):
        calls.append(list(learner.target_names_))
        return lambda pred, yt, m, w: ((m * w[:, None]) * (pred - yt).abs()).sum() / (m * w[:, None]).sum()

    dense(loss="mae_test", max_epochs=1, val_fraction=0.0).fit(X, y, sites=np.array(["A"] * 3), dates=_dates(3))
    assert calls and calls[0] == ["GPP"]  # the loss saw the fitted target names


def _fake(tnames, bw=1.0):
    return types.SimpleNamespace(name="fake", target_names_=tnames, y_mean_=np.array([5.0, 4.0, -1.0]),
                                 y_scale_=np.array([2.0, 1.5, 3.0]), balance_weight=bw)


def test_balance_term_changes_the_gradient():
    torch.manual_seed(0)
    tn = ["GPP", "ER", "NEE"]
    net = nn.Linear(4, 3)
    x = torch.randn(16, 4)
    yt = torch.randn(16, 3)
    m = torch.ones(16, 3)
    m[::3, 1] = 0.0
    w = torch.rand(16) + 0.5

    def grads(loss_name, bw=1.0):
        net.zero_grad()
        pred = net(x)
        loss = get_loss(loss_name)(_fake(tn, bw))(pred, yt, m, w)
        loss.backward()
        return loss.detach(), [p.grad.clone() for p in net.parameters()]

    l0, g0 = grads("mse")
    l1, g1 = grads("mse+balance")
    assert not all(torch.allclose(a, b) for a, b in zip(g0, g1, strict=True))
    # the extra term is balance_weight * mean_w((ER - GPP - NEE)^2) / var(NEE) in physical units
    with torch.no_grad():
        p = net(x) * torch.tensor([2.0, 1.5, 3.0]) + torch.tensor([5.0, 4.0, -1.0])
        r = p[:, 1] - p[:, 0] - p[:, 2]
        extra = (w * r ** 2).sum() / w.sum() / 9.0
    assert torch.allclose(l1 - l0, extra, rtol=1e-5)
    l2, _ = grads("mse+balance", bw=3.0)
    assert torch.allclose(l2 - l0, 3 * extra, rtol=1e-5)
    # target order comes from target_names_, not from a fixed position
    perm = get_loss("mse+balance")(_fake(["NEE", "GPP", "ER"]))
    assert not torch.allclose(perm(net(x), yt, m, w), l1)


def test_balance_loss_needs_the_three_targets(data):
    X, y, s, d = data
    est = dense(loss="mse+balance")
    with pytest.raises(ConfigError, match=r"mse\+balance.*missing \['NEE'\]"):
        est.fit(X, y[["GPP", "ER"]], sites=s, dates=d)
    with pytest.raises(RuntimeError, match="not fitted"):  # no half-fitted learner left behind
        est.predict(X, sites=s, dates=d)


def test_closure_residual_falls_as_balance_weight_grows(data):
    X, y, s, d = data
    y3 = y[["GPP", "ER", "NEE"]]

    def residual(bw):
        est = dense(loss="mse+balance", balance_weight=bw, max_epochs=4, val_fraction=0.0,
                    max_windows_per_epoch=300).fit(X, y3, sites=s, dates=d)
        p = est.predict(X, sites=s, dates=d)
        return float(np.mean(np.abs(p[:, 2] - (p[:, 1] - p[:, 0]))))

    r0, r1, r10 = residual(0.0), residual(1.0), residual(10.0)
    assert r10 < r1 < r0
    assert r10 < 0.5 * r0


# ------------------------------------------------------------------------------ saving
def _plain(v) -> bool:
    if v is None or isinstance(v, (bool, int, float, str, torch.Tensor)):
        return True
    if isinstance(v, (list, tuple)):
        return all(_plain(x) for x in v)
    if isinstance(v, dict):
        return all(isinstance(k, str) and _plain(x) for k, x in v.items())
    return False


def test_save_load_round_trip_is_exact(fitted, data, tmp_path):
    X, y, s, d = data
    te = s == "S05"
    p = fitted.predict(X[te], sites=s[te], dates=d[te])
    path = fitted.save(tmp_path / "models" / "m.pt")
    # the file holds tensors and plain values only: the safe loader reads it
    raw = torch.load(path, weights_only=True)
    assert _plain(raw) and raw["learner"] == "tiny_dense_test"
    assert raw["params"]["hidden"] == 8 and raw["fitted"]["target_names_"] == ["GPP", "ER"]
    assert isinstance(raw["state_dict"]["head.weight"], torch.Tensor)
    back = TorchLearner.load(path)
    assert type(back) is TinyDense and back.get_params() == fitted.get_params()
    assert np.array_equal(back.predict(X[te], sites=s[te], dates=d[te]), p)
    assert np.array_equal(back.val_sites_, fitted.val_sites_)
    for k in ("x_mean_", "x_scale_", "y_mean_", "y_scale_", "mask_cols_"):
        a, b = getattr(back, k), getattr(fitted, k)
        assert a.dtype == b.dtype and np.array_equal(a, b)
    # the state without the file, into a fresh learner
    fresh = TinyDense().set_state(fitted.get_state())
    assert np.array_equal(fresh.predict(X[te], sites=s[te], dates=d[te]), p)
    # a loaded model fine-tunes like the original
    a = copy.deepcopy(fitted).fine_tune(X[te], y[te][["GPP", "ER"]], sites=s[te], dates=d[te])
    b = back.fine_tune(X[te], y[te][["GPP", "ER"]], sites=s[te], dates=d[te])
    assert np.array_equal(a.predict(X[te], sites=s[te], dates=d[te]), b.predict(X[te], sites=s[te], dates=d[te]))


def test_lstm_save_load_round_trip(data, tmp_path):
    X, y, s, d = data
    from fluxcore.learners.lstm import LSTMLearner

    params = LSTMLearner.get_test_params()[0]
    est = make_learner("lstm", **params).fit(X, y[["GPP", "ER"]], sites=s, dates=d)
    est.save(tmp_path / "lstm.pt")
    back = TorchLearner.load(tmp_path / "lstm.pt")
    assert type(back) is LSTMLearner and back.lookback == params["lookback"]
    assert np.array_equal(back.predict(X, sites=s, dates=d), est.predict(X, sites=s, dates=d))
    with pytest.raises(DataError, match="not a TinyDense"):
        TinyDense.load(tmp_path / "lstm.pt")


def test_damaged_or_foreign_files_are_data_errors(fitted, tmp_path):
    good = fitted.save(tmp_path / "good.pt")
    blob = good.read_bytes()
    cases = {
        "truncated.pt": blob[: len(blob) // 2],
        "noise.pt": bytes(range(256)) * 8,
        "empty.pt": b"",
    }
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
    torch.save({"weights": torch.zeros(3)}, tmp_path / "foreign.pt")
    state = fitted.get_state()
    state["state_dict"] = {"head.weight": torch.zeros(1)}
    torch.save(state, tmp_path / "wrong_weights.pt")
    state = fitted.get_state()
    state["learner"] = "no_such_learner"
    torch.save(state, tmp_path / "unknown.pt")
    for name in [*cases, "foreign.pt", "wrong_weights.pt", "unknown.pt", "missing.pt"]:
        with pytest.raises(DataError) as info:
            TorchLearner.load(tmp_path / name)
        assert info.value.path == str(tmp_path / name)
        assert info.value.problem
    with pytest.raises(DataError, match="not registered"):
        TorchLearner.load(tmp_path / "unknown.pt")
    with pytest.raises(DataError, match="do not fit the network"):
        TorchLearner.load(tmp_path / "wrong_weights.pt")
    # a pickled arbitrary object is refused by the safe loader (never executed)
    torch.save({"format": "fluxcore.torch_learner", "obj": types.SimpleNamespace(a=1)}, tmp_path / "obj.pt")
    with pytest.raises(DataError, match="not a readable torch model"):
        TorchLearner.load(tmp_path / "obj.pt")


def test_unfitted_learner_has_no_state():
    with pytest.raises(RuntimeError, match="not fitted"):
        dense().get_state()


# ------------------------------------------------------------------------- fine-tuning
def test_parts_head_leaves_other_parameters_unchanged(fitted, data):
    X, y, s, d = data
    te = s == "S05"
    before = {k: v.clone() for k, v in fitted.model_.state_dict().items()}
    est = copy.deepcopy(fitted).fine_tune(X[te], y[te][["GPP", "ER"]], sites=s[te], dates=d[te],
                                          epochs=2, lr=1e-2, parts="head")
    after = est.model_.state_dict()
    assert torch.equal(before["body.weight"], after["body.weight"])
    assert torch.equal(before["body.bias"], after["body.bias"])
    assert not torch.equal(before["head.weight"], after["head.weight"])
    both = copy.deepcopy(fitted).fine_tune(X[te], y[te][["GPP", "ER"]], sites=s[te], dates=d[te],
                                           lr=1e-2, parts="head+last")
    assert not torch.equal(before["body.weight"], both.model_.state_dict()["body.weight"])
    assert est.n_fine_tune_epochs_ == 2 and both.n_fine_tune_epochs_ == 1
    for bad in ("encoder", "head+", ""):
        with pytest.raises(ConfigError, match="parts"):
            copy.deepcopy(fitted).fine_tune(X[te], y[te][["GPP", "ER"]], sites=s[te], dates=d[te], parts=bad)


def test_max_windows_equals_setting_the_attribute(fitted, data):
    X, y, s, d = data
    te = s == "S05"
    a = copy.deepcopy(fitted)
    a.max_windows_per_epoch = 17
    a.fine_tune(X[te], y[te][["GPP", "ER"]], sites=s[te], dates=d[te], epochs=2)
    b = copy.deepcopy(fitted).fine_tune(X[te], y[te][["GPP", "ER"]], sites=s[te], dates=d[te],
                                        epochs=2, max_windows=17)
    assert b.max_windows_per_epoch == fitted.max_windows_per_epoch
    assert b.n_steps_ - fitted.n_steps_ == 2  # 17 windows in batches of 32: one step per epoch
    assert np.array_equal(a.predict(X[te], sites=s[te], dates=d[te]), b.predict(X[te], sites=s[te], dates=d[te]))
    with pytest.raises(ConfigError, match="max_windows"):
        copy.deepcopy(fitted).fine_tune(X[te], y[te][["GPP", "ER"]], sites=s[te], dates=d[te], max_windows=0)


def test_deepcopy_and_pickle_keep_predictions(fitted, data):
    X, _, s, d = data
    p = fitted.predict(X, sites=s, dates=d)
    assert np.array_equal(copy.deepcopy(fitted).predict(X, sites=s, dates=d), p)
    assert np.array_equal(pickle.loads(pickle.dumps(fitted)).predict(X, sites=s, dates=d), p)


# ------------------------------------------------------------------------------ device
def test_device_auto_follows_cuda_availability(data):
    X, y, s, d = data
    est = dense(device="auto", max_epochs=1).fit(X, y[["GPP"]], sites=s, dates=d)
    assert est.device_ == ("cuda" if torch.cuda.is_available() else "cpu")
    assert est._device().type == est.device_
    assert next(est.model_.parameters()).device.type == "cpu"  # kept on CPU between calls
    with pytest.raises(ConfigError, match="device"):
        dense(device="tpu").fit(X, y[["GPP"]], sites=s, dates=d)


# ----------------------------------------------------------------------------- leakage
def test_scalers_see_only_the_fit_rows(data, monkeypatch):
    X, y, s, d = data
    seen = []
    orig_x, orig_y = TinyDense._fit_feature_scaler, TinyDense._fit_target_scaler

    def spy_x(self, Xa):
        seen.append(("x", Xa.copy()))
        return orig_x(self, Xa)

    def spy_y(self, ya):
        seen.append(("y", ya.copy()))
        return orig_y(self, ya)

    monkeypatch.setattr(TinyDense, "_fit_feature_scaler", spy_x)
    monkeypatch.setattr(TinyDense, "_fit_target_scaler", spy_y)
    tr = s != "S05"
    est = dense(max_epochs=1).fit(X[tr], y[tr][["GPP", "ER"]], sites=s[tr], dates=d[tr])
    assert [k for k, _ in seen] == ["x", "y"]
    assert np.array_equal(seen[0][1], X[tr].to_numpy(dtype=float), equal_nan=True)
    assert np.array_equal(seen[1][1], y[tr][["GPP", "ER"]].to_numpy(dtype=float), equal_nan=True)
    # predicting or fine-tuning on the held-out site never refits a scaler
    te = ~tr
    est.predict(X[te], sites=s[te], dates=d[te])
    est.fine_tune(X[te], y[te][["GPP", "ER"]], sites=s[te], dates=d[te])
    assert len(seen) == 2
    assert "S05" not in set(est.val_sites_)


def test_time_step_inference():
    days = np.arange("2020-01-01", 40, dtype="datetime64[D]").astype("datetime64[ns]")
    months = np.arange("2020-01", 6, dtype="datetime64[M]").astype("datetime64[ns]")
    assert infer_time_step(days) == "D"
    assert infer_time_step(months) == "M"
    assert infer_time_step(months + np.timedelta64(1, "D")) == "D"
