"""GPU checks (`pytest -m gpu`): bf16 and channels_last on CUDA, four trials sharing one GPU, and
the training split kept on the GPU without per-batch host-to-device copies.

Skipped without CUDA. `ARCHSWEEP_GPU_DRY_RUN=1` runs the same code on the CPU instead (what
`benchmarks/gpu_check.sh --cpu-dry-run` does): every path executes, only the CUDA-specific
assertions (bf16 chosen by "auto", copies counted by the CUDA profiler) are left out.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from trainables.data import Split, TensorLoader
from trainables.data.augment import AugmentConfig
from trainables.models import build_model
from trainables.precision import autocast_context, resolve_precision

pytestmark = pytest.mark.gpu

ROOT = Path(__file__).resolve().parents[1]
DRY_RUN = os.environ.get("ARCHSWEEP_GPU_DRY_RUN") == "1"
# 8->16 1x1 stride-2 shortcut on 64x64 maps: the shape that crashes oneDNN in NHWC on CPU.
SMALL_RESNET = {"model": "resnet", "channels": (8, 16, 32), "blocks": 1, "stem": "cifar"}


@pytest.fixture(scope="module")
def device() -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda", 0)
    if DRY_RUN:
        return torch.device("cpu")
    pytest.skip("needs a CUDA device (ARCHSWEEP_GPU_DRY_RUN=1 runs these on the CPU)")


def on_cuda(device: torch.device) -> bool:
    return device.type == "cuda"


def random_split(n: int = 512, size: int = 64, classes: int = 10) -> Split:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    return Split(images=images, targets=rng.integers(0, classes, n).astype(np.int64))


def test_auto_precision_is_bf16_on_ampere_or_newer(device: torch.device) -> None:
    if not on_cuda(device):
        pytest.skip("CUDA only: on CPU 'auto' follows the CPU flags (tests/test_precision.py)")
    major, minor = torch.cuda.get_device_capability(device)
    expected = "bf16" if (major, minor) >= (8, 0) else "fp32"
    assert resolve_precision("auto", device) == expected, torch.cuda.get_device_name(device)


def train_steps(device: torch.device, precision: str, channels_last: bool, steps: int = 3):
    """A few Adam steps of a small ResNet at 64x64, like trainables/loop.py does them."""
    torch.manual_seed(0)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = build_model({**SMALL_RESNET, "num_classes": 10, "in_channels": 3})
    model = model.to(device, memory_format=fmt)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = TensorLoader(
        random_split(64),
        batch_size=16,
        device=device,
        mean=(0.5, 0.5, 0.5),
        std=(0.25, 0.25, 0.25),
        channels_last=channels_last,
    )
    autocast = autocast_context(device, precision)
    losses, logits = [], None
    for _, (x, y) in zip(range(steps), loader, strict=False):
        assert x.is_contiguous(memory_format=fmt)
        with autocast():
            logits = model(x)
            loss = F.cross_entropy(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return model, logits, losses


def test_bf16_autocast_trains_on_device(device: torch.device) -> None:
    model, logits, losses = train_steps(device, "bf16", channels_last=on_cuda(device))
    assert logits.dtype == torch.bfloat16
    assert all(np.isfinite(losses)), losses
    # Master weights stay fp32 under autocast.
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_channels_last_trains_on_cuda(device: torch.device) -> None:
    """NHWC through the 8->16 1x1 stride-2 shortcut that crashes oneDNN on CPU."""
    if not on_cuda(device):
        pytest.skip("channels_last on CPU: tests/test_channels_last_cpu.py (oneDNN crash)")
    model, _, losses = train_steps(device, "fp32", channels_last=True)
    assert all(np.isfinite(losses)), losses
    weights = [m.weight for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert weights and all(w.is_contiguous(memory_format=torch.channels_last) for w in weights)
    # Same maths as NCHW: a step's loss agrees to float tolerance.
    _, _, nchw = train_steps(device, "fp32", channels_last=False)
    assert losses[0] == pytest.approx(nchw[0], rel=1e-3)


def count_host_to_device(device: torch.device, fn) -> int:
    """Host-to-device memcpys while fn() runs, from the CUDA profiler's activity trace."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        fn()
        torch.cuda.synchronize(device)
    return sum(1 for e in prof.events() if "Memcpy HtoD" in e.name)


@pytest.mark.parametrize(
    "augment", [None, AugmentConfig.from_dict({"hflip": True, "crop_padding": 4})]
)
def test_training_split_stays_on_device(device: torch.device, augment) -> None:
    """The whole split lives on the device; an epoch makes fewer HtoD copies than batches."""
    batches = 16
    loader = TensorLoader(
        random_split(batches * 32),
        batch_size=32,
        device=device,
        augment=augment,
        mean=(0.5, 0.5, 0.5),
        std=(0.25, 0.25, 0.25),
        channels_last=on_cuda(device),
    )
    assert loader.images.device.type == device.type
    assert loader.targets.device.type == device.type
    model = build_model({**SMALL_RESNET, "num_classes": 10, "in_channels": 3}).to(device)
    if on_cuda(device):
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    autocast = autocast_context(device, "bf16" if on_cuda(device) else "fp32")

    def epoch() -> int:
        seen = 0
        for x, y in loader:
            assert x.device.type == device.type and y.device.type == device.type
            with autocast():
                loss = F.cross_entropy(model(x).float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            seen += 1
        return seen

    assert epoch() == batches  # warm-up: allocator, cuDNN plans, optimizer state
    if not on_cuda(device):
        return
    copies = count_host_to_device(device, epoch)
    # One-off copies per epoch (the permutation) are fine; one per batch is what must not be.
    assert copies < batches, f"{copies} host-to-device copies in an epoch of {batches} batches"


def test_four_trials_share_one_gpu(device: torch.device, shared_data: Path, tmp_path: Path):
    """`--gpus-per-trial 0.25`: the activations study's four trials fit on one GPU at once."""
    gpus = "0.25" if on_cuda(device) else "0"
    cmd = [
        sys.executable,
        "-m",
        "orchestrator.run",
        "search_spaces/activations.py",
        "--smoke",
        "--data-root",
        str(shared_data),
        "--storage",
        str(tmp_path),
        "--gpus-per-trial",
        gpus,
        "--cpus-per-trial",
        "1" if on_cuda(device) else "0.5",
        # CPU dry run: two classes make the data loading and test evaluation small.
        *([] if on_cuda(device) else ["--set", "classes=2"]),
    ]
    env = {**os.environ, "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1"}
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=420, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    record = json.loads((tmp_path / "activations" / "study.json").read_text())
    trials = record["stages"][0]["trials"]
    assert len(trials) == 4
    assert [t["status"] for t in trials] == ["completed"] * 4, trials
    if on_cuda(device):
        intervals = []
        for t in trials:
            rows = [
                json.loads(line)
                for line in (tmp_path / "activations" / t["trial_dir"] / "result.json")
                .read_text()
                .splitlines()
            ]
            end = rows[-1]["timestamp"]
            intervals.append((end - rows[-1]["time_total_s"], end))
        # Four slots of 0.25 GPU: all four trials are placed at once, so they overlap.
        latest_start = max(s for s, _ in intervals)
        earliest_end = min(e for _, e in intervals)
        assert latest_start < earliest_end, f"trials did not overlap: {intervals}"
