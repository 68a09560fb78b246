"""The course's reference table, reproduced with archsweep's own epoch loop (no Ray).

Trains the sample solution's models (trainables.models.reference) at the course's budget (Adam,
lr 1e-3, MNIST 5 epochs, CIFAR-10 10 epochs) through ``trainables.loop.run_trial`` with a local
session, evaluates the last epoch's weights on the official test set and prints one table: model,
parameters, data and budget, epochs, train time and test accuracy.

CPU (default): FC_MNIST and SimpleCNN on MNIST, a few minutes with 1-2 threads.

    ARCHSWEEP_DATA=../shared/datasets python benchmarks/reference_table.py [--threads 1]

GPU (``--gpu``): adds the ResNet-18 rows (MNIST; CIFAR-10 Basic, regularized, Bottleneck) and
FC_CIFAR in bf16, ``--workers`` trials at once on the one GPU, all inside ``--budget-s`` seconds
from the start of the GPU section (data loading included). A row stops before an epoch that would
end past the time box and shows the epochs it finished, e.g. "3/10 (time box)"; rows still queued
when time is up show "not started". Wall time is the budget plus the interpreter's start-up.

    python benchmarks/reference_table.py --gpu --budget-s 180 --json OUT.json

``--max-batches N`` caps batches per epoch (a smoke run of the code path, not a course result;
the table says so in its data column).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import json
import math
import multiprocessing
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from trainables import ray_io
from trainables.data import DataBundle, DataSpec, TensorLoader, load_bundle
from trainables.loop import TrialSetup, run_trial
from trainables.models import build_model, count_parameters
from trainables.models.reference import ReferenceModel, reference

CPU_ROWS = ("FC_MNIST", "SimpleCNN")
GPU_ROWS = (
    "ModelWithBasicBlocks (MNIST)",
    "ModelWithBasicBlocks (CIFAR)",
    "ModelWithRegularization",
    "Bottleneck variant (E.2)",
    "FC_CIFAR",  # cheap: starts when the MNIST ResNet frees a worker
)
VAL_FRACTION = 0.1  # the study files' split: 90% of the official train set trains
EVAL_MARGIN_S = 15.0  # kept free at the end of the time box for the test-set evaluations


class TimeBoxReached(Exception):
    """Raised from the session's report once the deadline has passed (ends run_trial early)."""


class TimeBoxedSession(ray_io.LocalSession):
    """A local session that keeps only the newest checkpoint and enforces a deadline.

    After each epoch's report it stops the trial when another epoch, as long as the last one,
    would end past the deadline. Raising from ``report`` is the loop's own stopping point: it
    happens after the epoch's checkpoint is stored, like Ray stopping a trial between results.
    """

    def __init__(self, trial_dir: Path, deadline: float | None) -> None:
        super().__init__(trial_dir)
        self.deadline = deadline
        self.last_report_at = time.monotonic()

    def report(self, metrics: dict, checkpoint_dir: Path | None) -> None:
        previous = self.checkpoint_dir
        super().report(metrics, checkpoint_dir)
        if previous is not None and previous != self.checkpoint_dir:
            shutil.rmtree(previous)  # ResNet-18 + Adam state is ~130 MB per epoch
        now = time.monotonic()
        epoch_s, self.last_report_at = now - self.last_report_at, now
        if self.deadline is not None and now + epoch_s > self.deadline:
            raise TimeBoxReached


@dataclasses.dataclass
class Row:
    model: str
    params: int
    data: str  # data set, image size, training fraction (and a batch cap, if any)
    budget: str  # optimizer, lr, batch size, precision
    epochs_planned: int
    epochs_done: int
    train_time_s: float  # sum of the epochs' training time (validation excluded)
    test_acc: float  # last epoch's weights on the official test set; NaN if none
    note: str = ""


def trial_config(
    ref: ReferenceModel, batch_size: int, precision: str, max_batches: int | None
) -> dict[str, Any]:
    return {
        "dataset": ref.dataset,
        "val_fraction": VAL_FRACTION,
        "test_split": "official",
        **ref.model,
        "epochs": ref.epochs,
        "batch_size": batch_size,
        "optimizer": "adam",
        "lr": 1e-3,
        **ref.trainer,
        "precision": precision,
        "max_batches": max_batches,
    }


@torch.no_grad()
def evaluate_test_accuracy(
    checkpoint_dir: Path, bundle: DataBundle, precision: str, max_batches: int | None = None
) -> float:
    """Accuracy of the checkpoint's weights on the test split (the trial's normalization).

    ``max_batches`` (smoke runs only) evaluates the first batches of 512 test images.
    """
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    state = ray_io.load_state(checkpoint_dir, map_location=device)
    model = build_model(state["model_config"]).to(device)
    model.load_state_dict(state["model"])
    model.eval()
    loader = TensorLoader(
        bundle.test,
        512,
        device,
        # A capped run takes a seeded sample: the test split is stored class by class, so its
        # first batches would be one class.
        shuffle=max_batches is not None,
        seed=0,
        mean=state["mean"],
        std=state["std"],
        max_batches=max_batches,
    )
    correct = total = 0
    for x, y in loader:
        with torch.autocast(device.type, torch.bfloat16, enabled=precision == "bf16"):
            pred = model(x).argmax(1)
        correct += int((pred == y).sum())
        total += y.numel()
    return correct / total


def train_reference(
    ref: ReferenceModel,
    bundle: DataBundle,
    *,
    batch_size: int,
    precision: str = "fp32",
    max_batches: int | None = None,
    deadline: float | None = None,
    config_overrides: dict[str, Any] | None = None,
) -> tuple[Row, list[dict]]:
    """Train ``ref`` with archsweep's loop, evaluate on the test split; (row, epoch reports)."""
    config = {**trial_config(ref, batch_size, precision, max_batches), **(config_overrides or {})}
    with tempfile.TemporaryDirectory(prefix="archsweep-reftable-") as tmp:
        session = TimeBoxedSession(Path(tmp), deadline)
        ray_io.use_local_session(session)
        note = ""
        try:
            run_trial(config, bundle, TrialSetup("classification"))
        except TimeBoxReached:
            note = "time box"  # cleared below if the last epoch had already run
        finally:
            ray_io.use_local_session(None)
        reports = session.reports
        done = [r for r in reports if not r.get("diverged")]
        if reports and reports[-1].get("diverged"):
            note = f"diverged: {reports[-1].get('reason', '')}"
        acc = (
            evaluate_test_accuracy(session.checkpoint_dir, bundle, precision, max_batches)
            if done
            else math.nan
        )
    if note == "time box" and len(done) == ref.epochs:
        note = ""
    data = f"{ref.dataset} {bundle.image_size}px, {1 - VAL_FRACTION:.0%} of train"
    if max_batches is not None:
        data += f", <= {max_batches} batches/epoch and test"
    row = Row(
        model=ref.name,
        params=count_parameters(ref.model_config()),
        data=data,
        budget=f"adam 1e-3, batch {batch_size}, {precision}"
        + (f", wd {ref.trainer['weight_decay']:g}" if "weight_decay" in ref.trainer else ""),
        epochs_planned=ref.epochs,
        epochs_done=len(done),
        train_time_s=sum(r["train_time_s"] for r in done),
        test_acc=acc,
        note=note,
    )
    return row, reports


def skipped_row(ref: ReferenceModel, batch_size: int, precision: str, note: str) -> Row:
    return Row(
        model=ref.name,
        params=count_parameters(ref.model_config()),
        data=ref.dataset,
        budget=f"adam 1e-3, batch {batch_size}, {precision}",
        epochs_planned=ref.epochs,
        epochs_done=0,
        train_time_s=0.0,
        test_acc=math.nan,
        note=note,
    )


def load(dataset: str) -> DataBundle:
    return load_bundle(DataSpec(dataset, val_fraction=VAL_FRACTION, test_split="official"))


def run_cpu(args: argparse.Namespace) -> list[Row]:
    rows = []
    bundle = load("mnist")
    for name in CPU_ROWS:
        row, _ = train_reference(
            reference(name), bundle, batch_size=args.batch_size, max_batches=args.max_batches
        )
        print(format_row(row), flush=True)
        rows.append(row)
    return rows


def _gpu_worker(
    name: str, batch_size: int, precision: str, max_batches: int | None, deadline_wall: float
) -> Row:
    """One row in a fresh process (own CUDA context); the data comes from archsweep's cache."""
    ref = reference(name)
    if time.time() >= deadline_wall:  # queued behind other rows until the time box was over
        return skipped_row(ref, batch_size, precision, "not started: time box")
    deadline = time.monotonic() + (deadline_wall - time.time())
    row, _ = train_reference(
        ref,
        load(ref.dataset),
        batch_size=batch_size,
        precision=precision,
        max_batches=max_batches,
        deadline=deadline,
    )
    return row


def run_gpu(args: argparse.Namespace, start: float) -> list[Row]:
    for dataset in ("mnist", "cifar10"):
        load(dataset)  # decode once into the cache, so the workers only read it
    ctx = multiprocessing.get_context("spawn")  # CUDA cannot be forked
    rows: list[Row] = []
    with concurrent.futures.ProcessPoolExecutor(args.workers, mp_context=ctx) as pool:
        # Wall-clock, so a row queued behind others gets only what is left of the time box.
        deadline_wall = time.time() + args.budget_s - EVAL_MARGIN_S - (time.monotonic() - start)
        futures = {
            name: pool.submit(
                _gpu_worker, name, args.batch_size, args.precision, args.max_batches, deadline_wall
            )
            for name in GPU_ROWS
        }
        for name in GPU_ROWS:
            row = futures[name].result()
            print(format_row(row), flush=True)
            rows.append(row)
    return rows


HEADER = (
    f"{'model':<30} {'params':>11} {'data':<52} {'budget':<36} {'epochs':<16} "
    f"{'train s':>8} {'test acc':>8}"
)


def format_row(row: Row) -> str:
    epochs = f"{row.epochs_done}/{row.epochs_planned}" + (f" ({row.note})" if row.note else "")
    acc = "n/a" if math.isnan(row.test_acc) else f"{100 * row.test_acc:.2f}%"
    return (
        f"{row.model:<30} {row.params:>11,} {row.data:<52} {row.budget:<36} {epochs:<16} "
        f"{row.train_time_s:>8.1f} {acc:>8}"
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--gpu", action="store_true", help="add the ResNet-18 / CIFAR-10 rows (bf16)")
    p.add_argument("--budget-s", type=float, default=180.0, help="time box of the GPU rows")
    p.add_argument("--workers", type=int, default=4, help="GPU rows trained at once")
    p.add_argument(
        "--precision",
        default=None,
        choices=("fp32", "bf16"),
        help="GPU rows' precision (default bf16; the CPU rows are always fp32)",
    )
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--max-batches", type=int, default=None, help="cap per epoch (smoke run)")
    p.add_argument("--skip-cpu", action="store_true", help="only the GPU rows")
    p.add_argument("--json", type=Path, default=None, help="also write the rows as JSON")
    args = p.parse_args(argv)
    if args.workers < 1:
        p.error(f"--workers must be >= 1, got {args.workers}")
    if args.budget_s <= EVAL_MARGIN_S:
        p.error(f"--budget-s must exceed the {EVAL_MARGIN_S:.0f} s kept for evaluation")
    if args.skip_cpu and not args.gpu:
        p.error("--skip-cpu leaves nothing to run without --gpu")
    args.precision = args.precision or "bf16"
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {args.threads} CPU thread(s), "
        f"device {'cuda' if torch.cuda.is_available() else 'cpu'}"
    )
    print(HEADER, flush=True)
    rows = [] if args.skip_cpu else run_cpu(args)
    if args.gpu:
        rows += run_gpu(args, time.monotonic())
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps([dataclasses.asdict(r) for r in rows], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
