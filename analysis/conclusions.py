"""Written conclusions per stage, generated from the numbers the tables show (issue 12).

Each stage gets a few sentences: which variant won and by how much (against the seed-to-seed
noise when the stage repeated a configuration with other seeds), which converged fastest (epoch
of the best val score), which overfits (summary.py's verdict: gap and val-loss trend) and what
the winner costs in parameters. Every sentence is a reading of a number in the stage table; where
the numbers cannot decide (a tie within TIE_POINTS, a margin inside the noise, too few epochs) the
sentence says so instead of naming a winner.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from analysis import across, noise
from analysis.answers import section_answers
from analysis.rundir import StageResults, StudyResults, Trial
from analysis.summary import (
    GAP_THRESHOLD,
    METRIC_TITLES,
    RISING_EPOCHS,
    SeedGroup,
    seed_groups,
    seed_noise,
    task_metrics,
    trial_stats,
)
from analysis.tables import fmt_config, shown_keys, varying_keys

# A margin below half a point (of accuracy or IoU) is a tie: one test image in 200 or so.
TIE_POINTS = 0.5
EARLY_STOPS = ("asha_stopped", "stopped")
FEW_STEPS = 10  # optimizer steps after which a U-Net's constant mask says nothing about its loss
ALL_ROCK_TOL = 1e-4  # |val IoU - val pixel accuracy| below this: (nearly) every pixel is rock


@dataclass
class Variant:
    """One configuration of a stage (its seeds pooled) and the numbers the sentences use."""

    name: str
    group: SeedGroup

    @property
    def score(self) -> float:
        assert self.group.mean is not None
        return self.group.mean

    @property
    def params(self) -> int | None:
        return self.group.trials[0].params


def _pts(fraction: float) -> str:
    return f"{100 * fraction:.1f}"


def _score_text(v: Variant, study: StudyResults) -> str:
    g = v.group
    n = noise.val_images(g.trials[0], study)
    ci = noise.interval_text(v.score, n)
    if g.std is not None:
        return f"{_pts(v.score)}% ± {_pts(g.std)} ({len(g.values)} seeds{'; ' + ci if ci else ''})"
    return f"{_pts(v.score)}%" + (f" ({ci})" if ci else "")


def _variants(stage: StageResults, study: StudyResults) -> list[Variant]:
    groups = [g for g in seed_groups(stage.trials, study) if g.mean is not None]
    feasible = [t for t in stage.trials if t.status != "infeasible"]
    keys = [k for k in shown_keys(stage, study) if k in varying_keys(feasible)]
    keys += [k for k in varying_keys(feasible) if k not in keys and k != "seed"]
    out = []
    for g in groups:
        labels = "/".join(dict.fromkeys(t.name for t in g.trials))
        cfg = fmt_config(g.trials[0].config, keys)
        out.append(Variant(f"{labels} ({cfg})" if cfg else labels, g))
    return out


def stage_conclusions(stage: StageResults, study: StudyResults) -> list[str]:
    """The stage's conclusions, one sentence (or two) per question; never an empty list."""
    variants = _variants(stage, study)
    title = METRIC_TITLES[task_metrics(study).val_key]
    if not variants:
        return [f"No trial of this stage recorded a {title}, so there is nothing to conclude."]
    ranked = sorted(variants, key=lambda v: v.score, reverse=True)
    out = [_winner_sentence(ranked, stage, study, title)]
    passed = pass_on_sentence(stage, study, ranked)
    if passed:
        out.append(passed)
    out += inherited_ties(stage, study)
    out += all_rock_sentence(stage, study)
    out += section_answers(stage, study)
    out += _cut_sentence(stage, study)
    out.append(_convergence_sentence(stage, study, title))
    out.append(_overfitting_sentence(stage, study))
    cost = _cost_sentence(ranked)
    if cost:
        out.append(cost)
    return out


def _winner_sentence(
    ranked: list[Variant], stage: StageResults, study: StudyResults, title: str
) -> str:
    if len(ranked) == 1:
        return (
            f"One configuration ran, {ranked[0].name}, reaching a best {title} of "
            f"{_score_text(ranked[0], study)}"
            + (
                "; it is set against the study's other stages in 'Across stages'."
                if across.applies(study)
                else "; no other configuration ran to compare it with."
            )
        )
    top, second = ranked[0], ranked[1]
    n = noise.val_images(top.group.trials[0], study)
    m = noise.judge(top.score, second.score, n, seed_noise([v.group for v in ranked]))
    if m.noise is None:
        if 100 * m.margin < TIE_POINTS:
            return _tie_text(
                ranked,
                title,
                study,
                lambda v: 100 * (top.score - v.score) < TIE_POINTS,
                f"within {TIE_POINTS} point of each other",
            )
        return (
            f"{top.name} has the best {title}, {_score_text(top, study)}, {_pts(m.margin)} "
            f"points ahead of {second.name} ({_score_text(second, study)}). Neither the "
            "val-set size nor a seed spread is known, so a margin of this size may be noise."
        )
    if m.within_noise:

        def tied(v: Variant) -> bool:
            return noise.judge(top.score, v.score, n, m.seed_std).within_noise

        return _tie_text(
            ranked,
            title,
            study,
            tied,
            f"within noise of the best: the margins are below {m.rule(title)}. At this budget "
            "the difference is within noise",
        )
    # In val images only for accuracy: an IoU margin is not a count of images.
    imgs = f" ({m.images()})" if m.n and study.trainable == "classification" else ""
    return (
        f"{top.name} has the best {title}, {_score_text(top, study)}, {_pts(m.margin)} points"
        f"{imgs} ahead of {second.name} ({_score_text(second, study)}), more than "
        f"{m.rule(title)}: a clear winner."
    )


def _tie_text(
    ranked: list[Variant],
    title: str,
    study: StudyResults,
    tied: Callable[[Variant], bool],
    why: str,
) -> str:
    names = [v for v in ranked if tied(v)]
    return (
        f"No clear winner (a tie in best {title}): "
        + ", ".join(f"{v.name} {_score_text(v, study)}" for v in names)
        + f" lie {why}."
    )


def pass_on_sentence(stage: StageResults, study: StudyResults, ranked: list[Variant]) -> str | None:
    """The rule that picked the configuration later stages start from, and its tie-break."""
    if noise.is_reference(stage):
        return (
            "This stage is a reference, not a candidate: nothing from it is passed on and "
            "no trial of it is marked best."
        )
    if len(ranked) < 2 or stage.best is None:
        return None
    top, second = ranked[0], ranked[1]
    n = noise.val_images(top.group.trials[0], study)
    m = noise.judge(top.score, second.score, n, seed_noise([v.group for v in ranked]))
    rule = (
        f"Rule for the stage's best (the configuration later stages build on): the highest "
        f"{study.metric} at any epoch; a tie within noise is still broken by that raw value, "
        "and exactly equal values go to the trial listed first."
    )
    picked = stage.best.label or "?"
    if m.within_noise or (m.noise is None and 100 * m.margin < TIE_POINTS):
        return (
            rule + f" Here it picked {picked} by that tie-break, not by a measured "
            "difference: a later stage built on it rests on a tie."
        )
    return rule + f" Here it picked {picked}."


def inherited_ties(stage: StageResults, study: StudyResults) -> list[str]:
    """Earlier stages whose pick this stage starts from (their compared values are in this
    stage's constants) although that pick was only a tie-break within noise."""
    base = (stage.plan or {}).get("base") or {}
    out = []
    for earlier in study.stages[: study.stages.index(stage)]:
        best = earlier.best
        if best is None or not earlier.compare or noise.is_reference(earlier):
            continue
        picked = {k: best.config.get(k) for k in earlier.compare}
        if any(k not in base or base[k] != v for k, v in picked.items()):
            continue
        m = noise.stage_margin(earlier, study)
        if m is not None and m.within_noise:
            values = ", ".join(f"{k}={v}" for k, v in picked.items())
            out.append(
                f"This stage trains with {values}, the pick of {earlier.title or earlier.name} "
                f"({best.label}), which won there only by the tie-break within noise: that "
                "setting was not chosen by a measured difference."
            )
    return out


def all_rock_sentence(stage: StageResults, study: StudyResults) -> list[str]:
    """Segmentation trials whose val IoU equals their val pixel accuracy at the best epoch
    (within ALL_ROCK_TOL): that holds exactly when every pixel is predicted rock, a collapsed
    model; within the tolerance, all but a handful of pixels."""
    if study.trainable != "segmentation":
        return []
    flat: list[tuple[str, Trial]] = []
    for t in stage.trials:
        st = trial_stats(t, study)
        acc = st.extras.get("val_pixel_acc")
        if st.val_best is not None and acc is not None and abs(st.val_best - acc) < ALL_ROCK_TOL:
            flat.append((f"{t.name} ({st.val_best:.3f})", t))
    if not flat:
        return []
    return [
        "Degenerate output: val IoU equals val pixel accuracy for "
        + ", ".join(name for name, _ in flat)
        + f" (to {ALL_ROCK_TOL}), which happens when every pixel is predicted rock: these "
        "models have not learned to segment, and their IoU is the share of rock pixels."
        + _too_few_steps([t for _, t in flat], stage.compare)
    ]


def _too_few_steps(trials: list[Trial], compared: list[str]) -> str:
    """Why plain U-Nets that trained a handful of steps predict one constant mask, if they did."""
    steps = []
    for t in trials:
        batches = t.config.get("max_batches")
        if t.config.get("model") != "unet" or not isinstance(batches, int):
            return ""
        steps.append(batches * t.epochs_run)
    if not steps or max(steps) > FEW_STEPS:
        return ""
    counts = "/".join(str(n) for n in sorted(set(steps)))
    what = ("value of " + " and ".join(compared)) if compared else "configuration"
    return (
        f" They trained {counts} optimizer step{'s' if steps != [1] else ''} each: an untrained "
        "U-Net's logit map is nearly constant over the pixels, and so few steps leave every pixel "
        f"on the side of 0 its initialization chose, whatever the {what} "
        "(benchmarks/unet_init_logits.py, 6 seeds: after 2 steps five predict one constant mask "
        f"and the sixth 98% rock; after 30 none is constant). The seed, not the {what}, decides "
        "this result: train longer to compare."
    )


def _cut_sentence(stage: StageResults, study: StudyResults) -> list[str]:
    """Trials stopped early are compared on a shorter training; say which."""
    cut = [t for t in stage.trials if t.status in EARLY_STOPS and t.epochs_run]
    if not cut:
        return []
    total = stage.epochs
    names = ", ".join(
        f"{t.name} after epoch {t.epochs_run}" + (f" of {total}" if total else "") for t in cut
    )
    return [f"Stopped early, so scored on a shorter training: {names}."]


def _convergence_sentence(stage: StageResults, study: StudyResults, title: str) -> str:
    pts = []
    for t in stage.trials:
        st = trial_stats(t, study)
        # A trial stopped early peaks early by construction: only full trainings are compared.
        if t.status == "completed" and st.best_epoch is not None:
            pts.append((t, st.best_epoch))
    if not pts:
        return "Speed of convergence cannot be judged: no trial trained to the end."
    if len(pts) == 1:
        t, e = pts[0]
        return f"{t.name} reached its best {title} at epoch {e}" + _still(t, e) + "."
    pts.sort(key=lambda p: p[1])
    first = [t for t, e in pts if e == pts[0][1]]
    last = [t for t, e in pts if e == pts[-1][1]]
    if pts[0][1] == pts[-1][1]:
        text = f"Every completed trial reached its best {title} at epoch {pts[0][1]}"
    else:
        text = (
            f"Fastest to converge: {_names(first)} (best {title} at epoch {pts[0][1]}); slowest: "
            f"{_names(last)} (epoch {pts[-1][1]})"
        )
    unfinished = [t for t, e in pts if t.epochs_run and e == t.epochs_run]
    if unfinished:
        text += (
            f". {_names(unfinished)} peaked at the last epoch trained, so may not have converged"
        )
    return text + "."


def _still(t: Trial, epoch: int) -> str:
    return ", its last epoch, so it may not have converged" if t.epochs_run == epoch else ""


def _names(trials: list[Trial]) -> str:
    return ", ".join(t.name for t in trials)


def _overfitting_sentence(stage: StageResults, study: StudyResults) -> str:
    judged = []
    for t in stage.trials:
        st = trial_stats(t, study)
        if st.verdict != "n/a":
            judged.append((t, st))
    if not judged:
        return "Overfitting cannot be judged: no trial has a final train−val gap."
    over = [(t, st) for t, st in judged if st.verdict != "no"]
    short = [t for t, st in judged if st.val_loss_rising is None]
    trend = (
        f" The val-loss trend needs at least {RISING_EPOCHS + 1} epochs, so for "
        f"{_names(short)} only the gap was judged."
        if short
        else ""
    )
    if not over:
        return (
            f"No trial overfits by the report's rule (final train−val gap ≤ {GAP_THRESHOLD:.2f} "
            "and val loss not rising)." + trend
        )
    bits = []
    for t, st in over:
        gap = f"gap {st.gap:+.3f}" if st.gap is not None else "gap unknown"
        bits.append(f"{t.name} ({st.verdict}: {gap})")
    return "Overfitting: " + "; ".join(bits) + "." + trend


def _cost_sentence(ranked: list[Variant]) -> str | None:
    top = ranked[0]
    if top.params is None:
        return None
    mine = top.params
    text = f"The best-scoring configuration has {mine / 1e6:.2f}M parameters"
    others = [(v.name, v.params) for v in ranked[1:] if v.params is not None]
    if others:
        name, theirs = others[0]
        diff = mine - theirs
        if diff == 0:
            text += f", the same as {name}"
        elif theirs and mine >= 2 * theirs:
            text += f", {mine / theirs:.1f}× as many as {name}"
        elif theirs:
            word = "more" if diff > 0 else "fewer"
            text += f", {abs(diff) / 1e6:.2f}M ({abs(diff) / theirs:.0%}) {word} than {name}"
    return text + "."
