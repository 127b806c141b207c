"""B2 over the test set: load the trained denoising WaveNet and write its outputs.

The network and whole-file denoising are :mod:`synthsep_lib.baselines.denoising_wavenet`;
this module runs them over Chapter 1's test mixtures into ``runs/<profile>/outputs/b2/``.
"""

from __future__ import annotations

import time

import keras
import pandas as pd

from ..baselines.denoising_wavenet import METHOD, _config, denoise, warm_up
from ..files import file_sha1
from .encoder_inference import weights_sha1
from .keras_training import CHECKPOINT_NAME, load_keras_file
from .runs import CHAPTER_BASELINES, RunPaths, require_artifact
from .test_set import load_test_signal, run_over_test_set, test_rows, wav_writer

__all__ = ["load_trained_denoiser", "denoise_test_set"]


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
    ValueError
        If it is damaged or truncated: the message names it and says to delete it and run
        Chapter 4 again.
    """
    checkpoint = require_artifact(paths.baseline(METHOD) / CHECKPOINT_NAME, CHAPTER_BASELINES)
    return load_keras_file(checkpoint, advice=f"run {CHAPTER_BASELINES} again to train B2")


def denoise_test_set(paths: RunPaths, profile, model=None, progress: bool = True) -> pd.DataFrame:
    """Denoise every test mixture of Chapter 1 with B2 and write the outputs (resumable).

    For each pair p of ``data/test_manifest.csv``, :func:`denoise` of
    ``data/test/<p:03d>_mixture.wav`` is written to ``outputs/b2/<p:03d>.wav`` (float
    WAV, atomically, the mixture's length and alignment), and ``outputs/b2/timing.csv``
    (``pair``, ``seconds`` of :func:`denoise` without file I/O, ``audio_seconds``) is
    updated after every pair, as the oracles' runner does
    (:func:`~synthsep_lib.pipeline.signal_methods.write_signal_outputs`). Outputs already
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
        One row per pair with :data:`~synthsep_lib.pipeline.test_set.OUTPUT_COLUMNS`.

    Raises
    ------
    FileNotFoundError
        If Chapter 1's manifest or a test mixture, or (without ``model``) Chapter 4's
        checkpoint, is missing; the message names the chapter to run.
    ValueError
        If a test mixture's length differs from the manifest's.
    """
    feat, cfg = profile.features, _config(profile)
    rows = test_rows(paths)
    if model is None:
        model = load_trained_denoiser(paths)
        made_by = f"checkpoint {file_sha1(paths.baseline(METHOD) / CHECKPOINT_NAME)}"
    else:
        made_by = f"weights {weights_sha1(model)}"
    made_from = f"{made_by}; manifest {file_sha1(paths.test_manifest)}"
    warmed = []

    def produce(group):
        for row in group:
            mixture = load_test_signal(paths, row, "mixture", feat.sample_rate)
            if not warmed:
                warm_up(model, cfg)
                warmed.append(True)
            start = time.perf_counter()
            speech = denoise(model, mixture, cfg)
            seconds = time.perf_counter() - start
            yield int(row["pair"]), speech, seconds, speech.shape[0] / feat.sample_rate

    return run_over_test_set(
        METHOD,
        paths.outputs(METHOD),
        made_from,
        rows,
        produce,
        save=wav_writer(feat.sample_rate),
        progress=progress,
    )
