"""The 256-class mu-law output of r9y9's ``input_type="mulaw-quantize"``.

Instead of a mixture of logistics over 65 536 levels, the network predicts a softmax
over ``Q`` mu-law companded classes (``mu = Q - 1``) and reads its own previous sample
as a one-hot vector. It is coarser (8-bit mu-law audio has audible hiss) but learns
far faster, which is why the ``reduced`` profile uses it.

The formulas are those r9y9's training code uses (from ``nnmnkwii``):

- compand: ``y = sign(x) log(1 + mu |x|) / log(1 + mu)``;
- quantize: ``q = floor((y + 1) / 2 * mu)`` in ``0 .. mu``;
- expand: ``y = 2 q / mu - 1``, ``x = sign(y) ((1 + mu) ** |y| - 1) / mu``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from synthsep_lib.vocoder.logistic_mixture import UNIFORM_RANGE

__all__ = [
    "mulaw_quantize",
    "inv_mulaw_quantize",
    "mulaw_cross_entropy",
    "sample_from_softmax",
]


def mulaw_quantize(x: torch.Tensor, quantize_channels: int = 256) -> torch.Tensor:
    """Amplitudes in [-1, 1] -> mu-law class indices.

    Parameters
    ----------
    x : torch.Tensor, any shape
        Audio in [-1, 1] (values outside are clipped).
    quantize_channels : int
        Number of classes Q (``mu = Q - 1``).

    Returns
    -------
    torch.Tensor of int64, same shape, values in ``0 .. Q - 1``
    """
    mu = quantize_channels - 1
    x = torch.clamp(x, -1.0, 1.0)
    y = torch.sign(x) * torch.log1p(mu * x.abs()) / math.log1p(mu)
    return ((y + 1) / 2 * mu).long()


def inv_mulaw_quantize(q: torch.Tensor, quantize_channels: int = 256) -> torch.Tensor:
    """Mu-law class indices -> amplitudes in [-1, 1] (float32, same shape)."""
    mu = quantize_channels - 1
    y = 2 * q.float() / mu - 1
    return torch.sign(y) * ((1 + mu) ** y.abs() - 1) / mu


def mulaw_cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-step cross-entropy of the target amplitudes' classes.

    Parameters
    ----------
    logits : torch.Tensor, shape (B, Q, T)
        Network output.
    y : torch.Tensor, shape (B, T)
        Target amplitudes in [-1, 1].

    Returns
    -------
    torch.Tensor, shape (B, T)
        Negative log-probabilities in nats.
    """
    target = mulaw_quantize(y, logits.size(1))
    return F.cross_entropy(logits, target, reduction="none")


def sample_from_softmax(
    logits: torch.Tensor,
    *,
    generator: torch.Generator | None = None,
    uniforms: torch.Tensor | None = None,
) -> torch.Tensor:
    """One class per row from ``softmax(logits)`` by the Gumbel-max trick.

    Parameters
    ----------
    logits : torch.Tensor, shape (B, Q)
    generator : torch.Generator, optional
        Source of the (B, Q) uniform draws.
    uniforms : torch.Tensor, shape (B, Q), optional
        Explicit draws in (0, 1); overrides ``generator``.

    Returns
    -------
    torch.Tensor of int64, shape (B,)
    """
    u = uniforms
    if u is None:
        u = torch.empty_like(logits).uniform_(*UNIFORM_RANGE, generator=generator)
    return torch.argmax(logits - torch.log(-torch.log(u)), dim=-1)
