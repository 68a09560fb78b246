"""A model's architecture as a table: each part's output size, blocks and downsampling layers.

Introspection by forward hooks on one input, for any family (no family names a part for it):
the evaluation records it (trainables/evaluate.py, EvaluationRecord.architecture) and the
report renders it.
"""

from __future__ import annotations

from typing import Any

import torch


def architecture_summary(
    model: torch.nn.Module, input_shape: tuple[int, ...], device: torch.device
) -> list[dict[str, Any]]:
    """Per part of the model (stem, each stage, head...): its output size on one input of
    `input_shape` (C, H, W), its blocks and channels, and the layers where it downsamples.

    The parts are the model's top-level modules; a top-level container of blocks (ResNet's
    `stages`) is split into its stages, whose blocks are counted. "Downsamples at" names the
    layers on the main path whose output is spatially smaller than their input: shortcut
    convolutions (which follow the main path's stride) and layers inside a module that keeps
    its input's size (the squeeze of squeeze-and-excitation) are left out. The first row is the
    input itself.
    """
    parts, stages = _parts(model)
    seen: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {}
    hooks = []

    def keep(name: str):
        def hook(_m: torch.nn.Module, inp: Any, out: Any) -> None:
            if name not in seen and inp and isinstance(out, torch.Tensor):
                first = inp[0]
                if isinstance(first, torch.Tensor):
                    seen[name] = (tuple(first.shape[1:]), tuple(out.shape[1:]))

        return hook

    layers = {}
    for name, module in model.named_modules():
        if name:
            hooks.append(module.register_forward_hook(keep(name)))
            layers[name] = _layer_text(module)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros((1, *input_shape), device=device))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    side = input_shape[-1]
    rows: list[dict[str, Any]] = [
        {"part": "input", "kind": "", "out_shape": list(input_shape), "params": 0}
    ]
    for name, module in _called_parts(model, parts, seen):
        if name not in seen or isinstance(module, torch.nn.Identity):
            continue
        in_shape, out_shape = seen[name]
        blocks = [c for c in module.children() if list(c.children())]
        rows.append(
            {
                "part": name,
                "kind": type(module).__name__,
                "blocks": len(blocks) if name in stages else None,
                "block": type(blocks[0]).__name__ if blocks and name in stages else None,
                "in_shape": list(in_shape),
                "out_shape": list(out_shape),
                "total_stride": side // out_shape[-1] if len(out_shape) == 3 else None,
                "downsamples_at": _downsamplers(name, seen, layers),
                "params": sum(p.numel() for p in module.parameters()),
            }
        )
    return rows


def _parts(model: torch.nn.Module) -> tuple[list[tuple[str, torch.nn.Module]], set[str]]:
    """The model's parts in order, and the names of those that are stages of blocks."""
    parts: list[tuple[str, torch.nn.Module]] = []
    stages: set[str] = set()
    for name, child in model.named_children():
        grand = list(child.named_children())
        if (
            isinstance(child, torch.nn.Sequential | torch.nn.ModuleList)
            and grand
            and all(list(g.children()) for _, g in grand)
        ):
            parts += [(f"{name}.{g}", m) for g, m in grand]
            stages.update(f"{name}.{g}" for g, _ in grand)
        else:
            parts.append((name, child))
    return parts, stages


def _called_parts(
    model: torch.nn.Module,
    parts: list[tuple[str, torch.nn.Module]],
    seen: dict[str, Any],
) -> list[tuple[str, torch.nn.Module]]:
    """`parts`, each one the forward pass did not call on a tensor (a U-Net's encoder runs
    through `forward_features`, its decoder takes a list) replaced by its outermost
    descendants that it did call, in call order."""
    modules = dict(model.named_modules())
    order = {name: i for i, name in enumerate(seen)}
    out = []
    for name, module in parts:
        if name in seen:
            out.append((name, module))
            continue
        inner = [
            n
            for n in seen
            if n.startswith(name + ".")
            and not any(n.startswith(o + ".") for o in seen if o.startswith(name + "."))
        ]
        out += [(n, modules[n]) for n in sorted(inner, key=order.__getitem__)]
    return out


def _layer_text(module: torch.nn.Module) -> str:
    """ "Conv2d 7x7/2", "MaxPool2d 3x3/2": a layer's type, kernel and stride."""
    kernel, stride = getattr(module, "kernel_size", None), getattr(module, "stride", None)
    if kernel is None or stride is None:
        return type(module).__name__
    k = kernel if isinstance(kernel, tuple) else (kernel, kernel)
    st = stride[0] if isinstance(stride, tuple) else stride
    return f"{type(module).__name__} {k[0]}x{k[1]}/{st}"


def _downsamplers(
    part: str, seen: dict[str, tuple[tuple[int, ...], tuple[int, ...]]], layers: dict[str, str]
) -> list[dict[str, Any]]:
    """Leaf layers of `part` (or `part` itself, a leaf) on the main path whose output is
    spatially smaller than their input."""

    def spatial(name: str) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
        shapes = seen.get(name)
        if shapes is None or len(shapes[0]) != 3 or len(shapes[1]) != 3:
            return None
        return shapes[0][1:], shapes[1][1:]

    out = []
    for name in seen:
        inside = name == part or name.startswith(part + ".")
        leaf = not any(other.startswith(name + ".") for other in seen)
        path = name.split(".")
        if not inside or not leaf or "shortcut" in path or "downsample" in path:
            continue
        shapes = spatial(name)
        if shapes is None or shapes[1][-1] >= shapes[0][-1]:
            continue
        ancestors = [".".join(path[:i]) for i in range(len(part.split(".")), len(path))]
        if any((sp := spatial(a)) is not None and sp[0] == sp[1] for a in ancestors):
            continue  # inside a size-keeping module: a side branch such as SE's squeeze
        out.append(
            {
                "layer": name,
                "kind": layers.get(name, ""),
                "from": list(shapes[0]),
                "to": list(shapes[1]),
            }
        )
    return out
