"""The report's Timeline section: where the run's wall time went.

One bar per trial attempt (coloured by stage, the set-up part lighter), one sentence for the
run ("trials trained 81% of the wall time; 3.6 trials at once on average while a stage had
>= 4 to run"), and a table of each stage's fixed costs. The numbers come from study.json's
timeline records through `trainables.timeline`, the same arithmetic the driver's TensorBoard
scalars use.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt

from analysis.document import Heading, Paragraph
from analysis.figures import save, study_budget
from analysis.rundir import StudyResults
from analysis.summary import run_budget
from analysis.tables import Column, Table, fmt_seconds
from trainables.contract import RunTimeline, run_timeline

EXPLAINED = (
    "Each bar is one attempt of a trial, from the start of its process (a reused process "
    "starts at once) to its end; the lighter part is set-up (process start, model, data on "
    "the device, resume) before its first batch. Trained: the share of the run's wall time in "
    "which at least one trial was training or validating. At once: the mean number of trials "
    "running while the stage still had as many trials left as it could run together."
)


def study_timeline(study: StudyResults) -> RunTimeline:
    return run_timeline(
        [(s.name, s.timeline, [t.timeline for t in s.trials]) for s in study.stages]
    )


def timeline_section(b: Any) -> None:
    """Add the section to a ReportBuilder `b` (nothing for a run recorded without timelines)."""
    summary = study_timeline(b.study)
    if not any(s.trials for s in summary.stages):
        return
    b.add(Heading(2, "Timeline"))
    b.add(Paragraph(summary.line()[0].upper() + summary.line()[1:] + "."))
    b.figure("timeline", EXPLAINED, lambda path: draw_gantt(b.study, path))
    b.table(fixed_costs_table(summary))


def fixed_costs_table(summary: RunTimeline) -> Table:
    columns = [
        Column("stage", "stage"),
        Column("wall_s", "wall", fmt_seconds),
        Column("trials", "trials"),
        Column("slots", "slots"),
        Column("trained_pct", "trained", lambda v: "—" if v is None else f"{v:.0%}"),
        Column("at_once", "at once", lambda v: "—" if v is None else f"{v:.1f}"),
        Column("setup_mean_s", "set-up per attempt", fmt_seconds),
        Column("checkpoint_s", "checkpoints", fmt_seconds),
        Column("probe_s", "probes + images", fmt_seconds),
        Column("evaluation_s", "evaluation", fmt_seconds),
    ]
    rows = []
    for s in summary.stages:
        rows.append(
            [
                s.name,
                s.wall_s,
                s.trials,
                s.slots,
                s.training_s / s.wall_s if s.wall_s > 0 else None,
                s.at_once,
                sum(s.setup_s) / len(s.setup_s) if s.setup_s else None,
                s.checkpoint_s,
                s.probe_s,
                s.evaluation_s or None,
            ]
        )
    return Table("timeline", columns, rows)


def draw_gantt(study: StudyResults, path: Path) -> bool:
    bars = []  # (stage index, label, start, setup end, end)
    for i, stage in enumerate(study.stages):
        for trial in stage.trials:
            for span in trial.timeline.get("spans", []):
                if span.get("end") is None:
                    continue
                begin = span["start"] - float(span.get("actor_start_s") or 0.0)
                setup_end = min(span["end"], span["start"] + float(span.get("setup_s") or 0.0))
                bars.append((i, trial.name, begin, setup_end, span["end"]))
    if not bars:
        return False
    origin = min(b[2] for b in bars)
    stage_spans = [x for s in study.stages for x in s.timeline.get("spans", []) if x[1]]
    origin = min([origin] + [a for a, _ in stage_spans])
    colours = plt.get_cmap("tab10")
    fig, ax = plt.subplots(figsize=(9, 0.35 * len(bars) + 1.6))
    for row, (i, _, begin, setup_end, end) in enumerate(bars):
        colour = colours(i % 10)
        ax.barh(row, setup_end - begin, left=begin - origin, color=colour, alpha=0.35)
        ax.barh(row, end - setup_end, left=setup_end - origin, color=colour)
    for a, b in stage_spans:  # each stage's own span, behind the bars
        ax.axvspan(a - origin, b - origin, color="0.92", zorder=0)
    for s in study.stages:  # the test-set evaluation closes its stage's last span
        spans, evaluation = s.timeline.get("spans", []), s.timeline.get("evaluation_s")
        if spans and spans[-1][1] and evaluation:
            end = spans[-1][1] - origin
            ax.axvspan(
                end - evaluation,
                end,
                color="0.8",
                hatch="//",
                fill=False,
                zorder=0,
                label="evaluation",
            )
    ax.set_yticks(range(len(bars)), [b[1] for b in bars], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("seconds since the run started")
    handles = [plt.Rectangle((0, 0), 1, 1, color=colours(i % 10)) for i in range(len(study.stages))]
    names = [s.title or s.name for s in study.stages]
    if any(s.timeline.get("evaluation_s") for s in study.stages):
        handles.append(plt.Rectangle((0, 0), 1, 1, fill=False, hatch="//", color="0.6"))
        names.append("test-set evaluation")
    # Below the axes: stage titles are long, and a legend beside them squeezes the bars.
    ax.legend(
        handles,
        names,
        fontsize=8,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.12 - 1.0 / (0.35 * len(bars) + 1.6)),
        ncol=2,
        frameon=False,
    )
    ax.set_title(
        f"Timeline ({run_budget(study)}): {study_timeline(study).line()}", fontsize=9, wrap=True
    )
    fig.tight_layout()
    return save(fig, path, budget=study_budget(study))
