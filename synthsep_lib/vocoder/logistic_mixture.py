"""Discretised mixture of logistics (MoL): loss, sampling and per-step probabilities.

The WaveNet vocoder outputs, per time step, ``3K`` numbers: ``K`` mixture logits
(channels ``[0:K]``), ``K`` means (``[K:2K]``) and ``K`` log-scales (``[2K:3K]``) of
logistic distributions over the amplitude range [-1, 1], discretised into
``num_classes`` bins (original_code.md#oc-mol; r9y9 ``wavenet_vocoder/mixture.py``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = [
    "LOG_SCALE_MIN",
    "discretized_mix_logistic_loss",
    "sample_from_discretized_mix_logistic",
    "mixture_pdf",
]

#: ln(1e-14): the lower clamp of the log-scales used by the LJSpeech model.
LOG_SCALE_MIN = math.log(1e-14)

#: Range of every uniform draw of the samplers (r9y9's), away from 0 and 1 for the logs.
UNIFORM_RANGE = (1e-5, 1.0 - 1e-5)


def _split_params(y_hat: torch.Tensor, log_scale_min: float):
    """(B, 3K, T) -> three (B, T, K) tensors: logits, means, clamped log-scales."""
    if y_hat.dim() != 3 or y_hat.size(1) % 3 != 0:
        raise ValueError(
            f"y_hat must have shape (B, 3K, T) with 3K channels; got {tuple(y_hat.shape)}"
        )
    k = y_hat.size(1) // 3
    p = y_hat.transpose(1, 2)
    logits = p[:, :, :k]
    means = p[:, :, k : 2 * k]
    log_scales = torch.clamp(p[:, :, 2 * k : 3 * k], min=log_scale_min)
    return logits, means, log_scales


def _component_log_probs(y, means, log_scales, num_classes):
    """Log-probability of the bin holding ``y`` under each component, (..., K)."""
    centered = y - means
    inv_s = torch.exp(-log_scales)
    half_bin = 1.0 / (num_classes - 1)
    plus_in = inv_s * (centered + half_bin)
    min_in = inv_s * (centered - half_bin)
    log_cdf_plus = plus_in - F.softplus(plus_in)  # log sigmoid(plus_in): bottom edge bin
    log_one_minus_cdf_min = -F.softplus(min_in)  # log(1 - sigmoid(min_in)): top edge bin
    cdf_delta = torch.sigmoid(plus_in) - torch.sigmoid(min_in)
    mid_in = inv_s * centered
    log_pdf_mid = mid_in - log_scales - 2.0 * F.softplus(mid_in)
    inner = torch.where(
        cdf_delta > 1e-5,
        torch.log(torch.clamp(cdf_delta, min=1e-12)),
        log_pdf_mid - math.log((num_classes - 1) / 2),
    )
    inner = torch.where(y > 0.999, log_one_minus_cdf_min, inner)
    return torch.where(y < -0.999, log_cdf_plus, inner)


def discretized_mix_logistic_loss(
    y_hat: torch.Tensor,
    y: torch.Tensor,
    num_classes: int = 65536,
    log_scale_min: float = LOG_SCALE_MIN,
    reduce: bool = True,
) -> torch.Tensor:
    """Negative log-likelihood of ``y`` under the discretised mixture of logistics.

    Parameters
    ----------
    y_hat : torch.Tensor, shape (B, 3K, T)
        Network output: K logits, K means, K log-scales per time step.
    y : torch.Tensor, shape (B, T, 1) or (B, T)
        Target amplitudes in [-1, 1] (float).
    num_classes : int
        Number of discretisation bins over [-1, 1] (65536 for the paper's model).
    log_scale_min : float
        Lower clamp of the log-scales (ln 1e-14 for the paper's model).
    reduce : bool
        True: the **sum** of the per-step losses over batch and time (as r9y9's function;
        the training loop divides by the number of valid steps itself). False: the
        per-step losses, shape (B, T, 1), in nats.

    Returns
    -------
    torch.Tensor
        Scalar (``reduce=True``) or (B, T, 1) tensor of negative log-probabilities, nats.
    """
    logits, means, log_scales = _split_params(y_hat, log_scale_min)
    if y.dim() == 2:
        y = y.unsqueeze(-1)
    if y.dim() != 3 or y.shape[:2] != means.shape[:2] or y.size(-1) != 1:
        raise ValueError(
            f"y must have shape (B, T, 1) or (B, T) matching y_hat's (B, T) = "
            f"{tuple(means.shape[:2])}; got {tuple(y.shape)}"
        )
    log_probs = _component_log_probs(y, means, log_scales, num_classes)
    log_probs = log_probs + F.log_softmax(logits, dim=-1)
    nll = -torch.logsumexp(log_probs, dim=-1)
    if reduce:
        return nll.sum()
    return nll.unsqueeze(-1)


def sample_from_discretized_mix_logistic(
    y_hat: torch.Tensor,
    log_scale_min: float = LOG_SCALE_MIN,
    *,
    generator: torch.Generator | None = None,
    uniforms: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Draw one amplitude per time step from the mixture (Gumbel-max, then logistic).

    Random numbers are drawn in r9y9's order and way: first the Gumbel uniforms, shape
    (B, T, K), then the logistic uniforms, shape (B, T), each with
    ``Tensor.uniform_(1e-5, 1 - 1e-5)``. So a ``torch.Generator`` seeded like the global
    generator gives exactly the draws of the reference implementation.

    Parameters
    ----------
    y_hat : torch.Tensor, shape (B, 3K, T) or (B, 3K)
        Network output (the second form is one time step).
    log_scale_min : float
        Lower clamp of the log-scales.
    generator : torch.Generator, optional
        Source of the uniform draws (default: torch's global generator).
    uniforms : (torch.Tensor, torch.Tensor), optional
        Explicit draws ``(u_mix (B, T, K), u_logistic (B, T))`` in (0, 1) (or (B, K),
        (B,) for one step); overrides ``generator``.

    Returns
    -------
    torch.Tensor, shape (B, T) or (B,)
        Samples in [-1, 1] (not quantised to ``num_classes`` levels).
    """
    single_step = y_hat.dim() == 2
    if single_step:
        y_hat = y_hat.unsqueeze(-1)
    logits, means, log_scales = _split_params(y_hat, log_scale_min)  # each (B, T, K)
    u_mix, u_log = _sampling_uniforms(logits, generator, uniforms)
    # Gumbel-max: the argmax of logits + Gumbel noise is a draw of the component k
    choice = torch.argmax(logits - torch.log(-torch.log(u_mix)), dim=-1, keepdim=True)
    mu = torch.gather(means, -1, choice).squeeze(-1)
    log_s = torch.gather(log_scales, -1, choice).squeeze(-1)
    # a logistic draw by its inverse CDF: mu + s·log(u / (1 - u))
    x = mu + torch.exp(log_s) * (torch.log(u_log) - torch.log(1.0 - u_log))
    x = torch.clamp(x, -1.0, 1.0)
    return x[:, 0] if single_step else x


def _sampling_uniforms(logits, generator, uniforms):
    """The sampler's ``(u_mix (B, T, K), u_log (B, T))``: given, or drawn in r9y9's order."""
    if uniforms is None:
        # fresh contiguous (B, T, K) and (B, T) tensors, filled in r9y9's memory order
        opts = dict(dtype=logits.dtype, device=logits.device)
        u_mix = torch.empty(logits.shape, **opts).uniform_(*UNIFORM_RANGE, generator=generator)
        u_log = torch.empty(logits.shape[:2], **opts).uniform_(*UNIFORM_RANGE, generator=generator)
        return u_mix, u_log
    u_mix, u_log = uniforms
    return u_mix.reshape(logits.shape).to(logits), u_log.reshape(logits.shape[:2]).to(logits)


def mixture_pdf(
    y_hat_t: torch.Tensor,
    grid: torch.Tensor | None = None,
    num_classes: int = 65536,
    log_scale_min: float = LOG_SCALE_MIN,
    density: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Probability of each amplitude in ``grid`` for ONE time step of the mixture.

    Parameters
    ----------
    y_hat_t : torch.Tensor, shape (3K,) or (B, 3K)
        Network output at one time step.
    grid : torch.Tensor, shape (G,), optional
        Amplitudes in [-1, 1] (default: 2001 points evenly from -1 to 1).
    num_classes : int
        Number of discretisation bins.
    log_scale_min : float
        Lower clamp of the log-scales.
    density : bool
        False: the probability mass of the bin holding each amplitude. True: that mass
        divided by the bin width 2/(num_classes-1), i.e. a density per unit amplitude
        (the edge bins carry the tails, so they spike).

    Returns
    -------
    grid : torch.Tensor, shape (G,)
    prob : torch.Tensor, shape (G,) or (B, G)
    """
    y_hat_t = torch.as_tensor(y_hat_t, dtype=torch.float32)
    single = y_hat_t.dim() == 1
    y2 = y_hat_t.unsqueeze(0) if single else y_hat_t
    if grid is None:
        grid = torch.linspace(-1.0, 1.0, 2001)
    grid = torch.as_tensor(grid, dtype=y2.dtype)
    b, g = y2.size(0), grid.numel()
    y_hat = y2.unsqueeze(-1).expand(b, y2.size(1), g)
    y = grid.view(1, g, 1).expand(b, g, 1)
    with torch.no_grad():
        nll = discretized_mix_logistic_loss(y_hat, y, num_classes, log_scale_min, reduce=False)
    prob = torch.exp(-nll[..., 0])
    if density:
        prob = prob / (2.0 / (num_classes - 1))
    return grid, prob[0] if single else prob
