"""`FromStudy` values: another study's best trial, found in the same storage.

Resolution knows no model family: `take="model"` puts the best trial's model config under the
key and its checkpoint under `<key>_checkpoint` (so `encoder=FromStudy("classifier128")` sets
`encoder` and `encoder_checkpoint`); `take="checkpoint"` puts the checkpoint's path under the key.
"""

from __future__ import annotations

from typing import Any

from orchestrator.records import STUDY_FILE, read_study
from orchestrator.study import FromStudy, StudyError
from trainables.contract import BestRecord, StudyRecord
from trainables.storage import Location
from trainables.trial_config import TrialConfig


def find_run(ref: FromStudy, storage: Location) -> tuple[Location, StudyRecord]:
    """The run directory of study `ref.study` in `storage` (a folder or a bucket).

    `storage/<study>` first; else any run directory whose study.json names that study (a run
    given its own --name), the last one listed when there are several.
    """
    direct = storage.join(ref.study, STUDY_FILE)
    if direct.is_file():
        return storage.join(ref.study), read_study(direct)
    named = [p for p in storage.glob_children(STUDY_FILE) if read_study(p).study == ref.study]
    if not named:
        raise StudyError(
            f"FromStudy({ref.study!r}) needs the study {ref.study!r} to have run first in "
            f"{storage} (no {direct}, and no run there records that study); run its study file "
            "with the same --storage, then this one"
        )
    run = named[-1]
    return Location(run.uri.rsplit("/", 1)[0]), read_study(run)


def best_of_study(ref: FromStudy, record: StudyRecord, where: Location) -> BestRecord:
    stages = [s for s in record.stages if s.best is not None]
    stage = (
        next((s for s in stages if s.name == ref.stage), None)
        if ref.stage
        else (stages[-1] if stages else None)
    )
    if stage is None or stage.best is None or not stage.best.checkpoint:
        raise StudyError(
            f"FromStudy({ref.study!r}, stage={ref.stage!r}): no finished stage with a best "
            f"checkpoint in {where.join(STUDY_FILE)}; stages with one: "
            f"{[s.name for s in stages]}"
        )
    return stage.best


def resolve_references(config: dict[str, Any], storage: Location) -> dict[str, Any]:
    """`config` with every FromStudy value replaced by what it refers to."""
    out = dict(config)
    for key, ref in config.items():
        if not isinstance(ref, FromStudy):
            continue
        run_dir, record = find_run(ref, storage)
        best = best_of_study(ref, record, run_dir)
        checkpoint = run_dir.join(str(best.checkpoint)).uri  # a path, or a URI the trial fetches
        if ref.take == "model":
            out[key] = TrialConfig.from_dict(best.config).model_config({})
            out[f"{key}_checkpoint"] = checkpoint
        else:
            out[key] = checkpoint
    return out
