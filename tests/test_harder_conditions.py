"""Chapter 8's set of harder mixtures: its run-folder view, its seeded plan, its files."""

from __future__ import annotations

import numpy as np
import pytest

from synthsep_lib import audio, corpora
from synthsep_lib.config import load_profile
from synthsep_lib.mixing import MANIFEST_COLUMNS, read_test_manifest, snr_db
from synthsep_lib.pipeline import harder_conditions
from synthsep_lib.pipeline.runs import MixtureSetPaths, RunPaths

SR = 22050
CONDITIONS = {"pairs": 2, "snr_levels_db": [0, 5, 20], "t60_seconds": [0.3]}


@pytest.fixture(scope="module")
def profile():
    return load_profile("reduced", {"conditions": CONDITIONS})


@pytest.fixture(scope="module")
def voice():
    """A stand-in for the real recording: 1.2 s of a voiced tone, not padded."""
    t = np.arange(int(1.2 * SR)) / SR
    return (0.3 * np.sin(2 * np.pi * 150 * t) * np.hanning(t.size)).astype(np.float32)


def test_a_mixture_set_keeps_its_own_data_and_outputs_and_reads_the_runs_models(tmp_path):
    run = RunPaths(tmp_path, "reduced")
    views = MixtureSetPaths(tmp_path, "reduced", "harder_conditions")
    base = run.root / "mixture_sets" / "harder_conditions"
    assert views.test_manifest == base / "data" / "test_manifest.csv"
    assert views.test_wav(3, "mixture") == base / "data" / "test" / "003_mixture.wav"
    assert (
        views.encoder_estimate("proposed", 3) == base / "encoder" / "proposed" / "test" / "003.npy"
    )
    assert views.encoder_errors("b1") == base / "encoder" / "b1" / "errors.csv"
    assert views.output_wav("b2", 3) == base / "outputs" / "b2" / "003.wav"
    assert views.eval == base / "eval"
    # the models are the run's
    assert views.encoder("proposed") == run.encoder("proposed")
    assert views.vocoder == run.vocoder
    assert views.parallel_vocoder == run.parallel_vocoder
    assert views.baseline("b2") == run.baseline("b2")
    assert run.encoder_errors("b1") == run.encoder("b1") / "errors.csv"
    for bad in ("", "..", "a/b"):
        with pytest.raises(ValueError, match="plain folder name"):
            MixtureSetPaths(tmp_path, "reduced", bad)


def test_the_plan_is_seeded_and_changes_one_thing_at_a_time(encoder_mini_run, profile):
    splits, esc = encoder_mini_run["splits"], encoder_mini_run["esc"]
    plan = harder_conditions.plan_conditions(splits, esc, profile)
    again = harder_conditions.plan_conditions(splits, esc, profile)
    assert plan.to_json() == again.to_json()
    other = load_profile("reduced", {"conditions": {**CONDITIONS, "seed": 1}})
    assert plan.to_json() != harder_conditions.plan_conditions(splits, esc, other).to_json()

    counts = plan.groupby("condition", sort=False).size().to_dict()
    assert counts == {"snr": 6, "room": 2, "interferers": 2, "unseen-noise": 2, "real-voice": 2}
    reference = plan[(plan.condition == "snr") & (plan.level == 5)].reset_index(drop=True)
    assert reference.target_id.nunique() == 2
    for condition in ("room", "interferers", "unseen-noise"):
        rows = plan[plan.condition == condition].reset_index(drop=True)
        assert list(rows.target_id) == list(reference.target_id)  # same utterances
    rooms = plan[plan.condition == "room"]
    assert list(rooms.noise_files) == list(reference.noise_files) and set(rooms.t60) == {0.3}
    assert set(plan[plan.condition != "room"].t60) == {0.0}
    for first, row in zip(
        reference.noise_files, plan[plan.condition == "interferers"].itertuples(), strict=True
    ):
        assert row.noise_files[0] == first[0] and row.noise_files[1] != first[0]
        assert set(row.noise_files) <= set(splits.noise_test)
    targets = esc.clips.set_index("filename")["target"]
    unseen = plan[plan.condition == "unseen-noise"]
    assert not any(targets[f[0]] in corpora.NOISE_TARGETS for f in unseen.noise_files)
    assert all(targets[f] in corpora.NOISE_TARGETS for f in reference.noise_files.sum())
    voice_rows = plan[plan.condition == "real-voice"]
    assert set(voice_rows.target_id) == {harder_conditions.REAL_VOICE_ID}
    assert plan.room_seed.is_unique


def test_the_plan_needs_enough_test_utterances(encoder_mini_run):
    too_many = load_profile("reduced", {"conditions": {**CONDITIONS, "pairs": 99}})
    with pytest.raises(ValueError, match="pairs is 99"):
        harder_conditions.plan_conditions(
            encoder_mini_run["splits"], encoder_mini_run["esc"], too_many
        )


def test_the_set_is_written_in_the_test_set_layout_and_resumed(
    encoder_mini_run, profile, voice, tmp_path
):
    lj, esc, splits = encoder_mini_run["lj"], encoder_mini_run["esc"], encoder_mini_run["splits"]
    paths = harder_conditions.mixture_set_paths(tmp_path, "reduced")
    manifest = harder_conditions.write_conditions(
        paths, profile, lj, esc, splits, voice, progress=False
    )
    assert len(manifest) == 14 and list(manifest.pair) == list(range(14))
    assert set(MANIFEST_COLUMNS) <= set(manifest.columns)
    assert read_test_manifest(paths.test_manifest).equals(manifest)
    feat = profile.features
    for row in manifest.itertuples():
        wav = {
            k: audio.load_wav(paths.test_wav(row.pair, k), SR)
            for k in ("target", "noise", "mixture", "source")
        }
        assert all(w.size == row.num_samples for w in wav.values())
        np.testing.assert_allclose(wav["target"] + wav["noise"], wav["mixture"], atol=3e-7)
        np.testing.assert_allclose(wav["target"], row.mixture_scale * wav["source"], atol=2e-7)
        assert np.max(np.abs(wav["mixture"])) == pytest.approx(0.999, abs=1e-6)
        expected = row.level if row.condition == "snr" else profile.conditions.reference_snr_db
        assert row.snr_db == pytest.approx(expected, abs=1e-6)
        if row.condition == "room":
            assert 0.15 < row.measured_t60 < 0.6
            # the voice's reverberation counts as noise: against the dry target, the SNR is
            # below the one set between the reverberant images
            assert snr_db(wav["target"], wav["noise"]) < row.snr_db - 0.5
        else:
            assert row.measured_t60 == 0.0
        if row.condition == "real-voice":
            prepared = audio.prepare_lj_audio(voice, feat)
            np.testing.assert_array_equal(wav["source"], prepared)
        else:
            np.testing.assert_array_equal(wav["source"], lj.load_target(row.target_id, feat))

    stamp = paths.test_wav(0, "mixture").stat().st_mtime_ns
    again = harder_conditions.write_conditions(
        paths, profile, lj, esc, splits, voice, progress=False
    )
    assert again.equals(manifest)
    assert paths.test_wav(0, "mixture").stat().st_mtime_ns == stamp  # read back, not rewritten

    voice_pair = int(manifest[manifest.condition == "real-voice"].pair.iloc[0])
    before = audio.load_wav(paths.test_wav(voice_pair, "mixture"), SR)
    louder = harder_conditions.write_conditions(
        paths, profile, lj, esc, splits, 2 * voice, progress=False
    )
    # another recording: the set is made afresh ...
    assert paths.test_wav(0, "mixture").stat().st_mtime_ns != stamp
    # ... and, the voice being peak-normalised like LJSpeech, a louder one gives the same set
    np.testing.assert_array_equal(audio.load_wav(paths.test_wav(voice_pair, "mixture"), SR), before)
    assert louder.equals(manifest)
