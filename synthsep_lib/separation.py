"""The Proposed method on one mixture: the paper's idea in one function.

Separation by synthesis: the encoder estimates the mel spectrogram of the target speech
from the mixture, and a vocoder generates a new waveform from that mel — the paper's
WaveNet (:func:`separate_proposed`) or Chapter 7's parallel vocoder
(:func:`separate_proposed_parallel`). The test-set runner of the book
(:mod:`synthsep_lib.pipeline.vocoding`) does the same for every test mixture, batched,
timed and written to disk; ``synthsep separate`` does it for any recording.
"""

from __future__ import annotations

import numpy as np

from synthsep_lib.encoder.prediction import predict_utterance
from synthsep_lib.vocoder.generation import align_with_source, fold_frames, generate_utterances

__all__ = ["separate_proposed", "separate_proposed_parallel"]


def separate_proposed(mixture, encoder, vocoder, profile, *, seed: int = 0) -> np.ndarray:
    """Separate the target speech of one mixture by synthesising it (Proposed).

    1. the encoder estimates the target's normalised mel spectrogram from the mixture's
       linear and mel spectra, in 64-frame blocks stitched back together
       (:func:`~synthsep_lib.encoder.prediction.predict_utterance`);
    2. the WaveNet generates a waveform conditioned on that mel, sample by sample,
       folded and cross-faded as the profile says
       (:func:`~synthsep_lib.vocoder.generation.generate_utterances`);
    3. the waveform is laid out like the mixture (one sample later, the mixture's length).

    Parameters
    ----------
    mixture : numpy.ndarray, shape (L,)
        Mixture waveform at ``profile.features.sample_rate`` (22050 Hz), amplitude in
        [−1, 1], in the saved-audio layout: a 768-sample lead-in of zeros and L a
        multiple of 256 (Chapter 1's ``NNN_mixture.wav``).
    encoder : keras.Model
        The Proposed (mel) encoder of :func:`synthsep_lib.encoder.model.build_encoder`,
        trained; run in inference mode.
    vocoder : synthsep_lib.vocoder.wavenet.WaveNet
        In eval mode, on the device to generate on; its mel settings must be the
        encoder's (``profile.features``).
    profile : Profile
        ``features`` (spectra, hop), ``vocoder`` (batch and folding of the generation).
    seed : int, keyword-only
        Seed of the WaveNet's sampling: the same seed gives the same waveform.

    Returns
    -------
    numpy.ndarray, float32, shape (L,)
        The synthesised target speech, sample ``j`` re-creating ``mixture[j]``'s
        target; amplitude in [−1, 1].
    """
    mel = predict_utterance(encoder, mixture, profile, "proposed")  # (L / 256 frames, 80)
    segment_frames, overlap_frames = fold_frames(profile)
    (wave,), _ = generate_utterances(
        vocoder,
        [mel],
        batch_size=profile.vocoder.synthesis_batch,
        fold_segment_frames=segment_frames,
        fold_overlap_frames=overlap_frames,
        seed=seed,
        progress=False,
    )  # L samples; sample t is the WaveNet's prediction of sample t + 1
    return align_with_source(wave, len(mixture))


def separate_proposed_parallel(mixture, encoder, vocoder, profile) -> np.ndarray:
    """Separate the target speech of one mixture with the parallel vocoder (Chapter 7).

    The same two steps as :func:`separate_proposed`, with
    :class:`~synthsep_lib.vocoder.parallel.ParallelVocoder` in place of the WaveNet: one
    pass of the network turns the whole estimated mel into a waveform.

    Parameters
    ----------
    mixture : numpy.ndarray, shape (L,)
        As in :func:`separate_proposed`: 22050 Hz, saved-audio layout (768-sample
        lead-in, L a multiple of 256).
    encoder : keras.Model
        The trained Proposed (mel) encoder.
    vocoder : synthsep_lib.vocoder.parallel.ParallelVocoder
        In eval mode, on the device to synthesise on.
    profile : Profile
        ``features``.

    Returns
    -------
    numpy.ndarray, float32, shape (L,)
        Sample ``j`` re-creates ``mixture[j]``'s target (the vocoder's frames are the
        features' frames: no shift); zero where the network's output ends early.
    """
    mel = predict_utterance(encoder, mixture, profile, "proposed")  # (L / 256 frames, 80)
    return vocoder.synthesize(mel, len(mixture))
