"""Running a trained encoder on whole utterances, and its errors e1, e2 on the test set.

At test time an utterance is cut into consecutive 64-frame blocks, the last one moved
back to end at the last frame, the blocks are predicted in batches of 32 and stitched
back, later blocks overwriting the overlap (original_code.md#oc-test-blocks,
``synthsep_lib.spectrogram_blocks``).

**Inference mode.** Here the model runs in Keras' inference mode (``training=False``):
dropout is off and BatchNorm uses its moving statistics. The original test script most
likely ran with the learning phase fixed to 1 by an import side effect
(original_code.md#oc-learning-phase): dropout active and BatchNorm normalising with the
statistics of the blocks of the one utterance being predicted. Whether the published numbers were made that way is unknown.
``training=True`` reproduces that behaviour (the model's weights and BatchNorm statistics
are left unchanged).

:func:`predict_test_set` writes, for a variant, ``encoder/<variant>/test/<pair>.npy``
(the stitched (T, F) estimate, float32) and ``encoder/<variant>/errors.csv``.
"""

from __future__ import annotations

import hashlib
import json
import time

import keras
import numpy as np
import pandas as pd

from synthsep_lib import audio
from synthsep_lib.encoder.loss import encoder_errors
from synthsep_lib.encoder.prediction import (
    check_variant,
    predict_utterance,
    target_feature,
    warm_up,
)
from synthsep_lib.files import atomic_path, file_sha1
from synthsep_lib.pipeline.encoder_training import load_checkpoint
from synthsep_lib.pipeline.keras_training import CHECKPOINT_NAME, CONFIG_NAME
from synthsep_lib.pipeline.runs import CHAPTER_DATA, CHAPTER_ENCODER, RunPaths, require_artifact
from synthsep_lib.pipeline.test_set import (
    load_test_signal,
    run_over_test_set,
    save_array,
    test_rows,
)

__all__ = [
    "ERROR_COLUMNS",
    "load_trained_encoder",
    "predict_test_set",
    "real_time_factor",
    "test_pair_features",
]

ERROR_COLUMNS = ("pair", "e1", "e2", "mixture_e1", "mixture_e2", "seconds", "audio_seconds")


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
    """
    check_variant(variant)
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
    """Estimate every test pair of Chapter 1 and compute e1, e2 (original_code.md#oc-errors).

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
    """
    check_variant(variant)
    feat = profile.features
    rows = test_rows(paths)
    folder = paths.encoder(variant)
    if model is None:
        model = load_trained_encoder(paths, variant)
        made_by = f"checkpoint {file_sha1(folder / CHECKPOINT_NAME)}"
    else:
        made_by = f"weights {weights_sha1(model)}"
    mode = f"training={bool(training)} batch_size={int(batch_size)}" if training else "inference"
    made_from = f"{made_by}; manifest {file_sha1(paths.test_manifest)}; {mode}"
    warmed = []

    def produce(group):
        for row in group:
            mixture = load_test_signal(paths, row, "mixture", feat.sample_rate)
            if not warmed and not training:
                warm_up(model, profile)
                warmed.append(True)
            start = time.perf_counter()
            estimate = predict_utterance(
                model, mixture, profile, variant, batch_size, training=training
            )
            seconds = time.perf_counter() - start
            yield int(row["pair"]), estimate, seconds, mixture.shape[0] / feat.sample_rate

    estimates = run_over_test_set(
        f"encoder {variant}",
        paths.encoder_estimates(variant),
        made_from,
        rows,
        produce,
        save=save_array,
        suffix=".npy",
        progress=progress,
    )
    records = []
    for row, timing in zip(rows, estimates.itertuples(index=False), strict=True):
        pair = int(row["pair"])
        estimate = np.load(timing.path)
        target = load_test_signal(paths, row, "target", feat.sample_rate)
        mixture = load_test_signal(paths, row, "mixture", feat.sample_rate)
        reference = target_feature(*audio.encoder_features(target, feat), variant)
        mixture_feature = target_feature(*audio.encoder_features(mixture, feat), variant)
        if estimate.shape != reference.shape:
            raise ValueError(
                f"estimate {timing.path} has shape {estimate.shape}, but the target of pair "
                f"{pair} has features of shape {reference.shape}"
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
                "seconds": timing.seconds,
                "audio_seconds": timing.audio_seconds,
            }
        )
    errors = pd.DataFrame(records, columns=list(ERROR_COLUMNS))
    with atomic_path(paths.encoder_errors(variant)) as tmp:
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
    """
    check_variant(variant)
    feat = profile.features
    spectra = {}
    for kind in ("mixture", "target"):
        wav_path = require_artifact(paths.test_wav(pair, kind), CHAPTER_DATA)
        wav = audio.load_wav(wav_path, feat.sample_rate)
        spectra[kind] = target_feature(*audio.encoder_features(wav, feat), variant)
    estimate = paths.encoder_estimate(variant, pair)
    spectra["estimate"] = np.load(require_artifact(estimate, CHAPTER_ENCODER))
    return spectra
