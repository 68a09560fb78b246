"""Which numeric precision a trial trains in: `precision="auto" | "bf16" | "fp32"`.

"auto" picks bf16 autocast only where it is a speed-up, never a slowdown:
- CUDA devices of compute capability >= 8.0 (Ampere and newer);
- CPUs with AVX512-BF16 or AMX-BF16 where bf16 also measures faster. The flag alone is not
  enough: on the AMD EPYC the course measured, bf16 trains the quickstart ResNet 2x faster, but
  on an Intel Xeon VM with AVX512-BF16 and no AMX exposed (this project's 2-core machine on
  2026-11-27) it ran at 0.79x fp32 (benchmarks/cpu_levers.py). So the first "auto" on a CPU
  with the flag times one 3x3 convolution layer (forward and backward, ~0.3 s) both ways and
  keeps bf16 only at >= 1.1x; the answer is kept for the process.
Everywhere else "auto" means fp32.

"bf16" requested explicitly is honoured on any device (emulated bf16 works, just slowly): the
user asked for it, and the trial's config records what ran.

This module owns the precision names (trainables/config.py validates against PRECISION_CHOICES)
and the autocast context every forward pass runs in (trainables/loop.py, tests, benchmarks).

CPU flags come from torch's own CPU probe (`torch.cpu.get_capabilities()`, the cpuinfo library
torch ships), falling back to the kernel's /proc/cpuinfo flags where torch has no probe.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import torch

PRECISION_CHOICES = ("auto", "bf16", "fp32")
RESOLVED_PRECISIONS = ("bf16", "fp32")

# Feature names as both torch's cpuinfo probe and Linux's /proc/cpuinfo spell them.
CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
CUDA_BF16_MIN_CAPABILITY = (8, 0)
PROC_CPUINFO = Path("/proc/cpuinfo")


def torch_cpu_capabilities() -> Mapping[str, object] | None:
    """torch's CPU feature map, or None when this torch has no public probe."""
    probe = getattr(getattr(torch, "cpu", None), "get_capabilities", None)
    if probe is None:
        return None
    try:
        return probe()
    except (RuntimeError, AttributeError):  # a build without cpuinfo support
        return None


def proc_cpuinfo_flags(path: Path | None = None) -> frozenset[str]:
    """The `flags` of the first CPU in /proc/cpuinfo (empty where the file does not exist)."""
    try:
        text = (path or PROC_CPUINFO).read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def cpu_bf16_flags() -> list[str]:
    """The native-bf16 CPU features present (subset of CPU_BF16_FLAGS); empty = none."""
    caps = torch_cpu_capabilities()
    if caps is not None and any(flag in caps for flag in CPU_BF16_FLAGS):
        return [flag for flag in CPU_BF16_FLAGS if caps.get(flag)]
    flags = proc_cpuinfo_flags()
    return [flag for flag in CPU_BF16_FLAGS if flag in flags]


def cuda_native_bf16(device: torch.device) -> bool:
    return torch.cuda.get_device_capability(device) >= CUDA_BF16_MIN_CAPABILITY


def native_bf16(device: torch.device) -> bool:
    """True where bf16 matmuls/convolutions run in hardware on `device`."""
    if device.type == "cuda":
        return cuda_native_bf16(device)
    if device.type == "cpu":
        return bool(cpu_bf16_flags()) and cpu_bf16_pays_off()
    return False


# bf16 must beat fp32 by this much on the probe to be chosen: a tie is not worth the rounding.
BF16_MIN_SPEEDUP = 1.1


@functools.cache
def cpu_bf16_pays_off() -> bool:
    """See _bf16_pays_off; torch's RNG is forked so the probe leaves a trial's randomness alone."""
    with torch.random.fork_rng(devices=[]):
        return _bf16_pays_off()


def _bf16_pays_off() -> bool:
    """Whether bf16 autocast runs a conv layer's forward + backward faster than fp32 on this CPU
    (measured once per process: interleaved, best of 5 each, after a warm-up)."""
    conv = torch.nn.Conv2d(64, 64, 3, padding=1)
    x = torch.randn(16, 64, 32, 32)

    def step(bf16: bool) -> float:
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = conv(x)
        out.float().sum().backward()
        return time.perf_counter() - start

    for bf16 in (False, True):  # oneDNN builds its kernels on first use
        step(bf16)
    fp32_s: list[float] = []
    bf16_s: list[float] = []
    for _ in range(5):
        fp32_s.append(step(False))
        bf16_s.append(step(True))
    return min(fp32_s) / min(bf16_s) >= BF16_MIN_SPEEDUP


def resolve_precision(requested: str, device: torch.device) -> str:
    """The precision a trial runs in: "bf16" or "fp32".

    Args:
        requested: "auto" (bf16 where native, else fp32), "bf16" or "fp32".
        device: the trial's device.

    Raises:
        ValueError: `requested` is not one of PRECISION_CHOICES.
    """
    if requested not in PRECISION_CHOICES:
        raise ValueError(f"precision={requested!r} is not valid; choose one of {PRECISION_CHOICES}")
    if requested == "auto":
        return "bf16" if native_bf16(torch.device(device)) else "fp32"
    return requested


def autocast_context(
    device: torch.device, precision: str
) -> Callable[[], contextlib.AbstractContextManager]:
    """A factory of the context each forward pass runs in (call it per batch).

    Args:
        device: the trial's device (its type picks the autocast backend).
        precision: a resolved precision, "bf16" or "fp32" (resolve "auto" first).

    Raises:
        ValueError: `precision` is not "bf16" or "fp32".
    """
    if precision not in RESOLVED_PRECISIONS:
        raise ValueError(
            f"precision={precision!r} is not a resolved precision; choose one of "
            f"{RESOLVED_PRECISIONS} (pass 'auto' through resolve_precision first)"
        )
    if precision == "fp32":
        return contextlib.nullcontext
    device_type = torch.device(device).type
    return lambda: torch.autocast(device_type=device_type, dtype=torch.bfloat16)
