"""64-frame blocks: random blocks for encoder training, tiled blocks for inference.

The encoder sees fixed-length blocks of 64 spectrogram frames (about 0.74 s). In
training, each utterance contributes ``round(T / 64)`` blocks at random start frames
(see original_code.md#oc-training-blocks). At test time an utterance is cut into
consecutive blocks, the last one moved back to end exactly at frame T, and the
predictions are stitched back together with later blocks overwriting the overlap (see
original_code.md#oc-test-blocks). Pure functions only.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "BLOCK_FRAMES",
    "ShortUtteranceError",
    "count_blocks",
    "sample_block_starts",
    "extract_blocks",
    "inference_block_starts",
    "split_into_blocks",
    "stitch_blocks",
]

#: Frames per encoder block (``batchLen`` in the original, see original_code.md#oc-constants).
BLOCK_FRAMES = 64


class ShortUtteranceError(ValueError):
    """An utterance has fewer frames than one block; callers skip it and count it."""


def _check_frames(num_frames: int, block_frames: int, utterance_id: str | None) -> int:
    if block_frames < 1:
        raise ValueError(f"block_frames must be a positive integer, got {block_frames}")
    num_frames = int(num_frames)
    if num_frames < block_frames:
        who = f"utterance {utterance_id!r}" if utterance_id else "utterance"
        raise ShortUtteranceError(
            f"{who} has {num_frames} frames, fewer than one block of {block_frames} frames"
        )
    return num_frames


def count_blocks(num_frames: int, block_frames: int = BLOCK_FRAMES) -> int:
    """Training blocks drawn from an utterance: Python ``round(T / 64)``.

    Python 3's ``round`` rounds half to even, as the original (``Nsamples``,
    see original_code.md#oc-training-blocks): 96 frames → 2 blocks, 160 → 2, 90 → 1.

    Parameters
    ----------
    num_frames : int
        T, frames of the utterance.
    block_frames : int
        Block length in frames (64).

    Returns
    -------
    int
    """
    return round(int(num_frames) / block_frames)


def sample_block_starts(
    num_frames: int,
    rng,
    block_frames: int = BLOCK_FRAMES,
    utterance_id: str | None = None,
) -> np.ndarray:
    """Random training block starts: ``floor(u · (T − 64))`` for ``round(T/64)`` draws.

    Each u comes from one ``rng.random()`` call, in order, so a ``random.Random``
    reproduces the original's draws (original_code.md#oc-training-blocks); a
    ``numpy.random.Generator`` works too. Starts lie in [0, T − 64) (0 when T = 64) and may overlap.

    Parameters
    ----------
    num_frames : int
        T, frames of the utterance's spectrogram.
    rng : random.Random or numpy.random.Generator
        Anything whose ``random()`` returns a float in [0, 1).
    block_frames : int
        Block length in frames (64).
    utterance_id : str, optional
        Named in the error message.

    Returns
    -------
    numpy.ndarray of int64, shape (round(T/64),)
        Start frames.

    Raises
    ------
    ShortUtteranceError
        If T < ``block_frames``.
    """
    t = _check_frames(num_frames, block_frames, utterance_id)
    # round(T / 64) blocks, each starting at a uniformly drawn frame in [0, T - 64)
    n = count_blocks(t, block_frames)
    u = np.array([float(rng.random()) for _ in range(n)], dtype=np.float64)
    return np.floor(u * (t - block_frames)).astype(np.int64)


def extract_blocks(features: np.ndarray, starts, block_frames: int = BLOCK_FRAMES) -> np.ndarray:
    """Cut blocks of ``block_frames`` frames out of a (T, F) feature array.

    Parameters
    ----------
    features : numpy.ndarray, shape (T, ...)
        Frames as rows (e.g. (T, 512) linear or (T, 80) mel).
    starts : array_like of int, shape (n,)
        Start frames, each in [0, T − block_frames].
    block_frames : int
        Block length (64).

    Returns
    -------
    numpy.ndarray, shape (n, block_frames, ...)
        A copy, same dtype as ``features``.

    Raises
    ------
    ValueError
        If a block would run outside the array.
    """
    features = np.asarray(features)
    if features.ndim < 1:
        raise ValueError("features must have a frame axis (shape (T, F))")
    starts = np.asarray(starts, dtype=np.int64).reshape(-1)
    t = features.shape[0]
    bad = (starts < 0) | (starts > t - block_frames)
    if np.any(bad):
        raise ValueError(
            f"block start(s) {starts[bad].tolist()} outside [0, {t - block_frames}] for "
            f"{t} frames and blocks of {block_frames}"
        )
    index = starts[:, None] + np.arange(block_frames)
    return features[index]


def inference_block_starts(
    num_frames: int, block_frames: int = BLOCK_FRAMES, utterance_id: str | None = None
) -> np.ndarray:
    """Test-time block starts: ``arange(0, T, 64)`` with the last replaced by T − 64.

    See original_code.md#oc-test-blocks. Example (original_code.md#oc-worked-example):
    T = 90 → [0, 26]; frames 26–63 end up taken from the second block when stitching. T = 128 → [0, 64]; T = 64 → [0].

    Parameters
    ----------
    num_frames : int
        T.
    block_frames : int
        Block length (64).
    utterance_id : str, optional
        Named in the error message.

    Returns
    -------
    numpy.ndarray of int64, shape (ceil(T/64),)

    Raises
    ------
    ShortUtteranceError
        If T < ``block_frames``.
    """
    t = _check_frames(num_frames, block_frames, utterance_id)
    starts = np.arange(0, t, block_frames, dtype=np.int64)  # blocks end to end from frame 0
    starts[-1] = t - block_frames  # the last block moved back to end at the last frame
    return starts


def split_into_blocks(
    features: np.ndarray, block_frames: int = BLOCK_FRAMES, utterance_id: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Cut a whole utterance into the test-time blocks of :func:`inference_block_starts`.

    Parameters
    ----------
    features : numpy.ndarray, shape (T, ...)
    block_frames : int
    utterance_id : str, optional

    Returns
    -------
    blocks : numpy.ndarray, shape (ceil(T/64), 64, ...)
    starts : numpy.ndarray of int64, shape (ceil(T/64),)
    """
    features = np.asarray(features)
    starts = inference_block_starts(features.shape[0], block_frames, utterance_id)
    return extract_blocks(features, starts, block_frames), starts


def stitch_blocks(blocks: np.ndarray, starts, num_frames: int) -> np.ndarray:
    """Put (predicted) blocks back into one (T, ...) array (see original_code.md#oc-test-blocks).

    Blocks are written in order; where blocks overlap, the later one overwrites the
    earlier one, as in the original. ``stitch_blocks(*split_into_blocks(x), len(x))``
    returns ``x`` exactly.

    Parameters
    ----------
    blocks : numpy.ndarray, shape (n, B, ...)
        n blocks of B frames (e.g. encoder outputs (n, 64, 80)).
    starts : array_like of int, shape (n,)
        Start frame of each block.
    num_frames : int
        T of the output.

    Returns
    -------
    numpy.ndarray, shape (T, ...), dtype of ``blocks``

    Raises
    ------
    ValueError
        If shapes disagree, a block runs outside [0, T) or some frame is covered by no
        block.
    """
    blocks, starts, t = _check_stitching(blocks, starts, num_frames)
    out = np.zeros((t,) + blocks.shape[2:], dtype=blocks.dtype)
    for block, start in zip(blocks, starts, strict=True):
        out[start : start + len(block)] = block  # a later block overwrites the overlap
    return out


def _check_stitching(blocks, starts, num_frames: int) -> tuple[np.ndarray, np.ndarray, int]:
    """``(blocks, starts, T)`` as arrays, checked to tile all T frames; else ValueError."""
    blocks = np.asarray(blocks)
    starts = np.asarray(starts, dtype=np.int64).reshape(-1)
    if blocks.ndim < 2 or blocks.shape[0] != starts.shape[0]:
        raise ValueError(
            f"expected blocks of shape (n, B, ...) with n = len(starts) = {starts.shape[0]}, "
            f"got {blocks.shape}"
        )
    t = int(num_frames)
    b = blocks.shape[1]
    bad = (starts < 0) | (starts + b > t)
    if np.any(bad):
        raise ValueError(
            f"block start(s) {starts[bad].tolist()} put a {b}-frame block outside {t} frames"
        )
    covered = np.zeros(t, dtype=bool)
    for start in starts:
        covered[start : start + b] = True
    if not covered.all():
        gaps = np.flatnonzero(~covered)
        raise ValueError(
            f"{gaps.size} of {t} frames are covered by no block (first: frame {gaps[0]})"
        )
    return blocks, starts, t
