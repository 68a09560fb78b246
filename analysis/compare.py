"""`python -m analysis.report RUN_A RUN_B [...] [--out DIR]`: one report comparing runs (issue 13).

For the same study at two budgets or two seeds: the runs' summary rows side by side (matched by
stage and trial label), each stage's curves of every run on shared axes (colour = trial, line
style = run), and, where the same configuration (config minus seed and label) ran with several
seeds, its mean ± std. Like the single-run report it reads only the run directories.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt

from analysis import figures
from analysis.document import Bullets, Heading, Note, Paragraph, file_stem, to_markdown
from analysis.html import to_html
from analysis.output import ReportBuilder, prepare_out_dir
from analysis.rundir import ReportError, StageResults, StudyResults, Trial, load_study
from analysis.summary import (
    METRIC_TITLES,
    budget_text,
    config_key,
    is_smoke,
    run_budget,
    sample_std,
    task_metrics,
    trial_stats,
)
from analysis.tables import (
    Column,
    Table,
    fmt_config,
    fmt_pct,
    fmt_value,
    shown_keys,
    summary_rows,
)

LINESTYLES = ("-", "--", ":", "-.")
MARKERS = ("o", "s", "^", "D")  # per run too: one-epoch runs are points, not lines


@dataclass
class Run:
    """One run directory in the comparison, with its short tag (R1, R2, ...)."""

    tag: str
    study: StudyResults
    where: str = ""  # the run folder, with its parent when two runs' folders share a name

    @property
    def name(self) -> str:
        return f"{self.tag} ({self.where or self.study.root.name})"


def default_out(run_dirs: Sequence[Path]) -> Path:
    """Beside the first run: compare_<run A>_vs_<run B>..., named after the run folders."""
    names = "_vs_".join(Path(d).resolve().name for d in run_dirs)
    return Path(run_dirs[0]).resolve().parent / file_stem(f"compare_{names}")


def build_comparison(run_dirs: Sequence[str | Path], out_dir: str | Path | None = None) -> Path:
    """Write the comparison report of two or more run directories; returns the output folder.

    Raises:
        ReportError: fewer than two runs, the same run twice, a run directory that is not
            readable, runs of different tasks, or an output folder the report may not write.
    """
    runs = _load_runs(run_dirs)
    out = Path(out_dir) if out_dir is not None else default_out([r.study.root for r in runs])
    prepare_out_dir(out)
    b = ReportBuilder(runs[0].study, out)
    title = "archsweep comparison: " + " vs ".join(r.name for r in runs)
    b.add(Heading(1, title))
    _runs_section(b, runs)
    b.add(Heading(2, "Summaries side by side"))
    b.add(
        Paragraph(
            "One row per summary row of any run (labelled trials, else each stage's best), "
            "matched by stage and compared settings; — where a run lacks it. Scores are the best "
            f"{METRIC_TITLES[task_metrics(runs[0].study).val_key]} of each trial; the budget "
            "columns say what each run trained with."
        )
    )
    b.table(side_by_side_table(runs))
    _seed_section(b, runs)
    for stage_name, title_text in _stage_names(runs):
        b.add(Heading(2, f"Stage: {title_text}"))
        drew = b.figure(
            f"compare_curves_{stage_name}",
            f"{title_text}: every run on shared axes (colour = trial, line style = run)",
            lambda p, n=stage_name: shared_curves(runs, n, p),
        )
        if not drew:
            b.add(Paragraph("No per-epoch results to plot for this stage in any run."))
    (out / "report.md").write_text(to_markdown(b.blocks, out))
    (out / "report.html").write_text(to_html(b.blocks, title))
    return out


def _load_runs(run_dirs: Sequence[str | Path]) -> list[Run]:
    if len(run_dirs) < 2:
        raise ReportError(f"a comparison needs two or more run directories, got {len(run_dirs)}")
    resolved = [Path(d).resolve() for d in run_dirs]
    dup = {str(d) for d in resolved if resolved.count(d) > 1}
    if dup:
        raise ReportError(f"run directory given twice: {', '.join(sorted(dup))}")
    runs = [Run(f"R{i}", load_study(d)) for i, d in enumerate(run_dirs, 1)]
    if len({d.name for d in resolved}) < len(resolved):
        for r, d in zip(runs, resolved, strict=True):
            r.where = f"{d.parent.name}/{d.name}"
    tasks = {r.study.trainable for r in runs}
    if len(tasks) > 1:
        raise ReportError(
            "runs of different tasks cannot share tables: "
            + ", ".join(f"{r.study.root} is {r.study.trainable}" for r in runs)
        )
    return runs


def _runs_section(b: Any, runs: list[Run]) -> None:
    items = []
    for r in runs:
        s = r.study
        over = s.record.run_settings.get("set") or {}
        items.append(
            f"{r.name}: {s.root}; study {s.name}; status {s.status}; "
            + run_budget(s)
            + (f"; --set {fmt_config(over, list(over))}" if over else "")
        )
    b.add(Bullets(items))
    if len({r.study.name for r in runs}) > 1:
        b.add(Note("the runs are of different studies; rows are matched by stage and label."))
    smoke = [r.tag for r in runs if is_smoke(r.study)]
    if smoke:
        b.add(Note(f"{', '.join(smoke)}: smoke run(s); their numbers are pipeline checks."))


def _stage_names(runs: list[Run]) -> list[tuple[str, str]]:
    """(name, title) of every stage of any run, in first-seen order."""
    seen: dict[str, str] = {}
    for r in runs:
        for s in r.study.stages:
            seen.setdefault(s.name, s.title or s.name)
    return list(seen.items())


def _row_keys(trials: list[Trial], study: StudyResults) -> list[tuple[str, str, int]]:
    """Match keys: stage, the compared settings, and the n-th such row of that run.

    Labels are not used: a study file renumbered between two runs gives the same trial another
    label, while its compared settings (activation=relu) stay what the reader compares.
    """
    stages = {s.name: s for s in study.stages}
    seen: dict[tuple[str, str], int] = {}
    keys = []
    for t in trials:
        base = (t.stage, fmt_config(t.config, shown_keys(stages[t.stage], study)))
        seen[base] = seen.get(base, 0) + 1
        keys.append((*base, seen[base]))
    return keys


def side_by_side_table(runs: list[Run]) -> Table:
    """Stage, trial and configuration, then each run's best/final score, best epoch, budget."""
    pct = fmt_pct if task_metrics(runs[0].study).score == "acc" else fmt_value
    per_run: list[dict[tuple[str, str, int], Trial]] = []
    order: list[tuple[str, str, int]] = []
    titles: dict[tuple[str, str, int], str] = {}
    for r in runs:
        trials, _ = summary_rows(r.study)
        stages = {s.name: s for s in r.study.stages}
        keys = _row_keys(trials, r.study)
        per_run.append(dict(zip(keys, trials, strict=True)))
        for key, t in zip(keys, trials, strict=True):
            if key not in titles:
                order.append(key)
                titles[key] = stages[t.stage].title or t.stage
    columns = [
        Column("stage", "stage"),
        Column("trial", "trial (R1 / R2 / ... label)"),
        Column("configuration", "configuration"),
    ]
    for r in runs:
        columns += [
            Column(f"{r.tag}_val_best", f"{r.tag} best", pct),
            Column(f"{r.tag}_val_final", f"{r.tag} final", pct),
            Column(f"{r.tag}_best_epoch", f"{r.tag} best epoch"),
            Column(f"{r.tag}_budget", f"{r.tag} budget"),
        ]
    if len(runs) == 2:
        columns.append(Column("delta", "R2 − R1 (best)", _fmt_delta(pct)))
    rows = []
    for key in order:
        present = [trials.get(key) for trials in per_run]
        names = " / ".join(dict.fromkeys(t.name for t in present if t is not None))
        row: list[Any] = [titles[key], names, key[1] or "—"]
        bests: list[float | None] = []
        for r, trial in zip(runs, present, strict=True):
            if trial is None:
                row += [None, None, None, None]
                bests.append(None)
                continue
            st = trial_stats(trial, r.study)
            stage = next(s for s in r.study.stages if s.name == trial.stage)
            row += [
                st.val_best,
                st.val_final,
                st.best_epoch,
                budget_text(trial.config, r.study, stage.epochs),
            ]
            bests.append(st.val_best)
        if len(runs) == 2:
            first, second = bests
            row.append(None if first is None or second is None else second - first)
        rows.append(row)
    return Table("compare_summary", columns, rows)


def _fmt_delta(pct: Any) -> Any:
    if pct is fmt_pct:
        return lambda v: "—" if v is None else f"{100 * v:+.1f} pt"
    return lambda v: "—" if v is None else f"{v:+.3f}"


def _config_text(t: Trial, stage: StageResults, study: StudyResults) -> str:
    return fmt_config(t.config, shown_keys(stage, study)) or "—"


@dataclass
class SeedSpread:
    """One configuration of one stage over every run and seed that trained it."""

    stage: str
    config: str
    budget: str
    members: list[tuple[Run, Trial, float]]  # run, trial, best val score

    @property
    def seeds(self) -> list[Any]:
        return [t.config.get("seed") for _, t, _ in self.members]


def seed_spreads(runs: list[Run]) -> list[SeedSpread]:
    """Configurations (config minus seed and label, same stage) run with two or more seeds."""
    groups: dict[tuple[str, str], SeedSpread] = {}
    for r in runs:
        for stage in r.study.stages:
            for t in stage.trials:
                value = trial_stats(t, r.study).val_best
                if t.status in ("infeasible", "error") or value is None:
                    continue
                key = (stage.name, config_key(t.config))
                g = groups.setdefault(
                    key,
                    SeedSpread(
                        stage.title or stage.name,
                        _config_text(t, stage, r.study),
                        budget_text(t.config, r.study, stage.epochs),
                        [],
                    ),
                )
                g.members.append((r, t, value))
    return [g for g in groups.values() if len({json.dumps(s) for s in g.seeds}) > 1]


def seed_table(runs: list[Run]) -> Table:
    pct = task_metrics(runs[0].study).score == "acc"
    scale, unit, spread = (100.0, "%", " pt") if pct else (1.0, "", "")
    columns = [
        Column("stage", "stage"),
        Column("configuration", "configuration"),
        Column("budget", "budget"),
        Column("n", "n"),
        Column("seeds", "seeds"),
        Column("runs", "runs"),
        Column("mean", "best val, mean", lambda v: "—" if v is None else f"{scale * v:.2f}{unit}"),
        Column("std", "std over seeds", lambda v: "—" if v is None else f"{scale * v:.2f}{spread}"),
        Column("mean_pm_std", "mean ± std"),
    ]
    rows = []
    for g in seed_spreads(runs):
        vals = [v for _, _, v in g.members]
        mean, std = sum(vals) / len(vals), sample_std(vals)
        text = f"{scale * mean:.2f}{unit} ± {scale * (std or 0):.2f}{spread}"
        rows.append(
            [
                g.stage,
                g.config,
                g.budget,
                len(vals),
                # A config without "seed" ran with the trainer's default seed.
                ", ".join("default" if x is None else str(x) for x in g.seeds),
                ", ".join(dict.fromkeys(r.tag for r, _, _ in g.members)),
                mean,
                std,
                text,
            ]
        )
    return Table("seed_spread", columns, rows)


def _seed_section(b: Any, runs: list[Run]) -> None:
    b.add(Heading(2, "Seed-to-seed spread"))
    table = seed_table(runs)
    if not table.rows:
        b.add(
            Paragraph(
                "No configuration ran with more than one seed in these runs (the same "
                "configuration minus its seed), so no spread can be given."
            )
        )
        return
    b.add(
        Paragraph(
            "Trials of the same stage whose configurations differ only in their seed, pooled "
            "over every run: mean and sample std (n−1) of the best validation score."
        )
    )
    b.table(table)


def shared_curves(runs: list[Run], stage_name: str, path: Path) -> bool:
    """Val score and val loss of every run's trials of one stage, on the same two axes.

    Colour = configuration (the stage's compared settings, as the side-by-side table matches
    rows), line style and marker = run.
    """
    series = []
    for r in runs:
        for stage in r.study.stages:
            if stage.name == stage_name:
                series += [(r, t, _config_text(t, stage, r.study)) for t in stage.trials if t.curve]
    if not series:
        return False
    tm = task_metrics(runs[0].study)
    names = list(dict.fromkeys(c if c != "—" else t.name for _, t, c in series))
    colour = dict(zip(names, figures.colours(len(names)), strict=True))
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.4))
    for i, r in enumerate(runs):
        style, marker = LINESTYLES[i % len(LINESTYLES)], MARKERS[i % len(MARKERS)]
        for rr, t, c in series:
            if rr is not r:
                continue
            for ax, key in zip(axes, (tm.val_key, "val_loss"), strict=True):
                s = figures.series(t, key)
                if s is not None:
                    ax.plot(
                        *s,
                        style,
                        marker=marker,
                        ms=4,
                        lw=1.6,
                        color=colour[c if c != "—" else t.name],
                    )
    for ax, key in zip(axes, (tm.val_key, "val_loss"), strict=True):
        ax.set_ylabel(METRIC_TITLES[key])
        ax.grid(alpha=0.3)
        figures.epoch_axis(ax)
    title = next(s.title for r in runs for s in r.study.stages if s.name == stage_name)
    axes[0].set_title(f"{title}: {METRIC_TITLES[tm.val_key]}")
    axes[1].set_title(f"{title}: val loss")
    for n in names:
        axes[1].plot([], [], "-", color=colour[n], lw=2, label=n)
    for i, r in enumerate(runs):
        axes[1].plot(
            [],
            [],
            LINESTYLES[i % len(LINESTYLES)],
            marker=MARKERS[i % len(MARKERS)],
            color="k",
            label=r.name,
        )
    axes[1].legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, frameon=False)
    budgets = [
        f"{r.tag}: " + figures.stage_budget(st, r.study).removeprefix("Budget: ")
        for r in runs
        for st in r.study.stages
        if st.name == stage_name
    ]
    return figures.save(fig, path, budget="Budget: " + " || ".join(budgets))
