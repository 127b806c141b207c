"""Tests of synthsep_lib.spectrogram_blocks: training block sampling and test-time stitching."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from synthsep_lib.spectrogram_blocks import (
    BLOCK_FRAMES,
    ShortUtteranceError,
    count_blocks,
    extract_blocks,
    inference_block_starts,
    sample_block_starts,
    split_into_blocks,
    stitch_blocks,
)


def test_block_frames():
    assert BLOCK_FRAMES == 64


@pytest.mark.parametrize(
    "t,n", [(64, 1), (90, 1), (95, 1), (96, 2), (159, 2), (160, 2), (161, 3), (224, 4)]
)
def test_count_blocks_rounds_half_to_even(t, n):
    assert count_blocks(t) == n


def test_sample_block_starts_matches_original_draws():
    t = 300
    starts = sample_block_starts(t, random.Random(42))
    rng = random.Random(42)
    want = [math.floor(rng.random() * (t - 64)) for _ in range(round(t / 64))]
    assert starts.tolist() == want
    assert starts.dtype == np.int64


def test_sample_block_starts_range_and_numpy_rng():
    rng = np.random.default_rng(0)
    for t in range(64, 400, 7):
        starts = sample_block_starts(t, rng)
        assert starts.shape == (count_blocks(t),)
        assert np.all(starts >= 0) and np.all(starts <= max(t - 64 - 1, 0))
    assert sample_block_starts(64, random.Random(1)).tolist() == [0]


def test_short_utterance_error_names_the_utterance():
    with pytest.raises(ShortUtteranceError, match=r"'LJ001-0001' has 63 frames"):
        sample_block_starts(63, random.Random(0), utterance_id="LJ001-0001")
    with pytest.raises(ShortUtteranceError):
        inference_block_starts(10)
    with pytest.raises(ShortUtteranceError, match="'x'"):
        split_into_blocks(np.zeros((20, 3)), utterance_id="x")
    assert issubclass(ShortUtteranceError, ValueError)


def test_extract_blocks():
    feats = np.arange(100 * 3).reshape(100, 3).astype(np.float32)
    blocks = extract_blocks(feats, [0, 10, 36])
    assert blocks.shape == (3, 64, 3) and blocks.dtype == np.float32
    assert np.array_equal(blocks[1], feats[10:74])
    assert np.array_equal(blocks[2], feats[36:100])
    with pytest.raises(ValueError, match=r"\[37\] outside \[0, 36\]"):
        extract_blocks(feats, [0, 37])
    with pytest.raises(ValueError, match="outside"):
        extract_blocks(feats, [-1])


def test_inference_starts_worked_example():
    # original_code.md#oc-worked-example: T = 90 → [0, 64] → last replaced by 26.
    assert inference_block_starts(90).tolist() == [0, 26]
    assert inference_block_starts(64).tolist() == [0]
    assert inference_block_starts(128).tolist() == [0, 64]
    assert inference_block_starts(129).tolist() == [0, 64, 65]


def test_stitch_worked_example_later_block_overwrites():
    t = 90
    first = np.full((64, 2), 1.0)
    second = np.full((64, 2), 2.0)
    out = stitch_blocks(np.stack([first, second]), [0, 26], t)
    assert out.shape == (90, 2)
    assert np.all(out[:26] == 1.0)
    assert np.all(out[26:64] == 2.0)  # frames 26–63 come from block 2
    assert np.all(out[64:] == 2.0)


@pytest.mark.parametrize("t", [64, 65, 90, 127, 128, 129, 192, 200, 256, 641])
def test_split_then_stitch_is_identity(t):
    rng = np.random.default_rng(t)
    for shape in ((t, 80), (t, 512), (t, 80, 1)):
        x = rng.random(shape).astype(np.float32)
        blocks, starts = split_into_blocks(x)
        assert blocks.shape == (math.ceil(t / 64), 64) + shape[1:]
        back = stitch_blocks(blocks, starts, t)
        assert back.dtype == x.dtype and np.array_equal(back, x)


def test_stitch_errors():
    blocks = np.zeros((2, 64, 4))
    with pytest.raises(ValueError, match="len\\(starts\\) = 3"):
        stitch_blocks(blocks, [0, 1, 2], 100)
    with pytest.raises(ValueError, match="outside 100 frames"):
        stitch_blocks(blocks, [0, 40], 100)
    with pytest.raises(ValueError, match="covered by no block"):
        stitch_blocks(blocks, [0, 70], 140)
