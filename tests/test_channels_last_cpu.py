"""oneDNN's channels_last (NHWC) crash on CPU, kept as a reproducer until torch fixes it.

torch 2.14.1 on x86 (oneDNN) segfaults or aborts in the backward of a 1x1 stride-2 convolution
with few input channels (<= 8) on 64x64 or 128x128 NHWC input: an 8->16 ResNet shortcut. That is
why trainables/loop.py uses channels_last on CUDA only. Measured on this machine (each shape in
its own process, batch 4, one thread; exit 139 = SIGSEGV, 134 = SIGABRT):

    in->out  64x64   128x128  48x48, 63x63, 65x65
    4->8     139     139      ok
    8->8     139     134      ok
    8->16    139     139      ok
    16->32   ok      ok       ok
    32->64   ok      ok       ok

Each case runs in a subprocess, so the crash is reported and not fatal to pytest.

- Crash present: the test xfails, naming the torch version.
- Crash gone: the test FAILS and tells the maintainer to enable channels_last on CPU. A fixed bug
  must not stay hidden behind a skip, because NHWC is the faster layout on CPU too (see
  benchmarks/cpu_levers.py).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch

CONV_BACKWARD_NHWC = textwrap.dedent("""
    import sys, torch
    torch.set_num_threads(1)
    cin, cout, size = map(int, sys.argv[1:4])
    conv = torch.nn.Conv2d(cin, cout, 1, stride=2, bias=False).to(memory_format=torch.channels_last)
    x = torch.randn(4, cin, size, size).contiguous(memory_format=torch.channels_last)
    conv(x.requires_grad_()).sum().backward()
    print("backward ok")
""")


def run_conv_backward(cin: int, cout: int, size: int) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", CONV_BACKWARD_NHWC, str(cin), str(cout), str(size)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def crashed(proc: subprocess.CompletedProcess) -> bool:
    """Killed by a signal (negative code) or the shell's 128+signal convention."""
    return proc.returncode < 0 or proc.returncode in (134, 139)


def test_onednn_nhwc_crash_still_present() -> None:
    proc = run_conv_backward(8, 16, 64)
    if crashed(proc):
        pytest.xfail(
            f"oneDNN NHWC crash still present in torch {torch.__version__} "
            f"(8->16 1x1 stride-2 conv backward at 64x64, exit code {proc.returncode})"
        )
    assert proc.returncode == 0, f"reproducer failed without crashing:\n{proc.stderr[-2000:]}"
    pytest.fail(
        f"The oneDNN channels_last crash is FIXED in torch {torch.__version__}: the 8->16 1x1 "
        "stride-2 conv backward now runs in NHWC on CPU. Enable channels_last on CPU "
        "(trainables/loop.py uses_channels_last, the note in trainables/config.py, "
        "benchmarks/overhead.py), re-measure with benchmarks/cpu_levers.py, then delete this "
        "test."
    )


@pytest.mark.parametrize(("cin", "cout", "size"), [(16, 32, 64), (32, 64, 64), (8, 16, 48)])
def test_shapes_outside_the_crash_run(cin: int, cout: int, size: int) -> None:
    """The shapes benchmarks/cpu_levers.py relies on for its channels_last rows."""
    proc = run_conv_backward(cin, cout, size)
    assert proc.returncode == 0 and "backward ok" in proc.stdout, (
        f"{cin}->{cout} 1x1 stride-2 conv backward at {size}x{size} in NHWC exited with "
        f"{proc.returncode}: the crash now reaches shapes thought safe\n{proc.stderr[-2000:]}"
    )
