"""Saved models and resumable work units inside a run folder.

:class:`ModelStoreMixin` gives :class:`fluxcore.runstore.RunStore` two kinds of stored
artefacts, both written atomically (temporary file + ``os.replace``) so that a killed process
leaves either the old file or the new one:

* **models** (``models/<learner>/<name>.pt``): a torch state dict written with
  ``torch.save`` and read with ``torch.load(..., weights_only=True)`` (no code is unpickled),
  e.g. a model pre-trained once per run or per group of sites;
* **units** (``units/<learner>/<unit>.npz``): named NumPy arrays plus a JSON-able ``meta``
  dict in one ``.npz`` file, the checkpoint of one finished group or round of a fast
  strategy, so that a rerun after a kill resumes from the last stored unit.

A file that cannot be read is moved aside (:func:`fluxcore.storefiles.move_aside`, with a
:class:`~fluxcore.storefiles.DamagedFileWarning`) and the load returns None, so the caller
recomputes it. torch is imported only by the model methods.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from urllib.parse import unquote

import numpy as np

from .storefiles import (
    atomic_path,
    atomic_write_bytes,
    file_signature,
    move_aside,
    safe_name,
    short_error,
)

_META = "meta"
_PREFIX = "x_"  # array keys are stored as x_<key> so no key can clash with np.savez or meta


class ModelStoreMixin:
    """Model and unit storage of a run folder (needs ``self.path``)."""

    path: Path

    # ------------------------------------------------------------------ models
    def model_path(self, learner: str, name: str) -> Path:
        """``<run>/models/<learner>/<name>.pt`` (both parts encoded like fold file names)."""
        return self.path / "models" / safe_name(learner, "learner") / f"{safe_name(name, 'model name')}.pt"

    def save_model(self, learner: str, name: str, state: dict) -> Path:
        """Store a state dict (``torch.save`` to a temporary file, then rename).

        Parameters
        ----------
        learner : str
            Learner name in the run (the folder).
        name : str
            Model name, e.g. ``"pretrain"`` or ``"group-03"``.
        state : dict
            A state dict: tensors, numbers, strings, lists and dicts of those (what
            ``torch.load(weights_only=True)`` can read back).

        Returns
        -------
        Path
            The model file.
        """
        import torch

        if not isinstance(state, dict):
            raise TypeError(f"save_model({learner!r}, {name!r}): state must be a dict (a state dict), "
                            f"got {type(state).__name__}")
        p = self.model_path(learner, name)
        with atomic_path(p) as tmp:
            torch.save(state, tmp)
        return p

    def load_model(self, learner: str, name: str, map_location="cpu") -> dict | None:
        """The stored state dict, or None when it is absent or damaged (then moved aside).

        Parameters
        ----------
        learner, name : str
            As in :meth:`save_model`.
        map_location : str or torch.device
            Where tensors are loaded (default ``"cpu"``; a model saved on a GPU loads anywhere).
        """
        p = self.model_path(learner, name)
        sig = file_signature(p)
        if sig is None:
            return None
        import torch

        try:
            state = torch.load(p, map_location=map_location, weights_only=True)
        except Exception as exc:  # noqa: BLE001 - torch raises RuntimeError, UnpicklingError, EOFError, BadZipFile...
            problem = ("is empty (0 bytes)" if sig[1] == 0 else
                       f"cannot be read by torch.load ({type(exc).__name__}: {short_error(exc)})")
            move_aside(p, f"{problem}; the model will be recomputed", sig)
            return None
        if not isinstance(state, dict):
            move_aside(p, f"holds a {type(state).__name__}, not a state dict; the model will be recomputed", sig)
            return None
        return state

    def list_models(self) -> list[tuple[str, str]]:
        """``(learner, name)`` of every stored model, sorted (names decoded)."""
        return _list(self.path / "models", ".pt")

    # ------------------------------------------------------------------- units
    def unit_path(self, learner: str, unit: str) -> Path:
        """``<run>/units/<learner>/<unit>.npz``."""
        return self.path / "units" / safe_name(learner, "learner") / f"{safe_name(unit, 'unit name')}.npz"

    def save_unit(self, learner: str, unit: str, arrays: dict[str, np.ndarray], meta: dict | None = None) -> Path:
        """Store one finished unit of work (arrays + JSON metadata in one file, atomically).

        Parameters
        ----------
        learner : str
            Learner name in the run.
        unit : str
            Unit name, e.g. ``"round-1-group-07"``.
        arrays : dict of str to numpy.ndarray
            Numeric, boolean or string arrays (no object arrays: they would need pickle);
            read back bit for bit.
        meta : dict, optional
            JSON-serialisable information (e.g. the sites of the group, seconds).

        Returns
        -------
        Path
            The unit file.
        """
        meta = {} if meta is None else meta
        try:
            meta_text = json.dumps(meta, sort_keys=True)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"save_unit({learner!r}, {unit!r}): meta is not JSON-serialisable ({exc})") from None
        stored = {_META: np.array(meta_text)}
        for k, v in arrays.items():
            a = np.asarray(v)
            if a.dtype == object:
                raise TypeError(f"save_unit({learner!r}, {unit!r}): array {k!r} has dtype object; "
                                "store numbers, booleans or fixed-width strings")
            stored[_PREFIX + str(k)] = a
        buf = io.BytesIO()
        np.savez(buf, **stored)
        p = self.unit_path(learner, unit)
        atomic_write_bytes(p, buf.getvalue())
        return p

    def load_unit(self, learner: str, unit: str) -> tuple[dict[str, np.ndarray], dict] | None:
        """``(arrays, meta)`` of a stored unit, or None when absent or damaged (moved aside)."""
        p = self.unit_path(learner, unit)
        sig = file_signature(p)
        if sig is None:
            return None
        try:
            with np.load(p, allow_pickle=False) as z:
                if _META not in z.files:
                    raise ValueError("no meta entry: not a fluxcore unit file")
                meta = json.loads(str(z[_META][()]))
                arrays = {k[len(_PREFIX):]: z[k] for k in z.files if k.startswith(_PREFIX)}
        except Exception as exc:  # noqa: BLE001 - np.load raises BadZipFile, ValueError, OSError, EOFError...
            problem = ("is empty (0 bytes)" if sig[1] == 0 else
                       f"cannot be read as a unit file ({type(exc).__name__}: {short_error(exc)})")
            move_aside(p, f"{problem}; the unit will be recomputed", sig)
            return None
        return arrays, meta

    def list_units(self, learner: str | None = None) -> list[tuple[str, str]]:
        """``(learner, unit)`` of every stored unit (of ``learner`` when given), sorted."""
        out = _list(self.path / "units", ".npz")
        return [u for u in out if learner is None or u[0] == learner]

    def clear_units(self, learner: str) -> int:
        """Delete the units of ``learner`` (once its folds are stored); returns how many."""
        d = self.path / "units" / safe_name(learner, "learner")
        files = sorted(d.glob("*.npz")) if d.is_dir() else []
        for f in files:
            f.unlink(missing_ok=True)
        return len(files)


def _list(folder: Path, suffix: str) -> list[tuple[str, str]]:
    if not folder.is_dir():
        return []
    return sorted((unquote(f.parent.name), unquote(f.name[: -len(suffix)]))
                  for f in folder.glob(f"*/*{suffix}"))
