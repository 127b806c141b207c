"""Baseline B2: the speech-denoising WaveNet of Rethage et al. as the authors configured it.

B2 maps a window of the mixture waveform straight to the target speech in it, with no
spectrogram in between (PAPER_FACTS §7). It is a *non-causal* WaveNet: every output
sample sees ``half_receptive_field`` samples of the past and as many of the future.

Architecture (§7.1; Keras 3, as the authors' Keras model; sizes at the paper's values)::

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
shorter than their inputs and start 3069 samples late, §7.3.)

Used in: Chapter 4 (04_baselines), Chapter 5 (05_evaluation).
"""

from __future__ import annotations

import math
import time

import keras
import numpy as np
import pandas as pd
from keras import layers

from .. import audio
from ..config import DenoiserConfig
from ..encoder.inference import weights_sha1
from ..encoder.train import CHAPTER_DATA, CHECKPOINT_NAME
from ..evaluation.runner import output_path
from ..mixing import read_test_manifest
from ..runs import (
    TIMING_COLUMNS,
    RunPaths,
    file_sha1,
    read_timing,
    require_artifact,
    reset_if_stale,
    write_timing,
)

__all__ = [
    "METHOD",
    "CHAPTER_BASELINES",
    "CONDITION_BITS",
    "build_denoising_wavenet",
    "conditioning_parameters",
    "denoise",
    "load_trained_denoiser",
    "denoise_test_set",
]

#: Output folder of B2 under ``runs/<profile>/outputs/`` (and its name in Table I).
METHOD = "b2"

#: The chapter that trains B2, named when its checkpoint is missing.
CHAPTER_BASELINES = "Chapter 4 (04_baselines)"

#: Width of the authors' (always zero) condition input: ceil(log2(29)) = 5 bits.
CONDITION_BITS = 5


def _config(cfg) -> DenoiserConfig:
    """The :class:`DenoiserConfig` of a Profile, or ``cfg`` itself."""
    cfg = getattr(cfg, "denoiser", cfg)
    if not isinstance(cfg, DenoiserConfig):
        raise TypeError(f"expected a Profile or a DenoiserConfig, got {type(cfg).__name__}")
    return cfg


def build_denoising_wavenet(cfg) -> keras.Model:
    """The B2 network (PAPER_FACTS §7.1), uncompiled, with fresh weights.

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

    Used in: Chapter 4 (04_baselines)
    """
    cfg = _config(cfg)
    n, k, r = cfg.input_length, cfg.kernel_size, cfg.residual_filters
    first = cfg.half_receptive_field - cfg.target_padding
    crop = (first, n - first - cfg.padded_target_field)

    mixture = keras.Input(shape=(n,), name="mixture")
    window = layers.Reshape((n, 1), name="mixture_channels")(mixture)
    x = layers.Conv1D(r, k, padding="same", use_bias=False, name="initial_conv")(window)
    skips = []
    block = 0
    for _ in range(cfg.stacks):
        for level in range(cfg.dilation_depth + 1):
            h = layers.Conv1D(
                2 * r,
                k,
                dilation_rate=2**level,
                padding="same",
                use_bias=False,
                name=f"block{block}_conv",
            )(x)
            z = layers.Multiply(name=f"block{block}_gate")(
                [
                    layers.Activation("tanh", name=f"block{block}_tanh")(h[..., :r]),
                    layers.Activation("sigmoid", name=f"block{block}_sigmoid")(h[..., r:]),
                ]
            )
            o = layers.Conv1D(r + cfg.skip_filters, 1, use_bias=False, name=f"block{block}_out")(z)
            x = layers.Add(name=f"block{block}_residual")([x, o[..., :r]])
            skips.append(layers.Cropping1D(crop, name=f"block{block}_skip")(o[..., r:]))
            block += 1
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


def conditioning_parameters(cfg) -> int:
    """Weights of the authors' condition layers, left out here because they add 0.

    The authors' model adds ``Dense(units, use_bias=False)`` of a :data:`CONDITION_BITS`
    -bit condition to the initial convolution (residual filters), to every gate (twice
    the residual filters) and to both final convolutions. The condition is all zeros in
    B2's training and test (PAPER_FACTS §7.1), so these layers contribute exactly 0.

    Parameters
    ----------
    cfg : DenoiserConfig or Profile

    Returns
    -------
    int
        ``5 · (R + 2R · blocks + F1 + F2)``: 50 560 at the paper's sizes, which with
        the 6 292 097 weights of :func:`build_denoising_wavenet` make the 6 342 657 of
        PAPER_FACTS §7.1.

    Used in: Chapter 4 (04_baselines)
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

    Used in: Chapter 4 (04_baselines)
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


def load_trained_denoiser(paths: RunPaths) -> keras.Model:
    """Load B2 as trained by Chapter 4 from ``baselines/b2/checkpoint.keras``.

    Parameters
    ----------
    paths : RunPaths

    Returns
    -------
    keras.Model
        Without its optimizer (``compile=False``), ready for :func:`denoise`.

    Raises
    ------
    FileNotFoundError
        If the checkpoint is missing: the message says to run Chapter 4 (04_baselines).

    Used in: Chapter 4 (04_baselines), Chapter 5 (05_evaluation)
    """
    checkpoint = require_artifact(paths.baseline(METHOD) / CHECKPOINT_NAME, CHAPTER_BASELINES)
    return keras.models.load_model(checkpoint, compile=False)


def denoise_test_set(paths: RunPaths, profile, model=None, progress: bool = True) -> pd.DataFrame:
    """Denoise every test mixture of Chapter 1 with B2 and write the outputs (resumable).

    For each pair p of ``data/test_manifest.csv``, :func:`denoise` of
    ``data/test/<p:03d>_mixture.wav`` is written to ``outputs/b2/<p:03d>.wav`` (float
    WAV, atomically, the mixture's length and alignment), and ``outputs/b2/timing.csv``
    (``pair``, ``seconds`` of :func:`denoise` without file I/O, ``audio_seconds``) is
    updated after every pair, as the oracles' runner does
    (:func:`~synthsep_lib.baselines.signal_methods.write_signal_outputs`). Outputs already
    there are skipped and keep their timing row; outputs of another model (another
    checkpoint or weights) or another test set are deleted first.

    Parameters
    ----------
    paths : RunPaths
    profile : Profile
        Its ``features`` (sample rate) and ``denoiser`` settings.
    model : keras.Model, optional
        Default: :func:`load_trained_denoiser`. A model given here is identified by the
        SHA-1 of its weights instead of the checkpoint's.
    progress : bool
        Show a tqdm bar over the pairs.

    Returns
    -------
    pandas.DataFrame
        One row per pair: ``method`` ("b2"), ``pair``, ``path``, ``written`` (False when
        skipped), ``seconds`` (NaN if skipped without a timing row).

    Raises
    ------
    FileNotFoundError
        If Chapter 1's manifest or a test mixture, or (without ``model``) Chapter 4's
        checkpoint, is missing; the message names the chapter to run.
    ValueError
        If a test mixture's length differs from the manifest's.

    Used in: Chapter 4 (04_baselines)
    """
    feat, cfg = profile.features, _config(profile)
    manifest_path = require_artifact(paths.test_manifest, CHAPTER_DATA)
    manifest = read_test_manifest(manifest_path)
    if model is None:
        model = load_trained_denoiser(paths)
        made_by = f"checkpoint {file_sha1(paths.baseline(METHOD) / CHECKPOINT_NAME)}"
    else:
        made_by = f"weights {weights_sha1(model)}"
    folder = paths.outputs(METHOD)
    reset_if_stale(folder, f"{made_by}; manifest {file_sha1(manifest_path)}", "[0-9]*.wav")
    timing_path = folder / "timing.csv"
    if not any(folder.glob("[0-9]*.wav")):
        timing_path.unlink(missing_ok=True)
    timings = read_timing(timing_path)
    warmed = False

    rows = manifest.to_dict("records")
    if progress:
        from tqdm.auto import tqdm

        rows = tqdm(rows, desc="B2 test set", unit="pair")
    records = []
    for row in rows:
        pair = int(row["pair"])
        target = output_path(paths, METHOD, pair)
        written, seconds = False, np.nan
        if not target.exists():
            wav_path = require_artifact(paths.test_audio / f"{pair:03d}_mixture.wav", CHAPTER_DATA)
            mixture = audio.load_wav(wav_path, feat.sample_rate)
            if mixture.shape[0] != int(row["num_samples"]):
                raise ValueError(
                    f"{wav_path} has {mixture.shape[0]} samples, the manifest says "
                    f"{int(row['num_samples'])}; rerun {CHAPTER_DATA}"
                )
            if not warmed:  # trace the prediction function for one and several windows
                for n in (1, 2):
                    model.predict_on_batch(np.zeros((n, cfg.input_length), np.float32))
                warmed = True
            start = time.perf_counter()
            speech = denoise(model, mixture, cfg)
            seconds = time.perf_counter() - start
            audio.save_wav(target, speech, feat.sample_rate, subtype="FLOAT")
            timings[pair] = dict(
                zip(
                    TIMING_COLUMNS, (pair, seconds, speech.shape[0] / feat.sample_rate), strict=True
                )
            )
            write_timing(timing_path, timings)
            written = True
        elif pair in timings:
            seconds = float(timings[pair]["seconds"])
        records.append(
            {
                "method": METHOD,
                "pair": pair,
                "path": str(target),
                "written": written,
                "seconds": seconds,
            }
        )
    return pd.DataFrame(records, columns=["method", "pair", "path", "written", "seconds"])
