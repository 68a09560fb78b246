"""How many val images a score rests on, and when two scores differ by more than that noise.

A val accuracy is a proportion of n images, so one image moves it by 1/n: at --smoke's 64 val
images that is 1.56 points. The report gives each score a 95% Wilson interval (binomial, n =
the val images the epoch scored) and calls a margin between two trials *within noise* when it is
smaller than 1.96 standard errors of the difference of two independent proportions,
sqrt(p1 (1 - p1) / n + p2 (1 - p2) / n). Both trials score the same val images, so the true
spread of the difference is smaller than this: the rule is deliberately cautious (it calls a
close result a tie rather than a win).

IoU and Dice are means over the val images, not proportions. The report applies the same
formula with n = val images and p = the score, an approximation of their spread that is stated
wherever it is used. Macro F1 is shown beside the evaluated checkpoint only, never used to rank,
so it gets no interval.

Where a configuration ran with several seeds the seed spread counts too: a margin within
NOISE_FACTOR x the pooled seed-to-seed std is within noise as well.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from analysis.rundir import StageResults, StudyResults, Trial

Z95 = 1.96
NOISE_FACTOR = 2.0  # a margin within this many seed-to-seed stds is not a reliable ranking


def val_images(trial: Trial, study: StudyResults, recorded: int | None = None) -> int | None:
    """The number of val images each epoch of `trial` scored: the val split (`recorded` from the
    stage's evaluation, else the data block study.json records for the trial's stage or data
    set), capped by max_batches x batch_size (--smoke validates 2 batches). None when unknown."""
    n = recorded
    if n is None:
        val = study.data_of(trial.config.get("dataset"), trial.stage).get("val")
        n = val if isinstance(val, int) and val > 0 else None
    max_batches, batch = trial.config.get("max_batches"), trial.config.get("batch_size")
    if isinstance(max_batches, int) and isinstance(batch, int):
        cap = max_batches * batch
        n = cap if n is None else min(n, cap)
    return n


def wilson(p: float, n: int) -> tuple[float, float]:
    """95% Wilson score interval of a proportion p observed on n items."""
    if n <= 0:
        raise ValueError(f"n={n} val images; an interval needs n >= 1")
    p = min(max(p, 0.0), 1.0)
    denom = 1 + Z95**2 / n
    centre = (p + Z95**2 / (2 * n)) / denom
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def difference_noise(p1: float, p2: float, n: int) -> float:
    """1.96 standard errors of p1 - p2, two proportions each on n images."""
    p1, p2 = (min(max(p, 0.0), 1.0) for p in (p1, p2))
    return Z95 * math.sqrt((p1 * (1 - p1) + p2 * (1 - p2)) / n)


@dataclass(frozen=True)
class Margin:
    """A margin between two scores and the noise it is judged against."""

    margin: float
    n: int | None  # val images; None when unknown
    sampling: float | None  # 1.96 SE of the difference, from n
    seed_std: float | None  # pooled seed-to-seed std, where configurations repeated

    @property
    def noise(self) -> float | None:
        bits = [b for b in (self.sampling, _seed_bound(self.seed_std)) if b is not None]
        return max(bits) if bits else None

    @property
    def within_noise(self) -> bool:
        return self.noise is not None and self.margin <= self.noise

    def images(self) -> str:
        """The margin in val images ("4 val images of 64")."""
        if not self.n:
            return ""
        k = round(self.margin * self.n)
        return f"{k} val image{'s' if k != 1 else ''} of {self.n}"

    def rule(self, score: str) -> str:
        """Which noise bound applied, in words."""
        parts = []
        if self.sampling is not None:
            parts.append(
                f"the {100 * self.sampling:.1f}-point 95% sampling noise of a {score} "
                f"difference on {self.n} val images"
            )
        if self.seed_std is not None:
            parts.append(
                f"{NOISE_FACTOR:g}× the seed-to-seed std ({100 * self.seed_std:.1f} points)"
            )
        return " and ".join(parts)


def _seed_bound(std: float | None) -> float | None:
    return None if std is None else NOISE_FACTOR * std


def judge(top: float, second: float, n: int | None, seed_std: float | None) -> Margin:
    sampling = difference_noise(top, second, n) if n else None
    return Margin(top - second, n, sampling, seed_std)


def interval_text(p: float, n: int | None) -> str:
    """'95% CI 30.9-54.3, n = 64' or '' when n is unknown."""
    if not n:
        return ""
    lo, hi = wilson(p, n)
    return f"95% CI {100 * lo:.1f}-{100 * hi:.1f}, n = {n}"


def is_reference(stage: StageResults) -> bool:
    """A stage run to read others against (dropout's p = 0), never a candidate."""
    text = f"{stage.title or ''} {stage.label or ''}".lower()
    return "not a candidate" in text or text.rstrip().endswith("-ref")


def stage_margin(stage: StageResults, study: StudyResults) -> Margin | None:
    """The margin of the stage's best configuration over the runner-up (seeds pooled), judged
    against the noise; None with fewer than two scored configurations."""
    from analysis.summary import seed_groups, seed_noise

    groups = [g for g in seed_groups(stage.trials, study) if g.mean is not None]
    if len(groups) < 2:
        return None
    ranked = sorted(groups, key=lambda g: g.mean or 0.0, reverse=True)
    top, second = ranked[0], ranked[1]
    n = val_images(top.trials[0], study)
    return judge(top.mean or 0.0, second.mean or 0.0, n, seed_noise(groups))


def winner_kind(stage: StageResults, study: StudyResults) -> str:
    """How the stage's best was won: 'clear', 'tie within noise', 'margin, noise unknown' or
    'only configuration' ('' for a reference stage, which has no best)."""
    if is_reference(stage):
        return ""
    m = stage_margin(stage, study)
    if m is None:
        return "only configuration"
    if m.noise is None:
        return "margin, noise unknown"
    return "tie within noise (tie-break)" if m.within_noise else "clear"
