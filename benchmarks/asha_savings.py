"""What ASHA buys: the same grid on the same data, once FIFO (every trial to the end), once ASHA.

Both runs are `python -m orchestrator.run` on a generated study file (the activations grid of
search_spaces/activations.py on Tiny ImageNet, at a reduced budget), with the same seeds. Trials
are deterministic on CPU (one thread each, seeded data order and augmentation; see
orchestrator/replay.py), so an ASHA trial's epochs are exactly the FIFO trial's epochs up to where
ASHA stopped it: the comparison has no noise between the runs.

Prints per trial the epochs each run trained and the best val_acc, then the totals, their ratio,
both winners, and finally the line

    ASHA/FIFO epochs: 0.NNx, winner: same | within N pt | different

"within N pt": ASHA picked another configuration whose FIFO accuracy is N points (<= 1) below the
FIFO winner's. Also printed: the floor no ASHA run can go below for this grid (Ray's ASHA is
asynchronous: the first trial to reach a rung is always promoted, so at least one trial runs to
the end and every other trial to the first rung) and the large-grid limit.

    ARCHSWEEP_DATA=../shared/datasets python benchmarks/asha_savings.py \\
        [--epochs 4 --grace 1 --reduction-factor 2 --image-size 32 --max-batches 10]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
ACTIVATIONS = ("relu", "leaky_relu", "elu", "gelu")
# search_spaces/common.py's RESNET_SMALL at a quarter of the width and one block per stage: the
# reduced budget has to fit a 2-core CPU twice over in 20 minutes.
MODEL = {"model": "resnet", "channels": (16, 32, 64, 128), "blocks": 1, "stem": "cifar"}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=4, help="epochs of a full trial (ASHA's max_t)")
    p.add_argument("--grace", type=int, default=1, help="ASHA grace period (epochs)")
    p.add_argument("--reduction-factor", type=int, default=2, help="ASHA reduction factor")
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument(
        "--max-batches",
        type=int,
        default=10,
        help="training batches per epoch (0 = the whole split); validation is capped the same",
    )
    p.add_argument(
        "--lrs",
        type=float,
        nargs="*",
        default=[],
        help="also grid over these learning rates (4 x len(lrs) trials); default: lr 1e-3 only",
    )
    p.add_argument("--max-concurrent", type=int, default=2)
    p.add_argument("--data-root", type=Path, default=None, help="default: $ARCHSWEEP_DATA")
    p.add_argument("--storage", type=Path, default=None, help="keep the runs here (default: tmp)")
    args = p.parse_args(argv)
    if args.grace < 1 or args.grace > args.epochs:
        p.error(f"--grace {args.grace} is not valid; use 1..--epochs ({args.epochs})")
    if args.reduction_factor < 2:
        p.error(f"--reduction-factor {args.reduction_factor} is not valid; use an int >= 2")
    return args


def study_text(name: str, scheduler: str, args: argparse.Namespace) -> str:
    base = {
        "dataset": "tiny_imagenet",
        "classes": args.classes,
        "image_size": args.image_size,
        "val_fraction": 0.1,
        "test_split": "official",
        "split_seed": 0,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "optimizer": "adam",
        "lr": 1e-3,
        "augment": {"hflip": True, "crop_padding": 4},
        "max_batches": args.max_batches or None,
        **MODEL,
    }
    space = f'{{"activation": tune.grid_search({list(ACTIVATIONS)!r})'
    if args.lrs:
        space += f', "lr": tune.grid_search({list(args.lrs)!r})'
    space += "}"
    asha = {"grace_period": args.grace, "reduction_factor": args.reduction_factor}
    return textwrap.dedent(f"""
        from ray import tune
        from orchestrator.study import Stage, Study
        study = Study(name={name!r}, trainable="classification", base={base!r}, asha={asha!r},
                      stages=[Stage("activations", label="3.3", scheduler={scheduler!r},
                                    space={space})])
    """)


def run(scheduler: str, args: argparse.Namespace, storage: Path) -> tuple[dict[str, Any], float]:
    """One orchestrator run; (its study.json, wall seconds)."""
    name = f"asha_savings_{scheduler}"
    study = storage / f"{name}.py"
    study.write_text(study_text(name, scheduler, args))
    command = [sys.executable, "-m", "orchestrator.run", str(study), "--storage", str(storage)]
    command += ["--max-concurrent", str(args.max_concurrent), "--fresh"]
    if args.data_root:
        command += ["--data-root", str(args.data_root)]
    t0 = time.perf_counter()
    log = storage / f"{name}.log"
    with open(log, "w") as out:
        code = subprocess.call(command, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
    if code != 0:
        raise SystemExit(
            f"{scheduler} run failed (exit {code}); see {log}:\n{log.read_text()[-3000:]}"
        )
    record = json.loads((storage / name / "study.json").read_text())
    return record, time.perf_counter() - t0


def trials_by_label(record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["label"]: t for t in record["stages"][0]["trials"]}


def best_acc(trial: dict[str, Any]) -> float:
    return float(trial["best"].get("val_acc", math.nan))


def winner_verdict(fifo: dict[str, Any], asha: dict[str, Any]) -> str:
    """same | within N pt | different, judged on the FIFO run (every trial trained to the end)."""
    fifo_best = fifo["stages"][0]["best"]["label"]
    asha_best = asha["stages"][0]["best"]["label"]
    if fifo_best == asha_best:
        return "same"
    trials = trials_by_label(fifo)
    gap = 100 * (best_acc(trials[fifo_best]) - best_acc(trials[asha_best]))
    return f"within {gap:.1f} pt" if gap <= 1.0 else "different"


def asha_floor(n: int, grace: int, epochs: int) -> float:
    """The fewest epochs any asynchronous ASHA run of n trials can train, as a fraction of FIFO's:
    the first trial to reach each rung is always promoted (one trial runs to the end) and every
    trial trains at least up to the grace period."""
    return (epochs + (n - 1) * grace) / (n * epochs)


def asha_limit(grace: int, rf: int, epochs: int) -> float:
    """Large-grid limit of ASHA's epochs / FIFO's: a fraction rf^-k of the trials reaches rung k
    (at grace * rf^k epochs) and trains on to the next rung or to max_t."""
    rungs = [grace * rf**k for k in range(64) if grace * rf**k < epochs]
    cost = grace + sum(
        ((rungs[k + 1] if k + 1 < len(rungs) else epochs) - rungs[k]) / rf ** (k + 1)
        for k in range(len(rungs))
    )
    return cost / epochs


def print_report(
    fifo: dict[str, Any], asha: dict[str, Any], times: tuple[float, float], args: argparse.Namespace
) -> None:
    f_trials, a_trials = trials_by_label(fifo), trials_by_label(asha)
    print(
        f"{'trial':<8}{'config':<26}{'FIFO ep':>8}{'FIFO best':>10}{'ASHA ep':>8}"
        f"{'ASHA best':>10}  ASHA status"
    )
    for label, ft in f_trials.items():
        at = a_trials[label]
        cfg = ft["config"]["activation"] + (f" lr={ft['config']['lr']:g}" if args.lrs else "")
        print(
            f"{label:<8}{cfg:<26}{ft['epochs_run']:>8}{best_acc(ft):>10.4f}{at['epochs_run']:>8}"
            f"{best_acc(at):>10.4f}  {at['status']}"
        )
    f_epochs = sum(t["epochs_run"] for t in f_trials.values())
    a_epochs = sum(t["epochs_run"] for t in a_trials.values())
    n = len(f_trials)
    print(
        f"epochs trained: FIFO {f_epochs}, ASHA {a_epochs}; wall time: FIFO {times[0]:.0f} s, "
        f"ASHA {times[1]:.0f} s"
    )
    print(
        f"winners: FIFO {fifo['stages'][0]['best']['label']} "
        f"({fifo['stages'][0]['best']['value']:.4f}), ASHA {asha['stages'][0]['best']['label']} "
        f"({asha['stages'][0]['best']['value']:.4f})"
    )
    limit = asha_limit(args.grace, args.reduction_factor, args.epochs)
    print(
        f"ASHA floor for {n} trials, grace {args.grace}, max_t {args.epochs}: "
        f"{asha_floor(n, args.grace, args.epochs):.2f}x; large-grid limit at reduction factor "
        f"{args.reduction_factor}: {limit:.2f}x"
    )
    print(f"ASHA/FIFO epochs: {a_epochs / f_epochs:.2f}x, winner: {winner_verdict(fifo, asha)}")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    os.environ.setdefault("ARCHSWEEP_DATA", str(REPO.parent / "shared" / "datasets"))
    with tempfile.TemporaryDirectory(prefix="asha-savings-") as tmp:
        storage = args.storage or Path(tmp)
        storage.mkdir(parents=True, exist_ok=True)
        n = len(ACTIVATIONS) * max(len(args.lrs), 1)
        print(
            f"grid: {n} trials, {args.epochs} epochs, ASHA grace {args.grace} reduction factor "
            f"{args.reduction_factor}; data: Tiny ImageNet {args.classes} classes at "
            f"{args.image_size}px, {args.max_batches or 'all'} batches of {args.batch_size} per "
            f"epoch; model {MODEL}",
            flush=True,
        )
        fifo, t_fifo = run("fifo", args, storage)
        asha, t_asha = run("asha", args, storage)
        print_report(fifo, asha, (t_fifo, t_asha), args)


if __name__ == "__main__":
    main()
