"""Answers to each course section's question, read from the run's own numbers (issue 20).

conclusions.py says who won a stage and whether that is noise; this module answers the question
the section asks (EXPERIMENTS.md), naming its evidence: per-epoch convergence, the gradient-flow
ratio between the first and last block, seconds per epoch, the std over the last epochs and over
seeds, the receptive field, the train-test gap. A stage is recognised by what it varies (its
`compare` keys or its config), not by its title, so a study file's own stage names still get
their answer. Where the numbers cannot decide, the sentence says "at this budget the difference
is within noise" rather than inventing a ranking.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from analysis import noise
from analysis.probe_figures import block_of, load_probes
from analysis.rundir import StageResults, StudyResults, Trial, finite
from analysis.summary import (
    GAP_THRESHOLD,
    STABILITY_EPOCHS,
    last_epochs_std,
    task_metrics,
    trial_stats,
)

RATIO_FLAT = 3.0  # a first/last gradient ratio within this factor of 1 is "no vanishing"
CLEAR_CHANGE = 1.5  # a ratio that moves by less than this factor has not clearly changed


@dataclass
class Reading:
    """One trial's numbers that the answers quote."""

    trial: Trial
    best: float | None
    first_epoch: float | None  # val score after epoch 1
    mean_curve: float | None  # mean val score over the epochs: convergence per epoch
    sec_per_epoch: float | None
    stability: float | None  # std of the val score over the last STABILITY_EPOCHS epochs
    grad: tuple[str, float, str, float] | None  # first block, its norm, last block, its norm
    rf: int | None  # receptive field of the last conv/pool layer, in input pixels

    @property
    def ratio(self) -> float | None:
        """Gradient norm of the first block over the last: < 1 means it shrinks to the input."""
        return None if self.grad is None else self.grad[1] / self.grad[3]


def reading(trial: Trial, study: StudyResults) -> Reading:
    key = task_metrics(study).val_key
    vals = [v for v in (finite(r.get(key)) for r in trial.curve) if v is not None]
    times = [v for v in (finite(r.get("epoch_time_s")) for r in trial.curve) if v is not None]
    probes = load_probes(study.root, trial)
    grad, rf = None, None
    if probes is not None:
        grad = first_last_layers(probes.last_gradients())
        rfs = [r.get("rf") for r in probes.receptive_fields if isinstance(r.get("rf"), int)]
        rf = rfs[-1] if rfs else None
    return Reading(
        trial,
        trial_stats(trial, study).val_best,
        vals[0] if vals else None,
        sum(vals) / len(vals) if vals else None,
        sum(times) / len(times) if times else None,
        last_epochs_std(trial, key),
        grad,
        rf,
    )


def first_last_layers(grads: list[dict]) -> tuple[str, float, str, float] | None:
    """The first and last main-path layer (shortcuts, squeeze-excitation and the head left
    out) with their gradient norms: the ratio that shows vanishing towards the input."""
    main = [
        (str(g["layer"]), float(g["norm"]))
        for g in grads
        if block_of(str(g["layer"])) is not None
        and not str(g["layer"]).startswith("head")
        and float(g["norm"]) > 0
    ]
    if len(main) < 2:
        return None
    return main[0][0], main[0][1], main[-1][0], main[-1][1]


def timing_caveat(trials: list[Trial]) -> str:
    """'' when the seconds per epoch measure training; else why they do not (a capped or a
    single epoch is mostly start-up: data to the device, allocator, the shared machine)."""
    capped = {cap for t in trials if (cap := t.config.get("max_batches"))}
    if capped:
        return (
            f" (epochs capped at {', '.join(map(str, sorted(capped)))} batches: start-up "
            "and the shared machine dominate, so these times are not a ranking)"
        )
    if all((t.epochs_run or 0) <= 1 for t in trials):
        return " (one epoch each, start-up included: these times are not a ranking)"
    return ""


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{100 * v:.1f}%"


def _vanishing_word(ratio: float) -> str:
    if ratio < 1 / RATIO_FLAT:
        return "vanish towards the input"
    if ratio > RATIO_FLAT:
        return "grow towards the input (exploding side)"
    return f"stay within {RATIO_FLAT:g}× from last layer to first (no vanishing)"


def pair_verdict(a: Reading, b: Reading, study: StudyResults, what: str) -> str:
    """'a beats b by m points (k val images of n), outside noise' or 'within noise'."""
    if a.best is None or b.best is None:
        return f"{what}: no val score to compare"
    top, low = (a, b) if a.best >= b.best else (b, a)
    n = noise.val_images(top.trial, study)
    m = noise.judge(top.best or 0.0, low.best or 0.0, n, None)
    # In val images only for accuracy: an IoU margin is not a count of images.
    imgs = f" ({m.images()})" if m.n and study.trainable == "classification" else ""
    if m.noise is None:
        return (
            f"{what}: {top.trial.name} {_pct(top.best)} vs {low.trial.name} {_pct(low.best)}"
            f"{imgs}; the val-set size is unknown, so the noise cannot be judged"
        )
    if m.within_noise:
        return (
            f"{what}: {top.trial.name} {_pct(top.best)} vs {low.trial.name} {_pct(low.best)}"
            f"{imgs}: at this budget the difference is within noise (below "
            f"{100 * m.noise:.1f} points)"
        )
    return (
        f"{what}: {top.trial.name} is better, {_pct(top.best)} vs {_pct(low.best)}, "
        f"{100 * m.margin:.1f} points{imgs}, more than the {100 * m.noise:.1f}-point noise"
    )


# --- the sections ------------------------------------------------------------------------------


def _activations(stage: StageResults, study: StudyResults, rs: list[Reading]) -> list[str]:
    title = task_metrics(study).score_title
    conv = "; ".join(
        f"{_act(r)} {_pct(r.first_epoch)} after epoch 1, mean {_pct(r.mean_curve)}" for r in rs
    )
    fastest = max(rs, key=lambda r: r.mean_curve or 0.0)
    best = max(rs, key=lambda r: r.best or 0.0)
    out = [
        f"Convergence per epoch (val {title}): {conv}. Highest mean over the epochs: "
        f"{_act(fastest)}."
    ]
    out += _grad_sentence(rs, _act)
    others = [r for r in rs if r is not best]
    if others:
        runner = max(others, key=lambda r: r.best or 0.0)
        verdict = pair_verdict(best, runner, study, "Which activation")
        why = (
            f" {_act(best)} is the choice on final val {title}"
            + (
                " and converges fastest per epoch"
                if fastest is best
                else f", though {_act(fastest)} converges faster per epoch"
            )
            + "."
        )
        out.append(verdict + "." + ("" if "within noise" in verdict else why))
    return out


def _act(r: Reading) -> str:
    return str(r.trial.config.get("activation", r.trial.name))


def _grad_sentence(rs: list[Reading], name: Callable[[Reading], str]) -> list[str]:
    with_grad = [r for r in rs if r.ratio is not None]
    if not with_grad:
        return ["Gradient flow: no trial recorded per-layer gradient norms (probes.json)."]
    bits = "; ".join(
        f"{name(r)} {r.ratio:.2g}× ({r.grad[0]} {r.grad[1]:.3g} / {r.grad[2]} {r.grad[3]:.3g}: "
        f"gradients {_vanishing_word(r.ratio or 1.0)})"
        for r in with_grad
        if r.grad is not None
    )
    return [
        "Gradient flow, gradient norm of the first main-path layer over the last (last epoch's "
        f"first batches, shortcuts and head left out; 'gradflow' figure): {bits}."
    ]


def _kernels(stage: StageResults, study: StudyResults, rs: list[Reading]) -> list[str]:
    bits = "; ".join(
        f"{r.trial.config.get('kernel')}: {_pct(r.best)}, {_secs(r.sec_per_epoch)}/epoch, "
        f"receptive field {r.rf if r.rf is not None else '—'} px, "
        f"{(r.trial.params or 0) / 1e3:.0f}k parameters"
        for r in rs
    )
    out = [f"Kernel sizes at about equal parameters (accuracy, time, receptive field): {bits}."]
    timed = [r for r in rs if r.sec_per_epoch]
    if len(timed) >= 2:
        fast = min(timed, key=lambda r: r.sec_per_epoch or 0.0)
        slow = max(timed, key=lambda r: r.sec_per_epoch or 0.0)
        out.append(
            f"Time: {slow.trial.config.get('kernel')} is the slowest "
            f"({(slow.sec_per_epoch or 0) / (fast.sec_per_epoch or 1):.1f}× the seconds per epoch "
            f"of {fast.trial.config.get('kernel')})"
            + timing_caveat([r.trial for r in rs])
            + ": equal parameters need not mean equal compute, which grows with the kernel "
            "area times the channels at each spatial position."
        )
    with_rf = [r for r in rs if r.rf]
    if len(with_rf) >= 2:
        wide = max(with_rf, key=lambda r: r.rf or 0)
        out.append(
            f"Receptive field: {wide.trial.config.get('kernel')} sees the most of the input "
            f"({wide.rf} px at its last layer); " + _rf_payoff(wide, rs, study)
        )
    return out


def _rf_payoff(wide: Reading, rs: list[Reading], study: StudyResults) -> str:
    best = max(rs, key=lambda r: r.best or 0.0)
    if best is wide:
        return "it also scores best, so the wider view pays off here."
    return pair_verdict(best, wide, study, "whether it pays off") + "."


def _secs(v: float | None) -> str:
    return "—" if v is None else f"{v:.2f} s"


def _depth(stage: StageResults, study: StudyResults, rs: list[Reading]) -> list[str]:
    def name(r: Reading) -> str:
        c = r.trial.config
        return f"{c.get('n_conv')} conv" + (" + residual" if c.get("residual") else "")

    plain = sorted(
        (r for r in rs if not r.trial.config.get("residual") and r.ratio is not None),
        key=lambda r: r.trial.config.get("n_conv") or 0,
    )
    out = _grad_sentence(rs, name)
    if len(plain) >= 2:
        shallow, deep = plain[0], plain[-1]
        falls = (deep.ratio or 0) * CLEAR_CHANGE < (shallow.ratio or 0)
        out.append(
            f"Depth: without residuals the first/last gradient ratio goes from "
            f"{shallow.ratio:.2g}× ({name(shallow)}) to {deep.ratio:.2g}× ({name(deep)})"
            + (
                ", so gradients vanish more with depth."
                if falls
                else f", a change under {CLEAR_CHANGE:g}×: at this depth and budget adding "
                "layers does not make the gradients vanish measurably."
            )
        )
    res = [r for r in rs if r.trial.config.get("residual")]
    same = [
        r
        for r in plain
        if res and r.trial.config.get("n_conv") == res[0].trial.config.get("n_conv")
    ]
    if res and same and res[0].ratio is not None:
        r, p = res[0], same[0]
        change = (r.ratio or 0) / (p.ratio or 1)
        if change >= CLEAR_CHANGE:
            effect = "carries clearly more gradient to the first layer"
        elif change * CLEAR_CHANGE <= 1:
            effect = "leaves the first layer a clearly smaller share of the gradient here"
        else:
            effect = f"changes the first layer's share by under {CLEAR_CHANGE:g}×: no clear effect"
        out.append(
            f"Residual connection at {r.trial.config.get('n_conv')} conv: ratio "
            f"{r.ratio:.2g}× with it against {p.ratio:.2g}× without, so the skip {effect}"
            + "; "
            + pair_verdict(r, p, study, "accuracy")
            + "."
        )
    return out


STANDARD = {"conv": "standard", "pool": "max", "attention": "none", "activation": "relu"}
# Each custom layer's name and the standard layer it replaces (course E.1).
CUSTOM_NAMES = {
    "gated": "GatedConv2d",
    "l2": "L2Pool2d",
    "se": "channel attention (SE)",
    "swish": "Swish",
}
STANDARD_OF = {
    "gated": "Conv2d",
    "l2": "MaxPool2d",
    "se": "the same CNN without attention",
    "swish": "ReLU",
}


def _custom_layers(stage: StageResults, study: StudyResults, rs: list[Reading]) -> list[str]:
    def is_standard(r: Reading) -> bool:
        return all(r.trial.config.get(k, v) == v for k, v in STANDARD.items())

    base = next((r for r in rs if is_standard(r)), None)
    if base is None:
        return [
            "No trial ran the standard layers (Conv2d, max-pool, no attention, ReLU), so "
            "the custom layers have nothing to be compared with."
        ]
    out = []
    caveat = timing_caveat([r.trial for r in rs])
    if caveat:
        out.append(f"Times per epoch below{caveat}.")
    for r in rs:
        if r is base:
            continue
        custom = [
            str(r.trial.config.get(k)) for k, v in STANDARD.items() if r.trial.config.get(k, v) != v
        ]
        label = " + ".join(CUSTOM_NAMES.get(c, c) for c in custom)
        against = " + ".join(STANDARD_OF.get(c, "the standard layer") for c in custom)
        dt = (
            f", {r.sec_per_epoch / base.sec_per_epoch:.2f}× the time per epoch"
            if r.sec_per_epoch and base.sec_per_epoch
            else ""
        )
        dp = (
            f", {(r.trial.params or 0) - (base.trial.params or 0):+,} parameters"
            if r.trial.params is not None and base.trial.params is not None
            else ""
        )
        out.append(
            pair_verdict(r, base, study, f"{label} against {against} ({base.trial.name})")
            + dt
            + dp
            + "."
        )
    return out


def _block_types(stage: StageResults, study: StudyResults, rs: list[Reading]) -> list[str]:
    bits = []
    for r in rs:
        stab = (
            f"std over the last {STABILITY_EPOCHS} epochs {100 * r.stability:.1f} points"
            if r.stability is not None
            else f"stability not measurable (fewer than {STABILITY_EPOCHS} epochs)"
        )
        bits.append(
            f"{r.trial.config.get('block')}: {_pct(r.best)}, {_secs(r.sec_per_epoch)}/epoch, "
            f"{(r.trial.params or 0) / 1e6:.2f}M parameters, {stab}"
        )
    out = [f"Block types (accuracy, time, parameters, stability): {'; '.join(bits)}."]
    timed = [r for r in rs if r.sec_per_epoch]
    if len(timed) >= 2:
        fast = min(timed, key=lambda r: r.sec_per_epoch or 0.0)
        out.append(
            f"Time: {fast.trial.config.get('block')} is the fastest per epoch; "
            + ", ".join(
                f"{r.trial.config.get('block')} takes {r.sec_per_epoch / fast.sec_per_epoch:.2f}×"
                for r in timed
                if r is not fast and r.sec_per_epoch and fast.sec_per_epoch
            )
            + timing_caveat([r.trial for r in rs])
            + "."
        )
    stable = [r for r in rs if r.stability is not None]
    if len(stable) >= 2:
        calm = min(stable, key=lambda r: r.stability or 0.0)
        out.append(
            f"Stability: {calm.trial.config.get('block')} varies least over its last "
            f"{STABILITY_EPOCHS} epochs."
        )
    elif rs:
        out.append(
            "Stability cannot be compared at this budget: it needs at least "
            f"{STABILITY_EPOCHS} epochs per trial (or several seeds)."
        )
    basic = next((r for r in rs if r.trial.config.get("block") == "basic"), None)
    for r in rs:
        if basic is not None and r is not basic:
            out.append(
                pair_verdict(r, basic, study, f"{r.trial.config.get('block')} against basic") + "."
            )
    return out


def _dropout(stage: StageResults, study: StudyResults, rs: list[Reading]) -> list[str]:
    """A2.3: dropout against the p = 0 reference, by the train-val gap (overfitting)."""
    refs = [
        t
        for st in study.stages
        if st is not stage and noise.is_reference(st)
        for t in st.trials
        if t.status not in ("infeasible", "error")
    ]
    rows = [(f"p={r.trial.config.get('dropout')}", r) for r in rs]
    rows += [(f"reference p={t.config.get('dropout', 0)}", reading(t, study)) for t in refs]
    gaps = [(label, trial_stats(r.trial, study).gap, r) for label, r in rows]
    known = [(label, g, r) for label, g, r in gaps if g is not None]
    if not known:
        return ["Overfitting against dropout cannot be read: no trial has a final train−val gap."]
    text = "; ".join(f"{label} {100 * g:+.1f} points" for label, g, _ in known)
    out = [f"Dropout and overfitting (final train−val gap, 'curves' figures): {text}."]
    if all(g <= GAP_THRESHOLD for _, g, _ in known):
        out.append(
            f"No gap exceeds {GAP_THRESHOLD:.2f}: at this budget nothing overfits, so "
            "dropout has no overfitting to reduce."
        )
    elif refs:
        ref_gap = next((g for label, g, _ in known if label.startswith("reference")), None)
        if ref_gap is not None:
            smaller = [
                label for label, g, _ in known if not label.startswith("reference") and g < ref_gap
            ]
            out.append("Smaller gap than the reference: " + (", ".join(smaller) or "none") + ".")
    if refs:
        best = max(rs, key=lambda r: r.best or 0.0)
        out.append(
            pair_verdict(best, reading(refs[0], study), study, "Best dropout against the reference")
            + "."
        )
    return out


SECTIONS: list[tuple[Callable[[StageResults], bool], Callable[..., list[str]]]] = [
    (lambda s: "kernel" in s.compare, _kernels),
    (lambda s: "residual" in s.compare or "n_conv" in s.compare, _depth),
    (
        lambda s: "conv" in s.compare or "attention" in s.compare or "pool" in s.compare,
        _custom_layers,
    ),
    (lambda s: "activation" in s.compare, _activations),
    (lambda s: "block" in s.compare, _block_types),
    (lambda s: "dropout" in s.compare, _dropout),
]


def section_answers(stage: StageResults, study: StudyResults) -> list[str]:
    """The sentences answering the section's question; [] for a stage no section matches."""
    trials = [t for t in stage.trials if t.status not in ("infeasible", "error")]
    if len(trials) < 2:
        return []
    for matches, answer in SECTIONS:
        if matches(stage):
            return answer(stage, study, [reading(t, study) for t in trials])
    return []
