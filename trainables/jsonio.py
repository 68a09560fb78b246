"""JSON files that survive a killed process: written to a temp file, then renamed."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any


def jsonable(value: Any) -> Any:
    """Config and metric values as JSON (tuples as lists, NaN/inf as strings JSON can hold)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        return jsonable(value.item())
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    return repr(value)


def write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w") as f:
        json.dump(jsonable(data), f, indent=2)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
