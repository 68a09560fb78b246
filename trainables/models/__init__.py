"""archsweep's model zoo: every architecture of EXPERIMENTS.md as a registered family.

``build_model({"model": "<family>", **fields})`` builds any of ``list_families()``; the fields of
a family are ``family_fields(name)`` (a frozen dataclass per family, see each module).

Families: ``resnet`` (resnet.py), ``unet`` (unet.py), ``unet_backbone`` (unet_backbone.py),
``fc``, ``simple_cnn``, ``residual_cnn``, ``depth_cnn``, ``kernel_cnn`` (small.py).
Encoder/decoder models (the U-Nets) subclass :class:`EncoderDecoderModel` (base.py): test
``isinstance(model, EncoderDecoderModel)`` for freezing, encoder LR and encoder loading. The
course's reference configurations are in reference.py. Custom layers live in layers.py,
initialization / gradient probes in probes.py, receptive-field arithmetic in receptive_field.py.
"""

from . import resnet, small, unet, unet_backbone  # noqa: F401  (import registers the families)
from .base import EncoderDecoderModel
from .constraints import VALID_RULES, Violation, check_constraints
from .layers import act_names, get_act
from .registry import (
    build_model,
    count_parameters,
    family_fields,
    list_encoder_families,
    list_families,
    register_family,
    resolve_config,
)

__all__ = [
    "VALID_RULES",
    "EncoderDecoderModel",
    "Violation",
    "act_names",
    "build_model",
    "check_constraints",
    "count_parameters",
    "family_fields",
    "get_act",
    "list_encoder_families",
    "list_families",
    "register_family",
    "resolve_config",
]
