"""WaveNet synthesis: folding, cross-fades, batches of unequal utterances, test-set outputs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from conftest import make_test_run

torch = pytest.importorskip("torch")

from synthsep_lib.config import load_profile  # noqa: E402
from synthsep_lib.pipeline import vocoding  # noqa: E402
from synthsep_lib.pipeline.runs import write_timing  # noqa: E402
from synthsep_lib.vocoder import generation as syn  # noqa: E402
from synthsep_lib.vocoder.wavenet import WaveNet, WaveNetConfig  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = WaveNet(WaveNetConfig.small()).eval()
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return m


def mel(frames, seed):
    return np.random.default_rng(seed).random((frames, 80)).astype(np.float32)


def test_fold_segments_cover_and_overlap():
    segs = syn.fold_segments(23, 5, 2)
    assert segs[0] == (0, 7) and segs[-1][1] == 23
    for (s0, e0), (s1, _) in zip(segs, segs[1:], strict=False):
        assert s1 == s0 + 5 and e0 - s1 == 2  # consecutive segments share 2 frames
    assert syn.fold_segments(4, 10, 2) == [(0, 4)]
    with pytest.raises(ValueError, match="segment_frames"):
        syn.fold_segments(10, 0, 2)


def test_cross_fade_weights_sum_to_one():
    segs = syn.fold_segments(9, 3, 1)
    hop = 4
    ones = [np.ones((e - s) * hop) for s, e in segs]
    np.testing.assert_allclose(syn.cross_fade(ones, segs, hop), 1.0, atol=1e-6)
    # a signal cut into its segments comes back unchanged
    signal = np.random.default_rng(0).standard_normal(9 * hop)
    pieces = [signal[s * hop : e * hop] for s, e in segs]
    np.testing.assert_allclose(syn.cross_fade(pieces, segs, hop), signal, atol=1e-6)
    # over an overlap the earlier piece fades out as the later fades in
    pieces = [np.full((e - s) * hop, float(i)) for i, (s, e) in enumerate(segs)]
    joined = syn.cross_fade(pieces, segs, hop)
    overlap = joined[segs[1][0] * hop : segs[0][1] * hop]
    assert np.all(np.diff(overlap) > 0) and 0 < overlap[0] < overlap[-1] < 1


def test_padding_in_a_batch_does_not_change_the_shorter_utterance(model):
    long, short = mel(5, 1), mel(2, 2)
    waves, seconds = syn.generate_utterances(model, [short, long], batch_size=2, progress=False)
    assert [w.shape for w in waves] == [(512,), (1280,)]
    assert all(s > 0 for s in seconds) and seconds[1] > seconds[0]
    # the padding (silent frames) only follows the short utterance: other padding, same output
    other = np.concatenate([short, mel(2, 3)])  # still the shorter: same rows, same draws
    again, _ = syn.generate_utterances(model, [other, long], batch_size=2, progress=False)
    np.testing.assert_array_equal(again[0][:512], waves[0])
    np.testing.assert_array_equal(again[1], waves[1])


def test_batching_gives_the_same_signals_as_one_at_a_time_in_distribution(model):
    mels = [mel(3, s) for s in range(4)]
    single, _ = syn.generate_utterances(model, mels, batch_size=1, progress=False)
    batched, _ = syn.generate_utterances(model, mels, batch_size=4, progress=False)
    for a, b in zip(single, batched, strict=True):
        assert a.shape == b.shape and np.all(np.isfinite(b))
        assert not np.array_equal(a, b)  # other random draws ...
        assert abs(a.std() - b.std()) < 0.5 * a.std()  # ... from the same model


def test_folding_with_one_segment_is_plain_generation(model):
    m = mel(4, 5)
    plain, _ = syn.generate_utterances(model, [m], batch_size=1, seed=3, progress=False)
    folded, _ = syn.generate_utterances(
        model, [m], batch_size=1, fold_segment_frames=10, seed=3, progress=False
    )
    np.testing.assert_array_equal(plain[0], folded[0])
    many, _ = syn.generate_utterances(
        model,
        [m, mel(7, 6)],
        batch_size=8,
        fold_segment_frames=2,
        fold_overlap_frames=1,
        progress=False,
    )
    assert [w.shape for w in many] == [(1024,), (1792,)]
    with pytest.raises(ValueError, match="mel 1 must have shape"):
        syn.generate_utterances(model, [m, m[:, :40]], progress=False)


def test_measure_generation_speed(model):
    result = syn.measure_generation_speed(model, batch_size=3, steps=300)
    assert result["steps"] == 512 and result["batch_size"] == 3
    assert result["samples_per_second"] == pytest.approx(3 * 512 / result["seconds"])


def test_vocode_test_set_writes_aligned_outputs_and_resumes(tmp_path, model):
    paths = make_test_run(tmp_path, n_pairs=3)
    profile = load_profile("reduced", {"vocoder": {"synthesis_files": 2, "synthesis_batch": 4}})
    first = vocoding.vocode_test_set(paths, profile, model, progress=False)
    assert first["pair"].tolist() == [0, 1] and first["written"].all()
    out_dir = paths.outputs("wavenet-gt-mel")
    timing = pd.read_csv(out_dir / "timing.csv")
    assert timing["pair"].tolist() == [0, 1] and (timing["seconds"] > 0).all()
    for pair in (0, 1):
        source, _ = sf.read(paths.test_audio / f"{pair:03d}_source.wav")
        out, _ = sf.read(out_dir / f"{pair:03d}.wav")
        assert out.shape == source.shape and out[0] == 0.0 and np.any(out)
    # nothing is redone; a deleted file is made again alone
    before = (out_dir / "000.wav").read_bytes()
    assert not vocoding.vocode_test_set(paths, profile, model, progress=False)["written"].any()
    (out_dir / "001.wav").unlink()
    third = vocoding.vocode_test_set(paths, profile, model, progress=False)
    assert third["written"].tolist() == [False, True]
    assert (out_dir / "000.wav").read_bytes() == before
    assert pd.read_csv(out_dir / "timing.csv")["pair"].tolist() == [0, 1]
    # another vocoder (retrained weights) makes them all again
    other = WaveNet(WaveNetConfig.small()).eval()
    assert vocoding.vocode_test_set(paths, profile, other, progress=False)["written"].all()


def test_vocode_test_set_from_encoder_estimates_checks_features(tmp_path, model):
    paths = make_test_run(tmp_path, n_pairs=1)
    profile = load_profile("reduced")
    with pytest.raises(FileNotFoundError, match=r"Chapter 2"):
        vocoding.vocode_test_set(paths, profile, model, mel_source="encoder", progress=False)
    enc = paths.encoder("proposed")
    (enc / "test").mkdir(parents=True)
    n = sf.info(paths.test_audio / "000_source.wav").frames // 256
    np.save(enc / "test" / "000.npy", mel(n, 0))
    write_timing(
        enc / "test" / "timing.csv", {0: {"pair": 0, "seconds": 100.0, "audio_seconds": 1.0}}
    )
    features = profile.features.to_dict()
    (enc / "config.json").write_text(json.dumps({"features": {**features, "fmin": 95}}))
    with pytest.raises(ValueError, match=r"differ .*\['fmin'\]"):
        vocoding.vocode_test_set(paths, profile, model, mel_source="encoder", progress=False)
    (enc / "config.json").write_text(json.dumps({"features": features}))
    done = vocoding.vocode_test_set(paths, profile, model, mel_source="encoder", progress=False)
    assert done["written"].all() and (paths.outputs("proposed") / "000.wav").exists()
    assert done["seconds"].iloc[0] > 100.0  # the encoder's time is part of the pipeline's
    # a retrained encoder (new estimates) makes the old outputs stale
    np.save(enc / "test" / "000.npy", mel(n, 1))
    again = vocoding.vocode_test_set(paths, profile, model, mel_source="encoder", progress=False)
    assert again["written"].all()
    with pytest.raises(ValueError, match="mel_source"):
        vocoding.vocode_test_set(paths, profile, model, mel_source="linear", progress=False)
