"""Why a U-Net trained at --smoke predicts one constant mask, whatever its loss.

Builds unet_rocks' base U-Net (base 32, max width 160, depth 4, max-pool; 2.66M parameters) for
several seeds and prints, in eval mode as the val and test passes run it: the mean of the logit
map and its spread over the pixels of a batch, before and after `--steps` Adam steps (lr 1e-3,
BCE against masks with 7.4% rock, the lunar share), and the share of pixels predicted rock.
The spread is mostly a small fraction of the mean, so the sign the initialization chose holds on
every pixel until training has moved the head far more than a few steps do: the seed, not the
loss, decides between 'rock everywhere' and 'no rock'.

    python benchmarks/unet_init_logits.py [--seeds 6] [--steps 2]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from trainables.models.unet import UNet

ROCK_SHARE = 0.074  # the lunar masks' rock share (the smoke report's IoU of an all-rock model)


def logit_map(model: UNet, x: torch.Tensor) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(x)


def describe(y: torch.Tensor) -> str:
    return (
        f"mean {y.mean().item():+.3f}, spread {y.std().item():.3f}, "
        f"rock {(y > 0).float().mean().item():.0%}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=6)
    parser.add_argument("--steps", type=int, default=2, help="Adam steps (--smoke: 2 batches)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    print(f"seed | logit map at init | after {args.steps} BCE steps | spread / |mean| at init")
    for seed in range(args.seeds):
        torch.manual_seed(seed)
        model = UNet(base_channels=32, max_width=160, depth=4)
        x = torch.randn(4, 3, 128, 128)  # normalized images: zero mean, unit variance
        target = (torch.rand(4, 1, 128, 128) < ROCK_SHARE).float()
        before = logit_map(model, x)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        model.train()
        for _ in range(args.steps):
            loss = F.binary_cross_entropy_with_logits(model(x), target)
            opt.zero_grad()
            loss.backward()
            opt.step()
        after = logit_map(model, x)
        ratio = before.std().item() / max(abs(before.mean().item()), 1e-9)
        print(f"{seed} | {describe(before)} | {describe(after)} | {ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
