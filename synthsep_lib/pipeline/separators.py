"""Trained separators, ready to run on any waveform: what ``synthsep separate`` applies.

A :class:`Separator` wraps one method of the book with its trained models, loaded from a
run folder (or from checkpoint files given one by one), behind one call:
``separator(wave)`` takes speech-plus-noise at 22 050 Hz of any length and returns the
estimated speech, sample-aligned and of the same length. The method's own layout (the
768-sample lead-in of zeros, a length that is a multiple of the hop) is handled inside.

=========================  ==============================  ===========================
method                     models (role → file in run)     trained by
=========================  ==============================  ===========================
``proposed-parallel-ft``   encoder, parallel vocoder       Chapters 2 and 7
                           fine-tuned on the estimates
``proposed-parallel``      encoder, parallel vocoder       Chapters 2 and 7
                           trained on clean speech
``proposed``               encoder, WaveNet                Chapters 2 and 3
``b2``                     denoising WaveNet               Chapter 4
``b1``                     linear encoder + Griffin–Lim    Chapter 2
=========================  ==============================  ===========================

:data:`SEPARATION_METHODS` is in that order, the order of preference when no method is
asked for: the paper's ranking (Proposed > B2 > B1), the parallel vocoders first since
Chapter 7 showed them to be the audible and fast way to synthesise.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import audio
from ..config import load_profile
from .runs import (
    CHAPTER_BASELINES,
    CHAPTER_ENCODER,
    CHAPTER_PARALLEL,
    CHAPTER_VOCODER,
    RunPaths,
)

__all__ = [
    "SEPARATION_METHODS",
    "CHECKPOINT_ROLES",
    "ModelsMissingError",
    "Separator",
    "checkpoint_files",
    "available_methods",
    "load_separator",
]


@dataclass(frozen=True)
class _Method:
    description: str
    roles: tuple[str, ...]  # checkpoint roles it needs, see CHECKPOINT_ROLES


#: Method → what it is and the checkpoint roles it needs; best first.
SEPARATION_METHODS: dict[str, _Method] = {
    "proposed-parallel-ft": _Method(
        "encoder → parallel vocoder fine-tuned on the encoder's estimates (Chapter 7)",
        ("encoder", "parallel-finetuned"),
    ),
    "proposed-parallel": _Method(
        "encoder → parallel vocoder trained on clean speech (Chapter 7)",
        ("encoder", "parallel-clean"),
    ),
    "proposed": _Method(
        "encoder → WaveNet, the paper's Proposed (Chapter 3)", ("encoder", "wavenet")
    ),
    "b2": _Method("the denoising WaveNet, the paper's B2 (Chapter 4)", ("denoiser",)),
    "b1": _Method(
        "the linear-spectrum encoder → Griffin–Lim, the paper's B1 (Chapter 2)", ("b1-encoder",)
    ),
}

#: File name of the published WaveNet checkpoint (as ``pretrained_wavenet.CHECKPOINT_NAME``).
PUBLISHED_WAVENET_NAME = "20180510_mixture_lj_checkpoint_step000320000_ema.pth"


def _wavenet_checkpoint(paths: RunPaths) -> Path:
    """The WaveNet the run's profile decodes with: its trained moving average, or the
    published checkpoint where the profile says ``vocoder.source: pretrained``."""
    if load_profile(paths.profile).vocoder.source == "pretrained":
        return paths.published_wavenet / PUBLISHED_WAVENET_NAME
    return paths.vocoder / "checkpoint_ema.pth"


#: Checkpoint role → (file in the run folder, the chapter that trains or downloads it).
#: The names are spelled here so that the command line's help needs neither TensorFlow
#: nor PyTorch; tests/test_cli.py checks that they are the files the trainers write.
CHECKPOINT_ROLES: dict[str, tuple[Callable[[RunPaths], Path], str]] = {
    "encoder": (lambda p: p.encoder("proposed") / "checkpoint.keras", CHAPTER_ENCODER),
    "b1-encoder": (lambda p: p.encoder("b1") / "checkpoint.keras", CHAPTER_ENCODER),
    "wavenet": (_wavenet_checkpoint, CHAPTER_VOCODER),
    "parallel-clean": (
        lambda p: p.parallel_vocoder / "clean" / "generator.pth",
        f"{CHAPTER_PARALLEL} (the clean stage)",
    ),
    "parallel-finetuned": (
        lambda p: p.parallel_vocoder / "finetuned" / "generator.pth",
        f"{CHAPTER_PARALLEL} (the finetuned stage)",
    ),
    "denoiser": (lambda p: p.baseline("b2") / "checkpoint.keras", CHAPTER_BASELINES),
}


class ModelsMissingError(FileNotFoundError):
    """A method's trained models are not in the run folder (the message names the chapter)."""


@dataclass
class Separator:
    """One method with its trained models.

    Attributes
    ----------
    method : str
        A key of :data:`SEPARATION_METHODS`.
    description : str
    sample_rate : int
        Rate of the waveforms it takes and returns (22 050 Hz).
    features : FeatureConfig
        The features its models were trained with (hop, lead-in).
    separate_padded : callable
        ``(L,)`` mixture in the saved-audio layout (768 zeros first, L a multiple of
        256) → ``(L,)`` estimated speech, sample-aligned.
    checkpoints : dict
        Role → the file each model was loaded from.
    """

    method: str
    description: str
    sample_rate: int
    features: object
    separate_padded: Callable[[np.ndarray], np.ndarray]
    checkpoints: dict[str, Path]

    def __call__(self, wave: np.ndarray) -> np.ndarray:
        """Estimated speech of ``wave``, float32 (n,) at :attr:`sample_rate`, amplitude ±1.

        ``wave`` is (n,), n ≥ 1, at :attr:`sample_rate`, at the level the models were
        trained on (mixtures peak at 0.999).
        """
        wave = np.asarray(wave, dtype=np.float32)
        lead = self.features.lead_in
        padded = audio.pad_for_frames(wave, self.features)
        out = np.asarray(self.separate_padded(padded), dtype=np.float32)
        return out[lead : lead + wave.shape[0]]


def checkpoint_files(
    paths: RunPaths, method: str, checkpoints: Mapping[str, str | os.PathLike] | None = None
) -> dict[str, Path]:
    """The checkpoint file of each model ``method`` needs: given ones, else the run's.

    Raises
    ------
    ValueError
        Unknown method, or a given role the method does not use.
    ModelsMissingError
        A file is missing; the message names it and the chapter that trains it.
    """
    if method not in SEPARATION_METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {list(SEPARATION_METHODS)}")
    roles = SEPARATION_METHODS[method].roles
    given = {k: Path(v) for k, v in (checkpoints or {}).items()}
    unused = sorted(set(given) - set(roles))
    if unused:
        raise ValueError(f"method {method!r} uses checkpoint roles {list(roles)}; {unused} given")
    files = {}
    for role in roles:
        where, chapter = CHECKPOINT_ROLES[role]
        path = given.get(role, where(paths))
        if not path.is_file():
            source = "given" if role in given else f"run {chapter} with profile {paths.profile!r}"
            raise ModelsMissingError(
                f"{method}: the {role} checkpoint {path} is missing ({source})"
            )
        files[role] = path
    return files


def available_methods(paths: RunPaths) -> list[str]:
    """The methods whose trained models are all in the run folder, best first."""
    found = []
    for method in SEPARATION_METHODS:
        try:
            checkpoint_files(paths, method)
        except ModelsMissingError:
            continue
        found.append(method)
    return found


def load_separator(
    method: str,
    paths: RunPaths,
    profile=None,
    checkpoints: Mapping[str, str | os.PathLike] | None = None,
    *,
    device: str | None = None,
    seed: int = 0,
) -> Separator:
    """Load ``method``'s trained models and wrap them as a :class:`Separator`.

    Parameters
    ----------
    method : str
        A key of :data:`SEPARATION_METHODS`.
    paths : RunPaths
        The run folder (``runs/<profile>``) holding the models.
    profile : Profile, optional
        Default: the profile named by ``paths``.
    checkpoints : mapping, optional
        Role (:data:`CHECKPOINT_ROLES`) → a checkpoint file to use instead of the run's.
    device : str, optional
        PyTorch device of the vocoders (default: CUDA when available).
    seed : int
        Seed of the WaveNet's sampling and of Griffin–Lim's random start.

    Raises
    ------
    ModelsMissingError
        A model is missing (the message names the file and the chapter that trains it).
    RunConfigError, ValueError
        A model was trained with other settings than the profile's.
    """
    profile = load_profile(paths.profile) if profile is None else profile
    files = checkpoint_files(paths, method, checkpoints)
    if method == "b2":
        from ..baselines.denoising_wavenet import denoise, warm_up
        from .keras_training import load_keras_file

        model = load_keras_file(
            files["denoiser"], advice=f"run {CHAPTER_BASELINES} again to train B2"
        )
        warm_up(model, profile)  # TensorFlow traces now, not on the first chunk
        run = lambda x: denoise(model, x, profile)  # noqa: E731
    elif method == "b1":
        from ..baselines.b1 import b1_griffin_lim
        from ..encoder.prediction import predict_utterance, warm_up
        from .encoder_training import load_checkpoint

        encoder = load_checkpoint(files["b1-encoder"], compile=False)
        warm_up(encoder, profile)  # TensorFlow traces now, not on the first chunk
        run = lambda x: b1_griffin_lim(  # noqa: E731
            predict_utterance(encoder, x, profile, "b1"), profile, seed=seed, length=len(x)
        )
    else:
        import torch

        from ..encoder.prediction import warm_up
        from ..separation import separate_proposed, separate_proposed_parallel
        from .encoder_training import load_checkpoint

        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        encoder = load_checkpoint(files["encoder"], compile=False)
        warm_up(encoder, profile)  # TensorFlow traces now, not on the first chunk
        if method == "proposed":
            from .vocoder_training import load_vocoder_file

            if files["wavenet"].parent == paths.published_wavenet:
                from .pretrained_wavenet import load_pretrained_wavenet

                # r9y9's layout, verified against the hashes recorded at its download
                vocoder = load_pretrained_wavenet(paths.published_wavenet, device, progress=False)
            else:
                vocoder = load_vocoder_file(files["wavenet"], profile, device)
            run = lambda x: separate_proposed(x, encoder, vocoder, profile, seed=seed)  # noqa: E731
        else:
            from .parallel_vocoder_training import load_generator_file

            role = "parallel-finetuned" if method == "proposed-parallel-ft" else "parallel-clean"
            vocoder = load_generator_file(files[role], profile, device)
            run = lambda x: separate_proposed_parallel(x, encoder, vocoder, profile)  # noqa: E731
    return Separator(
        method=method,
        description=SEPARATION_METHODS[method].description,
        sample_rate=profile.features.sample_rate,
        features=profile.features,
        separate_padded=run,
        checkpoints=files,
    )
