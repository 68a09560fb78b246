"""Where a run's wall time goes: the facts a trial measures, and the arithmetic over them.

A trial measures its own fixed costs (`TrialClock`): how long its process took to start (the
first trial of a process only: a reused actor starts nothing), its set-up (model, data on the
device, resume) before the first batch, and per epoch the seconds spent writing probes and the
checkpoint. The driver records each attempt's span (orchestrator/timeline.py); study.json keeps
both (`TrialRecord.timeline`, `StageRecord.timeline`). The arithmetic over those records
(`run_timeline`) is part of the contract (trainables/contract.py): the driver's TensorBoard
scalars and the report's Timeline section use the same code, so both say the same numbers.

Times are Unix seconds (time.time()), so spans from several nodes share one axis (to within
their clocks' skew).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

_IMPORTED_AT = time.time()
_trials_in_this_process = 0


def process_started_at() -> float:
    """When this process started (Linux: /proc), else when this module was imported."""
    try:
        with open("/proc/self/stat") as f:
            # Field 22 (starttime, clock ticks since boot); the name in field 2 may hold spaces.
            ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/stat") as f:
            boot = next(int(line.split()[1]) for line in f if line.startswith("btime"))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return _IMPORTED_AT


@dataclass
class TrialClock:
    """One attempt of a trial, as the trial sees it."""

    entered: float  # when the trial function began (Unix s)
    actor_start_s: float  # process start -> trial function (0 for a reused process)
    training_from: float | None = None

    @classmethod
    def start(cls) -> TrialClock:
        global _trials_in_this_process
        now = time.time()
        first = _trials_in_this_process == 0
        _trials_in_this_process += 1
        return cls(now, max(0.0, now - process_started_at()) if first else 0.0)

    def training_starts(self) -> None:
        if self.training_from is None:
            self.training_from = time.time()

    def fields(self) -> dict[str, float]:
        """What every epoch row of this attempt carries (the driver reads the first)."""
        setup = (self.training_from or self.entered) - self.entered
        return {
            "started_at": self.entered,
            "actor_start_s": self.actor_start_s,
            "setup_s": setup,
        }
