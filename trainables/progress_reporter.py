"""A trial's within-epoch progress for the driver's live view (orchestrator.live_view).

`ProgressReporter` is the per-batch callback that trainables.loop.run_epoch calls while training.
It sends at most one update every `every_s` seconds (the first one at once, so the driver shows a
line seconds after training starts) through `ray_io.progress`, which is fire-and-forget: a
trial never waits for, or fails because of, the progress board.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from trainables import ray_io

SEND_EVERY_S = 2.0
# The first batches of a trial's first epoch are warm-up (CUDA context, cuDNN autotuning,
# allocator, first-touch of the data): on one H200 the first batch ran at 236 images/s and the
# rest at ~10k, and an ETA from it said 18.9 min for a 36 s stage. The rate of the first epoch
# is measured from the end of this batch on; until then the trial reports "warming up".
WARMUP_BATCHES = 3


class ProgressReporter:
    """Throttled progress updates of one trial: epoch e/E, batch b/B, images/s.

    Args:
        board: the stage's board name (TrialSetup.progress_board); None sends nothing.
        label: the trial's label, shown in the driver's view.
        epochs: planned epochs of the trial.
        batches: training batches per epoch; epoch_images: training images per epoch.
        every_s: least seconds between two updates.
        clock, send: injectable for tests (a fake clock, a list instead of the board).
    """

    def __init__(
        self,
        board: str | None,
        label: str,
        epochs: int,
        batches: int,
        epoch_images: int,
        every_s: float = SEND_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
        send: Callable[[str, dict[str, Any]], None] | None = None,
    ) -> None:
        if every_s < 0:
            raise ValueError(f"every_s={every_s} is not valid; use a number of seconds >= 0")
        self.board, self.label = board, label
        self.epochs, self.batches, self.epoch_images = epochs, batches, epoch_images
        self.every_s, self.clock = every_s, clock
        self.send = send or (lambda name, update: ray_io.progress(name, update))  # looked up late
        self.epoch = 0
        self.epoch_start = clock()
        self.last_sent = -float("inf")
        self.last_rate = 0.0  # the previous epoch's images/s, until this epoch has its own
        self.last_train_s = 0.0
        self.overhead = 1.0
        self.steady_from: tuple[float, int] | None = None  # (time, images) after warm-up
        self.last_images, self.last_batch_at = 0, 0.0

    def start_epoch(self, epoch: int) -> None:
        """A new epoch; the whole last one (validation, images, checkpoint, report included) over
        its training time is the overhead factor the driver's ETA applies to images/s."""
        now = self.clock()
        if self.epoch and self.last_train_s > 0:
            self.overhead = max(1.0, (now - self.epoch_start) / self.last_train_s)
        self.epoch, self.epoch_start = epoch, now
        self.steady_from = None

    def warmup_batches(self) -> int:
        """Batches of this epoch left out of its rate: the first epoch's first few."""
        if self.last_rate > 0:
            return 0
        return min(WARMUP_BATCHES, self.batches - 1) if self.batches > 1 else 0

    def end_training(self, images_per_s: float, train_time_s: float) -> None:
        """The epoch's measured training throughput and time (before validation). A first
        epoch's whole-epoch rate includes its warm-up; the rate after it is kept instead."""
        steady = self.rate_after_warmup(self.last_batch_at)
        self.last_rate = steady if steady else images_per_s
        self.last_train_s = train_time_s

    def rate_after_warmup(self, now: float) -> float:
        if self.steady_from is None or self.last_images <= self.steady_from[1]:
            return 0.0
        t0, images0 = self.steady_from
        return (self.last_images - images0) / max(now - t0, 1e-9)

    def rate(self, images: int, now: float) -> float:
        """Images/s of this epoch; 0 while the first epoch is still warming up."""
        if self.warmup_batches():
            return self.rate_after_warmup(now)
        elapsed = now - self.epoch_start
        # A rate from a second of one epoch's start is mostly warm-up; the last epoch's is better.
        if self.last_rate > 0 and elapsed < self.every_s:
            return self.last_rate
        return images / elapsed if elapsed > 0 else 0.0

    def __call__(self, batches_done: int, images_done: int) -> None:
        """run_epoch's per-batch hook; sends when `every_s` has passed since the last update."""
        if self.board is None:
            return
        now = self.clock()
        self.last_images, self.last_batch_at = images_done, now
        if batches_done == self.warmup_batches():
            self.steady_from = (now, images_done)
        if now - self.last_sent < self.every_s:
            return
        self.last_sent = now
        rate = self.rate(images_done, now)
        self.send(
            self.board,
            {
                "label": self.label,
                "epoch": self.epoch,
                "epochs": self.epochs,
                "batch": batches_done,
                "batches": self.batches,
                "images": images_done,
                "epoch_images": self.epoch_images,
                "images_per_s": rate,
                "warming_up": rate <= 0,
                "overhead": self.overhead,
            },
        )
