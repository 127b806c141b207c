"""The Proposed method on one mixture (synthsep_lib.separation), with tiny untrained models,
and the two generation helpers it relies on (fold_frames, align_with_source)."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

keras = pytest.importorskip("keras")
pytest.importorskip("tensorflow")
torch = pytest.importorskip("torch")

from synthsep_lib.config import load_profile  # noqa: E402
from synthsep_lib.encoder.model import build_encoder  # noqa: E402
from synthsep_lib.encoder.prediction import predict_utterance  # noqa: E402
from synthsep_lib.separation import separate_proposed  # noqa: E402
from synthsep_lib.vocoder.generation import (  # noqa: E402
    align_with_source,
    fold_frames,
    generate_utterances,
)
from synthsep_lib.vocoder.wavenet import WaveNet, WaveNetConfig  # noqa: E402

TINY_ENCODER = {
    "linear_lstm_units": 8,
    "mel_lstm_units": 8,
    "hourglass_filters": 8,
    "hourglass_depth": 1,
}


@pytest.fixture(scope="module")
def profile():
    return load_profile("reduced", {"encoder": TINY_ENCODER})


@pytest.fixture(scope="module")
def encoder(profile):
    keras.utils.set_random_seed(0)
    return build_encoder("proposed", profile.encoder)


@pytest.fixture(scope="module")
def vocoder():
    torch.manual_seed(0)
    model = WaveNet(WaveNetConfig.small()).eval()
    with torch.no_grad():  # larger weights than the initialisation: a less flat output
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


def mixture(frames: int, profile, seed: int = 0) -> np.ndarray:
    """A mixture in the saved-audio layout: 768 zeros, then noise; frames · 256 samples."""
    feat = profile.features
    x = np.zeros(frames * feat.hop_size, np.float32)
    x[feat.lead_in :] = 0.3 * np.random.default_rng(seed).uniform(-1, 1, x.size - feat.lead_in)
    return x


@pytest.mark.parametrize("frames", [70, 10])  # two encoder blocks; less than one block
def test_output_has_the_mixture_length_and_is_a_waveform(profile, encoder, vocoder, frames):
    x = mixture(frames, profile)
    y = separate_proposed(x, encoder, vocoder, profile, seed=0)
    assert y.shape == x.shape and y.dtype == np.float32
    assert np.all(np.isfinite(y)) and np.abs(y).max() <= 1.0
    assert y[0] == 0.0  # generated sample t re-creates sample t + 1
    assert np.abs(y[1:]).max() > 0.0


def test_same_seed_same_waveform_other_seed_other_waveform(profile, encoder, vocoder):
    x = mixture(70, profile)
    first = separate_proposed(x, encoder, vocoder, profile, seed=3)
    again = separate_proposed(x, encoder, vocoder, profile, seed=3)
    other = separate_proposed(x, encoder, vocoder, profile, seed=4)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_the_wavenet_is_conditioned_on_the_encoders_mel_estimate(profile, encoder, vocoder):
    x = mixture(70, profile, seed=1)
    mel = predict_utterance(encoder, x, profile, "proposed")
    segment, overlap = fold_frames(profile)
    (wave,), _ = generate_utterances(
        vocoder,
        [mel],
        batch_size=profile.vocoder.synthesis_batch,
        fold_segment_frames=segment,
        fold_overlap_frames=overlap,
        seed=5,
        progress=False,
    )
    y = separate_proposed(x, encoder, vocoder, profile, seed=5)
    np.testing.assert_array_equal(y[1:], wave[: x.size - 1])
    # another mixture gives another mel estimate, hence another waveform
    assert not np.array_equal(
        y, separate_proposed(mixture(70, profile, 2), encoder, vocoder, profile, seed=5)
    )


def test_fold_frames_rounds_the_profile_seconds_to_frames():
    reduced = load_profile("reduced")
    frames_per_second = 22050 / 256
    assert fold_frames(reduced) == (
        round(reduced.vocoder.fold_segment_seconds * frames_per_second),
        max(1, round(reduced.vocoder.fold_overlap_seconds * frames_per_second)),
    )
    assert fold_frames(load_profile("paper"))[0] == 0  # the paper generates whole files
    assert fold_frames(load_profile("reduced", {"vocoder": {"fold_overlap_seconds": 0.0}}))[1] == 1


def test_align_with_source_shifts_by_one_and_cuts_or_pads():
    wave = np.arange(1, 6, dtype=np.float32)
    np.testing.assert_array_equal(align_with_source(wave, 4), [0, 1, 2, 3])
    np.testing.assert_array_equal(align_with_source(wave, 8), [0, 1, 2, 3, 4, 5, 0, 0])
