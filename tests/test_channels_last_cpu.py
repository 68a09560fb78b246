"""channels_last (NHWC) on CPU: used only where the probes say it pays and works.

torch 2.14.1's oneDNN crashes (SIGSEGV/SIGABRT) in the NHWC backward of a 1x1 stride-2
convolution with few input channels on some x86 CPUs and not on others, so whether it crashes
here is the probe's business, never a test's: these tests mock the probes' answers, check that
each combination picks the right layout, and run the real probes only to see they answer.
"""

from __future__ import annotations

import signal
from collections.abc import Callable

import pytest
import torch

from trainables import memory_format
from trainables.memory_format import check_passed, nhwc_check, uses_channels_last

CPU = torch.device("cpu")
CUDA = torch.device("cuda", 0)


@pytest.fixture
def fresh_probe():
    """Forget the process's cached answer before and after (each test sets its own)."""
    memory_format.cpu_channels_last.cache_clear()
    yield
    memory_format.cpu_channels_last.cache_clear()


def fake_probes(monkeypatch, pays: bool, works: bool) -> list[str]:
    """Stand-ins for the two probes; returns the names of the probes that ran, in order."""
    ran: list[str] = []

    def probe(name: str, answer: bool) -> Callable[[], bool]:
        def run() -> bool:
            ran.append(name)
            return answer

        return run

    monkeypatch.setattr(memory_format, "cpu_nhwc_pays_off", probe("pays", pays))
    monkeypatch.setattr(memory_format, "cpu_nhwc_works", probe("works", works))
    return ran


@pytest.mark.parametrize(
    ("pays", "works", "nhwc"),
    [
        (True, True, True),  # faster and no crash: NHWC
        (True, False, False),  # faster, but oneDNN crashes on this CPU (this machine's torch)
        (False, True, False),  # works, but no faster (1.03x on the 2-core VM): NCHW
        (False, False, False),
    ],
)
def test_cpu_layout_follows_both_probes(monkeypatch, fresh_probe, pays, works, nhwc) -> None:
    ran = fake_probes(monkeypatch, pays, works)
    assert uses_channels_last(True, CPU) is nhwc
    # The cheap timing runs first; the crash check's subprocess only where NHWC would pay.
    assert ran == (["pays", "works"] if pays else ["pays"])


def test_the_answer_is_kept_for_the_process(monkeypatch, fresh_probe) -> None:
    ran = fake_probes(monkeypatch, pays=True, works=True)
    assert uses_channels_last(True, CPU) and uses_channels_last(True, CPU)
    assert ran == ["pays", "works"]


def test_cuda_always_and_off_never_probe(monkeypatch, fresh_probe) -> None:
    ran = fake_probes(monkeypatch, pays=True, works=True)
    assert uses_channels_last(True, CUDA) is True
    assert uses_channels_last(False, CUDA) is False
    assert uses_channels_last(False, CPU) is False
    assert uses_channels_last(True, torch.device("meta")) is False
    assert ran == []


@pytest.mark.parametrize(
    ("script", "passed"),
    [
        ("print('nhwc ok')", True),
        (f"import os; os.kill(os.getpid(), {int(signal.SIGSEGV)})", False),  # oneDNN's crash
        (f"import os; os.kill(os.getpid(), {int(signal.SIGABRT)})", False),
        ("raise SystemExit(134)", False),  # a shell wrapper's 128 + SIGABRT
        ("raise RuntimeError('no oneDNN')", False),
        ("print('started')", False),  # exit 0 without finishing the shapes
    ],
)
def test_crash_check_trusts_only_a_clean_finish(script: str, passed: bool) -> None:
    assert check_passed(nhwc_check(script)) is passed


def test_a_hanging_check_counts_as_not_working(monkeypatch) -> None:
    monkeypatch.setattr(memory_format, "CHECK_TIMEOUT_S", 0.5)
    proc = nhwc_check("import time; time.sleep(30)")
    assert proc is None and not check_passed(proc)


def test_real_crash_check_runs_its_shapes_or_crashes_in_onednn() -> None:
    """The check script itself is sound on this torch: it either finishes every shape or is
    killed by a signal inside oneDNN; a Python error would mean a broken probe (it would then
    keep NCHW everywhere, silently)."""
    proc = nhwc_check()
    assert proc is not None, "the NHWC check hung"
    killed = proc.returncode < 0 or proc.returncode in (128 + signal.SIGSEGV, 128 + signal.SIGABRT)
    assert check_passed(proc) or killed, f"exit {proc.returncode}:\n{proc.stderr[-2000:]}"


def test_real_timing_probe_answers_once_per_process() -> None:
    memory_format.cpu_nhwc_pays_off.cache_clear()
    first = memory_format.cpu_nhwc_pays_off()
    assert isinstance(first, bool) and memory_format.cpu_nhwc_pays_off() is first
    assert memory_format.cpu_nhwc_pays_off.cache_info().hits == 1
