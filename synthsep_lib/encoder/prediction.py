"""A trained encoder applied to a whole mixture: features, 64-frame blocks, stitching.

The mixture's linear and mel spectra are cut into blocks laid end to end
(:func:`synthsep_lib.spectrogram_blocks.split_into_blocks`), the encoder predicts each
block, and the blocks are stitched back into one spectrum of the mixture's length
(:func:`synthsep_lib.spectrogram_blocks.stitch_blocks`).
"""

from __future__ import annotations

import keras
import numpy as np

from synthsep_lib import audio, spectrogram_blocks
from synthsep_lib.encoder.model import VARIANTS

__all__ = ["check_variant", "target_feature", "predict_utterance", "warm_up"]


def check_variant(variant: str) -> None:
    """Raise ValueError unless ``variant`` is an encoder variant ("proposed" or "b1")."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown encoder variant {variant!r}; expected one of {VARIANTS}")


def target_feature(linear: np.ndarray, mel: np.ndarray, variant: str) -> np.ndarray:
    """The feature an encoder variant estimates: mel for ``proposed``, linear for ``b1``.

    Parameters
    ----------
    linear : numpy.ndarray, shape (T, 512)
    mel : numpy.ndarray, shape (T, 80)
        Both as returned by :func:`synthsep_lib.audio.encoder_features`.
    variant : {"proposed", "b1"}

    Returns
    -------
    numpy.ndarray
        ``mel`` or ``linear``.
    """
    check_variant(variant)
    return mel if variant == "proposed" else linear


def _model_grid(model) -> tuple[int, int]:
    """(block frames, output bins) of an encoder model."""
    shape = tuple(model.outputs[0].shape)
    if len(shape) != 4:
        raise ValueError(f"expected an encoder with output (B, T, F, 1), got {shape}")
    return int(shape[1]), int(shape[2])


def _predict_blocks(model, x1, x2, batch_size: int, training: bool) -> np.ndarray:
    if not training:
        # predict_on_batch per chunk: model.predict's results, without building a
        # tf.data pipeline for every utterance (a large share of the time of short ones).
        out = [
            model.predict_on_batch(
                {"input1": x1[i : i + batch_size], "input2": x2[i : i + batch_size]}
            )
            for i in range(0, x1.shape[0], batch_size)
        ]
        return np.concatenate([np.asarray(o) for o in out], axis=0)
    # The original's learning phase 1: dropout on, BatchNorm on each batch's statistics.
    # Calling the model with training=True also moves BatchNorm's moving averages and the
    # dropout seeds; they are put back afterwards.
    state = [v for v in model.variables if not v.trainable]  # incl. SeedGenerator states
    saved = [v.numpy() for v in state]
    try:
        out = [
            keras.ops.convert_to_numpy(
                model(
                    {"input1": x1[i : i + batch_size], "input2": x2[i : i + batch_size]},
                    training=True,
                )
            )
            for i in range(0, x1.shape[0], batch_size)
        ]
    finally:
        for variable, value in zip(state, saved, strict=True):
            variable.assign(value)
    return np.concatenate(out, axis=0)


def predict_utterance(
    model,
    mixture: np.ndarray,
    profile,
    variant: str,
    batch_size: int = 32,
    *,
    training: bool = False,
) -> np.ndarray:
    """Estimate the target's spectrum of a whole mixture with a trained encoder.

    Features of the mixture (:func:`synthsep_lib.audio.encoder_features`), test-time
    blocks (:func:`synthsep_lib.spectrogram_blocks.split_into_blocks`: starts 0, 64, …, the last at
    T − 64), ``model.predict`` in batches of ``batch_size`` blocks, and
    :func:`synthsep_lib.spectrogram_blocks.stitch_blocks` (later blocks overwrite the overlap), as
    in the original's test script (see original_code.md#oc-test-blocks).

    Parameters
    ----------
    model : keras.Model
        An encoder of :func:`synthsep_lib.encoder.model.build_encoder` (trained).
    mixture : numpy.ndarray, shape (L,)
        The mixture in the saved-audio layout: 768-sample lead-in, L a multiple of 256
        (e.g. ``data/test/NNN_mixture.wav`` of Chapter 1).
    profile : Profile
        Its ``features`` are used.
    variant : {"proposed", "b1"}
        What the model estimates: the normalised mel (80 bins) or 512-bin linear spectrum.
    batch_size : int
        Blocks per ``predict`` batch (32 in the original).
    training : bool, keyword-only
        False (default): inference mode (dropout off, BatchNorm moving statistics).
        True: the original's probable learning phase 1
        (original_code.md#oc-learning-phase), dropout on and BatchNorm on the statistics
        of each batch of blocks; the model is not changed.

    Returns
    -------
    numpy.ndarray, float32, shape (T, F)
        T = L / 256 frames; F = 80 (``proposed``) or 512 (``b1``), values in (0, 1).
        An utterance shorter than one block (T < 64) is padded with silent frames
        (feature value 0) to one block and the estimate cut back to T frames.

    Raises
    ------
    ValueError
        If the variant is unknown, the model's output does not match it, or the mixture
        is not in the saved-audio layout.
    """
    check_variant(variant)
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size}")
    feat = profile.features
    frames, out_bins = _model_grid(model)
    expected = feat.num_mels if variant == "proposed" else feat.linear_bins
    if out_bins != expected:
        raise ValueError(
            f"the model outputs {out_bins} bins per frame, but a {variant!r} encoder "
            f"estimates {expected} ({'mel' if variant == 'proposed' else 'linear'}); "
            "was the other variant's model passed?"
        )
    linear, mel = audio.encoder_features(mixture, feat)
    num_frames = linear.shape[0]
    if num_frames < frames:
        pad = ((0, frames - num_frames), (0, 0))
        linear, mel = np.pad(linear, pad), np.pad(mel, pad)
    x1, starts = spectrogram_blocks.split_into_blocks(linear, frames)
    x2, _ = spectrogram_blocks.split_into_blocks(mel, frames)
    y = _predict_blocks(model, x1, x2, int(batch_size), training)
    estimate = spectrogram_blocks.stitch_blocks(np.asarray(y)[..., 0], starts, linear.shape[0])
    return np.ascontiguousarray(estimate[:num_frames], dtype=np.float32)


def warm_up(model, profile=None) -> None:
    """Trace the model's inference function (and build the mel filters) before timing.

    TensorFlow traces a function on its first call and again for a new batch size until
    it generalises the shape; calls with 1 and 2 blocks of silence do both, so that the
    timings of :func:`predict_test_set` measure prediction, not tracing. With a
    ``profile``, the features of one block of silence are computed too (the mel filter
    bank is built and cached on first use).
    """
    frames = _model_grid(model)[0]
    if profile is not None:
        feat = profile.features
        audio.encoder_features(
            np.zeros(feat.lead_in + frames * feat.hop_size, np.float32) + 1e-3, feat
        )
    bins = {t.name: int(t.shape[-1]) for t in model.inputs}
    for n in (1, 2):
        model.predict_on_batch(
            {name: np.zeros((n, frames, b), dtype=np.float32) for name, b in bins.items()}
        )
