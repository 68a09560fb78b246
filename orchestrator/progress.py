"""A short live view per stage: trials running/done/stopped early/failed, best so far, ETA.

Ray's own tables are verbose=0 and its logs go to orchestrator.log in the run directory; this is
what a user watches in the terminal. Counts come from Ray's trial list on every event, so a
resumed stage counts the trials that finished before the interruption too.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from ray.tune import Callback

from trainables.contract import is_better


class StageProgress(Callback):
    def __init__(self, plan: Any, metric: str, mode: str, every_s: float = 15.0) -> None:
        self.name = plan.stage.name
        self.total = len(plan.feasible) if plan.stage.search != "optuna" else plan.stage.num_samples
        self.epochs = int(plan.base["epochs"])
        self.metric, self.mode, self.every_s = metric, mode, every_s
        self.started = time.monotonic()
        self.finished_here = 0
        self.last_print = 0.0
        self.last_line = ""
        self.counts = {"completed": 0, "stopped": 0, "failed": 0, "running": 0}
        self.best: tuple[float, str] | None = None
        self.trials: list = []

    def __getstate__(self) -> dict[str, Any]:
        # Ray pickles callbacks with the experiment; a resumed stage unpickles this view in a new
        # process, whose clock and "finished here" count start now (see __setstate__).
        return dict(self.__dict__, trials=[])

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.started = time.monotonic()
        self.finished_here = 0
        self.last_print = 0.0

    def _count(self, trials: list) -> None:
        self.trials = trials  # Ray's live list: finish() recounts after the last status change
        counts = {"completed": 0, "stopped": 0, "failed": 0, "running": 0}
        for trial in trials:
            epoch = int((trial.last_result or {}).get("epoch", 0))
            if trial.status == "RUNNING":
                counts["running"] += 1
            elif trial.status == "ERROR":
                counts["failed"] += 1
            elif trial.status == "TERMINATED":
                planned = int(trial.config.get("epochs", self.epochs))
                counts["completed" if epoch >= planned else "stopped"] += 1
            self._consider(trial, trial.last_result or {})
        self.counts = counts

    def _consider(self, trial: Any, result: dict) -> None:
        value = result.get(self.metric)
        excluded = result.get("diverged") or result.get("infeasible")
        if isinstance(value, int | float) and not excluded and self._better(value):
            self.best = (float(value), trial.config.get("label") or trial.trial_id)

    def _better(self, value: float) -> bool:
        return is_better(self.mode, value, self.best[0] if self.best else None)

    def on_trial_result(
        self, iteration: int, trials: list, trial: Any, result: dict, **info: Any
    ) -> None:
        self._count(trials)
        self._consider(trial, result)  # Ray updates trial.last_result after the callbacks
        if time.monotonic() - self.last_print > self.every_s:
            self.show()

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.finished_here += 1
        self._count(trials)
        self.show()

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.finished_here += 1
        self._count(trials)
        self.show()

    def eta(self) -> str:
        finished = self.counts["completed"] + self.counts["stopped"] + self.counts["failed"]
        if not self.finished_here or finished >= self.total:
            return "-"
        per_trial = (time.monotonic() - self.started) / self.finished_here
        return f"{per_trial * (self.total - finished) / 60:.1f} min"

    def show(self, only_if_changed: bool = False) -> None:
        self.last_print = time.monotonic()
        c = self.counts
        best = f"{self.best[0]:.4f} ({self.best[1]})" if self.best else "-"
        line = (
            f"[{self.name}] {c['completed'] + c['stopped'] + c['failed']}/{self.total} finished "
            f"(completed {c['completed']}, stopped early {c['stopped']}, failed {c['failed']}), "
            f"{c['running']} running | best {self.metric} {best} | ETA {self.eta()}"
        )
        if only_if_changed and line == self.last_line:
            return
        self.last_line = line
        print(line, file=sys.stdout, flush=True)

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        self._count(trials)
        self.show(only_if_changed=True)
