"""`python -m orchestrator.run STUDY_FILE`: run a study's stages as Ray Tune sweeps.

Composes the pieces; trains nothing itself. Running the same command again resumes: finished
stages are read back from study.json, the running stage's Tuner is restored (finished trials are
not run again, unfinished ones continue from their last checkpoint).
"""

from __future__ import annotations

import argparse
import ast
import errno
import math
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from orchestrator import interrupts, ray_setup
from orchestrator.interrupts import Interrupted
from orchestrator.lock import RunLock
from orchestrator.records import STUDY_FILE, StudyFile, read_study
from orchestrator.stages import RunContext, run_stage, validate_stages
from orchestrator.storage_check import (
    SHARED_STORAGE_FIX,
    StorageFull,
    check_free_space,
    check_storage_on_every_node,
    disk_full,
    full_message,
)
from orchestrator.study import Study, StudyError, load_study
from orchestrator.tuner import Resources
from trainables.config import ConfigError
from trainables.contract import DEFAULT_METRIC, StageRecord, StudyRecord, TrialRecord
from trainables.data import DataError, default_cache_dir, default_data_root
from trainables.data.source import BundleCache
from trainables.run_dir import LOCK_FILE
from trainables.storage import Location, StorageError, mirror_dir

# Enough to exercise every code path of every trial (train, validate, checkpoint, report).
SMOKE = {"epochs": 1, "max_batches": 2, "batch_size": 32}
# Named budgets: --set values under one name that the report prints on its first line. "quick"
# is the README's first command: the activation study on a 2-core CPU in minutes (32 px, 2
# epochs; see README for the measured time), a real but small result, never the course's.
BUDGETS: dict[str, dict[str, Any]] = {"quick": {"image_size": 32, "epochs": 2}}
INTERRUPTED = "interrupted: run the same command again to resume"
TRIALS_FAILED = 3  # the study finished, but some trial ended in an error
NAME_MAX = 255  # bytes in one folder name (ext4, xfs, APFS, NTFS in UTF-16 units)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m orchestrator.run",
        description="Run a study file's stages as Ray Tune sweeps (resumes when run again).",
    )
    p.add_argument("study_file", help="a study file, e.g. search_spaces/activations.py")
    p.add_argument(
        "--smoke",
        action="store_true",
        help="every trial one epoch of 2 batches of 32: validates a study in a minute",
    )
    p.add_argument(
        "--data-root",
        type=Path,
        default=None,
        help="folder holding the data sets (default: $ARCHSWEEP_DATA, else ./data)",
    )
    p.add_argument("--storage", default="runs", help="where experiment folders go (default: runs)")
    p.add_argument("--name", default=None, help="experiment folder name (default: the study's)")
    p.add_argument(
        "--address",
        default=None,
        help="join a Ray cluster ('auto' = the one this machine belongs to)",
    )
    p.add_argument("--cpus-per-trial", type=number(float, minimum=0, strict=True), default=1.0)
    p.add_argument(
        "--gpus-per-trial",
        type=number(float, minimum=0),
        default=0.0,
        help="GPUs per trial; fractions such as 0.25 share one GPU among trials",
    )
    p.add_argument(
        "--max-concurrent", type=number(int, minimum=0), default=0, help="0 = as many as fit"
    )
    p.add_argument(
        "--seed",
        type=number(int, minimum=0, maximum=2**32 - 1),  # numpy's RandomState range
        default=0,
        help="seed of samplers (random, Optuna)",
    )
    p.add_argument(
        "--budget",
        choices=sorted(BUDGETS),
        default=None,
        help="a named reduced budget (quick: 32 px, 2 epochs) instead of the study's; the "
        "report names it on its first line. --set values still win",
    )
    p.add_argument(
        "--scheduler",
        choices=("asha", "fifo"),
        default=None,
        help="override every stage's scheduler for this run (default: the study file's)",
    )
    p.add_argument(
        "--fresh",
        action="store_true",
        help="start over; the old experiment folder is moved aside, never deleted",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a base-config value of every stage, e.g. --set epochs=5",
    )
    return p.parse_args(argv)


def number(kind: type, minimum: float, strict: bool = False, maximum: float | None = None) -> Any:
    """argparse type: a finite number >= minimum (> minimum when strict), else exit 2 saying so.

    float() reads "nan" and "inf": nan compares false with every bound, so Ray would be asked
    for nan CPUs and wait forever; both are refused here by name.
    """

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            what = "an integer" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        if value < minimum or (strict and value == minimum):
            bound = f"> {minimum:g}" if strict else f">= {minimum:g}"
            raise argparse.ArgumentTypeError(f"{text} must be {bound}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"{text} must be <= {kind(maximum)}")
        return value

    return parse


def run_directory(storage: Location, name: str) -> Location:
    """storage/name, refusing a name that would leave storage and storage that cannot hold it."""
    if not name or name in (".", "..") or "/" in name or "\\" in name:
        raise StudyError(
            f"--name {name!r} must be a plain folder name (no '/', not '.' or '..'), e.g. "
            "--name activations_seed1"
        )
    # A folder name holds 255 bytes; --fresh adds '.old-YYYYmmdd-HHMMSS-N' to it.
    if len(os.fsencode(name)) > NAME_MAX - len(".old-20261205-070000-99"):
        raise StudyError(
            f"--name is {len(os.fsencode(name))} bytes long; a run folder's name holds at most "
            f"{NAME_MAX - len('.old-20261205-070000-99')} (file systems allow {NAME_MAX}, and "
            "--fresh adds '.old-<time>'); pick a shorter name"
        )
    if storage.remote:
        return storage.join(name)
    folder = storage.local_path
    if folder.exists() and not folder.is_dir():
        raise StudyError(f"--storage {folder} is a file; give a folder (default: runs)")
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    if not os.access(existing, os.W_OK | os.X_OK):
        raise StudyError(f"--storage {folder}: {existing} is not writable; pick another folder")
    return storage.join(name)


def local_run_dir(location: Location) -> Path:
    """The run directory on this machine: the folder itself, or a remote run's local mirror
    holding its small files (study.json, evaluation/, ASHA logs), fetched here to resume."""
    if not location.remote:
        return location.local_path
    mirror = mirror_dir(location, default_cache_dir())
    if location.join(STUDY_FILE).is_file():
        location.download(mirror, exclude_dirs=("checkpoint_",))
    return mirror


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """`--set k=v`: v is read as a Python literal (5, 1e-3, [1,2], 'adam'), else as a string."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise StudyError(f"--set {pair!r} must look like KEY=VALUE, e.g. --set epochs=5")
        try:
            out[key.strip()] = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            out[key.strip()] = raw
    return out


def move_aside(run_dir: Path) -> Path | None:
    """Rename run_dir to a new `<name>.old-<time>[-N]`; None when there is nothing to move.

    rename(2) onto an existing non-empty folder fails (ENOTEMPTY) and onto an empty one
    replaces it: each try takes a name no folder has, and a lost race tries the next.
    """
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for n in range(1, 100):
        target = run_dir.with_name(f"{run_dir.name}.old-{stamp}" + (f"-{n}" if n > 1 else ""))
        if target.exists():
            continue
        try:
            run_dir.rename(target)
        except FileNotFoundError:
            return None
        except OSError as err:
            if err.errno in (errno.ENOTEMPTY, errno.EEXIST):
                continue
            raise StudyError(f"--fresh: cannot move {run_dir} aside ({err.strerror})") from None
        return target
    raise StudyError(f"--fresh: no free name to move {run_dir} aside; tidy the .old folders")


def study_header(study: Study, args: argparse.Namespace, overrides: dict) -> StudyRecord:
    """A new study.json's record: what the study is and how this command runs it."""
    metric, mode = (study.metric, study.mode) if study.metric else DEFAULT_METRIC[study.trainable]
    return StudyRecord(
        study=study.name,
        trainable=study.trainable,
        metric=metric,
        mode=mode,
        description=study.description,
        constraints=study.constraints,
        run_settings={
            "set": overrides,
            "smoke": bool(args.smoke),
            **({"budget": args.budget} if args.budget else {}),
            **({"scheduler": args.scheduler} if args.scheduler else {}),
        },
        stages=[StageRecord(name=s.name) for s in study.stages],
    )


def check_requests(args: argparse.Namespace) -> None:
    """What Ray refuses only once it has started: a GPU share above 1 that is not whole, and
    requests finer than its resource unit (1/10000)."""
    gpus = args.gpus_per_trial
    if gpus > 1 and gpus != int(gpus):
        raise StudyError(
            f"--gpus-per-trial {gpus:g}: a share above 1 must be a whole number of GPUs "
            "(Ray cannot split a trial across a fraction of a second GPU); e.g. 1, 2 or 0.5"
        )
    for flag, value in (("--cpus-per-trial", args.cpus_per_trial), ("--gpus-per-trial", gpus)):
        if value and round(value * 10_000) == 0:
            raise StudyError(f"{flag} {value:g} is below Ray's resource unit 0.0001")


def run_study(study: Study, args: argparse.Namespace) -> int:
    check_requests(args)
    storage = Location(args.storage)
    location = run_directory(storage, study.name if args.name is None else args.name)
    overrides = {**BUDGETS.get(args.budget or "", {}), **parse_overrides(args.set)}
    warn_shadowed(study, parse_overrides(args.set))
    validate_stages(study, overrides)  # the study's own values first; then --smoke's
    if args.smoke:
        validate_stages(study, {**overrides, **SMOKE})
    ray_setup.check_address(args.address)
    if args.fresh:
        fresh_start(location)
    run_dir = local_run_dir(location)
    check_free_space(run_dir)
    with RunLock(run_dir, location):
        try:
            return run_locked(study, args, storage, location, run_dir, overrides)
        except (KeyboardInterrupt, Interrupted, StudyError):
            raise
        except Exception as err:
            if not interrupts.requested() and disk_full(run_dir, err):
                raise StorageFull(full_message(run_dir)) from None
            raise


def warn_shadowed(study: Study, overrides: dict[str, Any]) -> None:
    """A --set key that a stage searches keeps the searched values there: say so."""
    for stage in study.stages:
        searched = {k for key in stage.space for k in (key if isinstance(key, tuple) else (key,))}
        for key in sorted(searched & set(overrides)):
            print(
                f"warning: --set {key}={overrides[key]!r} does not apply to stage "
                f"{stage.name!r}, which searches {key}; the searched values win there",
                file=sys.stderr,
            )


def fresh_start(location: Location) -> None:
    """Move the old run aside while holding its lock: a live run there is refused (naming its
    pid and host), and of two --fresh at once only one moves the folder."""
    if location.remote:
        raise StudyError(
            f"--fresh cannot move a run aside in {location} (object stores have no rename); "
            "start the new run with another --name"
        )
    run_dir = location.local_path
    if not run_dir.exists():
        return
    with RunLock(run_dir) as lock:
        if not any(p.name != LOCK_FILE for p in run_dir.iterdir()):
            return  # only our lock: nothing to keep
        moved = move_aside(run_dir)
        if moved is None:
            return
        lock.moved_to(moved / LOCK_FILE)  # released there: the old run is not "running"
    print(f"--fresh: previous run kept at {moved}")


def run_locked(
    study: Study,
    args: argparse.Namespace,
    storage: Location,
    location: Location,
    run_dir: Path,
    overrides: dict,
) -> int:
    header = study_header(study, args, overrides)
    refuse_other_study(run_dir, study.name)
    journal = StudyFile.open(run_dir, header, location)
    resources = Resources(args.cpus_per_trial, args.gpus_per_trial, args.max_concurrent, args.seed)
    ctx = RunContext(
        study=study,
        journal=journal,
        data=BundleCache(args.data_root or default_data_root()),
        resources=resources,
        metric=header.metric,
        mode=header.mode,
        overrides={**overrides, **(SMOKE if args.smoke else {})},
        storage=storage,
        start_ray=lambda: start_ray_once(args, resources, location),
        scheduler=args.scheduler,
    )
    ray_setup.log_to_file(run_dir / "orchestrator.log")
    print(f"study {study.name}: {len(study.stages)} stage(s) -> {location}", flush=True)
    for stage in study.stages:
        run_stage(ctx, stage)
    interrupts.stop_if_requested("the study's end")
    journal.record.status = "finished"
    journal.save()
    print(
        f"study {study.name} finished: {location.join(STUDY_FILE)}; "
        f"report: python -m analysis.report {location}",
        flush=True,
    )
    return errored_trials_exit(journal.record)


def refuse_other_study(run_dir: Path, name: str) -> None:
    """A run directory holding another study is not resumed as this one, even when the two
    plans are the same: study.json would keep the other's name and its results would pass
    for this study's."""
    path = run_dir / STUDY_FILE
    if not path.is_file():
        return
    recorded = read_study(path).study
    if recorded != name:
        raise StudyError(
            f"{run_dir} holds study {recorded!r}, not {name!r}: give this study its own "
            f"folder (--name {name}), or run {recorded!r}'s own file to resume it"
        )


def start_ray_once(args: argparse.Namespace, resources: Resources, location: Location) -> None:
    """Ray starts when the first stage is about to train: the data set and FromStudy
    references are checked first, so their mistakes cost seconds, not a Ray start."""
    try:
        ray_setup.start_ray(args.address)
    except SystemExit as stop:  # ray.init's SIGTERM handler: sys.exit(15) while Ray starts
        if stop.code != signal.SIGTERM:
            raise
        interrupts.note(signal.SIGTERM)
        raise Interrupted("Ray start-up") from None
    # After ray.init, whose core installs its own SIGTERM handler (a C stack dump, exit 134).
    interrupts.install()
    ray_setup.check_resources(
        resources.cpus_per_trial, resources.gpus_per_trial, joined=bool(args.address)
    )
    if args.address:  # a cluster: every node must see the run's storage
        check_storage_on_every_node(location)


def errored_trials_exit(record: StudyRecord) -> int:
    """0 when every trial completed, was stopped by ASHA, diverged or was infeasible; else
    TRIALS_FAILED, with each errored trial and the last line of its error."""
    errored = [(s.name, t) for s in record.stages for t in s.trials if t.status == "error"]
    for stage, trial in errored:
        print(f"error: [{stage}] trial {trial.name} failed: {error_line(trial)}", file=sys.stderr)
    if errored:
        print(
            f"{len(errored)} trial(s) failed (see above and study.json); the study's other "
            f"results are recorded. Exit code {TRIALS_FAILED}.",
            file=sys.stderr,
        )
        return TRIALS_FAILED
    return 0


# Ray's words when a trial's node cannot see the run's storage (its marker file is missing there).
STORAGE_UNREACHABLE = "Unable to set up cluster storage"


def error_line(trial: TrialRecord) -> str:
    """The line of a trial's error that says what went wrong (Ray ends some with a URL)."""
    reason = (trial.reason or "").strip()
    if STORAGE_UNREACHABLE in reason:
        node = next((a["node"] for a in reversed(trial.attempts) if a.get("node")), None)
        where = f"node {node}" if node else "the node it ran on"
        return f"the run's storage is not reachable from {where}. {SHARED_STORAGE_FIX}"
    return (reason.splitlines()[-1:] or ["(no message)"])[0]


def main(argv: list[str] | None = None, *, as_command: bool = False) -> int:
    """`as_command`: this process is the command; its stop handlers stay to the very end."""
    with interrupts.handled(restore=not as_command):
        try:
            code = parse_and_run(argv)
        except (KeyboardInterrupt, Interrupted):
            code = 130
        except Exception:
            # After a stop, what fails on the way out (a worker that was stopping, a closed
            # connection) is the stop's doing, not an error of the study.
            if not interrupts.requested():
                raise
            code = 130
        if code == 130 or interrupts.requested():  # a stop a library caught is still a stop
            print(INTERRUPTED, file=sys.stderr)
            return 130
        return code


def parse_and_run(argv: list[str] | None) -> int:
    args = parse_args(argv)
    try:
        study = load_study(args.study_file)
        return run_study(study, args)
    except (StudyError, ConfigError, DataError, StorageError) as err:
        if interrupts.requested():  # e.g. a data read cut short by the stop
            raise Interrupted(str(err)) from None
        print(f"error: {err}", file=sys.stderr)
        return 2
    except StorageFull as err:
        print(f"error: {err}", file=sys.stderr)
        return TRIALS_FAILED


def exit_quietly(code: int) -> None:
    """Ray's shutdown runs at exit: a stop that comes then ends the process at once, not with a
    KeyboardInterrupt traceback from inside Ray's atexit hook."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: os._exit(130))
    sys.exit(code)


if __name__ == "__main__":
    exit_quietly(main(as_command=True))
