"""Baseline B2: the speech-denoising WaveNet of Rethage et al. as the authors configured it.

B2 maps a window of the mixture waveform straight to the target speech in it, with no
spectrogram in between (see original_code.md#oc-b2-architecture). It is a *non-causal*
WaveNet: every output sample sees ``half_receptive_field`` samples of the past and as
many of the future.

Architecture (Keras 3, as the authors' Keras model; sizes at the paper's values; see
original_code.md#oc-b2-architecture)::

    mixture window (B, 7739)
      → Conv1D(128, 3, same, no bias)                              "initial_conv"
      → 30 residual blocks, 3 stacks × dilations 1, 2, …, 512:
          h = Conv1D(256, 3, dilation d, same, no bias)(x)          "block{i}_conv"
          z = tanh(h[..., :128]) ⊙ σ(h[..., 128:])                  gated activation
          o = Conv1D(256, 1, no bias)(z)                            "block{i}_out"
          x ← x + o[..., :128]                                      residual, no scaling
          skip_i = o[..., 128:] at the 1603 padded-target samples   "block{i}_skip"
      → ReLU(Σ skip_i) → Conv1D(2048, 3, same, no bias) → ReLU
      → Conv1D(256, 3, same, no bias) → Conv1D(1, 1) (with bias)    "speech" (B, 1603)
    noise = mixture window[3068 : 4671] − speech                    "noise"  (B, 1603)

The authors' model also takes a 5-bit condition (``ceil(log2 29)`` noise classes of the
original NSDTSEA training) through bias-free Dense layers added before the gates and
the final convolutions. B2 feeds it all zeros in training and at test time, so it adds
exactly 0: it is left out here. Its 50 560 weights are counted by
:func:`conditioning_parameters`; with them the paper's model has 6 342 657 parameters.

Whole files are denoised by :func:`denoise`: windows that overlap by the receptive field
slide by one target field, and the kept target fields are concatenated. Unlike the
authors' test script, the mixture is first padded with ``half_receptive_field`` zeros
at both ends, so that the output has the input's length and output sample ``j`` is the
estimate of input sample ``j``. (The authors' published B2 outputs are 2 × 3069 samples
shorter than their inputs and start 3069 samples late, see original_code.md#oc-b2-offset.)
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import layers

from ..config import DenoiserConfig, section

__all__ = [
    "METHOD",
    "CONDITION_BITS",
    "build_denoising_wavenet",
    "residual_block",
    "conditioning_parameters",
    "denoise",
    "warm_up",
]

#: Output folder of B2 under ``runs/<profile>/outputs/`` (and its name in Table I).
METHOD = "b2"


#: Width of the authors' (always zero) condition input: ceil(log2(29)) = 5 bits.
CONDITION_BITS = 5


def _config(cfg) -> DenoiserConfig:
    """The :class:`DenoiserConfig` of a Profile, or ``cfg`` itself."""
    return section(cfg, DenoiserConfig)


def build_denoising_wavenet(cfg) -> keras.Model:
    """The B2 network (original_code.md#oc-b2-architecture), uncompiled, with fresh weights.

    Parameters
    ----------
    cfg : DenoiserConfig or Profile
        Sizes; the defaults are the paper's (30 blocks, 128 filters, final 2048 and 256
        filters: 6 292 097 weights here, 6 342 657 with the authors' zero-fed condition
        layers, see :func:`conditioning_parameters`).

    Returns
    -------
    keras.Model
        Input ``"mixture"``: (B, ``input_length``) float32 waveform window (7739).
        Outputs ``{"speech": (B, P), "noise": (B, P)}`` with P = ``padded_target_field``
        (1603): the speech estimate at window samples
        ``[half_receptive_field − target_padding, half_receptive_field + target_field
        + target_padding)`` (3068 … 4670) and the window minus that estimate there.
    """
    cfg = _config(cfg)
    n, k, r = cfg.input_length, cfg.kernel_size, cfg.residual_filters
    first = cfg.half_receptive_field - cfg.target_padding
    crop = (first, n - first - cfg.padded_target_field)

    mixture = keras.Input(shape=(n,), name="mixture")
    window = layers.Reshape((n, 1), name="mixture_channels")(mixture)
    x = layers.Conv1D(r, k, padding="same", use_bias=False, name="initial_conv")(window)
    skips = []
    dilations = [2**level for _ in range(cfg.stacks) for level in range(cfg.dilation_depth + 1)]
    for block, dilation in enumerate(dilations):
        x, skip = residual_block(x, dilation, cfg, crop, name=f"block{block}")
        skips.append(skip)
    y = layers.Add(name="skip_sum")(skips) if len(skips) > 1 else skips[0]
    y = layers.ReLU(name="skip_relu")(y)
    y = layers.Conv1D(cfg.final_filters[0], k, padding="same", use_bias=False, name="final_conv1")(
        y
    )
    y = layers.ReLU(name="final_relu")(y)
    y = layers.Conv1D(cfg.final_filters[1], k, padding="same", use_bias=False, name="final_conv2")(
        y
    )
    y = layers.Conv1D(1, 1, name="speech_conv")(y)
    p = cfg.padded_target_field
    speech = layers.Reshape((p,), name="speech")(y)
    centre = layers.Reshape((p,), name="mixture_centre")(
        layers.Cropping1D(crop, name="mixture_crop")(window)
    )
    noise = layers.Subtract(name="noise")([centre, speech])
    return keras.Model(mixture, {"speech": speech, "noise": noise}, name="denoising_wavenet")


def residual_block(x, dilation: int, cfg, crop: tuple[int, int], *, name: str):
    """One residual block of B2: a gated dilated convolution, non-causal.

    h = Conv1D(2R, k, dilation d, same)(x); z = tanh(h₁) ⊙ σ(h₂) (the two halves of h's
    channels); o = Conv1D(R + S, 1)(z); the first R channels of o are added to x
    (residual path, no scaling), the other S channels, cropped to the padded target
    field, are the block's skip output. ``padding="same"`` centres the kernel: each
    output sample sees ``(k − 1) / 2 · d`` samples on either side.

    Parameters
    ----------
    x : KerasTensor, shape (B, N, R)
        The residual stream (N = ``input_length``, R = ``residual_filters``).
    dilation : int
        Dilation d of the block's convolution.
    cfg : DenoiserConfig or Profile
        Sizes: ``residual_filters`` R, ``skip_filters`` S, ``kernel_size`` k.
    crop : (int, int)
        Samples cropped from the start and the end of the skip output.
    name : str
        Prefix of the block's layer names (``"block{i}"``).

    Returns
    -------
    (KerasTensor, KerasTensor)
        The residual stream (B, N, R) and the skip output (B, N − sum(crop), S).
    """
    cfg = _config(cfg)
    r, k = cfg.residual_filters, cfg.kernel_size
    h = layers.Conv1D(
        2 * r, k, dilation_rate=dilation, padding="same", use_bias=False, name=f"{name}_conv"
    )(x)
    z = layers.Multiply(name=f"{name}_gate")(
        [
            layers.Activation("tanh", name=f"{name}_tanh")(h[..., :r]),
            layers.Activation("sigmoid", name=f"{name}_sigmoid")(h[..., r:]),
        ]
    )
    o = layers.Conv1D(r + cfg.skip_filters, 1, use_bias=False, name=f"{name}_out")(z)
    x = layers.Add(name=f"{name}_residual")([x, o[..., :r]])
    skip = layers.Cropping1D(crop, name=f"{name}_skip")(o[..., r:])
    return x, skip


def conditioning_parameters(cfg) -> int:
    """Weights of the authors' condition layers, left out here because they add 0.

    The authors' model adds ``Dense(units, use_bias=False)`` of a :data:`CONDITION_BITS`
    -bit condition to the initial convolution (residual filters), to every gate (twice
    the residual filters) and to both final convolutions. The condition is all zeros in
    B2's training and test (original_code.md#oc-b2-architecture), so these layers
    contribute exactly 0.

    Parameters
    ----------
    cfg : DenoiserConfig or Profile

    Returns
    -------
    int
        ``5 · (R + 2R · blocks + F1 + F2)``: 50 560 at the paper's sizes, which with
        the 6 292 097 weights of :func:`build_denoising_wavenet` make the 6 342 657 of
        original_code.md#oc-b2-architecture.
    """
    cfg = _config(cfg)
    blocks = cfg.stacks * (cfg.dilation_depth + 1)
    units = cfg.residual_filters * (1 + 2 * blocks) + sum(cfg.final_filters)
    return CONDITION_BITS * units


def _check_model(model, cfg: DenoiserConfig) -> None:
    """Raise unless ``model`` takes windows and gives outputs of ``cfg``'s sizes."""
    outputs = model.output if isinstance(model.output, dict) else {}
    n = model.inputs[0].shape[-1]
    p = outputs["speech"].shape[-1] if "speech" in outputs else None
    if (n, p) != (cfg.input_length, cfg.padded_target_field) or "noise" not in outputs:
        raise ValueError(
            f"the model takes windows of {n} samples and gives {p} speech samples, but the "
            f"denoiser settings say {cfg.input_length} and {cfg.padded_target_field} (and "
            "outputs 'speech' and 'noise'); pass the settings the model was built with"
        )


def denoise(model, mixture, cfg, *, batch_size: int | None = None, return_noise: bool = False):
    """Denoise a whole file with B2; the output is sample-aligned with the input.

    With receptive field RF (6139), target field TF (1601) and H = RF // 2 (3069):

    1. pad the mixture with H zeros in front and ``n · TF − L + H`` zeros behind, where
       n = ceil(L / TF) windows;
    2. window i is padded samples ``[i · TF, i · TF + RF + TF − 1)``; the model's
       speech output holds window samples ``[H − pad, H + TF + pad)``;
    3. keep its ``[pad, pad + TF)`` part, i.e. mixture samples ``[i · TF, (i+1) · TF)``,
       concatenate the n target fields and cut to L.

    So ``output[j]`` estimates the target at ``mixture[j]`` and has exactly the
    context the network was trained with (zeros beyond the file's ends).

    Parameters
    ----------
    model : keras.Model
        From :func:`build_denoising_wavenet` (trained) with the same ``cfg``.
    mixture : array_like, shape (L,)
        Mixture waveform, L ≥ 1, e.g. Chapter 1's ``NNN_mixture.wav``.
    cfg : DenoiserConfig or Profile
        Geometry of the model; ``inference_batch`` is the default batch size.
    batch_size : int, optional
        Windows per prediction batch.
    return_noise : bool
        Also return the noise estimate (the mixture minus the speech estimate).

    Returns
    -------
    numpy.ndarray, float32, shape (L,)
        The speech estimate; with ``return_noise`` a pair ``(speech, noise)``.

    Raises
    ------
    ValueError
        If the mixture is not a non-empty 1-D array of finite samples, the batch size is
        not positive, or the model's window sizes do not match ``cfg``.
    """
    cfg = _config(cfg)
    _check_model(model, cfg)
    batch = int(cfg.inference_batch if batch_size is None else batch_size)
    if batch < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size}")
    x = np.asarray(mixture)
    if x.ndim != 1 or x.size == 0 or not np.issubdtype(x.dtype, np.number):
        raise ValueError(f"mixture must be a non-empty 1-D array of samples; got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("mixture contains NaN or infinite samples")
    length, tf, half, pad = (
        x.shape[0],
        cfg.target_field,
        cfg.half_receptive_field,
        cfg.target_padding,
    )
    count = math.ceil(length / tf)
    padded = np.zeros((count - 1) * tf + cfg.input_length, dtype=np.float32)
    padded[half : half + length] = x
    windows = np.lib.stride_tricks.sliding_window_view(padded, cfg.input_length)[::tf]
    speech, noise = [], []
    for i in range(0, count, batch):
        out = model.predict_on_batch(np.ascontiguousarray(windows[i : i + batch]))
        speech.append(np.asarray(out["speech"])[:, pad : pad + tf])
        noise.append(np.asarray(out["noise"])[:, pad : pad + tf])
    speech = np.concatenate(speech).reshape(-1)[:length].astype(np.float32)
    if not return_noise:
        return speech
    return speech, np.concatenate(noise).reshape(-1)[:length].astype(np.float32)


def warm_up(model, cfg) -> None:
    """Trace the model's prediction function for one and for several windows (silence), so
    that the first :func:`denoise` is timed without TensorFlow's tracing."""
    cfg = _config(cfg)
    for n in (1, 2):
        model.predict_on_batch(np.zeros((n, cfg.input_length), np.float32))
