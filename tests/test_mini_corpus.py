"""Tests of the embedded mini corpus (data_scripts.mini_corpus): layout, determinism, safety."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from data_scripts import mini_corpus as mc

N_UTT = 12
SEED = 7


def _hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _paper_rule_keeps(path: Path) -> bool:
    """The paper's ESC-50 rule: first-to-last non-zero span after librosa.load > 4.5 s."""
    import librosa

    y, sr = librosa.load(path, sr=22050)
    nz = np.flatnonzero(y != 0)
    return nz.size > 0 and (nz[-1] - nz[0]) / sr > 4.5


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    pytest.importorskip("espeakng_loader")
    dest = tmp_path_factory.mktemp("mini") / "corpus"
    paths = mc.build_mini_corpus(
        dest, n_utterances=N_UTT, seed=SEED, clips_per_category=1, progress=False, workers=2
    )
    return dest, paths


def test_returns_the_two_roots(corpus):
    dest, paths = corpus
    assert set(paths) == {"ljspeech", "esc50"}
    assert paths["ljspeech"] == dest.absolute() / "LJSpeech-1.1"
    assert paths["esc50"] == dest.absolute() / "ESC-50-master"
    assert (dest / "BUILD_INFO.json").is_file()
    assert len(mc.ESC50_CATEGORIES) == 50
    umask = os.umask(0)
    os.umask(umask)
    assert dest.stat().st_mode & 0o777 == 0o777 & ~umask  # not mkdtemp's private 0o700
    assert sorted(p.name for p in dest.iterdir()) == [
        "BUILD_INFO.json",
        "ESC-50-master",
        "LJSpeech-1.1",
    ]
    # No temporary siblings remain.
    assert [p.name for p in dest.parent.iterdir()] == ["corpus"]


def test_same_seed_is_byte_identical_and_independent_of_workers(corpus, tmp_path):
    dest, _ = corpus
    again = tmp_path / "again"
    mc.build_mini_corpus(
        again, n_utterances=N_UTT, seed=SEED, clips_per_category=1, progress=False, workers=1
    )
    first, second = _hashes(dest), _hashes(again)
    assert len(first) == N_UTT + (20 + 5 + 4) + 4  # wavs, clips, metadata, README, esc50.csv, stamp
    assert first == second


def test_different_seed_differs(corpus, tmp_path):
    dest, _ = corpus
    other = tmp_path / "other"
    mc.build_mini_corpus(
        other, n_utterances=N_UTT, seed=SEED + 1, clips_per_category=1, progress=False
    )
    a, b = _hashes(dest), _hashes(other)
    speech_a = {h for k, h in a.items() if k.startswith("LJSpeech-1.1/wavs/")}
    speech_b = {h for k, h in b.items() if k.startswith("LJSpeech-1.1/wavs/")}
    assert speech_a.isdisjoint(speech_b)
    assert a["ESC-50-master/meta/esc50.csv"] != b["ESC-50-master/meta/esc50.csv"]
    assert a["LJSpeech-1.1/metadata.csv"] != b["LJSpeech-1.1/metadata.csv"]


def test_ljspeech_layout(corpus):
    _, paths = corpus
    root = paths["ljspeech"]
    raw = (root / "metadata.csv").read_bytes()
    text = raw.decode("utf-8")
    lines = text.splitlines()
    assert len(lines) == N_UTT and text.endswith("\n") and b"\r" not in raw
    ids = []
    for line in lines:
        fields = line.split("|")
        assert len(fields) == 3, line
        uid, transcription, normalized = fields
        assert (
            uid[:2] == "LJ"
            and uid[2:5].isdigit()
            and uid[5] == "-"
            and uid[6:].isdigit()
            and len(uid) == 10
        )
        assert transcription and normalized
        assert not any(c.isdigit() for c in normalized), normalized
        ids.append(uid)
    assert ids[0] == "LJ001-0001" and ids == sorted(ids) and len(set(ids)) == N_UTT
    assert sorted(p.stem for p in (root / "wavs").glob("*.wav")) == ids
    for uid in ids:
        info = sf.info(root / "wavs" / f"{uid}.wav")
        assert (info.samplerate, info.channels, info.subtype, info.format) == (
            22050,
            1,
            "PCM_16",
            "WAV",
        )
        assert 1.0 <= info.duration <= 7.0
        x, _ = sf.read(root / "wavs" / f"{uid}.wav", dtype="int16")
        assert np.abs(x).max() > 8000  # real speech, not silence


def test_esc50_layout_and_categories(corpus):
    _, paths = corpus
    root = paths["esc50"]
    with open(root / "meta" / "esc50.csv", newline="", encoding="utf-8") as handle:
        header = handle.readline().rstrip("\n")
        assert header == "filename,fold,target,category,esc10,src_file,take"
        handle.seek(0)
        rows = list(csv.DictReader(handle))
    assert len(rows) == 20 + 5 + 4
    assert [r["filename"] for r in rows] == sorted(r["filename"] for r in rows)
    assert sorted(p.name for p in (root / "audio").glob("*.wav")) == sorted(
        r["filename"] for r in rows
    )
    for r in rows:
        fold, clip, take, target = r["filename"][:-4].split("-")
        assert (fold, clip, take, target) == (r["fold"], r["src_file"], r["take"], r["target"])
        assert 1 <= int(fold) <= 5 and take == "A"
        assert r["category"] == mc.ESC50_CATEGORIES[int(target)]
        assert r["esc10"] == str(int(target) in mc.ESC10_TARGETS)
        info = sf.info(root / "audio" / r["filename"])
        assert (info.samplerate, info.channels, info.frames, info.subtype) == (
            44100,
            1,
            220500,
            "PCM_16",
        )
    targets = [int(r["target"]) for r in rows]
    assert set(mc.PAPER_TARGETS) <= set(targets)
    others = {mc.ESC50_CATEGORIES[t] for t in targets if t not in mc.PAPER_TARGETS}
    assert others == {"dog", "crying_baby", "keyboard_typing", "vacuum_cleaner", "clock_tick"}
    assert {r["fold"] for r in rows} == {"1", "2", "3", "4", "5"}
    assert {r["esc10"] for r in rows} == {"True", "False"}
    assert mc.ESC50_CATEGORIES[10:20] == (
        "rain",
        "sea_waves",
        "crackling_fire",
        "crickets",
        "chirping_birds",
        "water_drops",
        "wind",
        "pouring_water",
        "toilet_flush",
        "thunderstorm",
    )
    assert mc.ESC50_CATEGORIES[40:50] == (
        "helicopter",
        "chainsaw",
        "siren",
        "car_horn",
        "engine",
        "train",
        "church_bells",
        "airplane",
        "fireworks",
        "hand_saw",
    )


def test_paper_duration_rule_rejects_exactly_the_short_clips(corpus):
    dest, paths = corpus
    stamp = json.loads((dest / "BUILD_INFO.json").read_text())
    short = set(stamp["esc50"]["short_clips"])
    assert len(short) == 4
    for wav in sorted((paths["esc50"] / "audio").glob("*.wav")):
        target = int(wav.stem.rsplit("-", 1)[1])
        keeps = _paper_rule_keeps(wav)
        if wav.name in short:
            assert target in mc.PAPER_TARGETS
            assert not keeps, f"{wav.name} should be rejected by the 4.5 s rule"
            x, _ = sf.read(wav, dtype="int16")
            assert (x == 0).sum() > 0.1 * len(x)  # long exact-zero stretches
        else:
            assert keeps, f"{wav.name} should be kept by the 4.5 s rule"


def test_second_call_reuses_the_build(corpus, capsys):
    dest, paths = corpus
    stamp = dest / "BUILD_INFO.json"
    wav = next((paths["ljspeech"] / "wavs").glob("*.wav"))
    before = (stamp.stat().st_mtime_ns, wav.stat().st_mtime_ns, stamp.stat().st_ino)
    again = mc.build_mini_corpus(
        dest, n_utterances=N_UTT, seed=SEED, clips_per_category=1, progress=False
    )
    assert again == paths
    assert (stamp.stat().st_mtime_ns, wav.stat().st_mtime_ns, stamp.stat().st_ino) == before
    assert (
        mc.main(
            [
                "--dest",
                str(dest),
                "--utterances",
                str(N_UTT),
                "--seed",
                str(SEED),
                "--clips-per-category",
                "1",
                "--quiet",
            ]
        )
        == 0
    )
    assert "already built" in capsys.readouterr().out
    assert stamp.stat().st_mtime_ns == before[0]


def test_interrupted_build_leaves_nothing(tmp_path, monkeypatch):
    pytest.importorskip("espeakng_loader")

    def boom(*args, **kwargs):
        raise RuntimeError("simulated interruption")

    monkeypatch.setattr(mc, "_write_esc50_meta", boom)
    dest = tmp_path / "corpus"
    with pytest.raises(RuntimeError, match="simulated interruption"):
        mc.build_mini_corpus(dest, n_utterances=2, seed=1, clips_per_category=1, progress=False)
    assert not dest.exists()
    assert list(tmp_path.iterdir()) == []
    # A build killed outright leaves a hidden partial folder; the next build removes it.
    monkeypatch.undo()
    stale = tmp_path / ".corpus.partial-999999999-abc123"
    (stale / "LJSpeech-1.1").mkdir(parents=True)
    mc.build_mini_corpus(dest, n_utterances=2, seed=1, clips_per_category=1, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus"]


def test_interrupted_rebuild_keeps_the_old_build_and_a_new_one_replaces_it(
    corpus, tmp_path, monkeypatch
):
    src, _ = corpus
    import shutil

    dest = tmp_path / "corpus"
    shutil.copytree(src, dest)
    old = _hashes(dest)
    monkeypatch.setattr(
        mc, "_write_metadata", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("stop"))
    )
    with pytest.raises(RuntimeError, match="stop"):
        mc.build_mini_corpus(dest, n_utterances=3, seed=SEED, clips_per_category=1, progress=False)
    assert _hashes(dest) == old  # untouched and still consistent with its stamp
    monkeypatch.undo()
    mc.build_mini_corpus(dest, n_utterances=3, seed=SEED, clips_per_category=1, progress=False)
    stamp = json.loads((dest / "BUILD_INFO.json").read_text())
    assert (
        stamp["n_utterances"] == 3
        and len(list((dest / "LJSpeech-1.1" / "wavs").glob("*.wav"))) == 3
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus"]


def test_incomplete_build_is_rebuilt(corpus, tmp_path):
    src, _ = corpus
    import shutil

    dest = tmp_path / "corpus"
    shutil.copytree(src, dest)
    victim = next((dest / "LJSpeech-1.1" / "wavs").glob("*.wav"))
    victim.unlink()
    mc.build_mini_corpus(dest, n_utterances=N_UTT, seed=SEED, clips_per_category=1, progress=False)
    assert _hashes(dest) == _hashes(src)


@pytest.mark.parametrize("victim_glob", ["LJSpeech-1.1/wavs/*.wav", "ESC-50-master/audio/*.wav"])
def test_truncated_file_is_detected_and_rebuilt(corpus, tmp_path, victim_glob):
    # The file count is still right: only the manifest of sizes in the stamp sees the damage.
    src, _ = corpus
    import shutil

    dest = tmp_path / "corpus"
    shutil.copytree(src, dest)
    victim = sorted(dest.glob(victim_glob))[-1]
    with open(victim, "r+b") as fh:
        fh.truncate(victim.stat().st_size // 2)
    key = mc._stamp_key(SEED, N_UTT, 1)
    assert not mc._is_complete(dest, key)
    mc.build_mini_corpus(dest, n_utterances=N_UTT, seed=SEED, clips_per_category=1, progress=False)
    assert _hashes(dest) == _hashes(src)
    assert mc._is_complete(dest, key)


def test_refuses_a_folder_with_foreign_files(tmp_path):
    dest = tmp_path / "corpus"
    dest.mkdir()
    (dest / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="notes.txt"):
        mc.build_mini_corpus(dest, n_utterances=2, progress=False)
    assert (dest / "notes.txt").read_text() == "mine"


def test_bad_sizes_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="n_utterances"):
        mc.build_mini_corpus(tmp_path / "x", n_utterances=0, progress=False)
    with pytest.raises(ValueError, match="clips_per_category"):
        mc.build_mini_corpus(tmp_path / "x", clips_per_category=0, progress=False)


def test_missing_espeakng_loader_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "espeakng_loader", None)  # makes the import fail
    with pytest.raises(ImportError, match=r"synthsep-lib\[corpus\]"):
        mc.build_mini_corpus(tmp_path / "x", n_utterances=2, progress=False)
    assert not (tmp_path / "x").exists()


def test_sentence_list():
    pairs = mc.load_sentences()
    assert len(pairs) >= 200
    assert len({n for _, n in pairs}) == len(pairs)
    for transcription, normalized in pairs:
        assert "|" not in transcription + normalized
        assert not any(c.isdigit() for c in normalized), normalized
    assert any(any(c.isdigit() for c in t) for t, _ in pairs)


def test_sentence_file_errors(tmp_path):
    bad = tmp_path / "s.txt"
    bad.write_text("a|b|c\n", encoding="utf-8")
    with pytest.raises(ValueError, match="s.txt:1"):
        mc.load_sentences(bad)
    bad.write_text("# only a comment\n\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no sentence"):
        mc.load_sentences(bad)
    good = tmp_path / "g.txt"
    good.write_text(
        "In 1900 it rained.|In nineteen hundred it rained.\nPlain text.\n", encoding="utf-8"
    )
    assert mc.load_sentences(good) == [
        ("In 1900 it rained.", "In nineteen hundred it rained."),
        ("Plain text.", "Plain text."),
    ]


def test_espeak_wrapper_is_reproducible_in_fresh_processes():
    """The first utterance of a fresh process is byte-reproducible (what the builder relies on)."""
    pytest.importorskip("espeakng_loader")
    import subprocess

    code = (
        "import hashlib; from data_scripts.espeak import get_synth; s = get_synth(); "
        "x = s.synthesize('Rain fell on the old bridge.', 'en-us+f3', rate=160, pitch=40, seed=5); "
        "print(s.sample_rate, len(x), hashlib.sha256(x.tobytes()).hexdigest())"
    )
    root = Path(mc.__file__).resolve().parents[1]
    outs = {
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root
        ).stdout
        for _ in range(2)
    }
    assert len(outs) == 1
    rate, n, _ = outs.pop().split()
    assert rate == "22050" and int(n) > 22050


def test_espeak_wrapper_rejects_unknown_voice_and_knows_our_variants():
    pytest.importorskip("espeakng_loader")
    from data_scripts.espeak import EspeakError, available_variants, get_synth

    assert {v.partition("+")[2] for v in mc.VOICES} - {""} <= set(available_variants())
    with pytest.raises(EspeakError, match="zz-nonexistent"):
        get_synth().synthesize("hello", voice="zz-nonexistent")
