"""study.json: archsweep's record of a study, the contract between run and report.

Written atomically after every change (temp file + rename), so a killed driver leaves either the
old or the new record, never half of one; resume reads it to skip finished stages.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from orchestrator.study import StudyError
from trainables.jsonio import jsonable, write_json_atomic

SCHEMA_VERSION = 1
STUDY_FILE = "study.json"


class StudyRecord:
    """The in-memory study.json, saved after every update."""

    def __init__(self, run_dir: Path, data: dict[str, Any]) -> None:
        self.run_dir = run_dir
        self.data = data

    @classmethod
    def open(
        cls,
        run_dir: Path,
        header: dict[str, Any],
        stage_names: list[str],
        run_settings: dict[str, Any],
    ) -> StudyRecord:
        """Open (resume) or create study.json.

        `run_settings` (the --set overrides and --smoke) must match a resumed run's: finished
        stages are not run again, so resuming with other settings would mix two experiments.
        """
        path = run_dir / STUDY_FILE
        settings = jsonable(run_settings)
        if path.is_file():
            data = json.loads(path.read_text())
            known = [s["name"] for s in data["stages"]]
            fresh_hint = "run with --fresh to start over (the old run is kept aside) or --name NEW"
            if known != stage_names:
                raise StudyError(
                    f"{path} records stages {known}, but the study file now has {stage_names}; "
                    + fresh_hint
                )
            if data.get("run_settings", settings) != settings:
                raise StudyError(
                    f"{path} was run with {data['run_settings']}, this command has {settings}; "
                    "resuming would mix the two. " + fresh_hint[0].upper() + fresh_hint[1:]
                )
            data.update({k: v for k, v in header.items() if k != "status"})
            data["status"] = "running"
        else:
            data = {
                "schema_version": SCHEMA_VERSION,
                **header,
                "run_settings": settings,
                "status": "running",
                "stages": [{"name": n, "status": "pending", "trials": []} for n in stage_names],
                "evaluations": {},
            }
        record = cls(run_dir, data)
        record.save()
        return record

    def stage(self, name: str) -> dict[str, Any]:
        return next(s for s in self.data["stages"] if s["name"] == name)

    def save(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.run_dir / STUDY_FILE, self.data)


def rel(path: str | Path | None, root: Path) -> str | None:
    if path is None:
        return None
    try:
        return str(Path(path).resolve().relative_to(root.resolve()))
    except ValueError:  # storage elsewhere (another disk, cloud): keep the absolute path
        return str(path)
