"""A short live view per stage: trials running/done/stopped early/failed, best so far, ETA.

Ray's own tables are verbose=0 and its logs go to orchestrator.log in the run directory; this is
what a user watches in the terminal.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from ray.tune import Callback


class StageProgress(Callback):
    def __init__(self, plan: Any, metric: str, mode: str, every_s: float = 15.0) -> None:
        self.name = plan.stage.name
        self.total = len(plan.feasible) if plan.stage.search != "optuna" else plan.stage.num_samples
        self.epochs = int(plan.base["epochs"])
        self.metric, self.mode, self.every_s = metric, mode, every_s
        self.started = time.monotonic()
        self.last_print = 0.0
        self.last_line = ""
        self.running: set[str] = set()
        self.done = self.stopped = self.failed = 0
        self.best: tuple[float, str] | None = None
        self.epochs_seen: dict[str, int] = {}

    def _better(self, value: float) -> bool:
        if self.best is None:
            return True
        return value > self.best[0] if self.mode == "max" else value < self.best[0]

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.running.add(trial.trial_id)

    def on_trial_result(
        self, iteration: int, trials: list, trial: Any, result: dict, **info: Any
    ) -> None:
        value = result.get(self.metric)
        name = trial.config.get("label") or trial.trial_id
        if isinstance(value, int | float) and not result.get("infeasible") and self._better(value):
            self.best = (float(value), name)
        self.epochs_seen[trial.trial_id] = int(result.get("epoch", 0))
        if time.monotonic() - self.last_print > self.every_s:
            self.show()

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.running.discard(trial.trial_id)
        if self.epochs_seen.get(trial.trial_id, 0) < self.epochs:
            self.stopped += 1
        else:
            self.done += 1
        self.show()

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.running.discard(trial.trial_id)
        self.failed += 1
        self.show()

    def eta(self) -> str:
        finished = self.done + self.stopped + self.failed
        if not finished or finished >= self.total:
            return "-"
        per_trial = (time.monotonic() - self.started) / finished
        return f"{per_trial * (self.total - finished) / 60:.1f} min"

    def show(self, only_if_changed: bool = False) -> None:
        self.last_print = time.monotonic()
        best = f"{self.best[0]:.4f} ({self.best[1]})" if self.best else "-"
        line = (
            f"[{self.name}] {self.done + self.stopped + self.failed}/{self.total} finished "
            f"(completed {self.done}, stopped early {self.stopped}, failed {self.failed}), "
            f"{len(self.running)} running | best {self.metric} {best} | ETA {self.eta()}"
        )
        if only_if_changed and line == self.last_line:
            return
        self.last_line = line
        print(line, file=sys.stdout, flush=True)

    def finish(self) -> None:
        self.show(only_if_changed=True)
