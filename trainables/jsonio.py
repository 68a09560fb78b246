"""JSON files that survive a killed process: written to a temp file, then renamed."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from trainables.contract import jsonable

__all__ = ["jsonable", "write_json_atomic"]


def write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w") as f:
        json.dump(jsonable(data), f, indent=2)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
