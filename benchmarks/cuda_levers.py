"""Training throughput levers on a GPU, measured side by side in one run.

The variant-1 winner (ResNet 64-128-256, two basic blocks per stage, GELU, 2.78M parameters) at
64 px on 10 Tiny ImageNet classes, trained with the product's own input pipeline (TensorLoader,
pad-4 crop + flip drawn on the device) and precision ("auto": bf16 on Ampere or newer):

    baseline        eager, NCHW, batch 128 (the product's defaults)
    channels_last   NHWC memory format for model and batches
    batch 256       twice the batch (same images per step count)
    compile         torch.compile(model)                      (compile time reported apart)
    cuda graphs     torch.compile(model, mode="reduce-overhead"): CUDA graphs where they apply

Each lever is compared with the baseline measured right before it (A-B pairs, `--rounds`
times, alternating), so a change of clock or of other jobs hits both sides; the first steps of
every variant are warm-up and left out. Prints one row per lever and `winner: NAME`.

    python benchmarks/cuda_levers.py --data-root ../shared/datasets        # on the GPU
    python benchmarks/cuda_levers.py --device cpu --quick                   # wiring check
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from trainables.data import (
    AugmentConfig,
    DataSpec,
    TensorLoader,
    dataset_dir,
    default_data_root,
    load_bundle,
)
from trainables.models import build_model
from trainables.precision import autocast_context, resolve_precision

MODEL = {
    "model": "resnet",
    "channels": (64, 128, 256),
    "blocks": (2, 2, 2),
    "stem": "cifar",
    "activation": "gelu",
}
QUICK_MODEL = {"model": "resnet", "channels": (8, 16), "blocks": (1, 1), "stem": "cifar"}


@dataclass(frozen=True)
class Variant:
    name: str
    batch_size: int = 128
    channels_last: bool = False
    compile_mode: str | None = None  # None: eager


def variants(batch: int) -> list[Variant]:
    return [
        Variant("channels_last", batch, channels_last=True),
        Variant(f"batch {2 * batch}", 2 * batch),
        Variant("compile", batch, compile_mode="default"),
        Variant("cuda graphs", batch, compile_mode="reduce-overhead"),
    ]


def measure(bundle, variant: Variant, args, device: torch.device) -> dict[str, float]:
    """Images/s over `args.steps` timed steps after `args.warmup` untimed ones."""
    torch.manual_seed(0)
    model_cfg = {
        **(QUICK_MODEL if args.quick else MODEL),
        "num_classes": len(bundle.class_names),
        "in_channels": 3,
    }
    model = build_model(model_cfg).to(device)
    fmt = torch.channels_last if variant.channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    loader = TensorLoader(
        bundle.train,
        variant.batch_size,
        device,
        shuffle=True,
        augment=AugmentConfig(hflip=True, crop_padding=4),
        mean=bundle.mean,
        std=bundle.std,
        channels_last=variant.channels_last,
        drop_last=True,
    )
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    autocast = autocast_context(device, args.resolved_precision)
    step_model = model
    compile_s = 0.0
    if variant.compile_mode is not None:
        step_model = torch.compile(model, mode=variant.compile_mode)

    def batches():
        while True:
            yield from loader

    stream = batches()

    def step() -> None:
        x, y = next(stream)
        with autocast():
            loss = F.cross_entropy(step_model(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    t = time.perf_counter()
    for _ in range(args.warmup):
        step()
    sync()
    compile_s = time.perf_counter() - t if variant.compile_mode else 0.0
    t = time.perf_counter()
    for _ in range(args.steps):
        step()
    sync()
    seconds = time.perf_counter() - t
    return {"images_per_s": args.steps * variant.batch_size / seconds, "warmup_s": compile_s}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-root", type=Path, default=default_data_root())
    p.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    p.add_argument("--precision", choices=("auto", "bf16", "fp32"), default="auto")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--steps", type=int, default=30, help="timed steps per measurement")
    p.add_argument("--warmup", type=int, default=10, help="untimed steps first")
    p.add_argument("--quick", action="store_true", help="tiny model, 2 classes, 16 px, 3 steps")
    p.add_argument("--only", nargs="*", default=None, help="lever names to run (default all)")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch sees no CUDA device here (use --device cpu)")
    if args.quick:
        args.steps, args.warmup, args.rounds = 3, 1, 1
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    device = torch.device(args.device)
    args.resolved_precision = resolve_precision(args.precision, device)
    spec = DataSpec(
        "tiny_imagenet",
        path=dataset_dir("tiny_imagenet", args.data_root),
        classes=2 if args.quick else 10,
        image_size=16 if args.quick else None,
    )
    bundle = load_bundle(spec)
    batch = 16 if args.quick else 128
    base = Variant("baseline", batch)
    levers = [v for v in variants(batch) if args.only is None or v.name in args.only]
    if args.device == "cpu":  # compile on a CPU is cpu_levers.py's business
        levers = [v for v in levers if v.compile_mode is None]
    print(
        f"device {device}, precision {args.resolved_precision}, {args.rounds} round(s) of "
        f"{args.steps} steps after {args.warmup} warm-up steps",
        flush=True,
    )
    results = {}
    for lever in levers:
        pairs = []
        for _ in range(args.rounds):
            a = measure(bundle, base, args, device)
            b = measure(bundle, lever, args, device)
            pairs.append((a["images_per_s"], b["images_per_s"], b["warmup_s"]))
        ratio = statistics.median(b / a for a, b, _ in pairs)
        results[lever.name] = {
            "baseline_images_per_s": statistics.median(a for a, _, _ in pairs),
            "images_per_s": statistics.median(b for _, b, _ in pairs),
            "ratio": ratio,
            "warmup_s": max(w for _, _, w in pairs),
        }
        r = results[lever.name]
        print(
            f"{lever.name:>14}: {r['images_per_s']:9.0f} vs baseline "
            f"{r['baseline_images_per_s']:9.0f} images/s, {ratio:.3f}x"
            + (f" (warm-up incl. compile {r['warmup_s']:.1f} s)" if r["warmup_s"] else ""),
            flush=True,
        )
    # A lever wins only by more than the A-B noise a few percent: 1.05x.
    winners = [n for n, r in results.items() if r["ratio"] >= 1.05]
    best = max(winners, key=lambda n: results[n]["ratio"]) if winners else "baseline"
    if args.json:
        args.json.write_text(
            json.dumps({"device": str(device), "levers": results, "winner": best}, indent=1)
        )
    print(f"winner: {best}")


if __name__ == "__main__":
    main()
