"""The encoder networks: Proposed (mixture → target mel) and B1 (mixture → target linear).

Both networks read a block of 64 frames of the mixture's normalised linear spectrum
(``input1``, 512 bins) and normalised mel spectrum (``input2``, 80 bins), as in the
authors' ``EncoderNetBigMel`` / ``EncoderNetBigLinear`` (see original_code.md#oc-encoder
and original_code.md#oc-b1-encoder):

1. two recurrent streams, one per input: a bidirectional LSTM (outputs of the two
   directions concatenated) and a per-frame dense layer with ``channels × bins`` linear
   units, reshaped onto the output grid (``linear_rnn``/``linear_td``,
   ``mel_rnn``/``mel_td``);
2. the two streams and the reshaped mixture spectrum of the output's kind (the "third
   input": mel for Proposed, linear for B1) stacked as channels, H;
3. an hourglass of SCN residual units (original_code.md#oc-scn-hourglass) that sees H
   as an image (time × frequency);
4. a head: the hourglass output concatenated with the third input again, one more
   residual unit, and a 3×3 convolution with a sigmoid (the features are normalised to
   [0, 1]).

Inference caveat (see original_code.md#oc-learning-phase): the original test script ran
the loaded model in Keras' training phase (dropout on, BatchNorm on batch statistics),
probably by accident.
Calling ``model(x, training=False)`` or ``model.predict`` here is clean inference; pass
``training=True`` to reproduce the original's behaviour.
"""

from __future__ import annotations

import re

import keras
import numpy as np
import pandas as pd
from keras import layers

from synthsep_lib.config import EncoderConfig

__all__ = [
    "VARIANTS",
    "build_encoder",
    "recurrent_stream",
    "hourglass",
    "residual_unit",
    "describe_encoder",
    "count_parameters",
]

#: Encoder variants: ``proposed`` predicts the mel (80 bins), ``b1`` the linear spectrum.
VARIANTS = ("proposed", "b1")


def _l2(weight: float):
    return keras.regularizers.L2(weight) if weight else None


def residual_unit(x, filters: int, name: str, momentum: float):
    """SCN residual unit: conv block + identity or 1×1 projection skip.

    See original_code.md#oc-scn-hourglass.

    Conv block: BN → ReLU → Conv 3×3 (f/2) → BN → ReLU → Conv 3×3 (f/2) → BN → ReLU →
    Conv 1×1 (f), all ``same`` with bias; no activation after the sum.

    Parameters
    ----------
    x : keras tensor, shape (B, T, F, C)
        Input feature map (time × frequency × channels).
    filters : int
        f, output channels (even).
    name : str
        Prefix of the layer names (``<name>_bn1`` … ``<name>_add``).
    momentum : float
        BatchNorm momentum.

    Returns
    -------
    keras tensor, shape (B, T, F, filters)
    """
    half = filters // 2
    y = layers.BatchNormalization(momentum=momentum, name=f"{name}_bn1")(x)
    y = layers.ReLU(name=f"{name}_relu1")(y)
    y = layers.Conv2D(half, 3, padding="same", name=f"{name}_conv1")(y)
    y = layers.BatchNormalization(momentum=momentum, name=f"{name}_bn2")(y)
    y = layers.ReLU(name=f"{name}_relu2")(y)
    y = layers.Conv2D(half, 3, padding="same", name=f"{name}_conv2")(y)
    y = layers.BatchNormalization(momentum=momentum, name=f"{name}_bn3")(y)
    y = layers.ReLU(name=f"{name}_relu3")(y)
    y = layers.Conv2D(filters, 1, padding="same", name=f"{name}_conv3")(y)
    skip = x
    if x.shape[-1] != filters:
        skip = layers.Conv2D(filters, 1, padding="same", name=f"{name}_skip")(x)
    return layers.Add(name=f"{name}_add")([y, skip])


def hourglass(x, level: int, depth: int, filters: int, momentum: float):
    """Hourglass recursion of the original (original_code.md#oc-scn-hourglass), outermost level = 1.

    ``up1 = Res(x)``; ``low1 = Res(MaxPool(x))``; ``low3 = Res(inner hourglass(low1))``,
    or ``Res(low1)`` at the innermost level (one residual there, not Newell's two);
    return ``up1 + UpSample(low3)``. The original counts levels down (n = 3, 2, 1); its
    n equals ``depth + 1 - level`` here.

    Parameters
    ----------
    x : keras tensor, shape (B, T, F, C)
        T and F divisible by ``2 ** (depth + 1 - level)``.
    level : int
        This level, 1 (outermost) to ``depth``.
    depth : int
        Number of levels (3 in the paper: 64 × 80 down to 8 × 10).
    filters : int
        Channels of every residual unit.
    momentum : float
        BatchNorm momentum.

    Returns
    -------
    keras tensor, shape (B, T, F, filters)
    """
    tag = f"hg{level}"
    up1 = residual_unit(x, filters, f"{tag}_up1", momentum)
    low = layers.MaxPooling2D(pool_size=2, strides=2, name=f"{tag}_pool")(x)
    low1 = residual_unit(low, filters, f"{tag}_low1", momentum)
    low2 = hourglass(low1, level + 1, depth, filters, momentum) if level < depth else low1
    low3 = residual_unit(low2, filters, f"{tag}_low3", momentum)
    up2 = layers.UpSampling2D(size=2, interpolation="nearest", name=f"{tag}_upsample")(low3)
    return layers.Add(name=f"{tag}_add")([up1, up2])


def recurrent_stream(x, prefix: str, units: int, channels: int, bins: int, cfg: EncoderConfig):
    """BiLSTM → per-frame Dense(channels × bins) → (frames, bins, channels).

    Parameters
    ----------
    x : keras tensor, shape (B, T, D)
        A block of the mixture's spectrum (D = 512 linear or 80 mel bins).
    prefix : str
        Layer names ``<prefix>_rnn``, ``<prefix>_td``, ``<prefix>_reshape``.
    units : int
        LSTM units per direction.
    channels, bins : int
        The output grid: ``bins`` frequency bins (those of the encoder's output) with
        ``channels`` channels each.
    cfg : EncoderConfig
        Uses ``dropout``, ``recurrent_dropout`` and ``l2``.

    Returns
    -------
    keras tensor, shape (B, T, bins, channels)
    """
    lstm = layers.LSTM(
        units,
        activation="tanh",
        # Keras ≤ 2.2 (the authors' era) defaulted to hard_sigmoid here; Keras ≥ 2.3 and
        # Keras 3 use sigmoid. Which one the paper's models had is unknown.
        recurrent_activation="sigmoid",
        return_sequences=True,
        dropout=cfg.dropout,
        recurrent_dropout=cfg.recurrent_dropout,
        kernel_regularizer=_l2(cfg.l2),
        recurrent_regularizer=_l2(cfg.l2),
        bias_regularizer=_l2(cfg.l2),
    )
    y = layers.Bidirectional(lstm, merge_mode="concat", name=f"{prefix}_rnn")(x)
    dense = layers.Dense(
        channels * bins,
        activation=None,
        kernel_regularizer=_l2(cfg.l2),
        bias_regularizer=_l2(cfg.l2),
    )
    y = layers.TimeDistributed(dense, name=f"{prefix}_td")(y)
    # Row-major reshape: Dense unit j → bin j // channels, channel j % channels.
    return layers.Reshape((-1, bins, channels), name=f"{prefix}_reshape")(y)


def build_encoder(
    variant: str,
    cfg: EncoderConfig,
    *,
    linear_bins: int = 512,
    mel_bins: int = 80,
    block_frames: int | None = None,
) -> keras.Model:
    """Build the Proposed or the B1 encoder (see original_code.md#oc-encoder).

    Parameters
    ----------
    variant : {"proposed", "b1"}
        ``proposed`` predicts the target's normalised mel, ``b1`` its normalised
        512-bin linear spectrum.
    cfg : EncoderConfig
        Sizes (``linear_lstm_units``, ``mel_lstm_units``, ``proposed_*_channels`` or
        ``b1_*_channels``, ``hourglass_depth``, ``hourglass_filters``), regularisation
        (``dropout``, ``recurrent_dropout``, ``l2``) and ``block_frames``.
    linear_bins, mel_bins : int
        Bins of ``input1`` (512: the STFT's 513 less the Nyquist bin) and ``input2`` (80).
    block_frames : int, optional
        Frames per block; ``cfg.block_frames`` (64) when omitted. ``None`` is not
        accepted for a variable length: the hourglass needs a fixed size.

    Returns
    -------
    keras.Model
        Inputs ``input1`` (B, T, linear_bins) and ``input2`` (B, T, mel_bins), both
        normalised to [0, 1]; output (B, T, mel_bins, 1) for ``proposed`` or
        (B, T, linear_bins, 1) for ``b1``, in (0, 1). The paper's configuration has
        4 033 453 parameters (Proposed) and 4 670 789 (B1).

    Raises
    ------
    ValueError
        For an unknown variant, non-positive sizes, an odd ``hourglass_filters``, or a
        block whose frames or output bins are not divisible by ``2 ** hourglass_depth``.

    Notes
    -----
    Weights are drawn from Keras' global generator; call ``keras.utils.set_random_seed``
    first for a reproducible model. Initialisers, BatchNorm (momentum 0.99, epsilon
    1e-3) and the LSTM activations are Keras defaults, as in the original; L2 acts on the
    LSTM and Dense layers only.
    """
    frames, out_bins, linear_ch, mel_ch = _checked_sizes(
        variant, cfg, block_frames, linear_bins, mel_bins
    )
    filters, momentum = cfg.hourglass_filters, cfg.batch_norm_momentum
    input1 = keras.Input(shape=(frames, linear_bins), name="input1")
    input2 = keras.Input(shape=(frames, mel_bins), name="input2")
    # 1. two recurrent streams, each laid out on the output grid (frames × out_bins)
    linear = recurrent_stream(input1, "linear", cfg.linear_lstm_units, linear_ch, out_bins, cfg)
    mel = recurrent_stream(input2, "mel", cfg.mel_lstm_units, mel_ch, out_bins, cfg)
    # 2. stacked as channels with the mixture's own spectrum of the output's kind
    third_name, third_input = ("input2", input2) if variant == "proposed" else ("input1", input1)
    third = layers.Reshape((frames, out_bins, 1), name=f"{third_name}_reshape")(third_input)
    h = layers.Concatenate(axis=-1, name="stack")([linear, mel, third])
    # 3. the hourglass sees the stack as an image (time × frequency)
    y = hourglass(h, 1, cfg.hourglass_depth, filters, momentum)
    # 4. the head: the mixture spectrum once more, a residual unit, a 3×3 conv and a sigmoid
    y = layers.Concatenate(axis=-1, name="head_concat")([y, third])
    y = residual_unit(y, filters, "head_res", momentum)
    output = layers.Conv2D(1, 3, padding="same", activation="sigmoid", name="output")(y)
    return keras.Model([input1, input2], output, name=f"encoder_{variant}")


def _checked_sizes(variant, cfg, block_frames, linear_bins, mel_bins):
    """``(frames, out_bins, linear_channels, mel_channels)`` of a variant, validated."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown encoder variant {variant!r}; expected one of {VARIANTS}")
    frames = cfg.block_frames if block_frames is None else block_frames
    depth, filters = cfg.hourglass_depth, cfg.hourglass_filters
    if variant == "proposed":
        out_bins, linear_ch, mel_ch = (
            mel_bins,
            cfg.proposed_linear_channels,
            cfg.proposed_mel_channels,
        )
    else:
        out_bins, linear_ch, mel_ch = linear_bins, cfg.b1_linear_channels, cfg.b1_mel_channels
    sizes = {
        "block_frames": frames,
        "linear_bins": linear_bins,
        "mel_bins": mel_bins,
        "linear_lstm_units": cfg.linear_lstm_units,
        "mel_lstm_units": cfg.mel_lstm_units,
        f"{variant}_linear_channels": linear_ch,
        f"{variant}_mel_channels": mel_ch,
        "hourglass_depth": depth,
        "hourglass_filters": filters,
    }
    for key, value in sizes.items():
        if int(value) != value or value < 1:
            raise ValueError(f"encoder setting {key} must be a positive integer, got {value!r}")
    if filters % 2:
        raise ValueError(
            f"hourglass_filters must be even (the residual unit's inner convolutions use "
            f"half of them), got {filters}"
        )
    step = 2**depth
    if frames % step or out_bins % step:
        raise ValueError(
            f"the {variant} encoder's output grid is {frames} frames × {out_bins} bins, but "
            f"an hourglass of depth {depth} halves both {depth} times: each must be "
            f"divisible by 2**{depth} = {step}"
        )
    return frames, out_bins, linear_ch, mel_ch


def count_parameters(model: keras.Model) -> dict[str, int]:
    """Total, trainable and non-trainable parameter counts of a model.

    Parameters
    ----------
    model : keras.Model

    Returns
    -------
    dict
        ``{"total": int, "trainable": int, "non_trainable": int}``; BatchNorm's moving
        mean and variance are the non-trainable ones (2 per channel).
    """
    trainable = int(sum(int(np.prod(w.shape)) for w in model.trainable_weights))
    non_trainable = int(sum(int(np.prod(w.shape)) for w in model.non_trainable_weights))
    return {
        "total": trainable + non_trainable,
        "trainable": trainable,
        "non_trainable": non_trainable,
    }


_RESIDUAL = re.compile(r"^(?P<unit>(?:hg(?P<level>\d+)_(?P<kind>up1|low1|low3))|head_res)_")
_LEVEL_EXTRA = re.compile(r"^hg(?P<level>\d+)_(?P<kind>pool|upsample|add)$")


def _block_of(name: str) -> tuple[str, str]:
    """(part, block) a layer belongs to, from the names :func:`build_encoder` gives."""
    match = _RESIDUAL.match(name)
    if match:
        unit = match["unit"]
        part = "head" if unit == "head_res" else f"hourglass level {match['level']}"
        return part, unit
    match = _LEVEL_EXTRA.match(name)
    if match:
        level, kind = match["level"], match["kind"]
        return f"hourglass level {level}", f"hg{level}_{'low1' if kind == 'pool' else 'low3'}"
    for prefix in ("linear", "mel"):
        if name.startswith(f"{prefix}_"):
            return f"{prefix} stream", name
    if name in ("input1", "input2"):
        return "input", name
    if name.endswith("_reshape") or name == "stack":
        return "merge", name
    if name in ("head_concat", "output"):
        return "head", name
    return "other", name


_PARTS = ("input", "linear stream", "mel stream", "merge", "hourglass", "head", "other")


def _row_order(item) -> tuple:
    """Reading order: inputs, streams, merge, hourglass in data-flow order, head."""
    block, (part, members) = item
    match = _RESIDUAL.match(f"{block}_")
    if match and match["level"]:
        level = int(match["level"])
        # Down the hourglass (up1, low1 of levels 1, 2, …), then back up (low3 of …, 2, 1).
        kind = ("up1", "low1", "low3").index(match["kind"])
        flow = (0, level, kind) if kind < 2 else (1, -level, 0)
        return (_PARTS.index("hourglass"), flow)
    return (_PARTS.index(part), (0, 0, 0))


def _shape(layer) -> tuple:
    try:
        return tuple(layer.output.shape[1:])
    except (AttributeError, ValueError):
        return ()


def _what(block: str, members: list) -> str:
    by_name = {layer.name: layer for layer in members}
    first = members[0]
    if isinstance(first, layers.Bidirectional):
        return f"BiLSTM {first.forward_layer.units}/direction, outputs concatenated"
    if isinstance(first, layers.TimeDistributed):
        return f"Dense {first.layer.units} per frame (linear)"
    if isinstance(first, layers.InputLayer):
        return "mixture spectrum"
    if block in ("stack", "head_concat"):
        return "concatenate channels"
    if block == "output":
        return f"Conv {first.kernel_size[0]}×{first.kernel_size[1]} → 1, sigmoid"
    if isinstance(first, layers.Reshape):
        return "reshape onto the output grid"
    conv3 = by_name.get(f"{block}_conv3")
    if conv3 is not None:
        channels_in = by_name[f"{block}_bn1"].input.shape[-1]
        skip = "1×1 projection" if f"{block}_skip" in by_name else "identity"
        text = f"residual {channels_in}→{conv3.filters} ({skip} skip)"
        if any(isinstance(layer, layers.MaxPooling2D) for layer in members):
            text = "max-pool 2×2, " + text
        if any(isinstance(layer, layers.UpSampling2D) for layer in members):
            text += ", upsample 2×2, add up1"
        return text
    return ", ".join(type(layer).__name__ for layer in members)


def describe_encoder(model: keras.Model) -> pd.DataFrame:
    """Per-block summary of an encoder built by :func:`build_encoder`.

    Parameters
    ----------
    model : keras.Model

    Returns
    -------
    pandas.DataFrame
        One row per block, in the model's layer order, with columns ``part`` (input,
        linear stream, mel stream, merge, hourglass level k, head), ``block`` (layer
        name, or the residual unit's name: ``hg{k}_up1`` the full-resolution branch,
        ``hg{k}_low1`` max-pool + residual, ``hg{k}_low3`` residual after the inner
        level + upsampling + the level's sum), ``layers`` (what the block does),
        ``output shape`` (without the batch axis) and ``parameters``. The parameters
        add up to :func:`count_parameters` ``["total"]``.
    """
    groups: dict[str, tuple[str, list]] = {}
    for layer in model.layers:
        part, block = _block_of(layer.name)
        groups.setdefault(block, (part, []))[1].append(layer)
    rows = []
    for block, (part, members) in sorted(groups.items(), key=_row_order):
        rows.append(
            {
                "part": part,
                "block": block,
                "layers": _what(block, members),
                "output shape": _shape(members[-1]),
                "parameters": int(sum(layer.count_params() for layer in members)),
            }
        )
    return pd.DataFrame(rows, columns=["part", "block", "layers", "output shape", "parameters"])
