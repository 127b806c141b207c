"""Tests of synthsep_lib.mixing: the paper's protocol, the SNR protocol, test manifests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from synthsep_lib.config import DataConfig, FeatureConfig, load_profile
from synthsep_lib.corpora import ESC50, LJSpeech, Splits
from synthsep_lib.mixing import (
    MANIFEST_COLUMNS,
    Mixture,
    make_test_manifest,
    read_test_manifest,
    regenerate_test_mixture,
    simulate_mixture_paper,
    simulate_mixture_snr,
    snr_db,
    tile_noise,
    write_test_manifest,
    write_test_set,
)

SR = 22050


def _target(n_frames: int = 40, seed: int = 0) -> np.ndarray:
    """A saved-audio-like s1: 768 zeros, speech-like content, trailing zeros; peak 0.999."""
    rng = np.random.default_rng(seed)
    s1 = np.zeros(n_frames * 256, np.float32)
    body = rng.standard_normal(n_frames * 256 - 768 - 100).astype(np.float32)
    s1[768 : 768 + body.size] = body / np.max(np.abs(body)) * 0.999
    return s1


def _noise(n: int = 3000, seed: int = 1) -> np.ndarray:
    return (0.3 * np.random.default_rng(seed).standard_normal(n)).astype(np.float32)


# ---------------------------------------------------------------------------------------
# Paper protocol
# ---------------------------------------------------------------------------------------
def test_paper_protocol_numbers():
    s1, clip = _target(), _noise()
    mix = simulate_mixture_paper(s1, clip)
    assert isinstance(mix, Mixture)
    length = s1.shape[0]
    for x in (mix.mixture, mix.target, mix.noise):
        assert x.dtype == np.float32 and x.shape == (length,)
    # tiling starts at the clip start; noise peak 0.5 before the final scale
    tiled = np.concatenate([clip] * (length // clip.size + 1))[:length].astype(np.float64)
    assert np.allclose(np.asarray(tile_noise(clip, length), np.float64), tiled)
    assert mix.noise_gain == pytest.approx(0.5 / np.max(np.abs(tiled)))
    assert np.max(np.abs(mix.noise / mix.scale)) == pytest.approx(0.5, rel=1e-6)
    # mixture peak 0.999, scale = 0.999 / max|s1 + s2|
    raw = s1.astype(np.float64) + mix.noise_gain * tiled
    assert mix.scale == pytest.approx(0.999 / np.max(np.abs(raw)), rel=1e-12)
    assert np.max(np.abs(mix.mixture)) == pytest.approx(0.999, rel=1e-6)
    # target = scale · s1, noise = scale · s2, mixture = target + noise
    assert np.allclose(mix.target, mix.scale * s1.astype(np.float64), atol=1e-7)
    assert np.allclose(mix.noise, mix.scale * mix.noise_gain * tiled, atol=1e-7)
    assert np.allclose(mix.mixture, mix.target.astype(np.float64) + mix.noise, atol=1e-6)
    assert mix.snr_db == pytest.approx(snr_db(mix.target, mix.noise), abs=1e-4)
    assert mix.noise_offset == 0


def test_paper_protocol_noise_longer_than_target_is_truncated():
    s1, clip = _target(10), _noise(100000)
    mix = simulate_mixture_paper(s1, clip)
    expected = clip[: s1.size].astype(np.float64) * (0.5 / np.max(np.abs(clip[: s1.size])))
    assert np.allclose(mix.noise / mix.scale, expected, atol=1e-6)


def test_noise_offset():
    clip = np.arange(10, dtype=np.float32)
    assert tile_noise(clip, 25, 0).tolist() == (list(range(10)) * 3)[:25]
    assert tile_noise(clip, 12, 7).tolist() == [7, 8, 9, 0, 1, 2, 3, 4, 5, 6, 7, 8]
    with pytest.raises(ValueError, match="noise_offset"):
        tile_noise(clip, 5, 10)
    s1 = _target()
    shifted = simulate_mixture_paper(s1, _noise(), noise_offset=123)
    assert shifted.noise_offset == 123


# ---------------------------------------------------------------------------------------
# SNR protocol
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("want", [-5.0, 0.0, 7.5, 20.0])
def test_snr_protocol_hits_requested_snr(want):
    mix = simulate_mixture_snr(_target(), _noise(), want)
    assert snr_db(mix.target, mix.noise) == pytest.approx(want, abs=0.01)
    assert mix.snr_db == pytest.approx(want, abs=1e-9)
    assert np.max(np.abs(mix.mixture)) == pytest.approx(0.999, rel=1e-6)
    assert np.allclose(mix.target, mix.scale * _target().astype(np.float64), atol=1e-7)


def test_snr_protocol_custom_peak_and_bad_snr():
    mix = simulate_mixture_snr(_target(), _noise(), 3.0, peak=0.5)
    assert np.max(np.abs(mix.mixture)) == pytest.approx(0.5, rel=1e-6)
    with pytest.raises(ValueError, match="snr_db"):
        simulate_mixture_snr(_target(), _noise(), float("nan"))


# ---------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "simulate", [simulate_mixture_paper, lambda t, n, **k: simulate_mixture_snr(t, n, 0.0, **k)]
)
def test_bad_input(simulate):
    silent = np.zeros(2560, np.float32)
    with pytest.raises(ValueError, match=r"'LJ001-0001'.*SNR undefined"):
        simulate(silent, _noise(), target_id="LJ001-0001")
    with pytest.raises(ValueError, match="SNR undefined"):
        simulate(silent, _noise())
    with pytest.raises(ValueError, match=r"noise '1-1-A-10.wav' is silent"):
        simulate(_target(), np.zeros(500, np.float32), noise_id="1-1-A-10.wav")
    bad = _target()
    bad[1000] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        simulate(bad, _noise())
    noisy = _noise()
    noisy[3] = np.inf
    with pytest.raises(ValueError, match="NaN or infinite"):
        simulate(_target(), noisy)
    with pytest.raises(ValueError, match="empty"):
        simulate(np.zeros(0, np.float32), _noise())
    with pytest.raises(ValueError, match="mono"):
        simulate(np.ones((10, 2), np.float32), _noise())


# ---------------------------------------------------------------------------------------
# Manifest
# ---------------------------------------------------------------------------------------
@pytest.fixture()
def corpus(tmp_path):
    """A tiny LJ + ESC corpus on disk, with hand-made test lists."""
    rng = np.random.default_rng(5)
    lj_root = tmp_path / "LJSpeech-1.1"
    (lj_root / "wavs").mkdir(parents=True)
    ids = [f"LJ001-{i:04d}" for i in range(1, 7)]
    for i, utt in enumerate(ids):
        x = (0.3 * rng.standard_normal(int(SR * (0.3 + 0.05 * i)))).astype(np.float32)
        sf.write(lj_root / "wavs" / f"{utt}.wav", x, SR, subtype="PCM_16")
    (lj_root / "metadata.csv").write_text("".join(f"{u}|t|t\n" for u in ids))
    esc_root = tmp_path / "ESC-50-master"
    (esc_root / "audio").mkdir(parents=True)
    (esc_root / "meta").mkdir()
    names = ["1-1-A-10.wav", "1-2-A-40.wav", "2-3-A-12.wav"]
    for name in names:
        x = (0.2 * rng.standard_normal(44100)).astype(np.float32)  # 1 s, shorter than speech
        sf.write(esc_root / "audio" / name, x, 44100, subtype="PCM_16")
    pd.DataFrame(
        {
            "filename": names,
            "fold": [1, 1, 2],
            "target": [10, 40, 12],
            "category": ["rain", "helicopter", "crackling_fire"],
            "esc10": [True, True, True],
            "src_file": [1, 2, 3],
            "take": ["A"] * 3,
        }
    ).to_csv(esc_root / "meta" / "esc50.csv", index=False)
    splits = Splits(
        target_train=[],
        target_valid=[],
        target_test=ids[:5],
        noise_train=[],
        noise_valid=[],
        noise_test=names,
    )
    return LJSpeech(lj_root), ESC50(esc_root), splits


def test_manifest_follows_recipe(corpus):
    import random

    lj, esc, splits = corpus
    profile = load_profile("reduced")
    df = make_test_manifest(splits, lj, esc, profile, n_pairs=12)
    assert list(df.columns[: len(MANIFEST_COLUMNS)]) == list(MANIFEST_COLUMNS)
    assert df["pair"].tolist() == list(range(12))
    rng = random.Random(66666666)
    for _, row in df.iterrows():
        t, n = rng.randint(1, 4), rng.randint(0, 2)
        assert (row.target_index, row.noise_index) == (t, n)
        assert row.target_id == splits.target_test[t] and row.noise_file == splits.noise_test[n]
    assert "LJ001-0001" not in set(df.target_id)  # test item 0 is never drawn
    assert (df.noise_offset == 0).all() and (df.protocol == "paper").all()
    assert (df.num_samples % 256 == 0).all()
    # default count from the profile
    assert len(make_test_manifest(splits, lj, esc, profile)) == profile.data.test_pairs


def test_manifest_round_trip_and_regeneration(corpus, tmp_path):
    lj, esc, splits = corpus
    profile = load_profile("reduced")
    df = make_test_manifest(splits, lj, esc, profile, n_pairs=4)
    path = write_test_manifest(tmp_path / "data" / "test_manifest.csv", df)
    back = read_test_manifest(path)
    pd.testing.assert_frame_equal(back, df, check_dtype=False)
    assert back["mixture_scale"].tolist() == df["mixture_scale"].tolist()  # exact floats

    for _, row in back.iterrows():
        mix1 = regenerate_test_mixture(row, lj, esc, profile.features)
        mix2 = regenerate_test_mixture(row, lj, esc, profile)
        for a, b in (
            (mix1.mixture, mix2.mixture),
            (mix1.target, mix2.target),
            (mix1.noise, mix2.noise),
        ):
            assert a.tobytes() == b.tobytes()
        assert mix1.scale == pytest.approx(row.mixture_scale, rel=1e-12)
        assert mix1.noise_gain == pytest.approx(row.noise_peak_scale, rel=1e-12)
        assert mix1.snr_db == pytest.approx(row.snr_db, rel=1e-12)
        assert mix1.mixture.shape == (row.num_samples,)

    # A manifest that does not match the corpus is caught.
    tampered = back.iloc[0].copy()
    tampered["mixture_scale"] *= 1.01
    with pytest.raises(ValueError, match="mixture_scale"):
        regenerate_test_mixture(tampered, lj, esc, profile.features)
    # itertuples rows work too
    row = next(back.itertuples(index=False))
    regenerate_test_mixture(row, lj, esc, profile.features)


def test_snr_manifest(corpus):
    lj, esc, splits = corpus
    profile = load_profile("reduced")
    df = make_test_manifest(splits, lj, esc, profile, n_pairs=3, snr_db=5.0)
    assert (df.protocol == "snr").all()
    assert np.allclose(df.snr_db, 5.0)
    mix = regenerate_test_mixture(df.iloc[1], lj, esc, profile.features)
    assert snr_db(mix.target, mix.noise) == pytest.approx(5.0, abs=0.01)


def test_manifest_needs_two_test_utterances(corpus):
    lj, esc, splits = corpus
    splits.target_test = splits.target_test[:1]
    with pytest.raises(ValueError, match="at least 2 test utterances"):
        make_test_manifest(splits, lj, esc, load_profile("reduced"), n_pairs=2)


def test_read_manifest_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="Chapter 1"):
        read_test_manifest(tmp_path / "none.csv")
    bad = tmp_path / "bad_manifest.csv"
    bad.write_text("pair,target_id\n0,LJ001-0001\n")
    with pytest.raises(ValueError, match=r"bad_manifest\.csv lacks column"):
        read_test_manifest(bad)
    with pytest.raises(ValueError, match="lacks column"):
        write_test_manifest(tmp_path / "x.csv", pd.DataFrame({"pair": [0]}))


def test_write_test_set_is_exact_and_resumable(corpus, tmp_path):
    lj, esc, splits = corpus
    profile = load_profile("reduced")
    df = make_test_manifest(splits, lj, esc, profile, n_pairs=2)
    out = tmp_path / "test"
    files = write_test_set(df, lj, esc, profile, out, progress=False)
    assert files["written"].tolist() == [True, True]
    row = df.iloc[0]
    mix = regenerate_test_mixture(row, lj, esc, profile.features)
    for key, want in (
        ("target", mix.target),
        ("noise", mix.noise),
        ("mixture", mix.mixture),
        ("source", lj.load_target(row.target_id, profile.features)),
    ):
        path = out / f"000_{key}.wav"
        data, sr = sf.read(path, dtype="float32")
        assert sr == SR and sf.info(path).subtype == "FLOAT"
        assert data.tobytes() == want.tobytes()
    first = {p.name: p.read_bytes() for p in out.iterdir()}
    assert len(first) == 9 and "MADE_FROM" in first  # 8 WAVs and the manifest's stamp
    assert not any(name.startswith(".") for name in first)
    # resumable: nothing is rewritten
    again = write_test_set(df, lj, esc, profile, out, progress=False)
    assert not again["written"].any()
    # deleting one file regenerates that pair, byte-identically
    (out / "001_noise.wav").unlink()
    third = write_test_set(df, lj, esc, profile, out, progress=False)
    assert third["written"].tolist() == [False, True]
    assert {p.name: p.read_bytes() for p in out.iterdir()} == first


def test_manifest_needs_a_profile(corpus):
    lj, esc, splits = corpus
    for cfg in (FeatureConfig(), DataConfig()):
        with pytest.raises(TypeError, match="needs a Profile"):
            make_test_manifest(splits, lj, esc, cfg, n_pairs=1)


def test_write_test_set_replaces_files_of_another_manifest(corpus, tmp_path):
    """A test set written for an older manifest (a rebuilt corpus) is never reused."""
    lj, esc, splits = corpus
    profile = load_profile("reduced")
    df = make_test_manifest(splits, lj, esc, profile, n_pairs=2)
    out = tmp_path / "test"
    write_test_set(df, lj, esc, profile, out, progress=False)
    changed = df.iloc[:1]  # any other manifest
    files = write_test_set(changed, lj, esc, profile, out, progress=False)
    assert files["written"].tolist() == [True]
    assert sorted(p.name for p in out.glob("*.wav"))[0].startswith("000_")
    assert len(list(out.glob("*.wav"))) == 4, "pair 1 of the old manifest must be gone"
    assert not write_test_set(changed, lj, esc, profile, out, progress=False)["written"].any()
