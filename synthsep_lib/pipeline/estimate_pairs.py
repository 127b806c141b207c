"""Training pairs for fine-tuning a vocoder: (the encoder's estimate, the clean waveform).

A vocoder trained on clean mels meets something else at test time: the encoder's
estimates, smeared and noisier than any true mel. The paper's conclusion proposes to
train the decoder on the encoder's output instead. :func:`build_estimate_pairs` makes
that training set from the training split only:

1. for round r and training utterance u, a fresh interferer is drawn from the training
   noises, with a random start in the clip (``SeedSequence([seed, r, index of u])``),
   and mixed by the paper's recipe, as the encoder's feed does
   (:func:`synthsep_lib.mixing.simulate_mixture_paper`);
2. the trained Proposed encoder estimates the mel of the whole mixture
   (:func:`synthsep_lib.encoder.prediction.predict_utterance`, as at test time);
3. the pair is that estimate and the scaled target ``scale · s1``, whose mel the
   encoder was taught to predict, laid out like every vocoder training pair
   (:func:`synthsep_lib.pipeline.torch_training.feature_paths`:
   ``<u>-r<r>-audio.npy`` (L,) and ``<u>-r<r>-mel.npy`` (L / 256, 80)).

So :class:`~synthsep_lib.pipeline.torch_training.TrainingWindows` draws windows of these
pairs exactly as it does of clean speech. The folder is tied to the encoder's checkpoint
and the settings: a retrained encoder makes a new set.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from synthsep_lib import mixing
from synthsep_lib.encoder.prediction import predict_utterance, warm_up
from synthsep_lib.files import atomic_path, file_sha1, reset_if_stale
from synthsep_lib.pipeline.encoder_inference import load_trained_encoder
from synthsep_lib.pipeline.keras_training import CHECKPOINT_NAME
from synthsep_lib.pipeline.runs import RunPaths
from synthsep_lib.pipeline.torch_training import feature_paths

__all__ = ["pair_names", "estimate_pairs_signature", "build_estimate_pairs"]


def pair_names(utterances, rounds: int) -> list[str]:
    """Names of the pairs: ``<utterance>-r<round>``, rounds outermost."""
    return [f"{u}-r{r}" for r in range(int(rounds)) for u in utterances]


def estimate_pairs_signature(paths: RunPaths, profile, splits) -> str:
    """What a set of pairs is made from: encoder checkpoint, features, lists, rounds, seed."""
    made_from = {
        "encoder": file_sha1(paths.encoder("proposed") / CHECKPOINT_NAME),
        "features": profile.features.to_dict(),
        "utterances": list(splits.target_train),
        "noises": list(splits.noise_train),
        "rounds": profile.parallel.finetune_rounds,
        "seed": profile.parallel.seed,
    }
    return hashlib.sha1(json.dumps(made_from, sort_keys=True).encode()).hexdigest()


def _save(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.save(handle, array)


def build_estimate_pairs(
    paths: RunPaths, profile, lj, esc, splits, folder, *, progress: bool = True
) -> list[str]:
    """Write the fine-tuning pairs of the module docstring into ``folder``.

    Pairs already there (made from the same encoder and settings) are kept, so an
    interrupted call continues; a set made from something else is deleted first.

    Parameters
    ----------
    paths : RunPaths
        The trained Proposed encoder is read from ``encoder/proposed/`` (Chapter 2).
    profile : Profile
        ``features`` and ``parallel.finetune_rounds`` / ``parallel.seed``.
    lj, esc : corpora.LJSpeech, corpora.ESC50
    splits : corpora.Splits
        ``target_train`` and ``noise_train`` are used.
    folder : path-like
    progress : bool

    Returns
    -------
    list of str
        The pair names, in order (for ``TrainingWindows``).

    Raises
    ------
    FileNotFoundError
        If the encoder's checkpoint is missing (names Chapter 2).
    ValueError
        If an estimate and its target disagree in length (names the utterance).
    """
    from tqdm.auto import tqdm

    folder = Path(folder)
    feat, par = profile.features, profile.parallel
    utterances, noises = list(splits.target_train), list(splits.noise_train)
    names = pair_names(utterances, par.finetune_rounds)
    model = load_trained_encoder(paths, "proposed")
    reset_if_stale(folder, estimate_pairs_signature(paths, profile, splits), pattern="*.npy")
    todo = [
        (r, i, u)
        for r in range(par.finetune_rounds)
        for i, u in enumerate(utterances)
        if not feature_paths(folder, f"{u}-r{r}")[1].exists()
    ]
    if todo:
        warm_up(model, profile)
    for r, i, utt in tqdm(todo, desc="encoder estimates", unit="mixture", disable=not progress):
        rng = np.random.default_rng(np.random.SeedSequence([par.seed, r, i]))
        noise = noises[int(rng.integers(len(noises)))]
        clip = esc.load(noise, feat.sample_rate)
        s1 = lj.load_target(utt, feat)
        # a random start in the clip: two rounds that draw the same noise still differ
        mix = mixing.simulate_mixture_paper(
            s1, clip, int(rng.integers(len(clip))), target_id=utt, noise_id=noise
        )
        estimate = predict_utterance(model, mix.mixture, profile, "proposed")
        if estimate.shape[0] * feat.hop_size != mix.target.shape[0]:
            raise ValueError(
                f"the estimate of {utt} with {noise} has {estimate.shape[0]} frames for "
                f"{mix.target.shape[0]} samples (expected frames × {feat.hop_size})"
            )
        audio_path, mel_path = feature_paths(folder, f"{utt}-r{r}")
        _save(audio_path, mix.target.astype(np.float32))
        _save(mel_path, estimate.astype(np.float32))  # the mel last: it marks a pair done
    return names
