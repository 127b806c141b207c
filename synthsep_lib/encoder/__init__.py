"""The encoder: from the mixture's spectra to the target speaker's mel (or linear) spectrum.

Keras 3 on TensorFlow, as in the paper. ``synthsep_lib.encoder.model`` builds the
Proposed and B1 networks (original_code.md#oc-encoder), ``synthsep_lib.encoder.loss`` holds the
perceptual loss and the errors e1, e2 (original_code.md#oc-loss, original_code.md#oc-errors).

Its data feed, training and inference are in :mod:`synthsep_lib.pipeline`.

This package file imports nothing heavy: the names below are loaded on first use, and
``perceptual_weights`` / ``encoder_errors`` work without TensorFlow.
"""

from __future__ import annotations

import importlib

__all__ = [
    "VARIANTS",
    "build_encoder",
    "describe_encoder",
    "count_parameters",
    "perceptual_weights",
    "perceptual_loss",
    "encoder_errors",
]

_WHERE = {
    "VARIANTS": "model",
    "build_encoder": "model",
    "describe_encoder": "model",
    "count_parameters": "model",
    "perceptual_weights": "loss",
    "perceptual_loss": "loss",
    "encoder_errors": "loss",
}


def __getattr__(name: str):
    if name in _WHERE:
        module = importlib.import_module(f"{__name__}.{_WHERE[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
