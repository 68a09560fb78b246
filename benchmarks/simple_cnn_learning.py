"""Why the small ``simple_cnn`` (32, 64) learns slowly on MNIST: head, normalization or init?

Trains variants that each change one thing against the small study's CNN (conv-BN-ReLU-pool x2,
then global average pooling -> Linear, PyTorch's default init) for the first ``--batches`` batches
of one epoch on MNIST through archsweep's own loop (Adam 1e-3, batch 128 like the small study),
and prints the running train accuracy over those batches, the validation accuracy after them and
the test accuracy.

    ARCHSWEEP_DATA=../shared/datasets python benchmarks/simple_cnn_learning.py [--batches 422]

422 batches of 128 are one full epoch of the 54,000 training images (the figure issue 14 quotes:
65.5% train accuracy after epoch 1).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.reference_table import load, train_reference
from trainables.models import count_parameters, register_family
from trainables.models.reference import ReferenceModel
from trainables.models.small import SimpleCNN, SimpleCNNConfig, build_simple_cnn


def build_he_init(cfg: SimpleCNNConfig) -> SimpleCNN:
    """simple_cnn with He (fan_out) init for convs, as the resnet family has."""
    model = build_simple_cnn(cfg)
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
    return model


register_family("simple_cnn_he_init", SimpleCNNConfig, build_he_init)

SMALL = {"model": "simple_cnn", "channels": (32, 64)}
VARIANTS: dict[str, dict] = {
    "small study CNN (BN, GAP)": SMALL,
    "no BN, GAP": {**SMALL, "batch_norm": False},
    "BN, GAP, He init": {**SMALL, "model": "simple_cnn_he_init"},
    "BN, GAP, 3 convs (32,64,128)": {**SMALL, "channels": (32, 64, 128)},
    "BN, flatten->FC128 head": {**SMALL, "head": "fc"},
    "no BN, flatten->FC128 (reference)": {**SMALL, "batch_norm": False, "head": "fc"},
}


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batches", type=int, default=422, help="training batches (422 = 1 epoch)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    bundle = load("mnist")
    print(f"MNIST, first {args.batches} batches of {args.batch_size}, adam 1e-3, 1 epoch")
    print(f"{'variant':<36} {'params':>8} {'train acc':>9} {'val acc':>8} {'test acc':>8} {'s':>6}")
    for name, model in VARIANTS.items():
        ref = ReferenceModel(name, "mnist", model, epochs=1)
        row, reports = train_reference(
            ref, bundle, batch_size=args.batch_size, max_batches=args.batches
        )
        (epoch,) = reports
        params = count_parameters(ref.model_config())
        print(
            f"{name:<36} {params:>8,} {100 * epoch['train_acc']:>8.2f}% "
            f"{100 * epoch['val_acc']:>7.2f}% {100 * row.test_acc:>7.2f}% {row.train_time_s:>6.1f}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
