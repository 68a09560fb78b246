"""Initialization and gradient probes (EXPERIMENTS.md F); no data set needed.

- :class:`WeightVarianceNet`: 5 conv layers -> global average pooling -> (N, 512, 1, 1), with the
  third layer's weight variance exactly ``third_layer_factor`` (2) times the second's and fourth's.
- :class:`GradientDepthNet`: alternating Conv2d / ReLU, output (N, 64, 8, 8), initialised so that
  after one ``backward()`` the first layer's gradient is smaller than the last layer's.
- :func:`layer_grad_norms`: per-layer weight-gradient norms for the plots of D2 / F2 / C2.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["GradientDepthNet", "WeightVarianceNet", "layer_grad_norms", "set_exact_variance"]


@torch.no_grad()
def set_exact_variance(
    weight: torch.Tensor, variance: float, generator: torch.Generator | None = None
) -> None:
    """Fill ``weight`` with Gaussian noise standardized to sample mean 0 and sample variance
    exactly ``variance`` (up to float rounding), so ratios between layers hold exactly rather than
    only in expectation."""
    w = torch.randn(weight.shape, generator=generator, dtype=torch.float64)
    w = (w - w.mean()) / w.std(unbiased=False)
    weight.copy_((w * math.sqrt(variance)).to(weight.dtype))


class WeightVarianceNet(nn.Module):
    """Five 3x3 conv layers (stride 2, ReLU between) -> AdaptiveAvgPool2d(1): (N, 512, 1, 1).

    Widths ``in -> 64 -> 128 -> 256 -> 512 -> 512``. Initialisation (biases zero):

    - layers 1 and 5: He variance ``2 / fan_in``;
    - layers 2 and 4: ``base_var`` (default: He variance of layer 2, ``2 / (64 * 9)``);
    - layer 3: ``third_layer_factor * base_var`` (2x by default).

    Each weight tensor is standardized after sampling (:func:`set_exact_variance`), so the sample
    variance of layer 3 is exactly twice that of layers 2 and 4. Doubling one layer's variance
    scales the activation variance after it by ~2 (He et al. 2015, arXiv 1502.01852: Var[y] =
    n * Var[w] * E[x^2]), which shows as a ~sqrt(2) wider distribution after pooling;
    ``third_layer_factor=1`` is the control.
    """

    widths = (64, 128, 256, 512, 512)

    def __init__(
        self,
        in_channels: int = 3,
        *,
        base_var: float | None = None,
        third_layer_factor: float = 2.0,
        seed: int | None = 0,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = in_channels
        for i, w in enumerate(self.widths):
            layers.append(nn.Conv2d(c, w, 3, stride=2, padding=1))
            if i < len(self.widths) - 1:
                layers.append(nn.ReLU(inplace=True))
            c = w
        self.layers = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        convs = self.convs()
        if base_var is None:
            base_var = 2.0 / (convs[1].in_channels * 9)
        gen = None if seed is None else torch.Generator().manual_seed(seed)
        variances = [
            2.0 / (convs[0].in_channels * 9),
            base_var,
            third_layer_factor * base_var,
            base_var,
            2.0 / (convs[4].in_channels * 9),
        ]
        for conv, var in zip(convs, variances, strict=True):
            if conv.weight.device.type != "meta":
                set_exact_variance(conv.weight, var, gen)
            nn.init.zeros_(conv.bias)

    def convs(self) -> list[nn.Conv2d]:
        return [m for m in self.layers if isinstance(m, nn.Conv2d)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.layers(x))


class GradientDepthNet(nn.Module):
    """``num_conv`` x (Conv2d 3x3 -> ReLU), 64 channels, stride 1: (N, in, 8, 8) -> (N, 64, 8, 8).

    Initialisation: weights ``N(0, weight_gain**2 * 2 / fan_in)`` (He scaled by ``weight_gain``
    < 1) and every bias ``bias`` > 0. Why the first layer then gets the smallest gradient:
    forward, the positive biases keep each ReLU's output at order ``bias`` however small the
    weights are, so every layer's *input* has a similar size; backward, the signal reaching layer
    ``l`` has been multiplied by ``L - l`` transposed weight matrices of gain ~``weight_gain / sqrt
    (2)`` each, so it shrinks geometrically towards the input (vanishing gradients). A weight
    gradient is (input activation) x (backward signal), hence it shrinks with distance from the
    output. ``layer_grad_norms`` after ``model(x).mean().backward()`` shows it.
    """

    def __init__(
        self,
        in_channels: int = 3,
        *,
        num_conv: int = 6,
        width: int = 64,
        weight_gain: float = 0.5,
        bias: float = 0.1,
    ) -> None:
        super().__init__()
        if num_conv < 3:
            raise ValueError(f"num_conv must be >= 3 (>= 6 layers Conv2d/ReLU), got {num_conv}")
        layers: list[nn.Module] = []
        c = in_channels
        for _ in range(num_conv):
            layers += [nn.Conv2d(c, width, 3, padding=1), nn.ReLU()]
            c = width
        self.layers = nn.Sequential(*layers)
        for m in self.layers:
            if isinstance(m, nn.Conv2d):
                fan_in = m.in_channels * m.kernel_size[0] * m.kernel_size[1]
                nn.init.normal_(m.weight, std=weight_gain * math.sqrt(2.0 / fan_in))
                nn.init.constant_(m.bias, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def layer_grad_norms(
    model: nn.Module,
    types: Sequence[type[nn.Module]] = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear),
) -> list[tuple[str, float]]:
    """L2 norm of each layer's weight gradient, in module registration (≈ forward) order.

    Args:
        model: a model after ``backward()``.
        types: layer types to report (BatchNorm etc. are left out of the plot by default).

    Returns:
        ``[(module name, norm), ...]`` for layers of ``types`` whose weight has a gradient.
    """
    norms = []
    for name, m in model.named_modules():
        w = getattr(m, "weight", None)
        if isinstance(m, tuple(types)) and w is not None and w.grad is not None:
            norms.append((name, float(w.grad.detach().norm())))
    return norms
