"""The course sample solution's reference models (EXPERIMENTS.md section C table).

Each is a config of an existing family, so the study files, a test and
``benchmarks/reference_table.py`` share one definition. Parameter counts with the data set's
input (``model_config()``), asserted to the unit by ``tests/test_reference_models.py``:

==============================  ============  ==========  ===========
name                            family        data set    parameters
==============================  ============  ==========  ===========
FC_MNIST                        fc            mnist          567,434
SimpleCNN                       simple_cnn    mnist          421,642
ModelWithBasicBlocks (MNIST)    resnet        mnist       11,172,810
FC_CIFAR                        fc            cifar10      9,050,378
ModelWithBasicBlocks (CIFAR)    resnet        cifar10     11,173,962
ModelWithRegularization         resnet        cifar10     11,173,962
Bottleneck variant (E.2)        resnet        cifar10     13,958,986
==============================  ============  ==========  ===========

The ResNets are ResNet-18 ([2, 2, 2, 2] blocks, widths 64-512) with the CIFAR stem (conv3x3/1, no
max-pool); the Bottleneck variant swaps in 1x1-3x3-1x1 blocks with expansion 4. The sample
solution does not say where its regularized model puts dropout or which rate it uses: here it is
Dropout2d(0.2) inside every block plus weight decay 5e-4 (trainer keys, see ``trainer``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from .registry import family_fields

__all__ = [
    "DATA_FACTS",
    "REFERENCE_MODELS",
    "ReferenceModel",
    "reference",
]

# What the trainable fills in from the data set (trainables.config.model_config).
DATA_FACTS: Mapping[str, Mapping[str, int]] = MappingProxyType(
    {
        "mnist": MappingProxyType({"in_channels": 1, "image_size": 28, "num_classes": 10}),
        "cifar10": MappingProxyType({"in_channels": 3, "image_size": 32, "num_classes": 10}),
    }
)


@dataclasses.dataclass(frozen=True)
class ReferenceModel:
    """One row of the course's reference table.

    Attributes:
        name: the sample solution's model name.
        dataset: "mnist" | "cifar10".
        model: the model part of a trial config (``{"model": family, **fields}``), without the
            data set's facts.
        epochs: the course's budget for this model (MNIST 5, CIFAR-10 10; Adam, lr 1e-3).
        trainer: trainer keys the model needs besides the budget (weight decay).
    """

    name: str
    dataset: str
    model: Mapping[str, Any]
    epochs: int
    trainer: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.dataset not in DATA_FACTS:
            raise ValueError(
                f"reference model {self.name!r}: dataset {self.dataset!r} is not one of "
                f"{', '.join(DATA_FACTS)}"
            )

    def model_config(self) -> dict[str, Any]:
        """The model config with the data set's facts that the family takes (as the trainable
        fills them in: in_channels, num_classes, and image_size where it is a field)."""
        fields = family_fields(self.model["model"])
        facts = {k: v for k, v in DATA_FACTS[self.dataset].items() if k in fields}
        return {**self.model, **facts}


_RESNET18 = {
    "model": "resnet",
    "channels": (64, 128, 256, 512),
    "blocks": (2, 2, 2, 2),
    "block": "basic",
    "stem": "cifar",
}

REFERENCE_MODELS: tuple[ReferenceModel, ...] = (
    ReferenceModel("FC_MNIST", "mnist", {"model": "fc", "hidden": (512, 256, 128)}, epochs=5),
    ReferenceModel(
        "SimpleCNN",
        "mnist",
        # conv3x3 1->32, ReLU, MaxPool2; conv3x3 32->64, ReLU, MaxPool2; FC 3136->128; FC 128->10.
        {
            "model": "simple_cnn",
            "channels": (32, 64),
            "batch_norm": False,
            "head": "fc",
            "fc_hidden": (128,),
        },
        epochs=5,
    ),
    ReferenceModel("ModelWithBasicBlocks (MNIST)", "mnist", _RESNET18, epochs=5),
    ReferenceModel(
        "FC_CIFAR",
        "cifar10",
        {"model": "fc", "hidden": (2048, 1024, 512, 256), "dropout": 0.3},
        epochs=10,
    ),
    ReferenceModel("ModelWithBasicBlocks (CIFAR)", "cifar10", _RESNET18, epochs=10),
    ReferenceModel(
        "ModelWithRegularization",
        "cifar10",
        {**_RESNET18, "dropout": 0.2},
        epochs=10,
        trainer={"weight_decay": 5e-4},
    ),
    ReferenceModel(
        "Bottleneck variant (E.2)", "cifar10", {**_RESNET18, "block": "bottleneck"}, epochs=10
    ),
)


def reference(name: str) -> ReferenceModel:
    """The reference model called ``name``; unknown names list the valid ones."""
    for ref in REFERENCE_MODELS:
        if ref.name == name:
            return ref
    raise ValueError(
        f"unknown reference model {name!r}; valid: {', '.join(r.name for r in REFERENCE_MODELS)}"
    )
