"""Which memory layout a trial trains in: channels_last (NHWC) where it works and pays, else NCHW.

`channels_last=True` (the default) asks for NHWC; a trial gets it:
- on CUDA always (what tensor cores want);
- on a CPU only where two probes, each run once per process and kept, both say yes:
  1. it pays: a small conv-BN-ReLU network's forward + backward runs >= 1.2x faster in NHWC
     than in NCHW (in-process). On this project's 2-core AMD EPYC VM, `python -m
     trainables.memory_format` measured 1.03-1.22x over 5 probes at 0.19 s each (load ~1.4),
     and 0.34-1.68x at 5.9 s each with 7 other jobs per core; benchmarks/cpu_levers.py put
     the whole quickstart step at 1.03x there (figure given with issue 18, not re-run);
  2. it works: torch 2.14.1's oneDNN segfaults or aborts in the backward of a 1x1 stride-2
     convolution with few input channels (<= 8) in NHWC on some x86 CPUs (an 8->16 ResNet
     shortcut at 48x48 or 64x64 on this machine; not on the AMD EPYC issue 18 was filed from).
     The known crash shapes and some common ones run in a subprocess, so a crash costs the
     probe, not the trial.
  The crash probe (a fresh Python that imports torch: 1.6 s here, 4.7 s on the busy machine)
  runs only where NHWC pays.
Everywhere else the trial trains in NCHW, and its config records `channels_last=False`.
"""

from __future__ import annotations

import functools
import subprocess
import sys
import textwrap
import time

import torch
from torch import nn

# NHWC must beat NCHW by this much on the probe: a tie is not worth a layout the crash probe
# has to vouch for, and a busy machine's timing noise (1.03-1.22x in one process here) must
# not pass for a speed-up. A wrong "pays" costs only the crash probe's seconds; NHWC itself then
# runs about as fast as NCHW.
NHWC_MIN_SPEEDUP = 1.2

# (in channels, out channels, size, kernel, stride) run forward + backward in NHWC, batch 4.
# The 1x1 stride-2 rows with <= 8 input channels are oneDNN's crash; the rest are shapes every
# small ResNet has (a stem, a 3x3 block, wider shortcuts), so a CPU that crashes elsewhere is
# caught too.
NHWC_CHECK_SHAPES = (
    (4, 8, 64, 1, 2),
    (8, 8, 64, 1, 2),
    (8, 16, 48, 1, 2),
    (8, 16, 64, 1, 2),
    (8, 16, 128, 1, 2),
    (16, 32, 64, 1, 2),
    (32, 64, 32, 1, 2),
    (3, 16, 64, 3, 1),
    (16, 16, 32, 3, 1),
)

NHWC_CHECK_SCRIPT = textwrap.dedent("""
    import sys, torch
    torch.set_num_threads(int(sys.argv[1]))
    for cin, cout, size, k, s in eval(sys.argv[2]):
        conv = torch.nn.Conv2d(cin, cout, k, stride=s, padding=k // 2, bias=False)
        conv = conv.to(memory_format=torch.channels_last)
        x = torch.randn(4, cin, size, size).contiguous(memory_format=torch.channels_last)
        conv(x.requires_grad_()).sum().backward()
    print("nhwc ok")
""")
CHECK_TIMEOUT_S = 120


def nhwc_check(script: str = NHWC_CHECK_SCRIPT) -> subprocess.CompletedProcess | None:
    """Run the NHWC shapes in a fresh interpreter with this process's thread count (None: it
    hung past CHECK_TIMEOUT_S)."""
    args = [sys.executable, "-c", script, str(torch.get_num_threads()), repr(NHWC_CHECK_SHAPES)]
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=CHECK_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return None


def check_passed(proc: subprocess.CompletedProcess | None) -> bool:
    """Only a clean exit that printed its line counts: a signal (negative code, or the shell's
    128 + signal), a Python error or a hang all mean NHWC is not to be trusted here."""
    return proc is not None and proc.returncode == 0 and "nhwc ok" in proc.stdout


@functools.cache
def cpu_nhwc_works() -> bool:
    """Whether oneDNN runs every NHWC_CHECK_SHAPES backward on this CPU (once per process)."""
    return check_passed(nhwc_check())


def probe_network(channels: int = 32) -> nn.Module:
    """Two conv-BN-ReLU layers and a linear head: the mix a ResNet step spends its time in
    (a lone convolution would flatter NHWC, whose gain BatchNorm and the head do not share)."""
    return nn.Sequential(
        nn.Conv2d(channels, channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(channels),
        nn.ReLU(),
        nn.Conv2d(channels, channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(channels),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(channels, 10),
    )


def nhwc_speedup() -> float:
    """NCHW time / NHWC time of the probe network's forward + backward on this CPU
    (interleaved, best of 5 each, after a warm-up; its shapes are outside the crash)."""
    torch.manual_seed(0)
    nchw = probe_network()
    nhwc = probe_network().to(memory_format=torch.channels_last)
    x = torch.randn(16, 32, 32, 32)
    x_nhwc = x.contiguous(memory_format=torch.channels_last)

    def step(channels_last: bool) -> float:
        model, inputs = (nhwc, x_nhwc) if channels_last else (nchw, x)
        start = time.perf_counter()
        model(inputs).sum().backward()
        return time.perf_counter() - start

    for channels_last in (False, True):  # oneDNN builds its kernels on first use
        step(channels_last)
    times: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(5):
        for channels_last in (False, True):
            times[channels_last].append(step(channels_last))
    return min(times[False]) / min(times[True])


@functools.cache
def cpu_nhwc_pays_off() -> bool:
    """Whether NHWC is >= NHWC_MIN_SPEEDUP faster on this CPU (measured once per process).

    The probe seeds and draws from torch's RNG; forked, so the trial that triggers it (the
    first of its process) trains with the same random numbers as every later one."""
    with torch.random.fork_rng(devices=[]):
        return nhwc_speedup() >= NHWC_MIN_SPEEDUP


@functools.cache
def cpu_channels_last() -> bool:
    """NHWC on this CPU: it pays (cheap, in-process) and then works (a subprocess)."""
    return cpu_nhwc_pays_off() and cpu_nhwc_works()


def uses_channels_last(requested: bool, device: torch.device) -> bool:
    """Whether a trial that asked for `channels_last=requested` trains in NHWC on `device`."""
    if not requested:
        return False
    device_type = torch.device(device).type
    if device_type == "cuda":
        return True
    return device_type == "cpu" and cpu_channels_last()


if __name__ == "__main__":  # what the probes see on this machine, both run regardless
    start = time.perf_counter()
    speedups = [nhwc_speedup() for _ in range(5)]
    print(f"NHWC/NCHW speed-up, probe network, 5 probes: {sorted(round(r, 2) for r in speedups)}")
    print(
        f"one probe: {(time.perf_counter() - start) / 5:.2f} s; pays (>= {NHWC_MIN_SPEEDUP}x) "
        f"in {sum(r >= NHWC_MIN_SPEEDUP for r in speedups)} of 5"
    )
    start = time.perf_counter()
    proc = nhwc_check()
    code = "timeout" if proc is None else proc.returncode
    print(
        f"NHWC check shapes: {'work' if check_passed(proc) else 'CRASH'} (exit {code}, "
        f"{time.perf_counter() - start:.1f} s, torch {torch.__version__})"
    )
