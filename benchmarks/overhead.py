"""Orchestration overhead: a bare PyTorch loop vs the same training as one archsweep trial.

Same model, data (Tiny ImageNet, first 10 classes, decoded arrays), batch size, optimizer and
epochs; no augmentation in either, so the difference is what archsweep adds (the tensor loader,
metrics, TensorBoard, per-epoch checkpoints, Ray). Prints the steady-state training images/s of
each (median over epochs after the first) and their ratio, side by side in one run.

    ARCHSWEEP_DATA=../shared/datasets python benchmarks/overhead.py [--epochs 4] [--classes 10]
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
from trainables.models import build_model

MODEL = {"model": "resnet", "channels": (16, 32, 64, 128), "blocks": (1, 1, 1, 1), "stem": "cifar"}


def bare_loop(bundle, epochs: int, batch_size: int, lr: float) -> list[float]:
    """The notebook loop: normalized float tensors, shuffled batches, Adam; images/s per epoch."""
    torch.manual_seed(0)
    model = build_model({**MODEL, "num_classes": len(bundle.class_names), "in_channels": 3})
    # NCHW, like the trial on CPU (archsweep uses channels_last on CUDA only): the comparison
    # is about orchestration, not about memory formats. NHWC input would make this loop ~1.7x
    # faster here, but torch 2.14.1's oneDNN can segfault with it (see trainables/config.py).
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    mean = torch.tensor(bundle.mean).view(1, 3, 1, 1)
    std = torch.tensor(bundle.std).view(1, 3, 1, 1)
    x_all = (torch.from_numpy(bundle.train.images).permute(0, 3, 1, 2).float() / 255 - mean) / std
    x_all = x_all.contiguous()
    y_all = torch.from_numpy(bundle.train.targets).long()
    rates = []
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(len(y_all))
        t0 = time.perf_counter()
        for i in range(0, len(perm), batch_size):
            idx = perm[i : i + batch_size]
            loss = F.cross_entropy(model(x_all[idx]), y_all[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        rates.append(len(perm) / (time.perf_counter() - t0))
    return rates


def in_process_loop(
    bundle, classes: int, epochs: int, batch_size: int, lr: float, workdir: Path
) -> list[float]:
    """archsweep's epoch loop without Ray (LocalSession): separates the loop's cost from Ray's."""
    config = {
        "dataset": "tiny_imagenet",
        "classes": classes,
        "epochs": epochs,
        "batch_size": batch_size,
        "optimizer": "adam",
        "lr": lr,
        "augment": {},
        **MODEL,
    }
    session = ray_io.LocalSession(workdir / "in_process")
    ray_io.use_local_session(session)
    try:
        run_trial(config, bundle, TrialSetup(task="classification"))
    finally:
        ray_io.use_local_session(None)
    return [r["images_per_s"] for r in session.reports]


def orchestrated(
    data_root: Path, classes: int, epochs: int, batch_size: int, lr: float, workdir: Path
) -> list[float]:
    study = workdir / "overhead.py"
    study.write_text(
        textwrap.dedent(f"""
        from orchestrator.study import Stage, Study
        study = Study(name="overhead", trainable="classification",
                      base={{"dataset": "tiny_imagenet", "classes": {classes}, "epochs": {epochs},
                            "batch_size": {batch_size}, "optimizer": "adam", "lr": {lr},
                            "augment": {{}}, **{MODEL!r}}},
                      stages=[Stage("only", scheduler="fifo")])
    """)
    )
    code = run_main(
        [
            str(study),
            "--data-root",
            str(data_root),
            "--storage",
            str(workdir / "runs"),
            "--cpus-per-trial",
            str(torch.get_num_threads()),
        ]
    )
    if code != 0:
        raise SystemExit(f"orchestrated run failed with exit code {code}")
    record = json.loads((workdir / "runs" / "overhead" / "study.json").read_text())
    trial_dir = workdir / "runs" / "overhead" / record["stages"][0]["trials"][0]["trial_dir"]
    rows = [json.loads(line) for line in (trial_dir / "result.json").read_text().splitlines()]
    return [r["images_per_s"] for r in rows]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--data-root", type=Path, default=default_data_root())
    args = p.parse_args()
    lr = 1e-3
    spec = DataSpec(
        "tiny_imagenet", path=dataset_dir("tiny_imagenet", args.data_root), classes=args.classes
    )
    bundle = load_bundle(spec)
    print(
        f"data: {len(bundle.train.images)} train images, model {MODEL}, batch {args.batch_size}, "
        f"{args.epochs} epochs, torch threads {torch.get_num_threads()}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        rows = {
            "(a) bare PyTorch loop": bare_loop(bundle, args.epochs, args.batch_size, lr),
            "(b) archsweep trial (Ray)": orchestrated(
                args.data_root, args.classes, args.epochs, args.batch_size, lr, Path(tmp)
            ),
            "(c) archsweep loop, no Ray": in_process_loop(
                bundle, args.classes, args.epochs, args.batch_size, lr, Path(tmp)
            ),
        }
    # Steady state: the median of the epochs after the first (warm-up: allocator, oneDNN plans).
    steady = {k: statistics.median(v[1:]) if len(v) > 1 else v[0] for k, v in rows.items()}
    print(f"{'':28}{'training images/s per epoch':>40}{'steady':>10}")
    for name, rates in rows.items():
        print(f"{name:28}{' '.join(f'{r:7.1f}' for r in rates):>40}{steady[name]:10.1f}")
    a, b, c = steady.values()
    print(f"ratio (b)/(a): {b / a:.3f}  (goal >= 0.95);  (c)/(a): {c / a:.3f}")


if __name__ == "__main__":
    main()
