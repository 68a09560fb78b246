"""`python -m orchestrator.replay RUN_DIR TRIAL`: train one recorded trial again, without Ray.

Rebuilds the trial from its run directory (study.json: config, data keys, seed, task, metric,
constraints) and runs the same epoch loop in this process (trainables.loop.run_trial with a
LocalSession), so a single trial can be debugged with pdb or a profiler. Each replayed epoch is
printed next to what the sweep recorded (the trial's result.json) with a per-metric difference.

    python -m orchestrator.replay runs/activations 3.3-B                 # from scratch
    python -m orchestrator.replay runs/activations 3.3-B --from-checkpoint --epochs 1

Output goes to RUN_DIR/replays/<label>-<time>/ (TensorBoard events, checkpoints, replay.json);
the run's own trial folders are only read. Ray is never imported.

Why the numbers match: the trial seeds torch from config["seed"], the loaders draw batch order and
augmentation from (seed, epoch) generators, and Ray gives a 1-CPU trial one intra-op thread
(OMP_NUM_THREADS=1), which --threads reproduces (default 1). With another thread count, float
reductions are summed in another order and the metrics drift by rounding.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from trainables import run_dir as layout
from trainables.contract import DEFAULT_EPOCHS, StudyRecord, TrialRecord

# Per-epoch metrics compared against the recording; timings differ by nature and are not.
COMPARED = (
    "train_loss",
    "train_acc",
    "val_loss",
    "val_acc",
    "train_iou",
    "val_iou",
    "val_dice",
    "val_pixel_acc",
    "lr",
)
TOLERANCE = 1e-4


class ReplayError(ValueError):
    """A replay that cannot start; the message names the bad value and the valid ones."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m orchestrator.replay",
        description="Train one trial of a run again in this process (no Ray) and compare.",
    )
    p.add_argument("run_dir", type=Path, help="the run directory (holds study.json)")
    p.add_argument("trial", help="trial label (3.3-B) or trial id")
    p.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="epochs to train (default: as many as were recorded; from a checkpoint: the rest "
        "of the trial, or 1 if it had finished)",
    )
    p.add_argument(
        "--from-checkpoint",
        action="store_true",
        help="start from the trial's last checkpoint and continue",
    )
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch intra-op threads (default: what Ray gave the trial, its CPUs as recorded "
        "in study.json, else 1)",
    )
    p.add_argument(
        "--data-root",
        type=Path,
        default=None,
        help="folder holding the data sets (default: the run's, as study.json records it; "
        "else $ARCHSWEEP_DATA, else ./data)",
    )
    p.add_argument("--out", type=Path, default=None, help="output folder (default under RUN_DIR)")
    args = p.parse_args(argv)
    if args.epochs is not None and args.epochs < 1:
        p.error(f"--epochs {args.epochs} is not valid; use an int >= 1")
    if args.threads is not None and args.threads < 1:
        p.error(f"--threads {args.threads} is not valid; use an int >= 1")
    return args


# --- reading the run directory -------------------------------------------------------------------


def load_record(run_dir: Path) -> StudyRecord:
    try:
        return layout.load_study_record(run_dir)
    except layout.RunDirError as err:
        raise ReplayError(str(err)) from None


def all_trials(record: StudyRecord) -> list[tuple[str, TrialRecord]]:
    """(stage name, trial) of every trained trial (infeasible ones have no folder)."""
    return [(stage.name, t) for stage in record.stages for t in stage.trials if t.trial_dir]


def find_trial(record: StudyRecord, key: str) -> tuple[str, TrialRecord]:
    """The trial whose label or trial id is `key`; a label used in several stages is ambiguous."""
    trials = all_trials(record)
    hits = [(s, t) for s, t in trials if key in (t.label, t.trial_id)]
    if len(hits) == 1:
        return hits[0]
    valid = ", ".join(f"{t.label or '-'} ({t.trial_id}, {s})" for s, t in trials)
    if not hits:
        raise ReplayError(f"no trial {key!r} in this run; valid: {valid or 'none (no trials yet)'}")
    ids = ", ".join(str(t.trial_id) for _, t in hits)
    raise ReplayError(f"trial label {key!r} is used in several stages; pass an id: {ids}")


def last_checkpoint(trial_dir: Path) -> Path:
    folders = layout.checkpoint_folders(trial_dir)
    if not folders:
        raise ReplayError(
            f"--from-checkpoint: {trial_dir} holds no {layout.CHECKPOINT_PREFIX}* folder (the "
            "trial never finished an epoch); replay it from scratch instead"
        )
    return folders[-1]


# --- data ----------------------------------------------------------------------------------------


def recorded_data_root(record: StudyRecord) -> Path | None:
    """The data root the run read its data from (study.json's data block), if still there."""
    root = record.data.get("data_root")
    return Path(root) if root and Path(root).is_dir() else None


def recorded_threads(trial: TrialRecord) -> int:
    """The intra-op threads Ray gave the trial: its whole CPUs (OMP_NUM_THREADS), at least 1."""
    cpus = trial.timeline.get("cpus")
    return max(1, int(cpus)) if isinstance(cpus, int | float) and math.isfinite(cpus) else 1


def load_data(config: dict[str, Any], data_root: Path, recorded: dict[str, Any]) -> Any:
    """Decode the trial's data as the run did (trainables.data.source, no Ray) and check it
    is the data the run saw (study.json's data block)."""
    from trainables.data import DataError
    from trainables.data.source import BundleCache

    try:
        bundle = BundleCache(data_root).get(config)
    except DataError as err:
        raise ReplayError(f"{err}\n(the run's data must be readable to replay it)") from None
    seen = {
        "class_names": list(bundle.class_names),
        "train": len(bundle.train.images),
        "val": len(bundle.val.images),
        "test": len(bundle.test.images),
    }
    differs = {k: (recorded[k], v) for k, v in seen.items() if k in recorded and recorded[k] != v}
    if differs:
        detail = "; ".join(f"{k}: run {a!r}, now {b!r}" for k, (a, b) in differs.items())
        raise ReplayError(
            f"the data under {data_root} is not what the run trained on ({detail}); "
            "pass the run's --data-root"
        )
    return bundle


# --- the replay ----------------------------------------------------------------------------------


class EnoughEpochs(Exception):
    """Raised from a report to end run_trial after the requested epochs (schedule unchanged)."""


def make_session(out_dir: Path, stop_after: int) -> Any:
    """A LocalSession that ends the loop after `stop_after` reports."""
    from trainables.ray_io import LocalSession

    class CountingSession(LocalSession):
        def report(self, metrics: dict, checkpoint_dir: Path | None) -> None:
            super().report(metrics, checkpoint_dir)
            if len(self.reports) >= stop_after:
                raise EnoughEpochs

    return CountingSession(out_dir)


def plan_epochs(
    config: dict[str, Any], start_epoch: int, requested: int | None, recorded: int
) -> tuple[int, int]:
    """(epochs to train, the config's `epochs` to run with).

    `epochs` is left alone whenever possible: it sets LR schedules (cosine, onecycle), so
    stopping early is done by the session, not by a smaller `epochs`. Only a replay beyond the
    trial's end raises it.
    """
    planned = int(config.get("epochs", DEFAULT_EPOCHS))
    if requested is not None:
        count = requested
    elif start_epoch == 1:
        count = recorded or planned
    else:
        count = max(planned - start_epoch + 1, 1)
    return count, max(planned, start_epoch + count - 1)


def replay(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from trainables.data import default_data_root
    from trainables.loop import TrialSetup, run_trial
    from trainables.ray_io import load_state, use_local_session

    run_dir = args.run_dir
    record = load_record(run_dir)
    stage, trial = find_trial(record, args.trial)
    trial_dir = layout.resolve(run_dir, str(trial.trial_dir), stage)
    recorded = layout.recorded_rows(trial_dir)
    config = dict(trial.config)
    if args.device == "cpu" and torch.cuda.is_available():
        raise ReplayError(
            "--device cpu, but CUDA was initialised in this process before the replay started; "
            "run the replay as its own process (python -m orchestrator.replay ...)"
        )
    args.threads = args.threads or recorded_threads(trial)
    torch.set_num_threads(args.threads)

    checkpoint, start_epoch = None, 1
    if args.from_checkpoint:
        checkpoint = last_checkpoint(trial_dir)
        start_epoch = int(load_state(checkpoint)["epoch"]) + 1
    count, epochs = plan_epochs(config, start_epoch, args.epochs, len(recorded))
    if epochs != config.get("epochs"):
        print(f"note: epochs raised from {config.get('epochs')} to {epochs} to train past the end")
        config["epochs"] = epochs

    label = trial.name.replace("/", "-")
    out_dir = args.out or layout.replay_dir(run_dir, label, time.strftime("%Y%m%d-%H%M%S"))
    if out_dir.exists() and any(out_dir.iterdir()):
        raise ReplayError(f"output folder {out_dir} exists and is not empty; pass another --out")
    session = make_session(out_dir, count)
    if checkpoint is not None:
        # A copy: the loop only reads it, but the run's folders must stay untouched whatever
        # happens (and the replay folder then holds everything it started from).
        start = out_dir / f"start_{checkpoint.name}"
        shutil.copytree(checkpoint, start)
        session.checkpoint_dir = start

    data_root = args.data_root or recorded_data_root(record) or default_data_root()
    bundle = load_data(config, data_root, record.data)
    setup = TrialSetup(
        task=record.trainable,
        metric=record.metric,
        mode=record.mode,
        constraints=record.constraints or {},
    )
    print(
        f"replay {trial.label} ({trial.trial_id}, stage {stage}) epochs "
        f"{start_epoch}-{start_epoch + count - 1} on {args.device}, {args.threads} thread(s) "
        f"-> {out_dir}",
        flush=True,
    )
    use_local_session(session)
    try:
        run_trial(config, bundle, setup)
    except EnoughEpochs:
        pass
    finally:
        use_local_session(None)
    rows = compare(session.reports, recorded)
    summary = {
        "run_dir": str(run_dir),
        "stage": stage,
        "trial_id": trial.trial_id,
        "label": trial.label,
        "from_checkpoint": str(checkpoint) if checkpoint else None,
        "device": args.device,
        "threads": args.threads,
        "config": config,
        "epochs": rows,
        "max_abs_diff": max_diff(rows),
    }
    (out_dir / "replay.json").write_text(json.dumps(summary, indent=1, default=str) + "\n")
    return summary


def compare(
    reports: list[dict[str, Any]], recorded: dict[int, dict[str, Any]]
) -> list[dict[str, Any]]:
    """Per replayed epoch: every compared metric as (replayed, recorded, difference)."""
    rows = []
    for rep in reports:
        epoch = int(rep["epoch"])
        old = recorded.get(epoch, {})
        metrics = {}
        for key in COMPARED:
            if key not in rep:
                continue
            new = float(rep[key])
            was = float(old[key]) if key in old and old[key] is not None else None
            diff = new - was if was is not None else None
            metrics[key] = {"replayed": new, "recorded": was, "diff": diff}
        rows.append({"epoch": epoch, "metrics": metrics})
    return rows


def max_diff(rows: list[dict[str, Any]]) -> float | None:
    diffs = [abs(m["diff"]) for r in rows for m in r["metrics"].values() if m["diff"] is not None]
    diffs = [d for d in diffs if not math.isnan(d)]
    return max(diffs) if diffs else None


def print_table(rows: list[dict[str, Any]]) -> None:
    print(f"{'epoch':>5}  {'metric':<14}{'replayed':>12}{'recorded':>12}{'diff':>12}")
    for row in rows:
        for key, m in row["metrics"].items():
            was = "-" if m["recorded"] is None else f"{m['recorded']:.6f}"
            diff = "-" if m["diff"] is None else f"{m['diff']:+.2e}"
            print(f"{row['epoch']:>5}  {key:<14}{m['replayed']:>12.6f}{was:>12}{diff:>12}")


@contextlib.contextmanager
def replay_lock(args: argparse.Namespace) -> Iterator[None]:
    """A replay that writes into the run directory (RUN_DIR/replays/) holds the run's lock, as
    a run does: a live run (or its --fresh, which moves the folder) and a replay never share it."""
    from orchestrator.lock import RunLock
    from orchestrator.study import StudyError

    out = (args.out or args.run_dir / layout.REPLAY_FOLDER).absolute()
    if not out.is_relative_to(args.run_dir.absolute()) or not args.run_dir.is_dir():
        yield
        return
    try:
        lock = RunLock(args.run_dir)
        lock.__enter__()
    except StudyError as err:
        raise ReplayError(f"{err}; or replay into another folder with --out DIR") from None
    try:
        yield
    finally:
        lock.__exit__(None, None, None)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.device == "cpu":
        # Before torch is imported: the loop picks CUDA whenever it sees one.
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    else:
        import torch

        if not torch.cuda.is_available():
            print(
                "error: --device cuda, but no CUDA device is visible; use --device cpu",
                file=sys.stderr,
            )
            return 2
    try:
        with replay_lock(args):
            summary = replay(args)
    except ReplayError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print_table(summary["epochs"])
    worst = summary["max_abs_diff"]
    if worst is None:
        print("no recorded epochs to compare with")
    else:
        verdict = "match" if worst <= TOLERANCE else "DIFFER"
        print(f"max |diff| {worst:.2e} ({verdict} within {TOLERANCE:g})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
