"""`python -m analysis.untrained [--out DIR]`: the model probes that need no data set.

Section F of the course: (1) weight variance control, a 5-layer net to (1, 512, 1, 1) whose third
layer has twice the weight variance of the second and fourth, shown as histograms of the pooled
activations against the control (all equal); (2) gradients through depth, per-layer gradient
norms of a 6x Conv2d/ReLU net after one backward() on random data. Plus (section D) the receptive
field of every layer of the kernel-size and depth variants. Writes probes.md and figures/*.png.
Unlike the report, this builds models (CPU, a few seconds); it reads no experiment folder.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch

from analysis import figures
from trainables.models import build_model
from trainables.models.init_gradients import (
    GradientDepthNet,
    WeightVarianceNet,
    layer_grad_norms,
)
from trainables.models.receptive_field import receptive_field

RF_MODELS = {
    "kernel 3x3": {"model": "kernel_cnn", "kernel": "3x3", "target_params": 150_000},
    "kernel 5x5": {"model": "kernel_cnn", "kernel": "5x5", "target_params": 150_000},
    "kernel 7x7": {"model": "kernel_cnn", "kernel": "7x7", "target_params": 150_000},
    "kernel 1x1+3x3": {"model": "kernel_cnn", "kernel": "1x1+3x3", "target_params": 150_000},
    "depth 6 conv": {"model": "depth_cnn", "n_conv": 6},
}


def pooled_activations(factor: float, samples: int, seed: int) -> torch.Tensor:
    """GAP outputs (samples x 512 values) of WeightVarianceNet on N(0, 1) inputs."""
    model = WeightVarianceNet(third_layer_factor=factor, seed=seed).eval()
    x = torch.randn(samples, 3, 64, 64, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return model(x).flatten()


def weight_variance_figure(out: Path, samples: int = 32, seed: int = 0) -> dict[str, float]:
    control = pooled_activations(1.0, samples, seed)
    doubled = pooled_activations(2.0, samples, seed)
    fig, ax = plt.subplots(figsize=(7, 4))
    # Pooled values are signed (about half negative): the bins span both tails.
    lo = float(min(control.min(), doubled.min()))
    hi = float(max(control.max(), doubled.max()))
    bins = torch.linspace(lo, hi, 60).numpy()
    ax.hist(control.numpy(), bins=bins, alpha=0.6, label="layer 3 variance = layers 2 and 4")
    ax.hist(doubled.numpy(), bins=bins, alpha=0.6, label="layer 3 variance x2")
    ax.set_xlabel("activation after global average pooling")
    ax.set_ylabel("count")
    ax.set_title("F.1 Weight variance control: pooled activations")
    ax.legend()
    fig.tight_layout()
    # As the report's figures: cropped, data areas recorded in the PNG, budget stated.
    figures.save(
        fig, out, budget=f"Budget: no training; {samples} N(0, 1) inputs of 3x64x64, seed {seed}"
    )
    return {"control_std": float(control.std()), "doubled_std": float(doubled.std())}


def gradient_figure(out: Path, seed: int = 0) -> list[tuple[str, float, int]]:
    """Per-layer weight-gradient norms after one backward(), with each layer's weight count."""
    torch.manual_seed(seed)
    model = GradientDepthNet()
    x = torch.randn(16, 3, 8, 8, generator=torch.Generator().manual_seed(seed))
    model(x).mean().backward()
    norms = layer_grad_norms(model)
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.bar([f"conv{i + 1}" for i in range(len(norms))], [n for _, n in norms])
    ax.set_yscale("log")
    ax.set_ylabel("weight-gradient L2 norm (log)")
    ax.set_title("F.2 Gradient norm per layer after one backward()")
    fig.tight_layout()
    # As the report's figures: cropped, data areas recorded in the PNG, budget stated.
    figures.save(
        fig,
        out,
        budget=f"Budget: no training; one backward() of 16 N(0, 1) inputs of 3x8x8, seed {seed}",
    )
    sizes = [m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    # conv1..conv6 as on the figure's axis (the module names are layers.0, layers.2, ...).
    return [
        (f"conv{i + 1}", norm, size)
        for i, ((_, norm), size) in enumerate(zip(norms, sizes, strict=True))
    ]


def gradient_explanation(norms: list[tuple[str, float, int]]) -> str:
    """F.2 in words, from its own numbers: the step between neighbouring layers, and why the
    first layer's drop is larger (it has 3 input channels, so far fewer weights)."""
    steps = [b[1] / a[1] for a, b in itertools.pairwise(norms)]  # later over earlier
    first, rest = steps[0], steps[1:]
    (n1, _, w1), (n2, _, w2) = norms[0], norms[1]
    text = (
        f"From the output back to the input the gradient norm falls at every layer, but not "
        f"geometrically: it drops {first:.1f}× from {n2} to {n1}, and only "
        f"{min(rest):.1f}-{max(rest):.1f}× between the other neighbouring layers. "
        f"The backward signal shrinks a little at each layer (He init scaled by 0.5 gives each "
        f"layer a gain below 1). The big last step is partly a count: {n1} has 3 input "
        f"channels, so {w1:,} weights against {w2:,} in {n2}, and a norm over {w2 / w1:.1f}× "
        f"fewer entries is √{w2 / w1:.1f} = {(w2 / w1) ** 0.5:.1f}× smaller at equal "
        f"per-weight gradients; the remaining {first / (w2 / w1) ** 0.5:.1f}× comes from the "
        f"input each layer's weight gradient is multiplied by (the raw N(0, 1) image for {n1}, "
        "ReLU activations with positive biases for the others). The first layer still gets "
        "the smallest gradient: vanishing towards the input, mild at this depth."
    )
    return text


def receptive_fields() -> dict[str, list[tuple[str, int, int]]]:
    out = {}
    for name, cfg in RF_MODELS.items():
        with torch.device("meta"):  # only shapes matter
            model = build_model({**cfg, "num_classes": 10, "in_channels": 3})
        out[name] = [(layer.name, layer.rf, layer.jump) for layer in receptive_field(model)]
    return out


def write_probes(out_dir: Path) -> Path:
    figures = out_dir / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    stds = weight_variance_figure(figures / "weight_variance.png")
    norms = gradient_figure(figures / "gradient_depth.png")
    lines = [
        "# archsweep probes",
        "",
        "## F.1 Weight variance control",
        "",
        "A 5-layer conv net to (1, 512, 1, 1); layer 3's weights have exactly twice the variance "
        "of layers 2 and 4. Activations after global average pooling, 32 random inputs:",
        "",
        f"- control (equal variances): std {stds['control_std']:.4f}",
        f"- layer 3 doubled: std {stds['doubled_std']:.4f} "
        f"(ratio {stds['doubled_std'] / stds['control_std']:.3f}; with ReLUs between layers the "
        "signal's second moment scales with each layer's weight variance, so about sqrt(2))",
        "",
        "![pooled activations](figures/weight_variance.png)",
        "",
        "## F.2 Gradients through depth",
        "",
        "Six Conv2d/ReLU layers, output (batch, 64, 8, 8), He init scaled by 0.5 and positive "
        "biases; weight-gradient norms after one backward() of the output mean:",
        "",
        "| layer | gradient norm | weights |",
        "|---|---|---|",
        *[f"| {name} | {norm:.3e} | {size:,} |" for name, norm, size in norms],
        "",
        gradient_explanation(norms),
        "",
        "![gradient norms](figures/gradient_depth.png)",
        "",
        "## D Receptive fields (input pixels seen by one output of each conv/pool layer)",
        "",
    ]
    for name, layers in receptive_fields().items():
        lines += [f"- {name}: " + ", ".join(f"{rf}" for _, rf, _ in layers)]
    path = out_dir / "probes.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis.untrained", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("runs/probes"))
    args = parser.parse_args(argv)
    print(f"probes written: {write_probes(args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
