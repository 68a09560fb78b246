"""Reuse a trial that an earlier stage of the same run already trained with the same config.

A stage inherits the previous stage's best configuration and varies one thing; one of its grid
points is often that inherited configuration itself (course 3.3-A: blocks [2, 2, 2] is 3.2's
winner). Training it again costs a whole trial and, with the same seed, gives the same numbers.
Such a point takes the earlier trial's record, marked with `reused_from`, and is not sent to
Ray. Only grid points qualify (a sampled key makes the config unknown until Ray draws it), and
only trials that ran to their last epoch (an ASHA-stopped or failed trial is not a result to
compare on equal terms).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from orchestrator.plan import StagePlan
from trainables.contract import StudyRecord, TrialRecord, jsonable
from trainables.models.registry import parse_config
from trainables.trial_config import REPORTED_KEYS, TrialConfig

# Keys that name a trial rather than describe its training.
NAMING_KEYS = ("label",)


def config_key(config: dict[str, Any], data_info: dict[str, Any]) -> str:
    """A comparable form of a config: data and trainer defaults filled in, the model part as
    the model family parses it (blocks=2 is (2, 2, 2), an unset activation is the default),
    naming keys and an undecided device value ("auto": a trial records what it chose,
    trainables.trial_config.REPORTED_KEYS) left out."""
    trial = TrialConfig.from_dict(config)
    model_part = trial.model_config(data_info)
    try:
        _, parsed = parse_config(model_part)
        model_part = dataclasses.asdict(parsed)
    except Exception:  # a config the family rejects is compared as written
        pass
    undecided = {k for k in REPORTED_KEYS if trial.get(k) == "auto"}
    left_out = trial.model_keys() | set(NAMING_KEYS) | undecided
    rest = {k: v for k, v in trial.values.items() if k not in left_out}
    return json.dumps(jsonable({**rest, "model": model_part}), sort_keys=True, default=str)


def finished_trials(
    record: StudyRecord, stage_name: str, data_info: dict[str, Any]
) -> dict[str, tuple[str, TrialRecord]]:
    """Completed trials of the run's other finished stages, by config key (first one wins)."""
    found: dict[str, tuple[str, TrialRecord]] = {}
    for srec in record.stages:
        if srec.name == stage_name or srec.status != "finished":
            continue
        for trial in srec.trials:
            if trial.status != "completed" or trial.trial_id is None:
                continue
            origin = trial.reused_from or f"{srec.name}/{trial.trial_id}"
            config = dict(trial.config)
            found.setdefault(config_key(config, data_info), (origin, trial))
            decided = [k for k in REPORTED_KEYS if k in config]
            if decided:  # also findable by a point that still says "auto"
                auto = {**config, **dict.fromkeys(decided, "auto")}
                found.setdefault(config_key(auto, data_info), (origin, trial))
    return found


def reuse_earlier_trials(
    record: StudyRecord, plan: StagePlan, data_info: dict[str, Any]
) -> tuple[StagePlan, list[TrialRecord]]:
    """The plan without the points an earlier stage already trained, and their reused records.
    `data_info` is the stage's data (trainables.config.bundle_info): earlier stages on other
    data never match, since their data keys differ."""
    if plan.stage.search != "grid" or plan.sampled:
        return plan, []
    done = finished_trials(record, plan.stage.name, data_info)
    keep, reused = [], []
    for point in plan.points:
        match = done.get(config_key(point.config, data_info)) if point.feasible else None
        if match is None:
            keep.append(point)
            continue
        origin, trial = match
        reused.append(
            dataclasses.replace(
                trial,
                label=point.label,
                config={**trial.config, "label": point.label},
                reused_from=origin,
                reason=f"reused: {origin}{f' ({trial.label})' if trial.label else ''} "
                "trained this same configuration",
                timeline={},  # its time was spent by `origin`, in its own stage's timeline
            )
        )
    return dataclasses.replace(plan, points=keep), reused
