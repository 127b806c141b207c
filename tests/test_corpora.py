"""Tests of synthsep_lib.corpora: readers, the ESC-50 selection rule and the splits."""

from __future__ import annotations

import json
import random
import warnings

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from synthsep_lib import audio
from synthsep_lib.config import DataConfig, FeatureConfig, load_profile
from synthsep_lib.corpora import (
    ESC50,
    NOISE_TARGETS,
    CorpusError,
    CorpusFormatError,
    LJSpeech,
    Splits,
    active_span_seconds,
    esc_split,
    lj_split,
    load_splits,
    make_splits,
    save_splits,
    select_noise_clips,
    selection_summary,
    train_valid_split,
)

SR = 22050
ESC_SR = 44100


# ---------------------------------------------------------------------------------------
# Synthetic corpora
# ---------------------------------------------------------------------------------------
def _tone(seconds: float, sr: int, freq: float = 220.0, seed: int = 0) -> np.ndarray:
    n = int(round(seconds * sr))
    t = np.arange(n) / sr
    rng = np.random.default_rng(seed)
    return (0.4 * np.sin(2 * np.pi * freq * t) + 0.05 * rng.standard_normal(n)).astype(np.float32)


def make_lj(root, n: int = 5, extras: bool = True):
    """LJ layout: n good 22050 Hz utterances; extras: stereo, 16 kHz and corrupt files."""
    wavs = root / "wavs"
    wavs.mkdir(parents=True)
    lines = []
    for i in range(n):
        utt = f"LJ001-{i + 1:04d}"
        sf.write(
            wavs / f"{utt}.wav", _tone(0.4 + 0.1 * i, SR, 200 + 30 * i, i), SR, subtype="PCM_16"
        )
        lines.append(f'{utt}|Text "{i}" with quotes, and a comma|Text "{i}" normalised')
    if extras:
        stereo = np.stack([_tone(0.5, SR, 300), _tone(0.5, SR, 500)], axis=1)
        sf.write(wavs / "LJ002-0001.wav", stereo, SR, subtype="PCM_16")
        sf.write(wavs / "LJ002-0002.wav", _tone(0.5, 16000, 250), 16000, subtype="PCM_16")
        (wavs / "LJ002-0003.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" + bytes(64))
        lines += [
            "LJ002-0001|stereo file|stereo file",
            "LJ002-0002|wrong rate|wrong rate",
            "LJ002-0003|corrupt|corrupt",
        ]
    (root / "metadata.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


# filename, target, category, kind  (kind: full, padded, corrupt)
ESC_CLIPS = [
    ("1-100-A-10.wav", 10, "rain", "full"),
    ("1-101-A-0.wav", 0, "dog", "full"),
    ("2-102-A-40.wav", 40, "helicopter", "full"),
    ("1-103-A-11.wav", 11, "sea_waves", "padded"),
    ("3-104-A-25.wav", 25, "footsteps", "full"),
    ("1-105-B-10.wav", 10, "rain", "full"),
    ("4-106-A-41.wav", 41, "chainsaw", "full"),
    ("5-107-A-49.wav", 49, "hand_saw", "full"),
]


def make_esc(root, clips=ESC_CLIPS, seconds: float = 5.0):
    """ESC-50 layout: 44.1 kHz clips; ``padded`` clips are active for 3 s, then exact zeros."""
    (root / "audio").mkdir(parents=True)
    (root / "meta").mkdir()
    rows = []
    for k, (name, target, category, kind) in enumerate(clips):
        path = root / "audio" / name
        if kind == "corrupt":
            path.write_bytes(b"not a wav file at all")
        else:
            x = _tone(seconds, ESC_SR, 100 + 50 * k, 10 + k)
            if kind == "padded":
                x[int(3.0 * ESC_SR) :] = 0.0
            sf.write(path, x, ESC_SR, subtype="PCM_16")
        fold, clip_id, take = name[:-4].split("-")[:3]
        rows.append([name, int(fold), target, category, target in (10, 11, 40, 41), clip_id, take])
    df = pd.DataFrame(
        rows, columns=["filename", "fold", "target", "category", "esc10", "src_file", "take"]
    )
    df.to_csv(root / "meta" / "esc50.csv", index=False)
    return root


@pytest.fixture()
def lj(tmp_path):
    return LJSpeech(make_lj(tmp_path / "LJSpeech-1.1"))


@pytest.fixture()
def esc(tmp_path):
    return ESC50(make_esc(tmp_path / "ESC-50-master"))


# ---------------------------------------------------------------------------------------
# LJSpeech reader
# ---------------------------------------------------------------------------------------
def test_lj_reader_parses_metadata_without_quoting(lj):
    assert lj.ids[:2] == ["LJ001-0001", "LJ001-0002"]
    assert len(lj) == 8
    assert lj.transcript("LJ001-0001") == 'Text "0" with quotes, and a comma'
    assert lj.transcript("LJ001-0001", normalised=True) == 'Text "0" normalised'
    assert lj.wav_path("LJ001-0003").name == "LJ001-0003.wav"
    assert lj.index("LJ001-0003") == 2


def test_lj_reader_accepts_parent_folder_and_crlf(tmp_path):
    root = make_lj(tmp_path / "LJSpeech-1.1", n=2, extras=False)
    meta = root / "metadata.csv"
    meta.write_bytes(meta.read_bytes().replace(b"\n", b"\r\n"))
    reader = LJSpeech(tmp_path)
    assert reader.ids == ["LJ001-0001", "LJ001-0002"]
    assert reader.transcript("LJ001-0002").endswith("comma")


def test_lj_load_and_target(lj):
    cfg = FeatureConfig()
    wav = lj.load("LJ001-0001", cfg)
    assert wav.dtype == np.float32 and wav.ndim == 1 and wav.shape[0] == int(round(0.4 * SR))
    s1 = lj.load_target("LJ001-0001", cfg)
    assert s1.dtype == np.float32
    assert s1.shape[0] % 256 == 0
    assert np.flatnonzero(s1)[0] >= 768 and not np.any(s1[:768])
    assert np.max(np.abs(s1)) == pytest.approx(0.999, abs=1e-6)
    # A Profile works as cfg too.
    assert np.array_equal(lj.load_target("LJ001-0001", load_profile("reduced")), s1)


def test_lj_stereo_and_wrong_rate_are_converted(lj):
    cfg = FeatureConfig()
    with pytest.warns(UserWarning, match="channels"):
        stereo = lj.load("LJ002-0001", cfg)
    assert stereo.ndim == 1 and stereo.shape[0] == int(round(0.5 * SR))
    with pytest.warns(UserWarning, match="16000 Hz"):
        resampled = lj.load("LJ002-0002", cfg)
    assert resampled.shape[0] == int(round(0.5 * SR))


def test_lj_corrupt_wav_names_the_file(lj):
    with pytest.raises(audio.AudioFileError, match="LJ002-0003.wav"):
        lj.load("LJ002-0003", FeatureConfig())


def test_lj_truncated_wav_names_the_file(lj):
    # A real corpus is not rebuilt: a file cut short must be named when it is loaded.
    path = lj.wav_path("LJ001-0002")
    with open(path, "r+b") as fh:
        fh.truncate(path.stat().st_size // 2)
    with pytest.raises(audio.AudioFileError, match=r"LJ001-0002\.wav is truncated"):
        lj.load("LJ001-0002", FeatureConfig())


def test_lj_unknown_id(lj):
    with pytest.raises(KeyError, match="LJ999-0001"):
        lj.wav_path("LJ999-0001")


def test_lj_missing_folder_and_metadata(tmp_path):
    with pytest.raises(CorpusError, match="make corpus") as info:
        LJSpeech(tmp_path / "nowhere")
    assert "nowhere" in str(info.value) and "data_scripts.download" in str(info.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusError, match="metadata.csv"):
        LJSpeech(tmp_path / "empty")
    assert issubclass(CorpusError, FileNotFoundError)


@pytest.mark.parametrize(
    "bad_line", ["LJ001-0003|only two fields", "LJ001-0003|a|b|c", "|no id|no id"]
)
def test_lj_malformed_line_names_file_and_line(tmp_path, bad_line):
    root = make_lj(tmp_path / "lj", n=2, extras=False)
    meta = root / "metadata.csv"
    meta.write_text(meta.read_text() + bad_line + "\n", encoding="utf-8")
    with pytest.raises(CorpusFormatError, match=r"metadata\.csv, line 3"):
        LJSpeech(root)


def test_lj_duplicate_id(tmp_path):
    root = make_lj(tmp_path / "lj", n=2, extras=False)
    meta = root / "metadata.csv"
    meta.write_text(meta.read_text() + "LJ001-0001|again|again\n", encoding="utf-8")
    with pytest.raises(CorpusFormatError, match="appears twice"):
        LJSpeech(root)


# ---------------------------------------------------------------------------------------
# ESC-50 reader and selection
# ---------------------------------------------------------------------------------------
def test_esc_reader(esc, tmp_path):
    assert list(esc.clips.columns[:4]) == ["filename", "fold", "target", "category"]
    assert len(esc) == len(ESC_CLIPS)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the expected resampling warning is silenced
        clip = esc.load("1-100-A-10.wav")
    assert clip.dtype == np.float32 and clip.shape == (110250,)
    # A folder that contains exactly one ESC-50-* folder works too.
    assert ESC50(tmp_path).root == esc.root


def test_esc_missing_and_malformed(tmp_path):
    with pytest.raises(CorpusError, match="ESC-50 folder"):
        ESC50(tmp_path / "nowhere")
    (tmp_path / "esc" / "meta").mkdir(parents=True)
    with pytest.raises(CorpusError, match="esc50.csv"):
        ESC50(tmp_path / "esc")
    (tmp_path / "esc" / "meta" / "esc50.csv").write_text("filename,fold\n1-1-A-0.wav,1\n")
    with pytest.raises(CorpusFormatError, match=r"lacks column\(s\) \['target', 'category'\]"):
        ESC50(tmp_path / "esc")


def test_active_span_exact_zero_rule():
    x = np.zeros(1000, np.float32)
    assert active_span_seconds(x, 100) == 0.0
    x[100] = 1e-30  # tiny but non-zero counts
    x[550] = -0.2
    assert active_span_seconds(x, 100) == pytest.approx(4.5)
    assert active_span_seconds(x[:1], 100) == 0.0


def test_select_noise_clips_counts_and_order(esc):
    sel = select_noise_clips(esc, DataConfig(), progress=False)
    assert len(sel) == len(ESC_CLIPS)
    # stable sort by target: ties keep CSV order
    assert sel["target"].tolist() == sorted(t for _, t, _, _ in ESC_CLIPS)
    assert sel.loc[sel.target == 10, "filename"].tolist() == ["1-100-A-10.wav", "1-105-B-10.wav"]
    kept = sel[sel.kept]
    assert kept["filename"].tolist() == [
        "1-100-A-10.wav",
        "1-105-B-10.wav",
        "2-102-A-40.wav",
        "4-106-A-41.wav",
        "5-107-A-49.wav",
    ]
    assert kept["target"].isin(NOISE_TARGETS).all()
    padded = sel.set_index("filename").loc["1-103-A-11.wav"]
    assert padded.reason == "too short active span" and not padded.kept
    assert 2.9 < padded.active_seconds < 3.2
    assert sel.set_index("filename").loc["1-101-A-0.wav", "reason"] == "wrong category"
    assert np.isnan(sel.set_index("filename").loc["1-101-A-0.wav", "active_seconds"])
    summary = selection_summary(sel).set_index("outcome")["clips"].to_dict()
    assert summary == {"kept": 5, "wrong category": 2, "too short active span": 1}
    # A lower threshold keeps the padded clip.
    sel3 = select_noise_clips(esc, DataConfig(min_active_seconds=2.5), progress=False)
    assert sel3.kept.sum() == 6


def test_select_noise_clips_corrupt_clip_names_file(tmp_path):
    clips = ESC_CLIPS[:2] + [("1-200-A-12.wav", 12, "crackling_fire", "corrupt")]
    esc = ESC50(make_esc(tmp_path / "esc", clips, seconds=1.0))
    with pytest.raises(audio.AudioFileError, match="1-200-A-12.wav"):
        select_noise_clips(esc, DataConfig(), progress=False)


# ---------------------------------------------------------------------------------------
# Splits
# ---------------------------------------------------------------------------------------
def test_lj_split_paper_checksums():
    train, test = lj_split(13100, 0.0441, 1234)
    assert len(train) == 12522 and len(test) == 578
    assert test[:10].tolist() == [389, 1646, 7155, 11879, 1693, 10258, 975, 7381, 8791, 12821]
    assert int(test.sum()) == 3760751
    assert train[:10].tolist() == [3025, 9976, 4546, 4197, 2967, 4729, 11334, 7952, 12897, 10197]
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(13100))
    tr, va = train_valid_split(train, 0.8)
    assert (len(tr), len(va)) == (10018, 2504)


@pytest.mark.parametrize(
    "n,test_size,seed", [(13100, 0.0441, 1234), (150, 0.0441, 1234), (37, 0.25, 7)]
)
def test_lj_split_equals_sklearn(n, test_size, seed):
    model_selection = pytest.importorskip("sklearn.model_selection")
    want_train, want_test = model_selection.train_test_split(
        np.arange(n), test_size=test_size, random_state=seed
    )
    train, test = lj_split(n, test_size, seed)
    assert np.array_equal(train, want_train) and np.array_equal(test, want_test)


def test_lj_split_mini_and_bad_sizes():
    train, test = lj_split(150, 0.0441, 1234)
    assert (len(train), len(test)) == (143, 7)
    with pytest.raises(ValueError, match="test_size"):
        lj_split(10, 1.5, 0)
    with pytest.raises(ValueError, match="at least 1"):
        lj_split(1, 0.5, 0)


def test_esc_split_round_and_seed():
    train, test = esc_split(800, 0.9, 1234)
    assert (len(train), len(test)) == (720, 80)
    assert np.array_equal(
        np.concatenate([train, test]), np.random.RandomState(1234).permutation(800)
    )
    assert len(esc_split(25, 0.9, 1)[0]) == round(22.5) == 22  # half to even
    assert not np.array_equal(esc_split(800, 0.9, 1)[0], train)


def test_make_splits_follows_the_recipe(tmp_path):
    cfg = DataConfig()
    ids = [f"LJ{i:03d}-0001" for i in range(150)]
    noise = [f"{i}-1-A-10.wav" for i in range(40)]
    sel = pd.DataFrame({"filename": noise + ["x.wav"], "kept": [True] * 40 + [False]})
    splits = make_splits(ids, sel, cfg)

    train, test = lj_split(150, cfg.lj_test_size, cfg.lj_split_seed)
    etrain, etest = esc_split(40, cfg.esc_train_fraction, cfg.esc_split_seed)
    lists = [
        [ids[i] for i in train[:114]],
        [ids[i] for i in train[114:]],
        [noise[i] for i in etrain[:29]],
        [noise[i] for i in etrain[29:]],
    ]
    rng = random.Random(123456789)
    for lst in lists:
        rng.shuffle(lst)
    assert splits.target_train == lists[0] and splits.target_valid == lists[1]
    assert splits.noise_train == lists[2] and splits.noise_valid == lists[3]
    assert splits.target_test == [ids[i] for i in test]  # not shuffled
    assert splits.noise_test == [noise[i] for i in etest]
    assert splits.counts == {
        "target_train": 114,
        "target_valid": 29,
        "target_test": 7,
        "noise_train": 29,
        "noise_valid": 7,
        "noise_test": 4,
    }
    assert "x.wav" not in splits.noise_train + splits.noise_valid + splits.noise_test
    # A filename list and a Profile give the same result.
    again = make_splits(ids, noise, load_profile("reduced"))
    assert again.to_dict() == splits.to_dict()

    path = save_splits(tmp_path / "data" / "splits.json", splits)
    loaded = load_splits(path)
    assert loaded.to_dict() == splits.to_dict()
    assert json.loads(path.read_text())["counts"]["target_test"] == 7


def test_make_splits_with_readers(lj, esc):
    sel = select_noise_clips(esc, DataConfig(), progress=False)
    splits = make_splits(lj, sel, DataConfig(lj_test_size=0.25))
    assert sorted(splits.target_train + splits.target_valid + splits.target_test) == sorted(lj.ids)
    assert sorted(splits.noise_train + splits.noise_valid + splits.noise_test) == sorted(
        sel.loc[sel.kept, "filename"]
    )


def test_load_splits_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="Chapter 1"):
        load_splits(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="bad.json"):
        load_splits(bad)
    bad.write_text(json.dumps({"target_train": []}))
    with pytest.raises(ValueError, match="target_valid"):
        load_splits(bad)
    assert Splits.LISTS[0] == "target_train"
