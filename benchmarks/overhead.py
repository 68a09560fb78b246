"""Orchestration overhead: a bare PyTorch loop vs the same training as one archsweep trial.

Same model, data (Tiny ImageNet, first 10 classes, decoded arrays), batch size, optimizer,
precision and epochs; no augmentation in either, so the difference is what archsweep adds (the
tensor loader, metrics, TensorBoard, per-epoch checkpoints, Ray).

Robust to load drift (other jobs on a shared machine): the bare loop runs in blocks BEFORE and
AFTER each archsweep measurement (a1, b, a2, c, a3), so a load change during the run hits both
sides. (b) is compared with the bare blocks around it (a1, a2), (c) with a2 and a3. Every epoch's
images/s is printed; "steady" is the median of the epochs after each block's first (warm-up:
allocator, oneDNN plans, cuDNN autotuning), spread = (max - min) / median of those epochs.

    ARCHSWEEP_DATA=../shared/datasets python benchmarks/overhead.py [--epochs 4] [--classes 10]
    python benchmarks/overhead.py --device cuda --precision auto     # one trial on the GPU
    python benchmarks/overhead.py --device cuda --packed 1 2 4       # + N trials on one GPU

The last line is always `ratio (b)/(a): N.NNN` (goal >= 0.95).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from orchestrator.run import main as run_main
from trainables import ray_io
from trainables.data import DataSpec, dataset_dir, default_data_root, load_bundle
from trainables.loop import TrialSetup, run_trial
from trainables.memory_format import uses_channels_last
from trainables.models import build_model
from trainables.precision import autocast_context, resolve_precision

# Above this spread of the bare loop's blocks, load changes swamp a 5% overhead.
DRIFT_LIMIT = 0.15
MODEL = {"model": "resnet", "channels": (16, 32, 64, 128), "blocks": (1, 1, 1, 1), "stem": "cifar"}


def bare_loop(
    bundle, device: torch.device, precision: str, args: argparse.Namespace
) -> list[float]:
    """The notebook loop: normalized float tensors on the device, shuffled batches, Adam."""
    torch.manual_seed(0)
    model = build_model({**MODEL, "num_classes": len(bundle.class_names), "in_channels": 3})
    # The trial's memory format (trainables/memory_format.py): channels_last on CUDA; on a CPU
    # only where NHWC measures faster and oneDNN does not crash with it.
    fmt = torch.channels_last if uses_channels_last(True, device) else torch.contiguous_format
    model = model.to(device, memory_format=fmt)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    autocast = autocast_context(device, precision)
    mean = torch.tensor(bundle.mean, device=device).view(1, 3, 1, 1)
    std = torch.tensor(bundle.std, device=device).view(1, 3, 1, 1)
    images = torch.from_numpy(bundle.train.images).to(device)
    x_all = ((images.permute(0, 3, 1, 2).float() / 255 - mean) / std).contiguous(memory_format=fmt)
    y_all = torch.from_numpy(bundle.train.targets).long().to(device)
    rates = []
    for _ in range(args.epochs):
        model.train()
        perm = torch.randperm(len(y_all), device=device)
        if args.max_batches:
            perm = perm[: args.max_batches * args.batch_size]
        sync(device)
        t0 = time.perf_counter()
        for i in range(0, len(perm), args.batch_size):
            idx = perm[i : i + args.batch_size]
            with autocast():
                loss = F.cross_entropy(model(x_all[idx]).float(), y_all[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        sync(device)
        rates.append(len(perm) / (time.perf_counter() - t0))
    return rates


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def trial_config(classes: int, precision: str, args: argparse.Namespace) -> dict:
    return {
        "dataset": "tiny_imagenet",
        "classes": classes,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "optimizer": "adam",
        "lr": args.lr,
        "precision": precision,
        "augment": {},
        **({"max_batches": args.max_batches} if args.max_batches else {}),
        **MODEL,
    }


def in_process_loop(bundle, precision: str, args: argparse.Namespace, workdir: Path) -> list[float]:
    """archsweep's epoch loop without Ray (LocalSession): separates the loop's cost from Ray's."""
    session = ray_io.LocalSession(workdir / f"in_process_{time.monotonic_ns()}")
    ray_io.use_local_session(session)
    try:
        config = trial_config(args.classes, precision, args)
        run_trial(config, bundle, TrialSetup(task="classification"))
    finally:
        ray_io.use_local_session(None)
    return [r["images_per_s"] for r in session.reports]


def orchestrated(
    precision: str, args: argparse.Namespace, workdir: Path, trials: int = 1
) -> list[list[float]]:
    """`trials` identical trials (seeds 0..N-1) run at once as one study: per-trial epoch rates."""
    name = f"overhead_{trials}x_{time.monotonic_ns()}"
    study = workdir / f"{name}.py"
    base = trial_config(args.classes, precision, args)
    study.write_text(
        textwrap.dedent(f"""
        from ray import tune
        from orchestrator.study import Stage, Study
        study = Study(name={name!r}, trainable="classification", base={base!r},
                      stages=[Stage("only", scheduler="fifo",
                                    space={{"seed": tune.grid_search(list(range({trials})))}})])
    """)
    )
    gpus = (1.0 / trials) if args.device == "cuda" else 0.0
    argv = [str(study), "--data-root", str(args.data_root), "--storage", str(workdir / "runs")]
    argv += ["--cpus-per-trial", str(args.cpus_per_trial), "--gpus-per-trial", str(gpus)]
    code = run_main(argv)
    if code != 0:
        raise SystemExit(f"orchestrated run failed with exit code {code}")
    run_dir = workdir / "runs" / name
    record = json.loads((run_dir / "study.json").read_text())
    out = []
    for trial in record["stages"][0]["trials"]:
        rows = (run_dir / trial["trial_dir"] / "result.json").read_text().splitlines()
        out.append([json.loads(line)["images_per_s"] for line in rows])
    return out


def steady(rates: list[float]) -> float:
    """Median of the epochs after the first (the first is a warm-up)."""
    return statistics.median(rates[1:]) if len(rates) > 1 else rates[0]


def spread(values: list[float]) -> float:
    return (max(values) - min(values)) / statistics.median(values) if values else float("nan")


def print_row(name: str, rates: list[float]) -> None:
    per_epoch = " ".join(f"{r:7.1f}" for r in rates)
    tail = rates[1:] or rates
    print(f"{name:34}{per_epoch:>44}{steady(rates):9.1f}{spread(tail):8.0%}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--data-root", type=Path, default=default_data_root())
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--precision", choices=("auto", "bf16", "fp32"), default="fp32")
    p.add_argument("--cpus-per-trial", type=float, default=None, help="default: torch threads")
    p.add_argument("--max-batches", type=int, default=None, help="cap batches/epoch (dry runs)")
    p.add_argument(
        "--packed",
        type=int,
        nargs="*",
        default=[],
        help="also run N trials at once (one study, gpus-per-trial 1/N on cuda); total images/s",
    )
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = p.parse_args(argv)
    if args.epochs < 2:
        raise SystemExit(f"--epochs={args.epochs}: need >= 2 (the first epoch is a warm-up)")
    if any(n < 1 for n in args.packed):
        raise SystemExit(f"--packed {args.packed}: every count must be >= 1")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch sees no CUDA device here")
    if args.cpus_per_trial is None:
        args.cpus_per_trial = float(torch.get_num_threads())
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    device = torch.device(args.device)
    precision = resolve_precision(args.precision, device)
    spec = DataSpec(
        "tiny_imagenet", path=dataset_dir("tiny_imagenet", args.data_root), classes=args.classes
    )
    bundle = load_bundle(spec)
    print(
        f"data: {len(bundle.train.images)} train images, model {MODEL}, batch {args.batch_size}, "
        f"{args.epochs} epochs, device {device}, precision {precision}, torch threads "
        f"{torch.get_num_threads()}, max batches {args.max_batches}",
        flush=True,
    )
    blocks: list[tuple[str, list[float]]] = []
    packed: dict[int, list[list[float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        blocks.append(("(a1) bare loop, before (b)", bare_loop(bundle, device, precision, args)))
        blocks.append(("(b) archsweep trial (Ray)", orchestrated(precision, args, work)[0]))
        blocks.append(("(a2) bare loop, after (b)", bare_loop(bundle, device, precision, args)))
        blocks.append(
            ("(c) archsweep loop, no Ray", in_process_loop(bundle, precision, args, work))
        )
        blocks.append(("(a3) bare loop, after (c)", bare_loop(bundle, device, precision, args)))
        for n in args.packed:
            packed[n] = orchestrated(precision, args, work, trials=n)
    rows = dict(blocks)

    print(f"\n{'':34}{'training images/s per epoch':>44}{'steady':>9}{'spread':>8}")
    for name, rates in blocks:
        print_row(name, rates)
    a1, b, a2, c, a3 = (steady(r) for _, r in blocks)
    a_b = statistics.mean([a1, a2])  # the bare loop around (b)
    a_c = statistics.mean([a2, a3])
    drift = spread([a1, a2, a3])
    print(
        f"\nbare-loop drift over the run (a1, a2, a3 steady): {a1:.1f} / {a2:.1f} / {a3:.1f} "
        f"images/s, spread {drift:.0%}"
    )
    packed_totals = {}
    for n, per_trial in packed.items():
        total = sum(steady(r) for r in per_trial)
        packed_totals[n] = total
        print(
            f"{n} trial(s) at once{' on one GPU' if args.device == 'cuda' else ''}: "
            f"total {total:.1f} images/s (sum of per-trial steady rates: "
            f"{', '.join(f'{steady(r):.1f}' for r in per_trial)}); {total / a_b:.2f}x bare loop"
        )
    print(f"(c)/(a): {c / a_c:.3f}  (archsweep's loop without Ray vs the bare loop around it)")
    if drift > DRIFT_LIMIT:
        print(
            f"WARNING: the bare loop drifted {drift:.0%} during the run (> {DRIFT_LIMIT:.0%}): "
            "the machine's load changed too much for the ratio to measure archsweep's overhead; "
            "rerun when the load average is below the core count."
        )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "device": str(device),
                    "precision": precision,
                    "epochs": rows,
                    "steady": {"a1": a1, "b": b, "a2": a2, "c": c, "a3": a3},
                    "ratio_b_a": b / a_b,
                    "ratio_c_a": c / a_c,
                    "drift": drift,
                    "packed_total_images_per_s": packed_totals,
                },
                indent=1,
            )
        )
    print(f"ratio (b)/(a): {b / a_b:.3f}")


if __name__ == "__main__":
    main()
