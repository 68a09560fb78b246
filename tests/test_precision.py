"""precision="auto": native-bf16 detection on CPU and CUDA, and what autocast really computes."""

from __future__ import annotations

import contextlib
import platform
from pathlib import Path

import pytest
import torch

from trainables import precision
from trainables.precision import autocast_context, cpu_bf16_flags, resolve_precision

CPU = torch.device("cpu")
CUDA = torch.device("cuda", 0)


def fake_torch_caps(monkeypatch: pytest.MonkeyPatch, **flags: bool) -> None:
    """A CPU as torch's cpuinfo probe describes it (keys present, values as given)."""
    caps = {"avx2": True, "avx512_f": True, "avx512_bf16": False, "amx_bf16": False, **flags}
    monkeypatch.setattr(precision, "torch_cpu_capabilities", lambda: caps)
    monkeypatch.setattr(precision, "cpu_bf16_pays_off", lambda: True)  # as on the AMD EPYC


def fake_proc_cpuinfo(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, flags: str) -> None:
    """A torch without a CPU probe, on a machine whose /proc/cpuinfo lists `flags`."""
    path = tmp_path / "cpuinfo"
    path.write_text(f"processor\t: 0\nmodel name\t: Fake CPU\nflags\t\t: {flags}\n\n")
    monkeypatch.setattr(precision, "torch_cpu_capabilities", lambda: None)
    monkeypatch.setattr(precision, "PROC_CPUINFO", path)
    monkeypatch.setattr(precision, "cpu_bf16_pays_off", lambda: True)


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ({"avx512_bf16": True}, "bf16"),
        ({"amx_bf16": True}, "bf16"),
        ({"avx512_bf16": True, "amx_bf16": True}, "bf16"),
        ({}, "fp32"),  # AVX-512 without the bf16 extension: emulated bf16 would be slower
    ],
)
def test_auto_on_cpu_follows_torch_probe(monkeypatch, flags, expected) -> None:
    fake_torch_caps(monkeypatch, **flags)
    assert resolve_precision("auto", CPU) == expected


def test_auto_on_cpu_keeps_fp32_where_bf16_measures_slower(monkeypatch) -> None:
    """The flag is there, but bf16 runs slower (an Intel Xeon VM without AMX: 0.79x)."""
    fake_torch_caps(monkeypatch, avx512_bf16=True)
    monkeypatch.setattr(precision, "cpu_bf16_pays_off", lambda: False)
    assert resolve_precision("auto", CPU) == "fp32"


def test_the_measurement_runs_and_is_kept_for_the_process() -> None:
    precision.cpu_bf16_pays_off.cache_clear()
    first = precision.cpu_bf16_pays_off()
    assert isinstance(first, bool) and precision.cpu_bf16_pays_off() is first
    assert precision.cpu_bf16_pays_off.cache_info().hits == 1


def test_probe_reports_which_flags(monkeypatch) -> None:
    fake_torch_caps(monkeypatch, amx_bf16=True)
    assert cpu_bf16_flags() == ["amx_bf16"]


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ("fpu sse2 avx2 avx512f avx512_bf16 avx512_vnni", "bf16"),
        ("fpu sse2 avx2 amx_tile amx_bf16", "bf16"),
        ("fpu sse2 avx2 avx512f avx512bw", "fp32"),
        ("fpu sse2 amx_tile", "fp32"),  # AMX tiles without the bf16 unit
    ],
)
def test_auto_on_cpu_falls_back_to_proc_cpuinfo(monkeypatch, tmp_path, flags, expected) -> None:
    fake_proc_cpuinfo(monkeypatch, tmp_path, flags)
    assert resolve_precision("auto", CPU) == expected


def test_no_probe_and_no_cpuinfo_means_fp32(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(precision, "torch_cpu_capabilities", lambda: None)
    monkeypatch.setattr(precision, "PROC_CPUINFO", tmp_path / "missing")
    assert resolve_precision("auto", CPU) == "fp32"


def test_real_cpuinfo_parses_and_the_probes_agree() -> None:
    """The parser reads this machine's real /proc/cpuinfo; where torch's probe and the kernel
    disagree (a kernel can hide AMX that CPUID shows), torch's answer is the one used."""
    if not precision.PROC_CPUINFO.is_file():
        pytest.skip("no /proc/cpuinfo on this machine")
    flags = precision.proc_cpuinfo_flags()
    if platform.machine() in ("x86_64", "AMD64"):
        assert "sse2" in flags, sorted(flags)[:20]  # every x86-64 CPU has it
    from_proc = [f for f in precision.CPU_BF16_FLAGS if f in flags]
    caps = precision.torch_cpu_capabilities()
    if caps is None or not any(f in caps for f in precision.CPU_BF16_FLAGS):
        assert cpu_bf16_flags() == from_proc
    else:
        assert cpu_bf16_flags() == [f for f in precision.CPU_BF16_FLAGS if caps.get(f)]


@pytest.mark.parametrize(
    ("capability", "expected"),
    [((7, 0), "fp32"), ((7, 5), "fp32"), ((8, 0), "bf16"), ((8, 6), "bf16"), ((9, 0), "bf16")],
)
def test_auto_on_cuda_needs_ampere(monkeypatch, capability, expected) -> None:
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    assert resolve_precision("auto", CUDA) == expected


@pytest.mark.parametrize("requested", ["bf16", "fp32"])
def test_explicit_choice_is_kept_without_native_bf16(monkeypatch, requested) -> None:
    fake_torch_caps(monkeypatch)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 0))
    assert resolve_precision(requested, CPU) == requested
    assert resolve_precision(requested, CUDA) == requested


@pytest.mark.parametrize("bad", ["fp16", "BF16", "", None])
def test_unknown_precision_names_value_and_choices(bad) -> None:
    with pytest.raises(ValueError, match=r"precision=.*auto.*bf16.*fp32"):
        resolve_precision(bad, CPU)


def test_autocast_needs_a_resolved_precision() -> None:
    with pytest.raises(ValueError, match=r"'auto'.*resolve_precision"):
        autocast_context(CPU, "auto")


def test_fp32_context_changes_nothing() -> None:
    factory = autocast_context(CPU, "fp32")
    assert factory is contextlib.nullcontext
    with factory():
        out = torch.nn.Linear(8, 4)(torch.randn(2, 8))
    assert out.dtype == torch.float32


def test_bf16_autocast_computes_conv_and_matmul_in_bf16_on_cpu() -> None:
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(8, 16, 3, padding=1)
    linear = torch.nn.Linear(16, 10)
    x = torch.randn(4, 8, 16, 16)
    factory = autocast_context(CPU, "bf16")
    with factory():
        feat = conv(x)
        logits = linear(feat.mean((2, 3)))
    assert feat.dtype == torch.bfloat16
    assert logits.dtype == torch.bfloat16
    # Same maths, bf16 rounding only (8 mantissa bits: ~1e-2 relative).
    ref = linear(conv(x).mean((2, 3)))
    torch.testing.assert_close(logits.float(), ref, rtol=5e-2, atol=5e-2)
    # A fresh context every call: the factory is reusable per batch.
    with factory():
        assert conv(x).dtype == torch.bfloat16
