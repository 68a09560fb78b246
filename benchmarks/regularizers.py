"""Does each regularizer change what it should? Mechanism checks on the CPU, side by side.

Trains a narrow version of variant 1's winner (GELU ResNet, CIFAR stem; default 32-64-128 with
one block per stage, about an eighth of the winner's compute, so the whole run fits ~10 CPU
minutes) with the course's final recipe (AdamW + cosine, crop 4 + flip), once per regularizer,
in this process
(the trial loop without Ray, one thread), on a few Tiny ImageNet classes at the `quick` budget's
32 px, and prints one table:

  - train-val gap: accuracy on the (clean, unaugmented) train split minus val accuracy after
    the last epoch, both measured on the final weights (per-epoch train accuracy under mixup is
    on mixed images, so it is not comparable); mixup and CutMix should narrow it;
  - val jitter: the std of epoch-to-epoch val accuracy changes over the last epochs; the EMA
    should smooth it. The EMA run also reports its raw weights' val accuracy each epoch
    (val_acc_raw): the same trajectory without the average, the fairest comparison.

These are mechanism checks, not accuracy results (few classes, few epochs, 32 px).

    ARCHSWEEP_DATA=../shared/datasets python benchmarks/regularizers.py \\
        [--classes 4 --epochs 10 --image-size 32 --channels 32,64,128 --blocks 1
         --only baseline,mixup,cutmix,ema,drop_path]
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from search_spaces.final_recipe import VARIANT1_WINNER  # noqa: E402
from trainables import ray_io  # noqa: E402
from trainables.config import with_defaults  # noqa: E402
from trainables.data import DataSpec, default_data_root, load_bundle  # noqa: E402
from trainables.ema import eval_weights  # noqa: E402
from trainables.evaluate import predict  # noqa: E402
from trainables.loop import TrialSetup, run_trial  # noqa: E402
from trainables.models import build_model  # noqa: E402

BASE = {
    "dataset": "tiny_imagenet",
    "batch_size": 128,
    "optimizer": "adamw",
    "scheduler": "cosine",
    "lr": 2e-3,
    "weight_decay": 0.05,
    "augment": {"hflip": True, "crop_padding": 4},
    "precision": "fp32",
    "seed": 0,
    **VARIANT1_WINNER,
}

VARIANTS: dict[str, dict[str, Any]] = {
    "baseline": {},
    "mixup": {"mixup_alpha": 0.8},
    "cutmix": {"cutmix_alpha": 1.0},
    "ema": {"ema_decay": 0.98},  # ~14 steps per epoch here: a horizon of ~3.5 epochs
    "drop_path": {"drop_path": 0.2},
    "sgd_onecycle": {"optim_preset": "sgd_nesterov_onecycle", "lr": 0.1, "weight_decay": 5e-4},
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--classes", type=int, default=4)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument(
        "--channels", default="32,64,128", help="per-stage widths (the winner: 64,128,256)"
    )
    p.add_argument("--blocks", type=int, default=1, help="blocks per stage (the winner: 2)")
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument(
        "--jitter-epochs",
        type=int,
        default=5,
        help="val jitter: std of the changes over the last N epochs",
    )
    p.add_argument(
        "--only",
        default="baseline,mixup,cutmix,ema,drop_path",
        help=f"comma-separated variants from {', '.join(VARIANTS)}",
    )
    p.add_argument("--data-root", type=Path, default=None)
    return p.parse_args(argv)


def jitter(values: list[float]) -> float:
    steps = [b - a for a, b in itertools.pairwise(values)]
    return statistics.pstdev(steps) if len(steps) > 1 else float("nan")


def accuracy(state: dict, bundle: Any, split: Any) -> float:
    model = build_model(state["model_config"])
    model.load_state_dict(eval_weights(state))
    model.eval()
    y, pred, _, _ = predict(
        model, bundle, state, torch.device("cpu"), "classification", split=split
    )
    return float((y == pred).mean())


def run_variant(name: str, extra: dict, bundle: Any, args: argparse.Namespace, tmp: Path) -> dict:
    config = {
        **BASE,
        "epochs": args.epochs,
        "classes": args.classes,
        "image_size": args.image_size,
        "blocks": args.blocks,
        "channels": tuple(int(c) for c in args.channels.split(",")),
        **extra,
    }
    session = ray_io.LocalSession(tmp / name)
    ray_io.use_local_session(session)
    t0 = time.perf_counter()
    try:
        run_trial(with_defaults(config), bundle, TrialSetup(task="classification"))
    finally:
        ray_io.use_local_session(None)
    seconds = time.perf_counter() - t0
    assert session.checkpoint_dir is not None, f"{name}: the trial saved no checkpoint"
    state = ray_io.load_state(session.checkpoint_dir)
    vals = [r["val_acc"] for r in session.reports]
    tail = args.jitter_epochs + 1
    out = {
        "variant": name,
        "train_clean": accuracy(state, bundle, bundle.train),
        "val": vals[-1],
        "best_val": max(vals),
        "train_aug": session.reports[-1]["train_acc"],
        "jitter": jitter(vals[-tail:]),
        "seconds": seconds,
    }
    out["gap"] = out["train_clean"] - accuracy(state, bundle, bundle.val)
    if "val_acc_raw" in session.reports[-1]:
        out["jitter_raw"] = jitter([r["val_acc_raw"] for r in session.reports][-tail:])
        out["val_raw"] = session.reports[-1]["val_acc_raw"]
    print(f"  {name}: {seconds:.0f} s, val per epoch {[round(v, 3) for v in vals]}", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    bad = [n for n in names if n not in VARIANTS]
    if bad:
        print(f"unknown variant(s) {bad}; choose from {', '.join(VARIANTS)}", file=sys.stderr)
        return 2
    root = args.data_root or default_data_root()
    spec = DataSpec(
        "tiny_imagenet",
        path=root / "tiny-imagenet-200",
        classes=args.classes,
        image_size=args.image_size,
    )
    bundle = load_bundle(spec)
    print(
        f"{args.classes} classes, {len(bundle.train)} train / {len(bundle.val)} val images, "
        f"{args.image_size} px, {args.epochs} epochs, channels {args.channels} x "
        f"{args.blocks} block(s), {args.threads} thread(s)",
        flush=True,
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            rows.append(run_variant(name, VARIANTS[name], bundle, args, Path(tmp)))
    n = args.jitter_epochs
    print()
    print(
        f"| variant | train acc (clean) | val acc | train-val gap | best val | "
        f"val jitter (last {n}) | EMA: raw val / raw jitter | s |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        raw = f"{r['val_raw']:.3f} / {r['jitter_raw']:.4f}" if "val_raw" in r else "—"
        print(
            f"| {r['variant']} | {r['train_clean']:.3f} | {r['val']:.3f} | {r['gap']:+.3f} | "
            f"{r['best_val']:.3f} | {r['jitter']:.4f} | {raw} | {r['seconds']:.0f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
