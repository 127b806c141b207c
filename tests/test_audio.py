"""Tests of synthsep_lib.audio against independent references (lws, librosa) and the facts of book/original_code.md."""

from __future__ import annotations

import math
import warnings

import librosa
import numpy as np
import pytest
import soundfile as sf

from synthsep_lib import audio
from synthsep_lib.audio import AudioFileError
from synthsep_lib.config import FeatureConfig

lws = pytest.importorskip("lws")

CFG = FeatureConfig()
SR = 22050


# --------------------------------------------------------------------------------------
# Test signals
# --------------------------------------------------------------------------------------


def _noise(n: int, seed: int = 0) -> np.ndarray:
    return 0.3 * np.random.default_rng(seed).standard_normal(n)


def _chirp(n: int) -> np.ndarray:
    t = np.arange(n) / SR
    duration = max(t[-1], 1.0 / SR)
    return 0.8 * np.sin(2 * np.pi * (100 * t + (8000 - 100) / (2 * duration) * t**2))


def _speech_like(n: int, seed: int = 1) -> np.ndarray:
    """Gliding harmonic source, formant-like weights, syllables separated by exact zeros."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / SR
    f0 = 120 + 40 * np.sin(2 * np.pi * 3 * t)
    phase = 2 * np.pi * np.cumsum(f0) / SR
    y = np.zeros(n)
    for k in range(1, 30):
        weight = 1 / k * (1 + 3 * np.exp(-(((k * 150 - 700) / 200) ** 2)))
        y += weight * np.sin(k * phase)
    envelope = np.clip(np.sin(2 * np.pi * 4 * t), 0, None) ** 2
    y = y * envelope + 1e-4 * rng.standard_normal(n) * (envelope > 0)
    return 0.9 * y / np.max(np.abs(y))


SIGNALS = {
    "noise-22050": _noise(22050),
    "noise-25600": _noise(25600, seed=3),
    "chirp-20000": _chirp(20000),
    "chirp-5120": _chirp(5120),
    "speech-22050": _speech_like(22050),
    "speech-12800": _speech_like(12800, seed=2),
    "short-300": _noise(300, seed=4),
    "single-sample": np.array([0.5]),
}


# --------------------------------------------------------------------------------------
# Independent references, written from original_code.md#oc-mel-spectrum and
# original_code.md#oc-linear-spectrum with hard-coded r9y9/author values
# --------------------------------------------------------------------------------------


def lws_stft(wav, features=CFG) -> np.ndarray:
    """The STFT inside audio.mel_spectrogram (lead-in, lws window, frame chunks), whole."""
    arr = audio.as_signal(wav)
    padded, n_frames = audio._lws_padded(arr, features)
    window = audio.lws_analysis_window(features.fft_size, features.hop_size)
    out = np.empty((n_frames, features.fft_size // 2 + 1), dtype=np.complex128)
    for start, spec in audio._frame_chunks(padded, n_frames, features, window):
        out[start : start + spec.shape[0]] = spec
    return out


def _reference_mel(y: np.ndarray) -> np.ndarray:
    """r9y9's melspectrogram, with the lws package's STFT, frames as rows."""
    spec = lws.lws(1024, 256, mode="speech").stft(np.asarray(y, dtype=np.float64))
    basis = librosa.filters.mel(
        sr=22050, n_fft=1024, n_mels=80, fmin=125, fmax=7600, dtype=np.float64
    )
    mel = basis @ np.abs(spec).T
    db = 20 * np.log10(np.maximum(1e-5, mel)) - 20
    return np.clip((db + 100) / 100, 0, 1).T


def _reference_linear_stft(x: np.ndarray) -> np.ndarray:
    padded = np.pad(np.asarray(x, dtype=np.float64), (0, 768))
    return librosa.stft(padded, n_fft=1024, hop_length=256, window="hann", center=False).T


def _reference_linear(x: np.ndarray) -> np.ndarray:
    db = 20 * np.log10(np.maximum(1e-5, np.abs(_reference_linear_stft(x)))) - 30
    return np.clip((db + 80) / 80, 0, 1)[:, :512]


# --------------------------------------------------------------------------------------
# Mel spectrum (original_code.md#oc-mel-spectrum)
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SIGNALS))
def test_mel_spectrogram_matches_lws_reference(name):
    y = SIGNALS[name]
    ours = audio.mel_spectrogram(y, CFG)
    ref = _reference_mel(y)
    assert ours.dtype == np.float32
    assert ours.shape == ref.shape == (math.ceil(len(y) / 256) + 3, 80)
    assert np.max(np.abs(ours - ref)) < 1e-4
    assert ours.min() >= 0.0 and ours.max() <= 1.0


def test_mel_spectrogram_float32_input_matches_reference():
    y = SIGNALS["speech-22050"].astype(np.float32)
    assert np.max(np.abs(audio.mel_spectrogram(y, CFG) - _reference_mel(y))) < 1e-4


def test_mel_spectrogram_uses_the_range_not_just_the_clip():
    # The speech-like signal must exercise both clipped and unclipped values, so the
    # reference comparison above is not a comparison of two all-zero arrays.
    mel = audio.mel_spectrogram(SIGNALS["speech-22050"], CFG)
    assert (mel == 0).any() and ((mel > 0.2) & (mel < 0.9)).any()


@pytest.mark.parametrize("name", ["noise-22050", "chirp-5120", "short-300", "single-sample"])
def test_lws_stft_matches_lws_package(name):
    y = SIGNALS[name]
    ref = lws.lws(1024, 256, mode="speech").stft(y)
    ours = lws_stft(y, CFG)
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-10)


@pytest.mark.parametrize("n", [1, 255, 256, 257, 1000, 22050, 25600])
def test_lws_frame_count(n):
    expected = math.ceil(n / 256) + 3
    assert lws_stft(np.ones(n), CFG).shape == (expected, 513)
    assert audio.mel_spectrogram(np.ones(n), CFG).shape == (expected, 80)
    # r9y9's lws_num_frames
    r9y9 = (n + 2 * 768 - 1024) // 256 + (1 if n % 256 == 0 else 2)
    assert expected == r9y9


def test_lws_window_numeric_checks():
    a = audio.lws_analysis_window(1024, 256)
    assert a.shape == (1024,)
    assert a[0] == pytest.approx(0.0010846877919254946, rel=1e-14)
    assert a.max() == pytest.approx(0.7071059, abs=1e-7)
    assert set(np.flatnonzero(a == a.max())) <= {511, 512}
    np.testing.assert_allclose(
        a, np.sin(np.pi * (np.arange(1024) + 0.5) / 1024) / np.sqrt(2), atol=1e-14
    )
    np.testing.assert_allclose((a.reshape(4, 256) ** 2).sum(axis=0), 1.0, atol=1e-12)
    assert a.sum() == pytest.approx(461.0, abs=0.05)
    np.testing.assert_allclose(a, lws.lws(1024, 256, mode="speech").awin, atol=1e-15)


def test_lws_window_returns_a_writable_copy():
    a = audio.lws_analysis_window()
    a[:] = 0
    assert audio.lws_analysis_window()[0] > 0


def test_mel_basis_numeric_checks():
    basis = audio.mel_basis(CFG)
    assert basis.shape == (80, 513)
    assert basis.max() == pytest.approx(0.0282357, abs=1e-7)
    np.testing.assert_allclose(basis.sum(axis=1)[:3], [0.044034, 0.049413, 0.045144], atol=1e-6)
    # First filter spans bins 6-9, last 329-352, nothing above 352
    # (original_code.md#oc-mel-spectrum).
    assert list(np.flatnonzero(basis[0])) == [6, 7, 8, 9]
    assert np.flatnonzero(basis[-1])[[0, -1]].tolist() == [329, 352]
    assert not basis[:, 353:].any()
    assert audio.mel_basis(CFG) is basis  # cached
    assert not basis.flags.writeable


def test_mel_frames_cover_the_same_samples_as_linear_frames():
    """mel of signal[768:] frame m and linear frame m both analyse signal[256m:256m+1024]."""
    wav = audio.prepare_lj_audio(SIGNALS["speech-12800"], CFG)
    mel_stft = lws_stft(wav[768:], CFG)
    padded = np.pad(wav.astype(np.float64), (0, 768))
    window = audio.lws_analysis_window()
    for m in (0, 5, mel_stft.shape[0] - 1):
        frame = padded[256 * m : 256 * m + 1024]
        np.testing.assert_allclose(mel_stft[m], np.fft.rfft(window * frame), atol=1e-10)


# --------------------------------------------------------------------------------------
# Linear spectrum (original_code.md#oc-linear-spectrum)
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["noise-22050", "noise-25600", "chirp-20000", "speech-22050"])
def test_linear_matches_librosa(name):
    x = SIGNALS[name]
    ref_stft = _reference_linear_stft(x)
    ours_stft = audio.linear_stft(x, CFG)
    assert ours_stft.shape == ref_stft.shape == (len(x) // 256, 513)
    np.testing.assert_allclose(ours_stft, ref_stft, rtol=0, atol=1e-9)
    ours = audio.linear_spectrogram(x, CFG)
    assert ours.dtype == np.float32 and ours.shape == (len(x) // 256, 512)
    assert np.max(np.abs(ours - _reference_linear(x))) < 1e-4
    assert ours.min() >= 0.0 and ours.max() <= 1.0


def test_linear_stft_phase_is_numpy_rfft_convention():
    x = SIGNALS["chirp-5120"]
    spec = audio.linear_stft(x, CFG)
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(1024) / 1024)  # periodic Hann
    padded = np.pad(x, (0, 768))
    for m in (0, 7, spec.shape[0] - 1):
        np.testing.assert_allclose(
            spec[m], np.fft.rfft(hann * padded[256 * m : 256 * m + 1024]), atol=1e-9
        )
    # An impulse at offset n0 of frame 0 has X[k] = w[n0] exp(-2πi k n0 / N).
    n0 = 300
    impulse = np.zeros(1024)
    impulse[n0] = 1.0
    k = np.arange(513)
    expected = hann[n0] * np.exp(-2j * np.pi * k * n0 / 1024)
    np.testing.assert_allclose(audio.linear_stft(impulse, CFG)[0], expected, atol=1e-12)


def test_linear_frame_count():
    for n in (256, 1000, 23040):
        assert audio.linear_stft(np.ones(n), CFG).shape[0] == n // 256
    with pytest.raises(ValueError, match="at least"):
        audio.linear_stft(np.ones(255), CFG)


# --------------------------------------------------------------------------------------
# Normalisation round trips
# --------------------------------------------------------------------------------------


def test_denormalise_mel_round_trip_and_endpoints():
    x = np.random.default_rng(0).uniform(0, 1, (40, 80)).astype(np.float32)
    amplitude = audio.denormalise_mel(x)
    assert amplitude.dtype == np.float32 and amplitude.shape == x.shape
    np.testing.assert_allclose(audio.normalise_mel(amplitude), x, atol=2e-6)
    np.testing.assert_allclose(
        audio.denormalise_mel(np.array([0.0, 1.0])), [1e-4, 10.0], rtol=1e-12
    )
    # outside [0, 1] is clipped first
    np.testing.assert_allclose(
        audio.denormalise_mel(np.array([-0.5, 1.5])), [1e-4, 10.0], rtol=1e-12
    )


def test_denormalise_linear_round_trip_and_endpoints():
    x = np.random.default_rng(1).uniform(0, 1, (40, 512))
    amplitude = audio.denormalise_linear(x)
    assert amplitude.dtype == np.float64
    np.testing.assert_allclose(audio.normalise_linear(amplitude), x, atol=2e-6)
    np.testing.assert_allclose(
        audio.denormalise_linear(np.array([0.0, 1.0])),
        [10 ** (-50 / 20), 10 ** (30 / 20)],
        rtol=1e-12,
    )


def test_denormalise_linear_recovers_stft_magnitude_inside_clip_range():
    x = SIGNALS["chirp-20000"] + 0.01 * SIGNALS["noise-22050"][:20000]
    norm = audio.linear_spectrogram(x, CFG)
    magnitude = np.abs(audio.linear_stft(x, CFG))[:, :512]
    inside = (norm > 0) & (norm < 1)
    assert inside.mean() > 0.5
    np.testing.assert_allclose(audio.denormalise_linear(norm)[inside], magnitude[inside], rtol=1e-5)


def test_denormalise_mel_recovers_mel_amplitude_inside_clip_range():
    y = SIGNALS["speech-22050"]
    norm = audio.mel_spectrogram(y, CFG)
    mel_amp = np.abs(lws_stft(y, CFG)) @ audio.mel_basis(CFG).T
    inside = (norm > 0) & (norm < 1)
    assert inside.mean() > 0.3
    np.testing.assert_allclose(audio.denormalise_mel(norm)[inside], mel_amp[inside], rtol=1e-5)


def test_normalise_rejects_nan():
    with pytest.raises(ValueError, match="NaN"):
        audio.denormalise_mel(np.array([0.5, np.nan]))
    with pytest.raises(ValueError, match="NaN"):
        audio.normalise_linear(np.array([np.inf]))


# --------------------------------------------------------------------------------------
# Waveform preprocessing and the bookkeeping (original_code.md#oc-worked-example)
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 255, 256, 257, 22050])
def test_pad_for_frames_layout(n):
    wav = np.random.default_rng(n).uniform(0.1, 1.0, n)
    out = audio.pad_for_frames(wav, CFG)
    frames = math.ceil(n / 256) + 3
    assert out.dtype == np.float32 and out.shape == (frames * 256,)
    assert not out[:768].any()
    np.testing.assert_array_equal(out[768 : 768 + n], wav.astype(np.float32))
    assert not out[768 + n :].any()


def test_bookkeeping_example_section_2_9():
    wav = SIGNALS["speech-22050"] * 0.3
    saved = audio.prepare_lj_audio(wav, CFG)
    assert saved.shape == (23040,)
    assert not saved[:768].any() and not saved[768 + 22050 :].any()
    np.testing.assert_array_equal(saved[768 : 768 + 22050], audio.peak_normalise(wav, 0.999))
    assert np.max(np.abs(saved)) == pytest.approx(0.999, rel=1e-6)
    assert audio.mel_spectrogram(saved[768 : 768 + 22050], CFG).shape == (90, 80)
    linear, mel = audio.encoder_features(saved, CFG)
    assert linear.shape == (90, 512) and mel.shape == (90, 80)
    assert linear.dtype == mel.dtype == np.float32
    # The encoder's mel of a clean target equals r9y9's saved mel of the unpadded clip.
    r9y9_mel = audio.mel_spectrogram(audio.peak_normalise(wav, 0.999), CFG)
    np.testing.assert_allclose(mel, r9y9_mel, atol=1e-7)
    np.testing.assert_allclose(linear, _reference_linear(saved), atol=1e-4)


def test_encoder_features_rejects_bad_lengths():
    with pytest.raises(ValueError, match="multiple of hop_size"):
        audio.encoder_features(np.ones(23041), CFG)
    with pytest.raises(ValueError, match="lead-in"):
        audio.encoder_features(np.ones(768), CFG)
    assert audio.encoder_features(np.ones(1024), CFG)[1].shape == (4, 80)


def test_peak_normalise():
    out = audio.peak_normalise(np.array([0.1, -0.5, 0.25], dtype=np.float32))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, np.array([0.1, -0.5, 0.25]) / 0.5 * 0.999, rtol=1e-6)
    with pytest.raises(ValueError, match="silent"):
        audio.peak_normalise(np.zeros(100))
    with pytest.raises(ValueError, match="peak"):
        audio.peak_normalise(np.ones(3), peak=0)


@pytest.mark.parametrize(
    "func", [audio.mel_spectrogram, audio.linear_spectrogram, audio.pad_for_frames]
)
def test_signal_functions_reject_bad_input(func):
    with pytest.raises(ValueError, match="1-D"):
        func(np.ones((2, 1024)), CFG)
    bad = np.ones(2048)
    bad[1000] = np.nan
    with pytest.raises(ValueError, match="NaN.*1000"):
        func(bad, CFG)
    with pytest.raises(ValueError, match="at least"):
        func(np.zeros(0), CFG)
    with pytest.raises(ValueError, match="real float"):
        func(np.ones(2048, dtype=complex), CFG)
    with pytest.raises(ValueError, match="int16.*32768"):
        func(np.ones(2048, dtype=np.int16), CFG)


# --------------------------------------------------------------------------------------
# File I/O
# --------------------------------------------------------------------------------------


def test_audio_file_error_is_value_error():
    assert issubclass(AudioFileError, ValueError)


def test_load_wav_missing_file(tmp_path):
    path = tmp_path / "nothere.wav"
    with pytest.raises(AudioFileError, match="nothere.wav"):
        audio.load_wav(path, SR)


def test_load_wav_corrupt_file(tmp_path):
    path = tmp_path / "garbage.wav"
    path.write_bytes(b"this is not a RIFF file " * 40)
    with pytest.raises(AudioFileError, match="garbage.wav"):
        audio.load_wav(path, SR)
    zero_bytes = tmp_path / "zero.wav"
    zero_bytes.write_bytes(b"")
    with pytest.raises(AudioFileError, match="zero.wav"):
        audio.load_wav(zero_bytes, SR)


def test_load_wav_directory_and_empty(tmp_path):
    with pytest.raises(AudioFileError, match="not a regular file"):
        audio.load_wav(tmp_path, SR)
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0), SR)
    with pytest.raises(AudioFileError, match="empty.wav.*no samples"):
        audio.load_wav(empty, SR)


def test_load_wav_nan(tmp_path):
    path = tmp_path / "nan.wav"
    data = np.zeros(100, dtype=np.float32)
    data[10] = np.nan
    sf.write(path, data, SR, subtype="FLOAT")
    with pytest.raises(AudioFileError, match="nan.wav.*NaN"):
        audio.load_wav(path, SR)


def test_load_wav_resamples_with_warning(tmp_path):
    path = tmp_path / "rate44k.wav"
    t = np.arange(44100) / 44100
    sf.write(path, 0.5 * np.sin(2 * np.pi * 440 * t), 44100, subtype="FLOAT")
    with pytest.warns(UserWarning, match=r"rate44k\.wav.*44100 Hz.*22050 Hz"):
        y = audio.load_wav(path, SR)
    assert y.dtype == np.float32 and y.shape == (22050,)
    t2 = np.arange(22050) / SR
    np.testing.assert_allclose(
        y[1000:-1000], 0.5 * np.sin(2 * np.pi * 440 * t2[1000:-1000]), atol=1e-3
    )


def test_load_wav_downmixes_stereo_with_warning(tmp_path):
    path = tmp_path / "stereo.wav"
    rng = np.random.default_rng(5)
    data = rng.uniform(-0.5, 0.5, (2000, 2)).astype(np.float32)
    sf.write(path, data, SR, subtype="FLOAT")
    with pytest.warns(UserWarning, match=r"stereo\.wav.*2 channels"):
        y = audio.load_wav(path, SR)
    np.testing.assert_allclose(y, data.mean(axis=1), atol=1e-7)


def test_load_wav_mono_right_rate_is_silent(tmp_path):
    path = tmp_path / "mono.wav"
    x = _noise(3000) * 0.5
    sf.write(path, x, SR, subtype="PCM_16")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = audio.load_wav(path, SR)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, x, atol=1 / 32768 + 1e-9)
    with pytest.raises(ValueError, match="sample_rate"):
        audio.load_wav(path, 0)


def test_save_wav_round_trip_and_no_temp_files(tmp_path):
    x = (_noise(5000) * 0.5).astype(np.float32)
    path = tmp_path / "sub" / "out.wav"
    assert audio.save_wav(path, x, SR) == path
    assert [p.name for p in path.parent.iterdir()] == ["out.wav"]
    info = sf.info(path)
    assert (info.samplerate, info.channels, info.subtype) == (SR, 1, "PCM_16")
    np.testing.assert_allclose(audio.load_wav(path, SR), x, atol=1 / 32767)
    exact = tmp_path / "float.wav"
    audio.save_wav(exact, x * 3, SR, subtype="FLOAT")  # FLOAT keeps values beyond ±1
    np.testing.assert_array_equal(audio.load_wav(exact, SR), x * 3)


def test_save_wav_rejects_bad_input(tmp_path):
    path = tmp_path / "loud.wav"
    with pytest.raises(ValueError, match=r"loud\.wav.*peak.*1\.5"):
        audio.save_wav(path, np.array([0.0, 1.5, -0.2]), SR)
    with pytest.raises(ValueError, match="NaN"):
        audio.save_wav(path, np.array([0.0, np.nan]), SR)
    with pytest.raises(ValueError, match="1-D"):
        audio.save_wav(path, np.zeros((10, 2)), SR)
    with pytest.raises(ValueError, match="suffix"):
        audio.save_wav(tmp_path / "x.notaformat", np.zeros(10), SR)
    with pytest.raises(ValueError, match="subtype"):
        audio.save_wav(path, np.zeros(10), SR, subtype="NOPE")
    assert list(tmp_path.iterdir()) == []


def test_save_wav_failure_keeps_old_file(tmp_path, monkeypatch):
    path = tmp_path / "keep.wav"
    old = np.linspace(-0.5, 0.5, 1000)
    audio.save_wav(path, old, SR)
    before = path.read_bytes()

    def broken_write(file, *args, **kwargs):
        with open(file, "wb") as handle:
            handle.write(b"RIFF partial")
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(audio.sf, "write", broken_write)
    with pytest.raises(OSError, match="disk full"):
        audio.save_wav(path, np.zeros(2000), SR)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["keep.wav"]


@pytest.mark.parametrize("n", [1, 255, 256, 257, 22050, 77695])
def test_num_frames_is_the_padded_length_in_hops(n):
    cfg = FeatureConfig()
    padded = audio.pad_for_frames(np.ones(n, dtype=np.float32), cfg)
    assert audio.num_frames(n, cfg) * cfg.hop_size == len(padded)
    assert audio.num_frames(n, cfg) == int(np.ceil(n / 256)) + 3


def _truncate_to_half(path) -> None:
    size = path.stat().st_size
    with open(path, "r+b") as fh:
        fh.truncate(size // 2)


@pytest.mark.parametrize("subtype", ["PCM_16", "FLOAT"])
def test_load_wav_truncated_wav_names_file_and_frame_counts(tmp_path, subtype):
    # A WAV cut in half: libsndfile silently returns the half that is there.
    path = tmp_path / f"cut_{subtype}.wav"
    sf.write(path, 0.5 * np.sin(np.arange(SR) / 10.0), SR, subtype=subtype)
    _truncate_to_half(path)
    with pytest.raises(AudioFileError, match=rf"cut_{subtype}\.wav.*promises {SR} frames") as exc:
        audio.load_wav(path, SR)
    assert "truncated" in str(exc.value)


def test_load_wav_truncated_flac_is_refused(tmp_path):
    path = tmp_path / "cut.flac"
    sf.write(path, 0.5 * np.sin(np.arange(SR) / 10.0), SR, subtype="PCM_16", format="FLAC")
    _truncate_to_half(path)
    with pytest.raises(AudioFileError, match=r"cut\.flac"):
        audio.load_wav(path, SR)


@pytest.mark.parametrize(
    ("name", "fmt", "subtype"),
    [
        ("a.wav", "WAV", "PCM_16"),
        ("b.wav", "WAV", "FLOAT"),
        ("c.wav", "WAV", "PCM_24"),
        ("d.flac", "FLAC", "PCM_16"),
        ("e.ogg", "OGG", "VORBIS"),
    ],
)
def test_load_wav_complete_files_of_every_writer_load_in_full(tmp_path, name, fmt, subtype):
    wav = (0.5 * np.sin(np.arange(SR) / 10.0)).astype(np.float32)
    path = tmp_path / name
    if fmt == "WAV" and subtype == "PCM_16":
        audio.save_wav(path, wav, SR)  # the library's own writer
    else:
        sf.write(path, wav, SR, subtype=subtype, format=fmt)
    # an odd-sized chunk after the data (padded, as RIFF requires) must not confuse the check
    if fmt == "WAV":
        with open(path, "ab") as fh:
            fh.write(b"LIST" + (3).to_bytes(4, "little") + b"abc\x00")
    out = audio.load_wav(path, SR)
    assert out.shape == (SR,)
