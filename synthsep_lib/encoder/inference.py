"""Running a trained encoder on whole utterances, and its errors e1, e2 on the test set.

At test time an utterance is cut into consecutive 64-frame blocks, the last one moved
back to end at the last frame, the blocks are predicted in batches of 32 and stitched
back, later blocks overwriting the overlap (PAPER_FACTS §2.8, ``synthsep_lib.blocks``).

**Inference mode.** Here the model runs in Keras' inference mode (``training=False``):
dropout is off and BatchNorm uses its moving statistics. The original test script most
likely ran with the learning phase fixed to 1 by an import side effect (PAPER_FACTS §4.7):
dropout active and BatchNorm normalising with the statistics of the blocks of the one
utterance being predicted. Whether the published numbers were made that way is unknown.
``training=True`` reproduces that behaviour (the model's weights and BatchNorm statistics
are left unchanged).

:func:`predict_test_set` writes, for a variant, ``encoder/<variant>/test/<pair>.npy``
(the stitched (T, F) estimate, float32) and ``encoder/<variant>/errors.csv``.

Used in: Chapter 2 (02_encoder)
"""

from __future__ import annotations

import hashlib
import json
import time

import keras
import numpy as np
import pandas as pd

from synthsep_lib import audio, blocks, mixing
from synthsep_lib.encoder.loss import encoder_errors
from synthsep_lib.encoder.model import VARIANTS
from synthsep_lib.encoder.train import (
    CHAPTER_DATA,
    CHAPTER_ENCODER,
    CHECKPOINT_NAME,
    CONFIG_NAME,
    load_checkpoint,
)
from synthsep_lib.runs import (
    RunPaths,
    atomic_path,
    file_sha1,
    require_artifact,
    reset_if_stale,
    write_json_atomic,
)

__all__ = [
    "ERRORS_NAME",
    "ERROR_COLUMNS",
    "target_feature",
    "predict_utterance",
    "warm_up",
    "load_trained_encoder",
    "predict_test_set",
    "real_time_factor",
    "test_pair_features",
]

ERRORS_NAME = "errors.csv"
ERROR_COLUMNS = ("pair", "e1", "e2", "mixture_e1", "mixture_e2", "seconds", "audio_seconds")


def _check_variant(variant: str) -> None:
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

    Used in: Chapter 2 (02_encoder)
    """
    _check_variant(variant)
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
    blocks (:func:`synthsep_lib.blocks.split_into_blocks`: starts 0, 64, …, the last at
    T − 64), ``model.predict`` in batches of ``batch_size`` blocks, and
    :func:`synthsep_lib.blocks.stitch_blocks` (later blocks overwrite the overlap), as
    in the original's test script (PAPER_FACTS §2.8).

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
        True: the original's probable learning phase 1 (PAPER_FACTS §4.7), dropout on and
        BatchNorm on the statistics of each batch of blocks; the model is not changed.

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

    Used in: Chapter 2 (02_encoder)
    """
    _check_variant(variant)
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
    x1, starts = blocks.split_into_blocks(linear, frames)
    x2, _ = blocks.split_into_blocks(mel, frames)
    y = _predict_blocks(model, x1, x2, int(batch_size), training)
    estimate = blocks.stitch_blocks(np.asarray(y)[..., 0], starts, linear.shape[0])
    return np.ascontiguousarray(estimate[:num_frames], dtype=np.float32)


def warm_up(model, profile=None) -> None:
    """Trace the model's inference function (and build the mel filters) before timing.

    TensorFlow traces a function on its first call and again for a new batch size until
    it generalises the shape; calls with 1 and 2 blocks of silence do both, so that the
    timings of :func:`predict_test_set` measure prediction, not tracing. With a
    ``profile``, the features of one block of silence are computed too (the mel filter
    bank is built and cached on first use).

    Used in: Chapter 2 (02_encoder)
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


def load_trained_encoder(paths: RunPaths, variant: str) -> keras.Model:
    """Load the encoder trained by Chapter 2 from ``encoder/<variant>/checkpoint.keras``.

    Parameters
    ----------
    paths : RunPaths
    variant : {"proposed", "b1"}

    Returns
    -------
    keras.Model
        Loaded without its optimizer (``compile=False``), ready for ``predict``.

    Raises
    ------
    FileNotFoundError
        If the checkpoint is missing: the message says to run Chapter 2 (02_encoder).
    ValueError
        If the run's ``config.json`` says it is another variant.

    Used in: Chapter 2 (02_encoder), evaluation chapters
    """
    _check_variant(variant)
    folder = paths.encoder(variant)
    checkpoint = require_artifact(folder / CHECKPOINT_NAME, CHAPTER_ENCODER)
    config_path = folder / CONFIG_NAME
    if config_path.exists():
        stored = json.loads(config_path.read_text(encoding="utf-8")).get("variant")
        if stored not in (None, variant):
            raise ValueError(f"{folder} holds a {stored!r} encoder, not a {variant!r} one")
    return load_checkpoint(checkpoint, compile=False)


def weights_sha1(model) -> str:
    """SHA-1 over a Keras model's weights: which trained model made an output."""
    digest = hashlib.sha1()
    for weight in model.get_weights():
        digest.update(np.ascontiguousarray(weight).tobytes())
    return digest.hexdigest()


def real_time_factor(errors: pd.DataFrame) -> float:
    """Seconds of computation per second of audio: ``Σ seconds / Σ audio_seconds``.

    Parameters
    ----------
    errors : pandas.DataFrame
        As returned by :func:`predict_test_set`.

    Returns
    -------
    float
        Below 1: faster than real time.

    Used in: Chapter 2 (02_encoder)
    """
    return float(errors["seconds"].sum() / errors["audio_seconds"].sum())


def predict_test_set(
    paths: RunPaths,
    profile,
    variant: str,
    model=None,
    progress: bool = True,
    *,
    batch_size: int = 32,
    training: bool = False,
) -> pd.DataFrame:
    """Estimate every test pair of Chapter 1 and compute the errors e1, e2 (PAPER_FACTS §8.1).

    For each pair of ``data/test_manifest.csv``: :func:`predict_utterance` on
    ``data/test/NNN_mixture.wav``, saved as ``encoder/<variant>/test/NNN.npy`` (float32
    (T, F), atomically); e1 and e2 (:func:`synthsep_lib.encoder.loss.encoder_errors`)
    against the features of ``NNN_target.wav`` (mel for ``proposed``, 512-bin linear for
    ``b1``); and, as the trivial baseline "output the mixture", e1 and e2 of the
    mixture's own features. Resumable: estimates already made by the same model, from the
    same test manifest and in the same mode are loaded instead of recomputed; a
    retrained model (another checkpoint SHA-1) or a new test set invalidates them.

    Parameters
    ----------
    paths : RunPaths
    profile : Profile
    variant : {"proposed", "b1"}
    model : keras.Model, optional
        Default: :func:`load_trained_encoder`. A model given here is identified by the
        SHA-1 of its weights instead of the checkpoint's.
    progress : bool
        Show a tqdm bar.
    batch_size : int, keyword-only
        Blocks per ``predict`` batch (32).
    training : bool, keyword-only
        See :func:`predict_utterance` (the original's probable learning phase 1).

    Returns
    -------
    pandas.DataFrame
        One row per pair with :data:`ERROR_COLUMNS`: ``pair``, ``e1``, ``e2``,
        ``mixture_e1``, ``mixture_e2`` (fractions), ``seconds`` (wall time of
        :func:`predict_utterance`, features included, when the estimate was made) and
        ``audio_seconds`` (length of the mixture). Also written to
        ``encoder/<variant>/errors.csv``. ``attrs["real_time_factor"]`` is
        :func:`real_time_factor`.

    Raises
    ------
    FileNotFoundError
        If Chapter 1's manifest or test audio, or (without ``model``) Chapter 2's
        checkpoint, is missing; the message names the chapter to run.

    Used in: Chapter 2 (02_encoder)
    """
    _check_variant(variant)
    feat = profile.features
    manifest_path = require_artifact(paths.test_manifest, CHAPTER_DATA)
    manifest = mixing.read_test_manifest(manifest_path)
    folder = paths.encoder(variant)
    if model is None:
        model = load_trained_encoder(paths, variant)
        made_by = f"checkpoint {file_sha1(folder / CHECKPOINT_NAME)}"
    else:
        made_by = f"weights {weights_sha1(model)}"
    mode = f"training={bool(training)} batch_size={int(batch_size)}" if training else "inference"
    made_from = f"{made_by}; manifest {file_sha1(manifest_path)}; {mode}"
    out_dir = paths.encoder_estimates(variant)
    reset_if_stale(out_dir, made_from, pattern="[0-9]*.*")
    warmed = False

    rows = manifest.itertuples(index=False)
    if progress:
        from tqdm.auto import tqdm

        rows = tqdm(rows, total=len(manifest), desc=f"encoder {variant} test set", unit="pair")
    records = []
    for row in rows:
        pair = int(row.pair)
        mixture_path = require_artifact(paths.test_audio / f"{pair:03d}_mixture.wav", CHAPTER_DATA)
        target_path = require_artifact(paths.test_audio / f"{pair:03d}_target.wav", CHAPTER_DATA)
        mixture = audio.load_wav(mixture_path, feat.sample_rate)
        npy, timing = out_dir / f"{pair:03d}.npy", out_dir / f"{pair:03d}.json"
        if npy.exists() and timing.exists():
            estimate = np.load(npy)
            seconds = float(json.loads(timing.read_text(encoding="utf-8"))["seconds"])
        else:
            if not warmed and not training:
                warm_up(model, profile)
                warmed = True
            t0 = time.perf_counter()
            estimate = predict_utterance(
                model, mixture, profile, variant, batch_size, training=training
            )
            seconds = time.perf_counter() - t0
            with atomic_path(npy) as tmp:
                np.save(tmp, estimate)
            write_json_atomic(timing, {"pair": pair, "seconds": seconds})
        target = audio.load_wav(target_path, feat.sample_rate)
        reference = target_feature(*audio.encoder_features(target, feat), variant)
        mixture_feature = target_feature(*audio.encoder_features(mixture, feat), variant)
        if estimate.shape != reference.shape:
            raise ValueError(
                f"estimate {npy} has shape {estimate.shape}, but the target of pair {pair} "
                f"has features of shape {reference.shape}"
            )
        e1, e2 = encoder_errors(reference, estimate)
        m1, m2 = encoder_errors(reference, mixture_feature)
        records.append(
            {
                "pair": pair,
                "e1": e1,
                "e2": e2,
                "mixture_e1": m1,
                "mixture_e2": m2,
                "seconds": seconds,
                "audio_seconds": mixture.shape[0] / feat.sample_rate,
            }
        )
    errors = pd.DataFrame(records, columns=list(ERROR_COLUMNS))
    with atomic_path(folder / ERRORS_NAME) as tmp:
        errors.to_csv(tmp, index=False)
    if len(errors):
        errors.attrs["real_time_factor"] = real_time_factor(errors)
    return errors


def test_pair_features(paths: RunPaths, profile, variant: str, pair: int) -> dict[str, np.ndarray]:
    """The mixture's, the target's and the estimated spectrum of one test pair.

    Parameters
    ----------
    paths : RunPaths
    profile : Profile
    variant : {"proposed", "b1"}
        Mel spectra (T, 80) for ``proposed``, 512-bin linear spectra for ``b1``.
    pair : int
        Pair number of the test manifest; its estimate must have been made by
        :func:`predict_test_set`.

    Returns
    -------
    dict
        ``"mixture"``, ``"target"`` and ``"estimate"`` → (T, F) float32 in [0, 1].

    Used in: Chapter 2 (02_encoder)
    """
    _check_variant(variant)
    feat = profile.features
    spectra = {}
    for kind in ("mixture", "target"):
        wav_path = require_artifact(paths.test_audio / f"{int(pair):03d}_{kind}.wav", CHAPTER_DATA)
        wav = audio.load_wav(wav_path, feat.sample_rate)
        spectra[kind] = target_feature(*audio.encoder_features(wav, feat), variant)
    estimate = paths.encoder_estimates(variant) / f"{int(pair):03d}.npy"
    spectra["estimate"] = np.load(require_artifact(estimate, "Chapter 2 (02_encoder)"))
    return spectra
