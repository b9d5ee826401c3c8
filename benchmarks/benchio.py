"""Small helpers shared by the benchmark scripts."""

from __future__ import annotations

import json
from pathlib import Path


def write_json(out: str | Path, result: dict) -> Path:
    """Write ``result`` as indented JSON to ``out`` (parent folders created) and print the path."""
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2))
    print(path)
    return path
