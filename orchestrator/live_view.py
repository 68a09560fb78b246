"""The live view of a stage: one line per running trial plus the stage line, and an ETA.

Ray's own tables are verbose=0 and its logs go to orchestrator.log in the run directory; this is
what a user watches in the terminal. Two sources feed it:

- Ray's trial list on every Tune event: finished/stopped early/failed/running counts and the best
  result so far (a resumed stage counts the trials that finished before the interruption too).
- A progress board (`ProgressBoard`, a small named Ray actor per stage) that every trial
  updates from inside its epoch loop, at most every ~2 s (trainables.progress_reporter): epoch
  e/E, batch b/B, images/s. The driver polls it from `on_step_end` at most once a second, so the
  first line comes seconds after the first trial starts training instead of after its first
  epoch.

On a terminal the per-trial lines and the stage line are redrawn in place (ANSI cursor-up + clear
line); in a log (stdout not a TTY) plain lines come at most every 15 s. The ETA
(`estimate_eta`) is the work left in images over the images/s the running trials achieve
together, not a finished-trial count: it is meaningful before the first trial has finished.
"""

from __future__ import annotations

import contextlib
import heapq
import math
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TextIO

from ray.tune import Callback

from orchestrator import interrupts
from trainables.contract import is_better

POLL_EVERY_S = 1.0  # driver-side board polls
PLAIN_EVERY_S = 15.0  # at most one progress block per this many seconds in a log
CLEAR_LINE_UP = "\x1b[1A\x1b[2K"  # cursor up one line, then clear that line


# --- the board: a named actor the trials write to and the driver reads --------------------------


class ProgressBoard:
    """The latest progress update of every trial of one stage (a plain class: tests use it as is;
    `create_board` runs it as a Ray actor)."""

    def __init__(self) -> None:
        self.updates: dict[str, dict[str, Any]] = {}

    def update(self, trial_id: str, update: dict[str, Any]) -> None:
        self.updates[str(trial_id)] = dict(update)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        return {trial: dict(update) for trial, update in self.updates.items()}


class BoardClient:
    """The driver's side of a board actor: non-blocking polls, every failure ignored.

    A poll returns the last snapshot that has arrived; each poll waits at most `wait_s` for the
    one it asked for, so a busy or lost board never stalls Tune's event loop.
    """

    def __init__(self, name: str, handle: Any, wait_s: float = 0.1) -> None:
        self.name, self.handle, self.wait_s = name, handle, wait_s
        self.pending: Any = None

    def snapshot(self) -> dict[str, dict[str, Any]] | None:
        import ray

        try:
            if self.pending is None:
                self.pending = self.handle.snapshot.remote()
            ready, _ = ray.wait([self.pending], timeout=self.wait_s)
            if not ready:
                return None
            ref, self.pending = self.pending, None
            return ray.get(ref, timeout=self.wait_s)
        except Exception:  # the view is optional: a dead board means no per-trial lines
            self.pending = None
            return None

    def close(self) -> None:
        import ray

        with contextlib.suppress(Exception):  # already gone with its driver: nothing to do
            ray.kill(self.handle)


# The boards this driver process created, by stage name: a restored Tuner unpickles its
# StageProgress without one (actor handles are not pickled), and finds the new board here.
_ACTIVE_BOARDS: dict[str, BoardClient] = {}


def create_board(stage: str) -> BoardClient | None:
    """Start the stage's board actor under a unique name (None when Ray refuses: no live view).

    num_cpus=0 so it never takes a trial's slot; it runs on the driver's node, where this module
    is importable, and trials on any node reach it by name (ray_io.progress).
    """
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    name = f"archsweep-progress-{stage}-{uuid.uuid4().hex[:8]}"
    try:
        here = ray.get_runtime_context().get_node_id()
        handle = (
            ray.remote(ProgressBoard)
            .options(
                name=name,
                num_cpus=0,
                scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=True),
            )
            .remote()
        )
    except Exception as err:
        print(f"[{stage}] no live per-trial progress ({err})", flush=True)
        return None
    client = BoardClient(name, handle)
    _ACTIVE_BOARDS[stage] = client
    return client


def close_board(stage: str) -> None:
    client = _ACTIVE_BOARDS.pop(stage, None)
    if client is not None:
        client.close()


@contextlib.contextmanager
def stage_board(stage: str) -> Iterator[BoardClient | None]:
    """A fresh board for one run of the stage (a resumed stage too), closed when it ends."""
    try:
        yield create_board(stage)
    finally:
        close_board(stage)


# --- pure progress arithmetic (tested on recorded snapshots) ------------------------------------


@dataclass(frozen=True)
class TrialProgress:
    """One trial's latest board update (see trainables.progress_reporter.ProgressReporter)."""

    trial_id: str
    label: str
    epoch: int
    epochs: int
    batch: int
    batches: int
    images: int  # trained this epoch
    epoch_images: int  # one epoch's training images
    images_per_s: float  # training throughput measured by the trial (0 while warming up)
    overhead: float = 1.0  # last epoch's wall time over its training time (validation etc.)

    @classmethod
    def from_update(cls, trial_id: str, update: Mapping[str, Any]) -> TrialProgress:
        return cls(
            trial_id=str(trial_id),
            label=str(update.get("label") or trial_id),
            epoch=int(update["epoch"]),
            epochs=int(update["epochs"]),
            batch=int(update["batch"]),
            batches=int(update["batches"]),
            images=int(update["images"]),
            epoch_images=int(update["epoch_images"]),
            images_per_s=float(update["images_per_s"]),
            overhead=max(1.0, float(update.get("overhead", 1.0))),
        )

    def remaining_images(self) -> float:
        """Training images this trial still has to go through (the rest of this epoch + later)."""
        later = max(0, self.epochs - self.epoch) * self.epoch_images
        return max(0, self.epoch_images - self.images) + later

    def effective_rate(self) -> float:
        """Images/s over whole epochs: training plus the overhead (validation, checkpoint)."""
        return self.images_per_s / self.overhead

    def seconds_left(self) -> float | None:
        """Training left at the measured rate, plus each remaining epoch's overhead (this one's
        too: a trial whose last batch is done still validates)."""
        if self.images_per_s <= 0:
            return None
        epochs_left = max(0, self.epochs - self.epoch) + 1
        extra = (self.overhead - 1.0) * self.epoch_images * epochs_left
        return (self.remaining_images() + extra) / self.images_per_s


def estimate_eta(
    running: Iterable[TrialProgress],
    unstarted: int,
    planned_epochs: float,
    starting: int = 0,
) -> float | None:
    """Seconds until the stage ends, from measured images/s and the planned epochs.

    `running`: board progress of the trials training now; each keeps its measured (effective)
    images/s, and their number is the concurrency the stage actually reaches. `starting`: trials
    Ray runs that have not reported to the board yet (building their model): they hold a slot
    too. `unstarted`: trials not started yet. A starting or unstarted trial trains
    `planned_epochs` epochs of the running trials' mean epoch size at their mean images/s.

    The remaining work is packed onto the slots as Ray does: each waiting trial goes to the slot
    that frees first. With equal rates this is (images left) / (summed images/s); with unequal
    ones it also sees the tail where the slowest trial runs alone. None while no running trial
    has measured a rate. An upper bound under ASHA, which stops some trials early.
    """
    trials = [t for t in running if t.images_per_s > 0]
    if not trials:
        return None
    if unstarted < 0 or starting < 0 or planned_epochs < 0:
        raise ValueError(
            f"unstarted={unstarted}, starting={starting}, planned_epochs={planned_epochs}: "
            "each must be >= 0"
        )
    mean_rate = sum(t.effective_rate() for t in trials) / len(trials)
    epoch_images = sum(t.epoch_images for t in trials) / len(trials)
    new_trial_s = planned_epochs * epoch_images / mean_rate
    slots = [t.seconds_left() or 0.0 for t in trials]
    slots += [new_trial_s] * starting
    heapq.heapify(slots)
    for _ in range(unstarted):
        heapq.heapreplace(slots, slots[0] + new_trial_s)
    return max(slots)


def format_minutes(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min"


def trial_line(t: TrialProgress) -> str:
    return (
        f"  {t.label}: epoch {t.epoch}/{t.epochs}, batch {t.batch}/{t.batches}, "
        f"{t.images_per_s:.1f} images/s, {format_minutes(t.seconds_left())} left"
    )


def planned_epochs_of(plan: Any) -> float:
    """Mean planned epochs per trial (a stage may search over `epochs` itself)."""
    epochs = [int(p.config.get("epochs", plan.base["epochs"])) for p in plan.feasible]
    return sum(epochs) / len(epochs) if epochs else float(plan.base["epochs"])


# --- the Tune callback ---------------------------------------------------------------------------


class StageProgress(Callback):
    """Tune callback printing the live view of one stage (see the module docstring).

    `board`: the stage's board (anything with `snapshot() -> dict | None`); without one the
    view looks up the board this process created for the stage (a restored Tuner). `clock` and
    `out` are injectable for tests (a fake clock, a fake terminal).
    """

    def __init__(
        self,
        plan: Any,
        metric: str,
        mode: str,
        every_s: float = PLAIN_EVERY_S,
        board: Any = None,
        clock: Callable[[], float] = time.monotonic,
        out: TextIO | None = None,
    ) -> None:
        self.name = plan.stage.name
        self.total = len(plan.feasible) if plan.stage.search != "optuna" else plan.stage.num_samples
        self.epochs = int(plan.base["epochs"])
        self.planned_epochs = planned_epochs_of(plan)
        self.metric, self.mode, self.every_s = metric, mode, every_s
        self.board, self.clock, self.out = board, clock, out
        self.counts = {"completed": 0, "stopped": 0, "failed": 0, "running": 0}
        self.best: tuple[float, str] | None = None
        self.trials: list = []
        self._reset_live()

    def _reset_live(self) -> None:
        """What belongs to this process's view only (rebuilt after unpickling)."""
        self.last_poll = -float("inf")
        self.last_block = -float("inf")
        self.last_line = ""
        self.running: dict[str, TrialProgress] = {}
        self.seen_update = False
        self.drawn = 0  # lines of the live block on screen (TTY)
        self.last_eta: tuple[float, float] | None = None  # (seconds, clock) of the last estimate

    def __getstate__(self) -> dict[str, Any]:
        # Ray pickles callbacks with the experiment; a resumed stage unpickles this view in a new
        # process: no trial list, board handle, clock or stream travel (see __setstate__).
        state = dict(self.__dict__, trials=[], board=None, out=None, running={})
        state["clock"] = None if self.clock is time.monotonic else self.clock
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        # .get: a stage begun by an older archsweep pickled fewer fields
        self.clock = state.get("clock") or time.monotonic
        self.board, self.out = None, None
        self.planned_epochs = state.get("planned_epochs", float(self.epochs))
        self._reset_live()

    # --- output ---

    def _stream(self) -> TextIO:
        return self.out if self.out is not None else sys.stdout

    def _tty(self) -> bool:
        try:
            return bool(self._stream().isatty())
        except (AttributeError, ValueError):
            return False

    def _write(self, text: str) -> None:
        stream = self._stream()
        stream.write(text)
        stream.flush()

    def _clear_block(self) -> None:
        if self.drawn:
            self._write(CLEAR_LINE_UP * self.drawn)
            self.drawn = 0

    # --- Ray's trial list: counts and best ---

    def _count(self, trials: list) -> None:
        self.trials = trials  # Ray's live list: finish() recounts after the last status change
        counts = {"completed": 0, "stopped": 0, "diverged": 0, "failed": 0, "running": 0}
        for trial in trials:
            last = trial.last_result or {}
            epoch = int(last.get("epoch", 0))
            if trial.status == "RUNNING":
                counts["running"] += 1
            elif trial.status == "ERROR":
                counts["failed"] += 1
            elif trial.status == "TERMINATED" and last.get("diverged"):
                counts["diverged"] += 1  # training's verdict, not a failure of the trial
            elif trial.status == "TERMINATED":
                planned = int(trial.config.get("epochs", self.epochs))
                counts["completed" if epoch >= planned else "stopped"] += 1
            self._consider(trial, last)
            self._consider_history(trial)
        self.counts = counts

    def _consider(self, trial: Any, result: dict) -> None:
        value = result.get(self.metric)
        excluded = result.get("diverged") or result.get("infeasible")
        if isinstance(value, int | float) and not excluded and self._better(value):
            self.best = (float(value), trial.config.get("label") or trial.trial_id)

    def _consider_history(self, trial: Any) -> None:
        """The trial's best epoch so far, as Ray keeps it (a resumed stage's trials report
        their later epochs only; their best may be an earlier one)."""
        analysis = getattr(trial, "metric_analysis", None) or {}
        value = (analysis.get(self.metric) or {}).get(self.mode)
        if not isinstance(value, int | float) or not math.isfinite(value):
            return
        if not (trial.last_result or {}).get("infeasible") and self._better(value):
            self.best = (float(value), trial.config.get("label") or trial.trial_id)

    def _better(self, value: float) -> bool:
        return is_better(self.mode, value, self.best[0] if self.best else None)

    def finished(self) -> int:
        c = self.counts
        return c["completed"] + c["stopped"] + c.get("diverged", 0) + c["failed"]

    # --- the board ---

    def _board(self) -> Any:
        return self.board if self.board is not None else _ACTIVE_BOARDS.get(self.name)

    def poll(self, trials: list) -> bool:
        """Read the board (at most every POLL_EVERY_S); True when it had news."""
        now = self.clock()
        board = self._board()
        if board is None or now - self.last_poll < POLL_EVERY_S:
            return False
        self.last_poll = now
        snapshot = board.snapshot()
        if not snapshot:
            return False
        statuses = {t.trial_id: t.status for t in trials}
        running: dict[str, TrialProgress] = {}
        for trial_id, update in snapshot.items():
            # Board entries outlive their trials; Ray's list says which still run.
            if statuses.get(trial_id, "RUNNING") != "RUNNING":
                continue
            try:
                running[trial_id] = TrialProgress.from_update(trial_id, update)
            except (KeyError, TypeError, ValueError):
                continue  # a malformed update only costs that trial its line
        changed = running != self.running
        self.running = running
        return changed

    def eta(self) -> str:
        if self.finished() >= self.total:
            return "-"
        # Ray's RUNNING trials that the board has not heard from yet are starting up, and so
        # are those still in their warm-up batches (no rate yet: they hold a slot).
        measured = sum(1 for t in self.running.values() if t.images_per_s > 0)
        starting = max(0, self.counts["running"] - measured)
        unstarted = max(0, self.total - self.finished() - measured - starting)
        eta = estimate_eta(self.running.values(), unstarted, self.planned_epochs, starting)
        now = self.clock()
        if eta is not None:
            self.last_eta = (eta, now)
        elif self.last_eta is not None:
            # Between a trial's last update and the next trial's first (a trial validating its
            # last epoch, the next one building its model) no rate is measured: count the last
            # estimate down instead of showing "-".
            eta = max(0.0, self.last_eta[0] - (now - self.last_eta[1]))
        elif self.running or self.counts["running"]:
            return "warming up"  # trials run, none has a rate past its warm-up batches yet
        return format_minutes(eta)

    # --- lines ---

    def stage_line(self) -> str:
        c = self.counts
        best = f"{self.best[0]:.4f} ({self.best[1]})" if self.best else "-"
        return (
            f"[{self.name}] {self.finished()}/{self.total} finished "
            f"(completed {c['completed']}, stopped early {c['stopped']}, "
            + (f"diverged {c['diverged']}, " if c.get("diverged") else "")
            + f"failed {c['failed']}), "
            f"{c['running']} running | best {self.metric} {best} | ETA {self.eta()}"
        )

    def block(self) -> list[str]:
        running = sorted(self.running.values(), key=lambda t: t.label)
        return [trial_line(t) for t in running] + [self.stage_line()]

    def show_block(self) -> None:
        """The live block: in place on a terminal, appended lines in a log."""
        self.last_block = self.clock()
        lines = self.block()
        if self._tty():
            self._clear_block()
            self.drawn = len(lines)
        self._write("".join(line + "\n" for line in lines))
        self.last_line = lines[-1]

    def show(self, only_if_changed: bool = False) -> None:
        """A lasting stage line (a trial ended, the stage ended), above any live block."""
        if interrupts.requested():
            return  # trials the stop ended would count as "stopped early": no summary line
        line = self.stage_line()
        if only_if_changed and line == self.last_line:
            return
        self._clear_block()
        self.last_line = line
        self._write(line + "\n")
        self.last_block = self.clock()

    # --- Tune's events ---

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        if not self.poll(trials):
            return
        self._count(trials)
        first = not self.seen_update
        self.seen_update = True
        if first or self._tty() or self.clock() - self.last_block >= self.every_s:
            self.show_block()

    def on_trial_result(
        self, iteration: int, trials: list, trial: Any, result: dict, **info: Any
    ) -> None:
        self._count(trials)
        self._consider(trial, result)  # Ray updates trial.last_result after the callbacks
        if self._board() is None and self.clock() - self.last_block >= self.every_s:
            self.show()  # no board: the per-epoch results are the only progress there is

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._trial_ended(trials, trial)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._trial_ended(trials, trial)

    def _trial_ended(self, trials: list, trial: Any) -> None:
        self.running.pop(trial.trial_id, None)
        self._count(trials)
        self.show()

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        self.running = {}
        self._count(trials)
        self.show(only_if_changed=True)
