"""Where a run's wall time goes: the facts a trial measures, and the arithmetic over them.

A trial measures its own fixed costs (`TrialClock`): how long its process took to start (the
first trial of a process only: a reused actor starts nothing), its set-up (model, data on the
device, resume) before the first batch, and per epoch the seconds spent writing probes and the
checkpoint. The driver records each attempt's span (orchestrator/timeline.py); study.json keeps
both (`TrialRecord.timeline`, `StageRecord.timeline`). The summary below is shared by the
driver's TensorBoard scalars and the report's Timeline section, so both say the same numbers.

Times are Unix seconds (time.time()), so spans from several nodes share one axis (to within
their clocks' skew).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

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


# --- the arithmetic over recorded spans ----------------------------------------------------------


def union_length(intervals: list[tuple[float, float]]) -> float:
    """Seconds covered by at least one interval."""
    total, end = 0.0, -float("inf")
    for a, b in sorted(intervals):
        if b <= end:
            continue
        total += b - max(a, end)
        end = b
    return total


def trial_bar(timeline: dict[str, Any]) -> tuple[float, float] | None:
    """A trial's bar: its first process start (or actor hand-over) to its last end."""
    spans = [s for s in timeline.get("spans", []) if s.get("end") is not None]
    if not spans:
        return None
    first = spans[0]
    return first["start"] - float(first.get("actor_start_s") or 0.0), spans[-1]["end"]


def training_intervals(timeline: dict[str, Any]) -> list[tuple[float, float]]:
    """When the trial trained: each attempt from its first batch to its end."""
    out = []
    for s in timeline.get("spans", []):
        if s.get("end") is None:
            continue
        begin = min(s["end"], s["start"] + float(s.get("setup_s") or 0.0))
        out.append((begin, s["end"]))
    return out


def mean_running(bars: list[tuple[float, float]], a: float, b: float) -> float:
    """Average number of bars open over [a, b]."""
    if b <= a:
        return 0.0
    covered = sum(max(0.0, min(e, b) - max(s, a)) for s, e in bars)
    return covered / (b - a)


@dataclass
class StageTimeline:
    name: str
    wall_s: float
    trials: int
    slots: int
    training_s: float  # seconds with at least one trial of the stage training
    busy_s: float  # the part of the stage in which it still had >= `threshold` trials to run
    at_once: float | None  # mean trials running during busy_s (None when busy_s is 0)
    threshold: int
    setup_s: list[float] = field(default_factory=list)  # per attempt: actor start + set-up
    checkpoint_s: float = 0.0
    probe_s: float = 0.0
    evaluation_s: float = 0.0


def stage_timeline(name: str, stage_tl: dict[str, Any], trial_tls: list[dict]) -> StageTimeline:
    spans = [tuple(s) for s in stage_tl.get("spans", []) if s[1] is not None]
    bars = [b for b in (trial_bar(t) for t in trial_tls) if b is not None]
    # A run interrupted mid-stage recorded its trials' spans but not its own: count both.
    wall = union_length(spans + bars)
    slots = int(stage_tl.get("slots") or 1)
    threshold = max(1, min(slots, len(bars)))
    # "Had >= K to run": from the first start until fewer than K trials are left unfinished,
    # i.e. the (n - K + 1)-th trial to end.
    ends = sorted(e for _, e in bars)
    busy_s, at_once = 0.0, None
    if bars:
        a, b = min(s for s, _ in bars), ends[len(bars) - threshold]
        busy_s = max(0.0, b - a)
        at_once = mean_running(bars, a, b) if busy_s > 0 else None
    attempts = [s for t in trial_tls for s in t.get("spans", [])]
    return StageTimeline(
        name=name,
        wall_s=wall,
        trials=len(bars),
        slots=slots,
        training_s=union_length([i for t in trial_tls for i in training_intervals(t)]),
        busy_s=busy_s,
        at_once=at_once,
        threshold=threshold,
        setup_s=[float(s.get("actor_start_s") or 0) + float(s.get("setup_s") or 0)
                 for s in attempts],
        checkpoint_s=sum(float(s.get("checkpoint_s") or 0) for s in attempts),
        probe_s=sum(float(s.get("probe_s") or 0) for s in attempts),
        evaluation_s=float(stage_tl.get("evaluation_s") or 0.0),
    )


@dataclass
class RunTimeline:
    stages: list[StageTimeline]
    wall_s: float
    training_s: float

    @property
    def training_fraction(self) -> float:
        return self.training_s / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def at_once(self) -> float | None:
        """Trials running at once, time-weighted over the stages' busy parts."""
        busy = [s for s in self.stages if s.at_once is not None and s.busy_s > 0]
        total = sum(s.busy_s for s in busy)
        return sum(s.at_once * s.busy_s for s in busy) / total if total else None

    def line(self) -> str:
        """The run in one sentence, e.g. for the report's Timeline section."""
        text = f"trials trained {self.training_fraction:.0%} of the wall time ({self.wall_s:.0f} s)"
        busy = [s for s in self.stages if s.at_once is not None and s.trials > 1]
        if busy and self.at_once is not None:
            ks = sorted({s.threshold for s in busy})
            k = f">= {ks[0]}" if len(ks) == 1 else "as many as its slots (" + "/".join(
                str(x) for x in ks) + ")"
            text += f"; {self.at_once:.1f} trials at once on average while a stage had {k} to run"
        return text


def run_timeline(stages: list[tuple[str, dict[str, Any], list[dict[str, Any]]]]) -> RunTimeline:
    """The run's timeline from (stage name, stage timeline, its trials' timelines)."""
    parts = [stage_timeline(n, s, t) for n, s, t in stages]
    stage_spans = [tuple(x) for _, s, _ in stages for x in s.get("spans", []) if x[1] is not None]
    bars = [b for _, _, ts in stages for t in ts if (b := trial_bar(t)) is not None]
    trials = [i for _, _, ts in stages for t in ts for i in training_intervals(t)]
    return RunTimeline(parts, union_length(stage_spans + bars), union_length(trials))
