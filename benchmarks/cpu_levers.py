"""CPU training levers side by side, in one run: precision, channels_last, torch.compile, threads.

One training step of the quickstart's model (search_spaces/activations.py: RESNET_SMALL, 2.8M
parameters, CIFAR stem) at 64x64, batch 32, Adam, cross-entropy, exactly like trainables/loop.py
(autocast around forward + loss on float logits). Inputs are random normalized tensors: a step's
cost does not depend on pixel values, and the data pipeline is measured by benchmarks/loader.py.

Every variant lives in its own worker process: channels_last can segfault inside oneDNN (see
tests/test_channels_last_cpu.py) and a crash must be reported, not end the benchmark; threads
and parallel trials need separate processes anyway. After all workers have warmed up, the driver
measures in rounds, variant order reversed every other round (A-B-C, C-B-A), so slow drift in the
machine's load (other jobs) hits every variant alike; the ratio to fp32 is taken per round (paired)
and its median reported. Spread = (max - min) / median of a variant's rounds.

    .venv/bin/python benchmarks/cpu_levers.py            # ~4-5 min on 2 busy cores
    .venv/bin/python benchmarks/cpu_levers.py --quick    # wiring check, tiny sizes (~1 min)
"""

from __future__ import annotations

import argparse
import json
import os
import select
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# 3 epochs x 4500 train images (10 Tiny ImageNet classes x 500, 10% held out for validation):
# the quickstart trial (`--set epochs=3`), to amortise torch.compile's one-off cost over.
QUICKSTART_TRIAL_IMAGES = 3 * 4500
# Above this round-to-round spread of the baseline, a 10% lever cannot be told from load changes.
NOISE_LIMIT = 0.25


@dataclass(frozen=True)
class Variant:
    name: str
    precision: str = "fp32"  # "fp32" | "bf16" | "auto" (resolved in the worker)
    channels_last: bool = False
    compile: bool = False
    threads: int = 1
    procs: int = 1  # >1: that many identical trials at once; the row is their total images/s
    model: str = "quickstart"  # "quickstart" | "crash_check" (8-channel first stage)


def model_config(kind: str, size: str) -> dict[str, Any]:
    from search_spaces.common import RESNET_SMALL

    cfg: dict[str, Any]
    if kind == "crash_check":
        # An 8->16 1x1 stride-2 shortcut on 64x64 maps: oneDNN's NHWC backward crash.
        cfg = {**RESNET_SMALL, "channels": (8, 16, 32, 64)}
    else:
        cfg = dict(RESNET_SMALL)
    if size == "quick":
        # Halved, not quartered: the quickstart's narrowest stage must stay outside the crash
        # (>= 16 channels), the crash check's must stay inside it (8 channels).
        half = cfg["channels"] if kind == "crash_check" else tuple(c // 2 for c in cfg["channels"])
        cfg = {**cfg, "channels": half, "blocks": 1}
    return {**cfg, "num_classes": 10, "in_channels": 3}


# ----------------------------------------------------------------------------- worker side


def worker(spec: dict[str, Any]) -> None:
    """Serve `warmup` / `steps N` / `quit` on stdin; answer one JSON line per command."""
    import torch
    import torch.nn.functional as F

    from trainables.models import build_model
    from trainables.precision import autocast_context, resolve_precision

    torch.set_num_threads(spec["threads"])
    torch.manual_seed(0)
    device = torch.device("cpu")
    precision = resolve_precision(spec["precision"], device)
    model = build_model(model_config(spec["model"], spec["size"]))
    memory_format = torch.channels_last if spec["channels_last"] else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    step_model = torch.compile(model) if spec["compile"] else model
    autocast = autocast_context(device, precision)
    b, s = spec["batch_size"], spec["image_size"]
    x = torch.randn(b, 3, s, s).contiguous(memory_format=memory_format)
    y = torch.randint(0, 10, (b,))

    def step() -> None:
        with autocast():
            loss = F.cross_entropy(step_model(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def timed(n: int) -> float:
        t0 = time.perf_counter()
        for _ in range(n):
            step()
        return time.perf_counter() - t0

    answer({"ready": True, "precision": precision})
    for line in sys.stdin:
        cmd = line.split()
        if cmd[0] == "warmup":
            # The first step carries the one-off costs (oneDNN primitive creation, and for
            # torch.compile the whole compilation); the second shows the steady step.
            first = timed(1)
            answer({"first_step_s": first, "steady_step_s": timed(1)})
        elif cmd[0] == "steps":
            n = int(cmd[1])
            answer({"images_per_s": n * b / timed(n)})
        elif cmd[0] == "quit":
            return


def answer(payload: dict[str, Any]) -> None:
    print(json.dumps(payload), flush=True)


# ----------------------------------------------------------------------------- driver side


class Worker:
    def __init__(self, variant: Variant, args: argparse.Namespace, index: int, logdir: Path):
        spec = {
            **asdict(variant),
            "size": "quick" if args.quick else "full",
            "batch_size": args.batch_size,
            "image_size": args.image_size,
        }
        env = {**os.environ, "OMP_NUM_THREADS": str(variant.threads)}
        if variant.compile:
            # A cold inductor cache: a user's first quickstart compiles from scratch.
            env["TORCHINDUCTOR_CACHE_DIR"] = str(logdir / f"inductor-cache-{os.getpid()}")
        self.stderr_path = logdir / f"worker{index}.err"
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--worker", json.dumps(spec)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr_path.open("w"),
            text=True,
            env=env,
            cwd=ROOT,
        )
        self.failure: str | None = None

    def send(self, command: str) -> None:
        if self.failure is None:
            try:
                stdin = self.proc.stdin
                assert stdin is not None  # Popen(stdin=PIPE)
                stdin.write(command + "\n")
                stdin.flush()
            except BrokenPipeError:
                self.receive()  # records why the worker is gone

    def receive(self, timeout_s: float | None = None) -> dict[str, Any] | None:
        """The worker's reply; None (and `failure` set) if it crashed or took too long."""
        if self.failure is not None:
            return None
        # One reply per command, read before the next is sent: the text buffer is empty here,
        # so waiting on the file descriptor is exact.
        stdout = self.proc.stdout
        assert stdout is not None  # Popen(stdout=PIPE)
        ready, _, _ = select.select([stdout], [], [], timeout_s)
        if not ready:
            self.proc.kill()
            self.proc.wait()
            self.failure = f"gave up after {timeout_s:.0f} s (--compile-budget-s)"
            return None
        line = stdout.readline()
        if line:
            return json.loads(line)
        code = self.proc.wait()
        reason = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
        tail = self.stderr_path.read_text().strip().splitlines()[-1:] or [""]
        self.failure = f"crashed ({reason}) {tail[0][:80]}".strip()
        return None

    def close(self) -> None:
        if self.failure is None and self.proc.poll() is None:
            self.send("quit")
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def variants() -> list[Variant]:
    """The rows; the first is the baseline every ratio refers to."""
    return [
        Variant("fp32 (baseline)"),
        Variant("bf16 autocast", precision="bf16"),
        Variant("fp32 channels_last", channels_last=True),
        Variant("bf16 channels_last", precision="bf16", channels_last=True),
        Variant("auto + torch.compile", precision="auto", compile=True),
        Variant("auto, 2 threads", precision="auto", threads=2),
        Variant("auto, 2 trials x 1 thread", precision="auto", procs=2),
        Variant("fp32 channels_last, 8-ch model", channels_last=True, model="crash_check"),
    ]


def measure(ws: list[Worker], steps: int, images: int) -> float | None:
    """Total images/s of these workers stepping at the same time (None if any crashed)."""
    t0 = time.perf_counter()
    for w in ws:
        w.send(f"steps {steps}")
    replies = [w.receive() for w in ws]
    wall = time.perf_counter() - t0
    done = [r for r in replies if r is not None]
    if len(done) < len(replies):
        return None
    if len(ws) == 1:
        return done[0]["images_per_s"]
    return len(ws) * images / wall


def run(args: argparse.Namespace) -> dict[str, Any]:
    rows = variants()
    logdir = Path(args.logdir)
    logdir.mkdir(parents=True, exist_ok=True)
    load_start = os.getloadavg()
    t_start = time.perf_counter()
    pools = {
        v.name: [Worker(v, args, i * 10 + k, logdir) for k in range(v.procs)]
        for i, v in enumerate(rows)
    }
    info: dict[str, dict[str, Any]] = {v.name: {} for v in rows}
    for v in rows:
        for w in pools[v.name]:
            reply = w.receive()
            if reply is not None:
                info[v.name]["precision"] = reply["precision"]
    # Warm up eager workers first, then the compiled one alone: its compile time is measured
    # without the other workers' start-up competing for the cores.
    for v in sorted(rows, key=lambda v: v.compile):
        for w in pools[v.name]:
            w.send("warmup")
        timeout = args.compile_budget_s if v.compile else None
        replies = [w.receive(timeout) for w in pools[v.name]]
        if replies[0] is not None:
            info[v.name].update(replies[0])
    setup_s = time.perf_counter() - t_start

    rates: dict[str, list[float | None]] = {v.name: [] for v in rows}
    for r in range(args.rounds):
        order = rows if r % 2 == 0 else rows[::-1]
        for v in order:
            rates[v.name].append(measure(pools[v.name], args.steps, args.steps * args.batch_size))
    for ws in pools.values():
        for w in ws:
            w.close()
    failures = {v.name: pools[v.name][0].failure for v in rows if pools[v.name][0].failure}
    return {
        "rows": rows,
        "rates": rates,
        "info": info,
        "failures": failures,
        "setup_s": setup_s,
        "total_s": time.perf_counter() - t_start,
        "load": (load_start, os.getloadavg()),
    }


def summarize(result: dict[str, Any], args: argparse.Namespace) -> list[dict[str, Any]]:
    base = result["rates"][result["rows"][0].name]
    out = []
    for v in result["rows"]:
        rs = result["rates"][v.name]
        row: dict[str, Any] = {"variant": v.name, "rates": rs, **result["info"][v.name]}
        if v.name in result["failures"] or any(r is None for r in rs):
            row["failure"] = result["failures"].get(v.name, "crashed")
            out.append(row)
            continue
        med = statistics.median(rs)
        paired = [r / b for r, b in zip(rs, base, strict=True) if b]
        row.update(
            median=med,
            spread=(max(rs) - min(rs)) / med,
            ratio=statistics.median(paired),
        )
        if v.compile and "first_step_s" in row:
            compile_s = row["first_step_s"] - row["steady_step_s"]
            row["compile_s"] = compile_s
            row["amortised"] = args.trial_images / (compile_s + args.trial_images / med)
        out.append(row)
    return out


def print_table(summary: list[dict[str, Any]], result: dict[str, Any], args: argparse.Namespace):
    base = summary[0].get("median")
    width = max(len(r["variant"]) for r in summary) + 2
    print(
        f"\n{'variant':{width}}{'prec':>6}{'images/s per round':>{8 * args.rounds + 2}}"
        f"{'median':>9}{'spread':>8}{'vs fp32':>9}"
    )
    for r in summary:
        prec = r.get("precision", "-")
        if "failure" in r:
            print(f"{r['variant']:{width}}{prec:>6}  {r['failure']}")
            continue
        per_round = " ".join(f"{x:7.1f}" for x in r["rates"])
        print(
            f"{r['variant']:{width}}{prec:>6}{per_round:>{8 * args.rounds + 2}}"
            f"{r['median']:9.1f}{r['spread']:8.0%}{r['ratio']:8.2f}x"
        )
    for r in summary:
        if "compile_s" in r:
            print(
                f"\ntorch.compile: first step {r['first_step_s']:.1f} s vs steady step "
                f"{r['steady_step_s']:.2f} s -> compile {r['compile_s']:.1f} s; over a "
                f"{args.trial_images}-image quickstart trial (3 epochs, training only) it runs "
                f"at {r['amortised']:.1f} images/s amortised "
                f"({r['amortised'] / base:.2f}x fp32)"
                if base
                else ""
            )
    (l1s, _, _), (l1e, _, _) = result["load"]
    print(
        f"\nnoise: load average {l1s:.1f} at start, {l1e:.1f} at end on {os.cpu_count()} cores; "
        f"fp32 baseline spread {summary[0].get('spread', float('nan')):.0%} over "
        f"{args.rounds} rounds; setup {result['setup_s']:.0f} s, total {result['total_s']:.0f} s"
    )
    print_verdict(summary)


def print_verdict(summary: list[dict[str, Any]]) -> None:
    by = {r["variant"]: r for r in summary}

    def ratio(name: str) -> float | None:
        return by.get(name, {}).get("ratio")

    def amortised_ratio() -> float | None:
        r = by.get("auto + torch.compile", {})
        base = by["fp32 (baseline)"].get("median")
        return r["amortised"] / base if "amortised" in r and base else None

    auto_1t = ratio("bf16 autocast") if by["auto, 2 threads"].get("precision") == "bf16" else 1.0
    lines = [
        ("precision", "bf16 autocast", ratio("bf16 autocast"), 1.0),
        ("channels_last (fp32)", "NHWC", ratio("fp32 channels_last"), 1.0),
        ("channels_last (bf16)", "NHWC", ratio("bf16 channels_last"), ratio("bf16 autocast")),
        ("torch.compile (amortised)", "compile", amortised_ratio(), auto_1t),
        (
            "2 trials x 1 thread vs 1 trial x 2",
            "parallel trials",
            ratio("auto, 2 trials x 1 thread"),
            ratio("auto, 2 threads"),
        ),
    ]
    noise = by["fp32 (baseline)"].get("spread", float("inf"))
    print("\nverdict (median paired ratios vs fp32; a lever wins at >= 1.10x its alternative):")
    if noise > NOISE_LIMIT:
        print(
            f"  NOT CONCLUSIVE: the fp32 baseline varied {noise:.0%} between rounds (> "
            f"{NOISE_LIMIT:.0%}); the machine is too busy to call winners. Rerun when the load "
            "average is below the core count, or with more --rounds."
        )
    for lever, option, got, against in lines:
        if got is None or against is None:
            print(f"  {lever:36} not measured (crashed or missing)")
            continue
        rel = got / against
        word = "WINS" if rel >= 1.10 else ("loses" if rel <= 0.91 else "no clear difference")
        word = word if noise <= NOISE_LIMIT else f"({word}, within noise)"
        print(f"  {lever:36} {option}: {rel:.2f}x its alternative -> {word}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny model and sizes: wiring check")
    p.add_argument("--rounds", type=int, default=None, help="measurement rounds (default 3)")
    p.add_argument("--steps", type=int, default=None, help="train steps per measurement")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--image-size", type=int, default=None)
    p.add_argument("--trial-images", type=int, default=QUICKSTART_TRIAL_IMAGES)
    p.add_argument(
        "--compile-budget-s",
        type=float,
        default=180.0,
        help="give up on torch.compile after this long (it then loses for a short trial)",
    )
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    p.add_argument("--logdir", default="/tmp/cpu_levers", help="workers' stderr files")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    quick_defaults = {"rounds": 2, "steps": 1, "batch_size": 8, "image_size": 64}
    full_defaults = {"rounds": 3, "steps": 2, "batch_size": 32, "image_size": 64}
    for key, value in (quick_defaults if args.quick else full_defaults).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    for key in ("rounds", "steps", "batch_size", "image_size"):
        if getattr(args, key) < 1:
            raise SystemExit(f"--{key.replace('_', '-')}={getattr(args, key)} must be >= 1")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.worker:
        worker(json.loads(args.worker))
        return
    print(
        f"cpu_levers: {'quick wiring check' if args.quick else 'RESNET_SMALL'} at "
        f"{args.image_size}x{args.image_size}, batch {args.batch_size}, {args.steps} steps x "
        f"{args.rounds} rounds per variant, interleaved (order reversed every other round)",
        flush=True,
    )
    result = run(args)
    summary = summarize(result, args)
    print_table(summary, result, args)
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "load": result["load"]}, indent=1))


if __name__ == "__main__":
    main()
