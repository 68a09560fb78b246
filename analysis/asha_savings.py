"""What ASHA saved in one ASHA stage, read from the run directory alone.

FIFO would have trained every trial of the stage to its planned end (`epochs` x
`epoch_fraction`, trainables.contract.planned_epochs); ASHA trained `epochs_run`. Epochs (and,
where the curves record each epoch's time, seconds: a trial's mean epoch time x its planned
epochs) are compared trial by trial and in total.

Whether FIFO would have picked the same winner cannot be known without training the stopped
trials to the end; the trials' own curves bound it:
  - the leader at the last common epoch: the trial with the best value at the last epoch every
    trial reached (the first rung, usually);
  - each stopped trial against the winner where it was stopped: its best value up to its last
    epoch beside the winner's best up to the same epoch. A stopped trial that was ahead of the
    winner there could have won under FIFO; when none was ahead, FIFO's winner differs only if
    a trial that was behind the winner overtook it after being stopped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from analysis.rundir import StageResults, StudyResults, Trial
from analysis.summary import budget_text
from analysis.tables import Column, Table
from trainables.contract import TRIAL_RANKED, is_better, planned_epochs


@dataclass
class TrialSaving:
    trial: Trial
    planned: int
    trained: int
    best_so_far: float | None  # the trial's best value up to its last epoch
    winner_then: float | None  # the winner's best up to the same epoch
    epoch_s: float | None  # mean seconds per epoch from its curve

    @property
    def saved(self) -> int:
        return max(self.planned - self.trained, 0)


@dataclass
class Savings:
    stage: str
    metric: str
    rows: list[TrialSaving]
    winner: Trial | None
    common_epoch: int | None
    leader_at_common: Trial | None
    ahead: list[TrialSaving]  # stopped trials ahead of the winner where they stopped

    @property
    def asha_epochs(self) -> int:
        return sum(r.trained for r in self.rows)

    @property
    def fifo_epochs(self) -> int:
        return sum(r.planned for r in self.rows)

    def seconds(self) -> tuple[float, float] | None:
        """(ASHA's training seconds, FIFO's estimate), when every trial has epoch times."""
        if not self.rows or any(r.epoch_s is None for r in self.rows):
            return None
        asha = sum(r.trained * (r.epoch_s or 0.0) for r in self.rows)  # none is None (above)
        fifo = sum(r.planned * (r.epoch_s or 0.0) for r in self.rows)
        return asha, fifo


def _best_up_to(curve: list[dict[str, float]], metric: str, mode: str, epoch: float) -> Any:
    best = None
    for row in curve:
        if row.get("epoch", 0) <= epoch and is_better(mode, row.get(metric), best):
            best = row[metric]
    return best


def _value_at(curve: list[dict[str, float]], metric: str, epoch: float) -> Any:
    return next((r.get(metric) for r in curve if r.get("epoch") == epoch), None)


def _epoch_seconds(trial: Trial) -> float | None:
    times = [r["epoch_time_s"] for r in trial.curve if "epoch_time_s" in r]
    return sum(times) / len(times) if times else None


def stage_savings(stage: StageResults, study: StudyResults) -> Savings:
    """The savings of one stage (meant for scheduler "asha"; a FIFO stage shows none)."""
    metric, mode = study.metric, study.mode
    trials = [t for t in stage.trials if t.status in TRIAL_RANKED and t.curve]
    winner_id = stage.best.trial_id if stage.best else None
    winner = next((t for t in trials if t.trial_id == winner_id), None)
    rows = []
    for t in trials:
        last = t.curve[-1]["epoch"]
        rows.append(
            TrialSaving(
                trial=t,
                planned=planned_epochs(t.config),
                trained=int(t.epochs_run or len(t.curve)),
                best_so_far=_best_up_to(t.curve, metric, mode, last),
                winner_then=_best_up_to(winner.curve, metric, mode, last) if winner else None,
                epoch_s=_epoch_seconds(t),
            )
        )
    common = min((int(t.curve[-1]["epoch"]) for t in trials), default=None)
    leader = None
    if common is not None:
        leader_value = None
        for t in trials:
            value = _value_at(t.curve, metric, common)
            if is_better(mode, value, leader_value):
                leader, leader_value = t, value
    ahead = [
        r
        for r in rows
        if r.trial.status == "asha_stopped"
        and r.trial is not winner
        and is_better(mode, r.best_so_far, r.winner_then)
    ]
    return Savings(stage.name, metric, rows, winner, common, leader, ahead)


def savings_table(s: Savings, study: StudyResults) -> Table:
    columns = [
        Column("trial", "trial"),
        Column("status", "stop"),
        Column("planned_epochs", "planned epochs (FIFO)"),
        Column("epochs_trained", "epochs trained (ASHA)"),
        Column("epochs_saved", "saved"),
        Column(f"best_{s.metric}", f"best {s.metric} so far"),
        Column(f"winner_{s.metric}_then", "winner's best by then"),
        Column("budget", "budget"),
    ]
    rows = [
        [
            r.trial.name,
            r.trial.status,
            r.planned,
            r.trained,
            r.saved,
            r.best_so_far,
            r.winner_then,
            budget_text(r.trial.config, study),
        ]
        for r in s.rows
    ]
    bold = {i for i, r in enumerate(s.rows) if s.winner is not None and r.trial is s.winner}
    return Table(f"asha_savings_{s.stage}", columns, rows, bold)


def savings_lines(s: Savings) -> list[str]:
    """The sentences under the table: totals, ratio, and what the curves say of the winner."""
    if not s.rows:
        return ["No trial of this stage has a curve: nothing to compare."]
    ratio = s.asha_epochs / s.fifo_epochs if s.fifo_epochs else float("nan")
    lines = [
        f"Epochs trained: {s.asha_epochs} under ASHA against {s.fifo_epochs} for FIFO on the "
        f"same {len(s.rows)} trials (each to its planned end): {ratio:.2f}x, "
        f"{s.fifo_epochs - s.asha_epochs} epochs saved."
    ]
    secs = s.seconds()
    if secs is not None:
        lines.append(
            f"Training time: {secs[0]:.0f} s under ASHA; FIFO's estimate (each trial's mean "
            f"epoch time x its planned epochs) {secs[1]:.0f} s."
        )
    if s.winner is None:
        lines.append("The stage has no winner among these trials: no winner comparison.")
        return lines
    name = s.winner.name
    if s.leader_at_common is not None:
        same = s.leader_at_common is s.winner
        lines.append(
            f"At the last epoch every trial reached ({s.common_epoch}), "
            + (
                f"the winner {name} already led."
                if same
                else f"{s.leader_at_common.name} led, not the winner {name}: the ranking changed "
                "after it, so early values alone would have picked another trial."
            )
        )
    if s.ahead:
        listed = ", ".join(
            f"{r.trial.name} ({r.best_so_far:.4f} vs {r.winner_then:.4f} at epoch {r.trained})"
            if isinstance(r.winner_then, float)
            else r.trial.name
            for r in s.ahead
        )
        lines.append(
            f"Winner under FIFO: uncertain. {len(s.ahead)} stopped trial(s) were ahead of the "
            f"winner {name} where ASHA stopped them and might have won if trained on: {listed}."
        )
    else:
        stopped = sum(r.trial.status == "asha_stopped" for r in s.rows)
        lines.append(
            f"Winner under FIFO: the same ({name}) as far as the curves tell: each of the "
            f"{stopped} stopped trial(s) was behind the winner's best by the epoch it was "
            "stopped; FIFO would pick another only if one of them overtook it later."
        )
    return lines
