"""Tests of synthsep_lib.pipeline.encoder_feed (original_code.md#oc-training-blocks)."""

from __future__ import annotations

import os
import pickle
from multiprocessing.pool import ThreadPool
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from synthsep_lib import audio, corpora, mixing  # noqa: E402
from synthsep_lib.config import load_profile  # noqa: E402
from synthsep_lib.pipeline import encoder_feed as F  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
B = 8  # small batches keep the tests quick
STEPS = 4


@pytest.fixture(scope="module")
def profile():
    return load_profile("reduced")


@pytest.fixture(scope="module")
def corpus(profile):
    """The mini corpus (built by `make corpus`; built here if missing)."""
    lj, esc = corpora.open_corpora(profile, ROOT / "data")
    clips = esc.clips[esc.clips["target"].isin(corpora.NOISE_TARGETS)]
    noises = [str(f) for f in clips["filename"]][:8]
    return lj, esc, list(lj.ids[:30]), noises


def make_feed(corpus, profile, **kwargs):
    lj, esc, utts, noises = corpus
    kwargs.setdefault("steps", STEPS)
    kwargs.setdefault("batch_size", B)
    kwargs.setdefault("seed", 7)
    kwargs.setdefault("workers", 0)
    return F.BlockFeed(lj, esc, utts, noises, profile, **kwargs)


def assert_batches_equal(a, b):
    assert a[0].keys() == b[0].keys()
    for key in a[0]:
        np.testing.assert_array_equal(a[0][key], b[0][key])
    np.testing.assert_array_equal(a[1], b[1])


# --------------------------------------------------------------------------------------
# Shapes, dtypes, ranges
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("variant,bins", [("proposed", 80), ("b1", 512)])
def test_batch_shapes_dtypes_ranges(corpus, profile, variant, bins):
    feed = make_feed(corpus, profile, variant=variant)
    assert len(feed) == STEPS and feed.target_bins == bins
    x, y = feed[0]
    assert set(x) == {"input1", "input2"}
    assert x["input1"].shape == (B, 64, 512) and x["input1"].dtype == np.float32
    assert x["input2"].shape == (B, 64, 80) and x["input2"].dtype == np.float32
    assert y.shape == (B, 64, bins, 1) and y.dtype == np.float32
    for arr in (x["input1"], x["input2"], y):
        assert np.all(np.isfinite(arr)) and arr.min() >= 0.0 and arr.max() <= 1.0
    # speech is there: not a constant block
    assert y.std() > 0.01 and x["input1"].std() > 0.01


def test_batch_plan_fills_exactly_one_batch(corpus, profile):
    feed = make_feed(corpus, profile, steps=6)
    lj, esc, utts, noises = corpus
    for i in range(6):
        plan = feed.batch_plan(i)
        assert sum(len(p.starts) for p in plan) == B
        assert all(p.discarded == 0 for p in plan[:-1])
        for p in plan:
            assert p.utterance in utts and p.noise in noises
            assert p.num_frames == feed.num_frames[p.utterance]
            # all blocks drawn: round(T / 64), kept ones at starts in [0, T - 64)
            assert len(p.starts) + p.discarded == round(p.num_frames / 64)
            assert all(0 <= s <= max(p.num_frames - 64 - 1, 0) for s in p.starts)
        assert all(p.starts for p in plan)  # an utterance contributes at least one block


def test_stream_uses_every_utterance_before_repeating(corpus, profile):
    feed = make_feed(corpus, profile, steps=30)
    seen = [p.utterance for i in range(30) for p in feed.batch_plan(i)]
    n = len(feed.utterances)
    assert len(seen) > n
    assert sorted(seen[:n]) == sorted(feed.utterances)  # first pass: a permutation


# --------------------------------------------------------------------------------------
# Determinism and resume
# --------------------------------------------------------------------------------------
def test_same_seed_epoch_index_gives_identical_batches(corpus, profile):
    a = make_feed(corpus, profile)
    b = make_feed(corpus, profile)
    # b computes its batches out of order: each batch depends on its index only
    want = [a[i] for i in range(STEPS)]
    for i in reversed(range(STEPS)):
        assert_batches_equal(b[i], want[i])
    a.set_epoch(3)
    b.set_epoch(3)
    assert_batches_equal(a[1], b[1])


def test_different_epoch_or_seed_gives_different_batches(corpus, profile):
    feed = make_feed(corpus, profile)
    first = feed[0]
    feed.set_epoch(1)
    assert feed.epoch == 1
    assert not np.array_equal(feed[0][1], first[1])
    other = make_feed(corpus, profile, seed=8)
    assert not np.array_equal(other[0][1], first[1])


def test_resume_at_an_epoch_matches_uninterrupted_epochs(corpus, profile):
    walked = make_feed(corpus, profile)
    for _ in range(3):  # what fit() does for three epochs
        walked.on_epoch_begin()
        walked.on_epoch_end()
    assert walked.epoch == 3
    resumed = make_feed(corpus, profile)
    resumed.set_epoch(3)
    for i in range(STEPS):
        assert walked.batch_plan(i) == resumed.batch_plan(i)
    assert_batches_equal(walked[2], resumed[2])
    # asking for another epoch's plan does not move the feed
    assert resumed.batch_plan(0, epoch=0) == make_feed(corpus, profile).batch_plan(0)
    assert resumed.epoch == 3


def test_on_epoch_end_without_begin_changes_nothing(corpus, profile):
    """Keras calls on_epoch_end() before the first epoch and at every evaluate()."""
    feed = make_feed(corpus, profile)
    feed.on_epoch_end()
    feed.on_epoch_end()
    assert feed.epoch == 0
    feed.on_epoch_begin()
    feed.on_epoch_end()
    feed.on_epoch_end()
    assert feed.epoch == 1


def test_proposed_and_b1_see_the_same_mixtures(corpus, profile):
    p = make_feed(corpus, profile, variant="proposed")
    b = make_feed(corpus, profile, variant="b1")
    assert p.batch_plan(2) == b.batch_plan(2)
    xp, _ = p[2]
    xb, _ = b[2]
    np.testing.assert_array_equal(xp["input1"], xb["input1"])


def test_threads_give_the_same_batches(corpus, profile):
    feed = make_feed(corpus, profile)
    want = [make_feed(corpus, profile)[i] for i in range(STEPS)]
    with ThreadPool(3) as pool:
        got = pool.map(feed.__getitem__, list(range(STEPS)) * 2)
    for i, batch in enumerate(got):
        assert_batches_equal(batch, want[i % STEPS])


def test_pickled_feed_gives_the_same_batches(corpus, profile):
    feed = make_feed(corpus, profile)
    feed.set_epoch(2)
    want = feed[1]
    copy = pickle.loads(pickle.dumps(feed))
    assert copy.epoch == 2
    assert copy.cache_info()["targets_cached"] == 0  # caches are per process
    assert_batches_equal(copy[1], want)


# --------------------------------------------------------------------------------------
# The blocks are the paper's features of the paper's mixture
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("variant", ["proposed", "b1"])
def test_blocks_equal_independently_computed_features(corpus, profile, variant):
    lj, esc, _, _ = corpus
    feat = profile.features
    feed = make_feed(corpus, profile, variant=variant)
    feed.set_epoch(1)
    index = 2
    x, y = feed[index]
    k = 0
    for p in feed.batch_plan(index):
        s1 = lj.load_target(p.utterance, feat)
        mix = mixing.simulate_mixture_paper(s1, esc.load(p.noise, feat.sample_rate))
        lin, mel = audio.encoder_features(mix.mixture, feat)
        t_lin, t_mel = audio.encoder_features(mix.target, feat)
        target = t_mel if variant == "proposed" else t_lin
        for s in p.starts:
            np.testing.assert_array_equal(x["input1"][k], lin[s : s + 64])
            np.testing.assert_array_equal(x["input2"][k], mel[s : s + 64])
            np.testing.assert_array_equal(y[k, ..., 0], target[s : s + 64])
            k += 1
    assert k == B


def test_block_segments_merge_overlapping_blocks():
    assert F.block_segments([110, 0, 30]) == [(0, 94), (110, 174)]
    assert F.block_segments([0, 70]) == [(0, 134)]  # a gap of 6 frames is merged
    assert F.block_segments([0, 200], 64) == [(0, 64), (200, 264)]
    assert F.block_segments([]) == []


def test_frame_features_equal_whole_signal_features(corpus, profile):
    lj, esc, utts, noises = corpus
    feat = profile.features
    s1 = lj.load_target(utts[0], feat)
    mix = mixing.simulate_mixture_paper(s1, esc.load(noises[0], feat.sample_rate))
    t = s1.shape[0] // 256
    lin, mel = audio.encoder_features(mix.mixture, feat)
    for segments in ([(0, t)], [(0, 64)], [(t - 64, t)], [(1, 65), (t - 70, t - 1)]):
        got_lin, got_mel = F.frame_features(mix.mixture, segments, feat)
        for a, b in segments:
            np.testing.assert_array_equal(got_lin[a:b], lin[a:b])
            np.testing.assert_array_equal(got_mel[a:b], mel[a:b])
    with pytest.raises(ValueError, match="outside"):
        F.frame_features(mix.mixture, [(t - 10, t + 1)], feat)


# --------------------------------------------------------------------------------------
# Short utterances, bad data, bad arguments
# --------------------------------------------------------------------------------------
def _write_lj(root: Path, lengths: dict[str, int]) -> corpora.LJSpeech:
    wavs = root / "LJSpeech-1.1" / "wavs"
    wavs.mkdir(parents=True)
    rng = np.random.default_rng(0)
    lines = []
    for utt, n in lengths.items():
        t = np.arange(n) / 22050
        y = 0.3 * np.sin(2 * np.pi * 220 * t) * (1 + 0.5 * rng.standard_normal(n))
        sf.write(wavs / f"{utt}.wav", np.clip(y, -1, 1), 22050, subtype="PCM_16")
        lines.append(f"{utt}|text|text")
    (root / "LJSpeech-1.1" / "metadata.csv").write_text("\n".join(lines) + "\n")
    return corpora.LJSpeech(root)


def test_short_utterances_are_skipped_and_counted(tmp_path, corpus, profile):
    _, esc, _, noises = corpus
    # T = ceil(n / 256) + 3: 15360 samples → 63 frames (short), 15616 → 64 (one block)
    lengths = {"LJ900-0001": 30000, "LJ900-0002": 15360, "LJ900-0003": 15616, "LJ900-0004": 9000}
    lj = _write_lj(tmp_path, lengths)
    feed = F.BlockFeed(
        lj, esc, list(lengths), noises, profile, steps=3, batch_size=4, seed=1, workers=0
    )
    assert feed.short_utterances == ("LJ900-0002", "LJ900-0004")
    assert feed.skipped == 2
    assert feed.utterances == ("LJ900-0001", "LJ900-0003")
    assert feed.num_frames["LJ900-0003"] == 64
    used = {p.utterance for i in range(3) for p in feed.batch_plan(i)}
    assert used <= {"LJ900-0001", "LJ900-0003"}
    x, y = feed[0]
    assert y.shape == (4, 64, 80, 1) and np.all(np.isfinite(y))
    with pytest.raises(ValueError, match="none of the 2 utterances"):
        F.BlockFeed(lj, esc, ["LJ900-0002", "LJ900-0004"], noises, profile, workers=0)


def test_nan_features_raise_feed_error_naming_the_utterance(corpus, profile):
    feed = make_feed(corpus, profile)
    plan = feed.batch_plan(1)
    victim = plan[-1]
    real = feed._utterance_blocks

    def poisoned(p):
        lin, mel, tgt = real(p)
        if p.utterance == victim.utterance:
            tgt = tgt.copy()
            tgt[0, 5, 3] = np.nan
        return lin, mel, tgt

    feed._utterance_blocks = poisoned
    with pytest.raises(F.FeedError, match=victim.utterance) as info:
        feed[1]
    assert victim.noise in str(info.value)
    assert info.value.sources == [(victim.utterance, victim.noise)]
    assert isinstance(info.value, ValueError)
    copy = pickle.loads(pickle.dumps(info.value))  # as a worker process sends it back
    assert str(copy) == str(info.value) and copy.sources == info.value.sources


def test_unmixable_signal_raises_feed_error_naming_utterance_and_noise(corpus, profile):
    feed = make_feed(corpus, profile)
    victim = feed.batch_plan(0)[0]
    real = feed._target_signal

    def broken(utt):
        s1 = real(utt)
        if utt != victim.utterance:
            return s1
        bad = s1.copy()
        bad[1000] = np.inf
        return bad

    feed._target_signal = broken
    with pytest.raises(F.FeedError, match=victim.utterance) as info:
        feed[0]
    assert victim.noise in str(info.value)


def test_bad_arguments(corpus, profile):
    lj, esc, utts, noises = corpus
    with pytest.raises(ValueError, match="unknown encoder variant"):
        make_feed(corpus, profile, variant="b2")
    with pytest.raises(ValueError, match="noise list is empty"):
        F.BlockFeed(lj, esc, utts, [], profile, workers=0)
    with pytest.raises(ValueError, match="non-negative"):
        make_feed(corpus, profile, seed=-1)
    feed = make_feed(corpus, profile)
    with pytest.raises(IndexError, match="out of range"):
        feed[STEPS]
    with pytest.raises(ValueError, match="epoch"):
        feed.set_epoch(-1)


# --------------------------------------------------------------------------------------
# Validation feed, profile defaults, Keras
# --------------------------------------------------------------------------------------
def test_validation_feed_is_identical_every_epoch(corpus, profile):
    lj, esc, utts, noises = corpus
    splits = corpora.Splits(utts[:20], utts[20:], [], noises[:5], noises[5:], [])
    feed = F.validation_feed(lj, esc, splits, profile, batch_size=B, workers=0)
    assert len(feed) == profile.encoder.validation_steps and feed.fixed_epoch == 0
    assert set(feed.utterances) == set(utts[20:])
    first = feed[1]
    feed.on_epoch_begin()
    feed.on_epoch_end()
    feed.set_epoch(5)
    assert feed.epoch == 0
    assert_batches_equal(feed[1], first)
    train = F.training_feed(lj, esc, splits, profile)
    assert len(train) == profile.encoder.steps_per_epoch
    assert train.batch_size == profile.encoder.batch_size
    assert train.seed == profile.encoder.seed
    assert train.workers == profile.encoder.feed_workers


def test_feed_rate_counts_blocks(corpus, profile):
    feed = make_feed(corpus, profile, steps=2)
    assert F.feed_rate(feed, 2) > 0
    threaded = make_feed(corpus, profile, steps=2, workers=2, use_multiprocessing=False)
    threaded.set_epoch(1)
    assert F.feed_rate(threaded, 3, through_keras=True) > 0
    assert threaded.epoch == 1  # restored


@pytest.mark.parametrize("multiprocessing", [True, False])
def test_keras_fit_consumes_the_feed(corpus, profile, multiprocessing):
    import keras

    feed = make_feed(corpus, profile, steps=2, workers=1, use_multiprocessing=multiprocessing)
    valid = make_feed(corpus, profile, steps=1, fixed_epoch=0)
    in1 = keras.Input((64, 512), name="input1")
    in2 = keras.Input((64, 80), name="input2")
    out = keras.layers.Reshape((64, 80, 1))(keras.layers.Dense(80, activation="sigmoid")(in2))
    model = keras.Model([in1, in2], out)
    model.compile(optimizer="adam", loss="mse")
    history = model.fit(feed, epochs=1, validation_data=valid, verbose=0, shuffle=False)
    assert len(history.history["loss"]) == 1 and np.isfinite(history.history["loss"][0])
    assert np.isfinite(history.history["val_loss"][0])
    assert feed.epoch == 1 and valid.epoch == 0

    # resuming: the callback sets fit's epoch number before the epoch's workers start
    seen = []

    class Spy(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            seen.append(fresh.epoch)

    fresh = make_feed(corpus, profile, steps=2, workers=1, use_multiprocessing=multiprocessing)
    model.fit(
        fresh,
        initial_epoch=3,
        epochs=4,
        verbose=0,
        shuffle=False,
        callbacks=[fresh.epoch_callback(), Spy()],
    )
    assert seen == [3, 3]
    assert fresh.epoch == 4


@pytest.mark.parametrize("multiprocessing", [True, False])
def test_keras_workers_deliver_the_batches_of_the_epoch_in_order(corpus, profile, multiprocessing):
    """Two worker processes (or threads) give exactly the in-process batches, in order."""
    from keras.src.trainers.data_adapters.py_dataset_adapter import PyDatasetAdapter

    feed = make_feed(corpus, profile, workers=2, use_multiprocessing=multiprocessing)
    feed.set_epoch(2)
    want = make_feed(corpus, profile, workers=0)
    want.set_epoch(2)
    adapter = PyDatasetAdapter(feed)
    adapter.on_epoch_begin()
    got = list(adapter.get_numpy_iterator())
    adapter.on_epoch_end()
    assert len(got) == STEPS
    for i, batch in enumerate(got):
        assert_batches_equal(batch, want[i])
    assert feed.epoch == 3  # the epoch was begun and ended


def test_feed_error_in_a_worker_process_reaches_the_trainer(corpus, profile):
    from keras.src.trainers.data_adapters.py_dataset_adapter import PyDatasetAdapter

    feed = make_feed(corpus, profile, workers=1, use_multiprocessing=True)
    victim = feed.batch_plan(1)[0]
    real = feed._target_signal

    def broken(utt):
        s1 = real(utt)
        return np.full_like(s1, np.nan) if utt == victim.utterance else s1

    feed._target_signal = broken  # the forked worker inherits the broken loader
    adapter = PyDatasetAdapter(feed)
    adapter.on_epoch_begin()
    with pytest.raises(F.FeedError, match=victim.utterance) as info:
        list(adapter.get_numpy_iterator())
    adapter.on_epoch_end()
    assert (victim.utterance, victim.noise) in info.value.sources
