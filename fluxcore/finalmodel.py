"""Fitted non-torch learners as plain arrays (a safe, documented storage format).

A fitted ``mlr``, ``rf`` or ``svm`` learner is turned into ``(arrays, meta)``: a dict of
NumPy arrays (numbers only, no Python objects, so ``np.load(..., allow_pickle=False)`` reads
them) and a JSON-able dict; :func:`decode_learner` rebuilds the learner from them. The run
store keeps them as one ``.npz`` unit (:meth:`fluxcore.modelstore.ModelStoreMixin.save_unit`).
No code is unpickled when a stored model is read.

Encoding
--------
* ``meta["learner"]``: registry name; ``meta["params"]``: hyperparameters (JSON);
* every fitted attribute (name ending in ``_``) that is a NumPy array or a number goes into
  ``arrays`` (``attr:<name>``) or ``meta["fitted"]``; lists of strings (feature and target
  names) into ``meta["fitted"]``;
* random forests (``rf``: ``forests_``, a list of ``(target columns, RandomForestRegressor)``):
  each tree as scikit-learn's own node table (``tree:<g>:<k>:nodes``, a structured array of
  numbers, and ``tree:<g>:<k>:values``) plus ``meta["forests"]`` (target columns, number of
  trees, outputs, features, depths). The trees are rebuilt with
  ``sklearn.tree._tree.Tree.__setstate__``, so predictions are bit-identical with the same
  scikit-learn version (the version is recorded; another version is refused with a clear
  message rather than guessed).

Any other fitted attribute (an arbitrary Python object) makes :func:`encode_learner` raise
:class:`~fluxcore.errors.ConfigError` naming the learner and the attribute.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import ConfigError, DataError
from .learners import make_learner

FORMAT = "fluxcore-arrays-1"


def _sklearn_version() -> str:
    import sklearn

    return str(sklearn.__version__)


def encode_learner(learner: Any) -> tuple[dict[str, np.ndarray], dict]:
    """Arrays and JSON metadata describing a fitted non-torch learner.

    Raises
    ------
    ConfigError
        A fitted attribute cannot be stored as numbers (names the learner and attribute).
    """
    name = getattr(learner, "name", type(learner).__name__)
    arrays: dict[str, np.ndarray] = {}
    fitted: dict[str, Any] = {}
    meta: dict[str, Any] = {"format": FORMAT, "learner": name, "params": _jsonable(learner.get_params()),
                            "sklearn": _sklearn_version()}
    for k, v in vars(learner).items():
        if not k.endswith("_") or k.startswith("_"):
            continue
        if k == "forests_":
            meta["forests"] = _encode_forests(v, arrays)
        elif isinstance(v, np.ndarray) and v.dtype.kind in "biuf":
            arrays[f"attr:{k}"] = v
        elif isinstance(v, (bool, int, float, str, np.integer, np.floating)) or v is None:
            fitted[k] = v.item() if isinstance(v, np.generic) else v
        elif isinstance(v, (list, tuple, np.ndarray)) and all(isinstance(x, str) for x in v):
            fitted[k] = [str(x) for x in v]
        else:
            raise ConfigError(f"learner {name!r}: fitted attribute {k} ({type(v).__name__}) cannot be stored "
                              "as plain arrays; use mlr, rf or a torch learner for final models")
    meta["fitted"] = fitted
    return arrays, meta


def _encode_forests(forests: list, arrays: dict[str, np.ndarray]) -> list[dict]:
    out = []
    for g, (cols, rf) in enumerate(forests):
        depths = []
        for k, est in enumerate(rf.estimators_):
            st = est.tree_.__getstate__()
            arrays[f"tree:{g}:{k}:nodes"] = np.asarray(st["nodes"])
            arrays[f"tree:{g}:{k}:values"] = np.asarray(st["values"])
            depths.append(int(st["max_depth"]))
        out.append({"cols": [int(c) for c in cols], "n_trees": len(rf.estimators_),
                    "n_outputs": int(rf.n_outputs_), "n_features": int(rf.n_features_in_),
                    "depths": depths, "params": _jsonable(rf.get_params()),
                    "estimator": type(rf).__name__})
    return out


def _decode_forests(spec: list[dict], arrays: dict[str, np.ndarray]) -> list:
    from sklearn.ensemble import ExtraTreesRegressor, RandomForestRegressor
    from sklearn.tree import DecisionTreeRegressor
    from sklearn.tree._tree import Tree

    forests = []
    for g, f in enumerate(spec):
        forest = ExtraTreesRegressor if f.get("estimator") == "ExtraTreesRegressor" else RandomForestRegressor
        rf = forest(**f["params"])
        n_out, n_feat = int(f["n_outputs"]), int(f["n_features"])
        ests = []
        for k in range(int(f["n_trees"])):
            tree = Tree(n_feat, np.ones(n_out, dtype=np.intp), n_out)
            nodes = arrays[f"tree:{g}:{k}:nodes"]
            tree.__setstate__({"max_depth": f["depths"][k], "node_count": len(nodes), "nodes": nodes,
                               "values": arrays[f"tree:{g}:{k}:values"]})
            est = DecisionTreeRegressor(**{p: v for p, v in rf.get_params().items()
                                           if p in DecisionTreeRegressor().get_params()
                                           and p not in ("n_jobs", "verbose")})
            est.tree_, est.n_outputs_, est.n_features_in_ = tree, n_out, n_feat
            est.max_features_ = n_feat
            ests.append(est)
        rf.estimators_ = ests
        rf.estimator_ = DecisionTreeRegressor()
        rf.n_outputs_, rf.n_features_in_ = n_out, n_feat
        forests.append(([int(c) for c in f["cols"]], rf))
    return forests


def decode_learner(arrays: dict[str, np.ndarray], meta: dict, source: str | None = None) -> Any:
    """Rebuild the fitted learner written by :func:`encode_learner`.

    Raises
    ------
    DataError
        Not this format, an unknown learner, or trees written by another scikit-learn version
        (``source`` names the file in the message).
    """
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise DataError(source, f"not a fluxcore array model (no format {FORMAT!r})")
    try:
        learner = make_learner(meta["learner"], **meta.get("params", {}))
    except (ConfigError, KeyError, TypeError) as exc:
        raise DataError(source, f"stored learner cannot be made: {exc}") from None
    if meta.get("forests") and meta.get("sklearn") != _sklearn_version():
        raise DataError(source, f"random forest stored with scikit-learn {meta.get('sklearn')}, this is "
                                f"{_sklearn_version()}; refit it (fluxcore upscale --refit)")
    for k, v in meta.get("fitted", {}).items():
        setattr(learner, k, v)
    for key, v in arrays.items():
        if key.startswith("attr:"):
            setattr(learner, key[5:], np.asarray(v))
    if meta.get("forests"):
        learner.forests_ = _decode_forests(meta["forests"], arrays)
    return learner


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


__all__ = ["FORMAT", "decode_learner", "encode_learner"]
