"""The parallel vocoder's model and losses (synthsep_lib.vocoder.parallel and
synthsep_lib.vocoder.adversarial): the inverse STFT, the framing shared with the
WaveNet and the oracles, the magnitude prior, the spectral and adversarial losses and
one training step. Pure torch/numpy, tiny sizes."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
from conftest import make_test_run, speech_like

torch = pytest.importorskip("torch")

from synthsep_lib import audio  # noqa: E402
from synthsep_lib.config import FeatureConfig, load_profile  # noqa: E402
from synthsep_lib.pipeline import vocoding  # noqa: E402
from synthsep_lib.pipeline.torch_training import (  # noqa: E402
    cache_training_features,
    feature_paths,
)
from synthsep_lib.vocoder.adversarial import (  # noqa: E402
    MelScale,
    MultiPeriodDiscriminator,
    MultiResolutionDiscriminator,
    discriminator_loss,
    feature_matching_loss,
    generator_loss,
    mel_l1_loss,
    multi_resolution_stft_loss,
    training_step,
)
from synthsep_lib.vocoder.generation import align_with_source  # noqa: E402
from synthsep_lib.vocoder.parallel import (  # noqa: E402
    ENVELOPE_FLOOR,
    ISTFTHead,
    MagnitudePrior,
    ParallelVocoder,
    ParallelVocoderConfig,
    overlap_add_istft,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FEATURES = FeatureConfig()
HOP, FFT = FEATURES.hop_size, FEATURES.fft_size  # 256, 1024
TINY = ParallelVocoderConfig(dim=16, intermediate_dim=32, num_blocks=1)
WEIGHTS = {"mel": 45.0, "stft": 1.0, "adversarial": 1.0, "feature_matching": 2.0}


def tiny_vocoder(seed: int = 0) -> ParallelVocoder:
    torch.manual_seed(seed)
    return ParallelVocoder(TINY, FEATURES)


def hann_stft(signal: np.ndarray) -> np.ndarray:
    """STFT with frame m = periodic-Hann-windowed samples [256 m, 256 m + 1024):
    (L,) with L = 256 T → complex (513, T); zeros beyond the signal's end."""
    frames = len(signal) // HOP
    padded = np.pad(signal, (0, FFT - HOP))
    window = scipy.signal.get_window("hann", FFT, fftbins=True)
    pieces = np.stack([padded[HOP * m : HOP * m + FFT] * window for m in range(frames)])
    return np.fft.rfft(pieces, axis=1).T


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    return float(np.sum(a * b) / np.sqrt(np.sum(a * a) * np.sum(b * b)))


# ---------------------------------------------------------------------------------------
# The inverse STFT and the framing
# ---------------------------------------------------------------------------------------
def test_overlap_add_istft_inverts_the_hann_stft():
    rng = np.random.default_rng(0)
    frames = 12
    signal = rng.standard_normal(frames * HOP)
    spectrum = torch.from_numpy(hann_stft(signal))[None]  # complex128
    restored = overlap_add_istft(spectrum, FFT, HOP)[0].numpy()
    assert restored.dtype == np.float64 and restored.shape == (frames * HOP,)
    # the first samples are covered by frame 0's window only, whose squared value is
    # below ENVELOPE_FLOOR up to sample 194: there the divisor is floored, the rest is exact
    window = np.sin(np.pi * np.arange(FFT) / FFT) ** 2
    exact = np.flatnonzero(window[:HOP] ** 2 >= ENVELOPE_FLOOR)[0]
    assert exact == 195
    np.testing.assert_allclose(restored[exact:], signal[exact:], rtol=0, atol=1e-9)
    assert restored[0] == 0.0


def test_overlap_add_istft_is_stable_at_the_start():
    """Any spectrum, not only a true STFT, must make a waveform of sensible size: a
    generator's prediction is not the STFT of a signal."""
    rng = np.random.default_rng(1)
    frames = 12
    phases = torch.from_numpy(rng.uniform(-np.pi, np.pi, (1, FFT // 2 + 1, frames)))
    unit_magnitude = torch.polar(torch.ones_like(phases), phases)
    wave = overlap_add_istft(unit_magnitude, FFT, HOP)[0].numpy()
    assert np.isfinite(wave).all()
    assert np.abs(wave[:HOP]).max() <= 2 * np.abs(wave[HOP:]).max()


@pytest.mark.parametrize("k", [0, 5, 11])
def test_a_frame_of_spectrum_makes_only_its_own_samples(k):
    """(a) Synthesis: frame k of the spectrum lands on samples [256 k, 256 k + 1024)."""
    frames = 12
    rng = np.random.default_rng(k)
    one_frame = np.zeros((FFT // 2 + 1, frames), np.complex128)
    one_frame[:, k] = rng.standard_normal(FFT // 2 + 1) + 1j * rng.standard_normal(FFT // 2 + 1)
    wave = overlap_add_istft(torch.from_numpy(one_frame)[None], FFT, HOP)[0].numpy()
    support = np.zeros(frames * HOP, bool)
    support[HOP * k : HOP * k + FFT] = True
    assert not wave[~support].any()
    # every hop of its window (up to the signal's end) carries signal
    assert (np.abs(wave[support].reshape(-1, HOP)).max(axis=1) > 1e-3).all()

    # the head of the network frames the same way: a prior of -inf outside frame k makes
    # its magnitude exactly 0 there
    torch.manual_seed(0)
    head = ISTFTHead(dim=8, fft_size=FFT, hop_size=HOP)
    prior = torch.full((1, FFT // 2 + 1, frames), float("-inf"))
    prior[..., k] = 0.0
    with torch.no_grad():
        head_wave = head(torch.randn(1, 8, frames), prior)[0].numpy()
    assert head_wave.shape == (frames * HOP,)
    assert not head_wave[~support].any() and np.abs(head_wave[support]).max() > 0


def test_target_mel_frame_analyses_the_same_samples():
    """(b) Analysis: frame k of target_mel (the oracles' and the encoder's mel) sees
    samples [256 k, 256 k + 1024) of the saved-audio layout, centred on 256 k + 512."""
    frames, k = 20, 9
    signal = np.zeros(frames * HOP)
    burst = np.hanning(200) * np.sin(2 * np.pi * 1000 * np.arange(200) / FEATURES.sample_rate)
    start = HOP * k + 412  # inside [256 k + 384, 256 k + 640), around frame k's centre
    signal[start : start + 200] = 0.5 * burst
    mel = audio.target_mel(signal, FEATURES)
    assert mel.shape == (frames, FEATURES.num_mels)
    energy = mel.sum(axis=1)
    assert int(np.argmax(energy)) == k
    # above the floor only where the window [256 m, 256 m + 1024) overlaps the burst
    overlapping = [m for m in range(frames) if HOP * m < start + 200 and HOP * m + FFT > start]
    assert overlapping == list(range(k - 2, k + 3))
    assert set(np.nonzero(energy > 0)[0]) <= set(overlapping)


class _OneUtterance:
    """An LJSpeech reader stand-in whose every utterance is one speech-like signal."""

    def __init__(self, signal: np.ndarray):
        self.signal = signal

    def load_target(self, utt, features):
        return self.signal


def test_training_pairs_are_target_mel_of_the_saved_audio(tmp_path):
    """(c) The parallel vocoder trains on the WaveNet's pairs: frame m of the mel belongs
    to samples [256 m, 256 m + 256) of the audio in both."""
    saved = speech_like(0.6, seed=1).astype(np.float32)
    cache_training_features(_OneUtterance(saved), ["LJ001"], FEATURES, tmp_path, progress=False)
    audio_path, mel_path = feature_paths(tmp_path, "LJ001")
    stored_audio, stored_mel = np.load(audio_path), np.load(mel_path)
    np.testing.assert_array_equal(stored_audio, saved)
    np.testing.assert_array_equal(stored_mel, audio.target_mel(stored_audio, FEATURES))
    assert stored_mel.shape[0] * HOP == stored_audio.shape[0]


def test_test_set_outputs_are_not_shifted(tmp_path):
    """(c) Unlike the WaveNet's (one sample late, align_with_source), the parallel
    vocoder's output sample t is written as sample t."""
    paths = make_test_run(tmp_path, n_pairs=2)
    profile = load_profile("reduced")
    model = tiny_vocoder().eval()
    done = vocoding.vocode_test_set_parallel(
        paths, profile, model, "parallel-gt-mel", progress=False
    )
    assert done["pair"].tolist() == [0, 1] and done["written"].all()
    for pair in (0, 1):
        source = audio.load_wav(paths.test_audio / f"{pair:03d}_source.wav", 22050)
        mel = audio.target_mel(source, profile.features)
        with torch.inference_mode():
            wave = model(torch.from_numpy(np.ascontiguousarray(mel.T[None])))[0].numpy()
        written = audio.load_wav(paths.outputs("parallel-gt-mel") / f"{pair:03d}.wav", 22050)
        np.testing.assert_array_equal(written, wave[: len(source)])
        assert not np.array_equal(written, align_with_source(wave, len(source)))


# ---------------------------------------------------------------------------------------
# The generator
# ---------------------------------------------------------------------------------------
def test_parallel_vocoder_shapes():
    model = tiny_vocoder()
    for batch, frames in ((1, 1), (3, 7)):
        with torch.no_grad():
            wave = model(torch.rand(batch, FEATURES.num_mels, frames))
        assert wave.shape == (batch, HOP * frames) and wave.dtype == torch.float32
        assert torch.isfinite(wave).all()


def test_mismatched_features_are_refused():
    with pytest.raises(ValueError, match="64 mel bands"):
        ParallelVocoder(ParallelVocoderConfig(num_mels=64, dim=8, intermediate_dim=8), FEATURES)
    with pytest.raises(ValueError, match="unknown parallel vocoder setting"):
        ParallelVocoderConfig.from_dict({"channels": 8})
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        ParallelVocoderConfig(kernel_size=4)


def test_magnitude_prior_inverts_the_filter_bank_on_its_span():
    """A magnitude made of the filters themselves (basisᵀ v) comes back exactly."""
    basis = audio.mel_basis(FEATURES)
    magnitude = basis.T @ np.random.default_rng(0).uniform(0.5, 2.0, FEATURES.num_mels)
    mel = audio.normalise_mel(basis @ magnitude, FEATURES)
    assert 0 < mel.min() and mel.max() < 1  # inside the normalised range, nothing clipped
    with torch.no_grad():
        prior = MagnitudePrior(FEATURES)(torch.from_numpy(mel[None, :, None]))[0, :, 0].numpy()
    covered = magnitude > 1e-3 * magnitude.max()  # the bins between fmin and fmax
    np.testing.assert_allclose(prior[covered], np.log(magnitude[covered]), rtol=0, atol=1e-4)


def test_magnitude_prior_of_speech_is_close_to_its_spectrum():
    """The prior of a true mel follows the true log-magnitude of the same signal (the mel's
    own analysis window), at the right level."""
    signal = speech_like(1.0, seed=3)
    mel = audio.target_mel(signal, FEATURES)
    frames = len(signal) // HOP
    padded = np.pad(signal, (0, FFT - HOP))
    window = audio.lws_analysis_window(FFT, HOP)
    pieces = np.stack([padded[HOP * m : HOP * m + FFT] * window for m in range(frames)])
    true = np.log(np.maximum(np.abs(np.fft.rfft(pieces, axis=1)).T, 1e-5))  # (513, T)
    with torch.no_grad():
        prior = MagnitudePrior(FEATURES)(torch.from_numpy(mel.T[None].copy()))[0].numpy()
    bins = slice(
        int(np.ceil(FEATURES.fmin / FEATURES.sample_rate * FFT)),
        int(FEATURES.fmax / FEATURES.sample_rate * FFT),
    )
    voiced = mel.mean(axis=1) > 0.3  # frames with speech, not the silent lead-in
    assert voiced.sum() > frames // 2
    error = prior[bins][:, voiced] - true[bins][:, voiced]
    # 80 bands cannot resolve the harmonics and the valleys between them, so the
    # correlation is well below 1 (≈ 0.8 measured); it comes from the spectral envelope
    own = correlation(prior[bins][:, voiced], true[bins][:, voiced])
    assert own > 0.7
    # ... and from the frames' levels: the prior of another frame of the same signal fits worse
    shuffled = prior[:, np.random.default_rng(0).permutation(frames)]
    assert correlation(shuffled[bins][:, voiced], true[bins][:, voiced]) < own - 0.15
    # the level is right: the typical error is 0 (a wrong dB reference would shift it by
    # ±20 dB = ±2.3 in natural log)
    assert abs(np.median(error)) < 0.1 and np.mean(np.abs(error)) < 1.0


# ---------------------------------------------------------------------------------------
# Losses and discriminators
# ---------------------------------------------------------------------------------------
def waves(batch: int = 2, samples: int = 8 * HOP, seed: int = 0) -> torch.Tensor:
    return 0.3 * torch.randn(batch, samples, generator=torch.Generator().manual_seed(seed))


def test_spectral_losses_are_zero_only_for_identical_signals():
    target, other = waves(seed=0), waves(seed=1)
    mel_scale = MelScale(audio.mel_basis(FEATURES), FFT, HOP)
    assert float(multi_resolution_stft_loss(target, target)) == 0.0
    assert float(mel_l1_loss(mel_scale, target, target)) == 0.0
    assert float(multi_resolution_stft_loss(other, target)) > 0.1
    assert float(mel_l1_loss(mel_scale, other, target)) > 0.1
    # a small change gives a small loss: the losses measure the difference
    near = target + 1e-3 * other
    assert (
        0
        < float(multi_resolution_stft_loss(near, target))
        < float(multi_resolution_stft_loss(other, target))
    )
    assert mel_scale(target).shape == (2, FEATURES.num_mels, 8 + 1)  # centred frames


@pytest.fixture(scope="module")
def parts_of_batch_and_halves():
    """training_step's losses of a batch of 4 and of its two halves (what two processes
    get under torchrun), with the same networks."""
    torch.manual_seed(0)
    generator = tiny_vocoder()
    discriminators = [MultiPeriodDiscriminator([4, 8]), MultiResolutionDiscriminator(4)]
    mel_scale = MelScale(audio.mel_basis(FEATURES), FFT, HOP)
    target = torch.from_numpy(speech_like(0.5, seed=5)[: 4 * 8 * HOP].reshape(4, -1)).float()
    target[:2] *= 0.1  # halves of unequal loudness, as windows of speech and of pauses
    mel = torch.stack([torch.from_numpy(audio.target_mel(t.numpy(), FEATURES).T) for t in target])

    def parts(rows):
        return training_step(
            generator, discriminators, mel_scale, mel[rows], target[rows], WEIGHTS, True
        )[2]

    return parts(slice(0, 4)), [parts(slice(0, 2)), parts(slice(2, 4))]


@pytest.mark.parametrize(
    "part",
    [
        "mel",
        "stft",
        "adversarial",
        "feature_matching",
        "discriminator",
    ],
)
def test_losses_of_a_batch_are_the_mean_of_its_halves(parts_of_batch_and_halves, part):
    """Under torchrun every process takes an equal slice of the batch and the gradients
    are averaged: equal to one process only if every loss is the mean of its slices'."""
    whole, halves = parts_of_batch_and_halves
    mean_of_halves = (float(halves[0][part]) + float(halves[1][part])) / 2
    assert float(whole[part]) == pytest.approx(mean_of_halves, rel=1e-5)


def test_discriminators_judge_each_sub_network():
    batch = waves(batch=3)
    period = MultiPeriodDiscriminator([4, 8])
    resolution = MultiResolutionDiscriminator(4)
    for ensemble, members, layers in ((period, 5, 2 + 2), (resolution, 3, 5 + 1)):
        judged = ensemble(batch)
        assert len(judged) == members
        for scores, features in judged:
            assert scores.ndim == 2 and scores.shape[0] == 3
            assert len(features) == layers and all(f.shape[0] == 3 for f in features)
    # each period sub-network sees the waveform folded into rows of its period
    assert [m.period for m in period.members] == [2, 3, 5, 7, 11]


def test_gan_losses():
    ones, zeros = [torch.ones(2, 5), torch.ones(2, 3)], [torch.zeros(2, 5), torch.zeros(2, 3)]
    assert float(discriminator_loss(ones, zeros)) == 0.0
    assert float(generator_loss(ones)) == 0.0
    # least squares: Σ mean((1 − real)²) + mean(fake²) over sub-networks
    real, fake = [torch.full((2, 4), 0.5)], [torch.full((2, 4), 0.25)]
    assert float(discriminator_loss(real, fake)) == pytest.approx(0.25 + 0.0625)
    assert float(generator_loss(fake)) == pytest.approx(0.5625)
    assert float(discriminator_loss(zeros, ones)) == pytest.approx(4.0)  # 2 sub-networks × 2
    features = [[torch.randn(2, 3), torch.randn(2, 4, 4)], [torch.randn(2, 6)]]
    assert float(feature_matching_loss(features, features)) == 0.0
    shifted = [[f + 0.5 for f in member] for member in features]
    assert float(feature_matching_loss(features, shifted)) == pytest.approx(3 * 0.5)


def training_parts():
    generator = tiny_vocoder()
    discriminators = [MultiPeriodDiscriminator([4, 8]), MultiResolutionDiscriminator(4)]
    mel_scale = MelScale(audio.mel_basis(FEATURES), FFT, HOP)
    target = torch.from_numpy(speech_like(0.2, seed=4)[: 8 * HOP * 2].reshape(2, -1)).float()
    mel = torch.stack([torch.from_numpy(audio.target_mel(t.numpy(), FEATURES).T) for t in target])
    return generator, discriminators, mel_scale, mel, target


def test_training_step_without_discriminators():
    generator, discriminators, mel_scale, mel, target = training_parts()
    g_total, d_total, parts = training_step(
        generator, discriminators, mel_scale, mel, target, WEIGHTS, adversarial=False
    )
    assert d_total is None and set(parts) == {"mel", "stft"}
    assert float(g_total.detach()) == pytest.approx(
        float(45 * parts["mel"] + parts["stft"]), rel=1e-6
    )
    assert not any(p.requires_grad for p in parts.values())


def test_training_step_with_discriminators_reaches_both_networks():
    generator, discriminators, mel_scale, mel, target = training_parts()
    g_total, d_total, parts = training_step(
        generator, discriminators, mel_scale, mel, target, WEIGHTS, adversarial=True
    )
    assert set(parts) == {"mel", "stft", "adversarial", "feature_matching", "discriminator"}
    assert float(parts["discriminator"]) == float(d_total.detach())
    expected = sum(WEIGHTS[k] * parts[k] for k in WEIGHTS)
    assert float(g_total.detach()) == pytest.approx(float(expected), rel=1e-6)
    g_params = list(generator.parameters())
    d_params = [p for d in discriminators for p in d.parameters()]
    # what each network should get: the gradient of its own loss alone
    g_wanted = torch.autograd.grad(g_total, g_params, retain_graph=True)
    d_wanted = torch.autograd.grad(d_total, d_params, retain_graph=True)
    # the documented order: the generator's loss, clear the discriminators, theirs
    g_total.backward()
    assert all(p.grad is not None for p in d_params)  # the generator's loss reached them
    for p in d_params:
        p.grad = None
    d_total.backward()
    for params, wanted in ((g_params, g_wanted), (d_params, d_wanted)):
        assert all(p.grad is not None for p in params)
        assert sum(float(p.grad.abs().sum()) for p in params) > 0
        for p, w in zip(params, wanted, strict=True):
            torch.testing.assert_close(p.grad, w)
