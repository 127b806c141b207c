"""Separate audio files of any format, rate, channel count and length, in bounded memory.

What ``synthsep separate`` runs on each input. A file is read twice, block by block, and
never held whole:

1. :func:`inspect_input` decodes it (anything ``soundfile`` reads: WAV, FLAC, OGG …),
   averages its channels to mono, resamples that to the separator's rate (22 050 Hz,
   ``soxr``'s streaming resampler) and keeps only the length and the peak: a file that
   cannot be read, is empty, holds NaN or infinity, or is silent raises
   :class:`InputError` naming the file.
2. :func:`separate_file` decodes it again the same way, scaled by ``0.999 / peak`` (the
   models were trained on mixtures peak-normalised to 0.999), cuts the stream into
   chunks of ``chunk_seconds`` that overlap by ``overlap_seconds`` (fitted to the
   models' block grid by :func:`chunk_layout`), runs the separator on each, cross-fades consecutive outputs over their overlap (raised-cosine weights
   that sum to one, so two equal outputs pass unchanged), scales back to the input's
   level and appends the finished samples to the output file (22 050 Hz, mono, 32-bit
   float WAV), which replaces its destination only when complete.

Memory is that of one chunk and a few blocks, whatever the file's length.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
from tqdm.auto import tqdm

from ..files import atomic_path

__all__ = [
    "InputError",
    "InputInfo",
    "inspect_input",
    "separate_file",
    "chunk_layout",
    "model_grid",
    "TARGET_PEAK",
    "SILENCE_PEAK",
]

#: Peak of the training mixtures; each input is scaled to it before separation.
TARGET_PEAK = 0.999
#: Inputs whose mono peak is below this (−144 dBFS, under a 24-bit step) count as silent.
SILENCE_PEAK = 2.0**-24
#: Input frames decoded per block.
BLOCK_FRAMES = 65536
#: soxr quality; librosa's default resampler (``soxr_hq``) uses the same.
RESAMPLE_QUALITY = "HQ"


class InputError(ValueError):
    """An input file cannot be separated (unreadable, empty, silent …); names the file."""


@dataclass(frozen=True)
class InputInfo:
    """What :func:`inspect_input` found in one audio file.

    Attributes
    ----------
    path : pathlib.Path
    format, subtype : str
        As ``soundfile`` names them, e.g. ``"FLAC"``, ``"PCM_16"``.
    sample_rate : int
        The file's rate (Hz).
    channels : int
    frames : int
        Frames decoded (per channel), at ``sample_rate``.
    output_rate : int
        Rate the mono signal is resampled to (Hz).
    output_frames : int
        Samples of the mono signal at ``output_rate``: the output's length.
    peak : float
        Largest absolute sample of that mono signal at ``output_rate``.
    """

    path: Path
    format: str
    subtype: str
    sample_rate: int
    channels: int
    frames: int
    output_rate: int
    output_frames: int
    peak: float

    @property
    def seconds(self) -> float:
        """Duration of the input (s)."""
        return self.frames / self.sample_rate


def _open(path: Path) -> sf.SoundFile:
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, not an audio file")
    try:
        return sf.SoundFile(path)
    except sf.LibsndfileError as error:
        reason = error.error_string.rstrip(".")
        raise InputError(f"{path}: not an audio file soundfile can read ({reason})") from None
    except (OSError, RuntimeError) as error:
        raise InputError(f"{path}: cannot be read ({error})") from None


def _mono_blocks(
    handle: sf.SoundFile, output_rate: int, block_frames: int, on_raw: Callable | None = None
) -> Iterator[np.ndarray]:
    """Decode ``handle`` block by block; yield its mono downmix at ``output_rate``.

    Yields float32 (k,) arrays, k ≥ 0; concatenated they are the whole resampled signal,
    exactly as ``soxr.resample`` of the whole downmix would give it. ``on_raw(frames)``
    sees each decoded (k, channels) block first.
    """
    resampler = None
    if handle.samplerate != output_rate:
        resampler = soxr.ResampleStream(
            handle.samplerate, output_rate, 1, dtype="float32", quality=RESAMPLE_QUALITY
        )
    try:
        for frames in handle.blocks(blocksize=block_frames, dtype="float32", always_2d=True):
            if on_raw is not None:
                on_raw(frames)
            mono = frames[:, 0] if frames.shape[1] == 1 else frames.mean(axis=1, dtype=np.float32)
            yield mono if resampler is None else resampler.resample_chunk(mono)
    except sf.LibsndfileError as error:
        raise InputError(f"{handle.name}: cannot be decoded ({error.error_string})") from None
    if resampler is not None:
        yield resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True)


def inspect_input(
    path: str | os.PathLike, output_rate: int = 22050, *, block_frames: int = BLOCK_FRAMES
) -> InputInfo:
    """Read ``path`` once, in blocks, and check that it can be separated.

    Parameters
    ----------
    path : path-like
        An audio file ``soundfile`` reads, any rate and channel count.
    output_rate : int
        Rate the separator works at (Hz).
    block_frames : int
        Frames decoded at a time (bounds the memory used).

    Returns
    -------
    InputInfo

    Raises
    ------
    InputError
        The file is missing, a folder, not audio, undecodable, empty, shorter than one
        sample at ``output_rate``, holds NaN or infinite samples, or is silent (also when
        its channels cancel out in the mono average). The message starts with the path.
    """
    path = Path(path)
    counts = {"frames": 0, "channel_peak": 0.0}

    def check(frames: np.ndarray) -> None:
        if not np.isfinite(frames).all():
            raise InputError(f"{path}: holds NaN or infinite samples")
        counts["frames"] += frames.shape[0]
        if frames.size:
            counts["channel_peak"] = max(counts["channel_peak"], float(np.abs(frames).max()))

    with _open(path) as handle:
        output_frames, peak = 0, 0.0
        for block in _mono_blocks(handle, output_rate, block_frames, on_raw=check):
            output_frames += block.shape[0]
            if block.size:
                peak = max(peak, float(np.abs(block).max()))
        info = InputInfo(
            path=path,
            format=handle.format,
            subtype=handle.subtype,
            sample_rate=handle.samplerate,
            channels=handle.channels,
            frames=counts["frames"],
            output_rate=output_rate,
            output_frames=output_frames,
            peak=peak,
        )
    if info.frames == 0:
        raise InputError(f"{path}: is empty (no samples)")
    if info.output_frames == 0:
        raise InputError(f"{path}: is too short ({info.frames} samples at {info.sample_rate} Hz)")
    if peak < SILENCE_PEAK:
        if counts["channel_peak"] >= SILENCE_PEAK:
            raise InputError(
                f"{path}: is silent once its {info.channels} channels are averaged to mono "
                "(they cancel out)"
            )
        raise InputError(f"{path}: is silent (all samples are zero)")
    return info


def _chunks(blocks: Iterator[np.ndarray], size: int, hop: int) -> Iterator[np.ndarray]:
    """Cut a stream of blocks into chunks ``signal[k * hop : k * hop + size]``.

    The last chunk is what is left (shorter than ``size``); it is not yielded when the
    previous chunk already reached the end (fewer than ``size - hop + 1`` samples left).
    Holds at most one chunk and one block.
    """
    pieces: list[np.ndarray] = []
    have, yielded = 0, False
    for block in blocks:
        if block.size:
            pieces.append(block)
            have += block.shape[0]
        while have >= size:
            buffer = np.concatenate(pieces)
            yield buffer[:size].copy()
            yielded = True
            pieces = [buffer[hop:].copy()]
            have = pieces[0].shape[0]
    if have > size - hop or (have and not yielded):
        yield np.concatenate(pieces)


def _fade_in(n: int) -> np.ndarray:
    """Raised-cosine weights (n,) rising from ~0 to ~1; with ``1 - w`` they sum to one."""
    return (np.sin(0.5 * np.pi * (np.arange(n) + 0.5) / n) ** 2).astype(np.float32)


def chunk_layout(
    rate: int, chunk_seconds: float, overlap_seconds: float, grid: int = 1, lead_in: int = 0
) -> tuple[int, int]:
    """Chunk and overlap lengths in samples, fitted to a separator's block grid.

    Chunks start every ``hop = size - overlap`` samples, hop a multiple of ``grid``, and
    ``size + lead_in`` is a multiple of ``grid`` too: a separator that puts ``lead_in``
    samples before its input and works in blocks of ``grid`` samples (the book's encoder:
    768 and 64 frames × 256) then cuts each chunk into the very blocks it would cut the
    whole signal into, and gives the same output but near the chunk's ends. Where the
    chunks overlap, the two outputs are then nearly equal and the cross-fade is inaudible;
    off the grid, a vocoder's phase can differ between them and the fade dips.

    Parameters
    ----------
    rate : int
        Samples per second.
    chunk_seconds, overlap_seconds : float
        Wanted lengths (s); overlap at most half the chunk.
    grid, lead_in : int
        The separator's block and lead-in (samples); 1 and 0: no grid.

    Returns
    -------
    size, overlap : int
        ``size >= 2 * overlap``; the hop is the nearest multiple of ``grid`` (at least
        one) to the wanted ``chunk - overlap``, the overlap at least the wanted one.

    Raises
    ------
    ValueError
        A chunk that is not positive, or an overlap not between 0 and half of it.
    """
    if not (chunk_seconds > 0 and 0 <= 2 * overlap_seconds <= chunk_seconds):
        raise ValueError(
            f"chunks of {chunk_seconds} s overlapping by {overlap_seconds} s: need a positive "
            "chunk and an overlap between 0 and half of it"
        )
    if grid < 1 or lead_in < 0:
        raise ValueError(f"grid {grid} must be positive and lead_in {lead_in} not negative")
    wanted_overlap = round(overlap_seconds * rate)
    hop = grid * max(1, round((chunk_seconds - overlap_seconds) * rate / grid))
    while True:
        size = -(-(hop + wanted_overlap + lead_in) // grid) * grid - lead_in
        if size - hop <= hop:
            return size, size - hop
        hop += grid


def model_grid(profile) -> tuple[int, int]:
    """The block grid of the book's separators: (encoder block in samples, lead-in).

    ``profile.encoder.block_frames × features.hop_size`` (64 × 256 = 16 384 samples) and
    ``features.lead_in`` (768); for :func:`chunk_layout` and :func:`separate_file`.
    """
    return profile.encoder.block_frames * profile.features.hop_size, profile.features.lead_in


def separate_file(
    input_path: str | os.PathLike,
    output_path: str | os.PathLike,
    separator: Callable[[np.ndarray], np.ndarray],
    *,
    sample_rate: int | None = None,
    chunk_seconds: float = 20.0,
    overlap_seconds: float = 1.0,
    grid: tuple[int, int] | None = None,
    progress: bool | None = True,
    info: InputInfo | None = None,
    block_frames: int = BLOCK_FRAMES,
) -> dict:
    """Separate one audio file in chunks and write the estimate as a float WAV.

    Parameters
    ----------
    input_path : path-like
        Any file ``soundfile`` reads; any rate (resampled), any channels (averaged).
    output_path : path-like
        Destination (replaced atomically when complete; untouched on any failure or
        interruption). Written as WAV (RF64 beyond 4 GiB), mono, 32-bit float.
    separator : callable
        float32 (n,) at ``sample_rate``, peak ≤ 0.999 → float32 (n,), sample-aligned;
        e.g. a :class:`~synthsep_lib.pipeline.separators.Separator`.
    sample_rate : int, optional
        Rate of the separator and of the output; default ``separator.sample_rate``.
    chunk_seconds : float
        Length of the pieces given to the separator (s); bounds the memory.
    overlap_seconds : float
        Overlap of consecutive pieces, cross-faded (s); at most half ``chunk_seconds``.
    grid : tuple of int, optional
        ``(block, lead_in)`` of the separator's block grid (samples; :func:`model_grid`):
        the lengths are fitted to it by :func:`chunk_layout`. Default: none.
    progress : bool or None
        Show a progress bar (tqdm, on stderr); None: only when stderr is a terminal.
    info : InputInfo, optional
        :func:`inspect_input`'s result for this file at ``sample_rate``, if already
        known (saves a pass over the file).
    block_frames : int
        Input frames decoded at a time.

    Returns
    -------
    dict
        ``input``, ``output`` (str paths), ``input_sample_rate`` (Hz), ``channels``,
        ``input_seconds``, ``output_samples``, ``output_seconds``, ``chunks``,
        ``chunk_samples``, ``overlap_samples``,
        ``seconds`` (wall-clock time taken) and ``real_time_factor``
        (``seconds / input_seconds``).

    Raises
    ------
    InputError
        As :func:`inspect_input`, or the file changed while it was read.
    ValueError
        Chunk or overlap lengths that do not fit.
    """
    rate = int(sample_rate or separator.sample_rate)
    size, overlap = chunk_layout(rate, chunk_seconds, overlap_seconds, *(grid or (1, 0)))
    hop = size - overlap
    input_path, output_path = Path(input_path), Path(output_path)
    start = time.perf_counter()
    if info is None or info.output_rate != rate:
        info = inspect_input(input_path, rate, block_frames=block_frames)
    gain = TARGET_PEAK / info.peak
    fade_in = _fade_in(overlap)
    written, n_chunks = 0, 0
    # WAV's sizes are 32-bit; beyond 4 GiB write RF64 (same samples, 64-bit sizes)
    container = "RF64" if 4 * info.output_frames > 2**32 - 2**16 else "WAV"
    bar = tqdm(
        total=round(info.output_frames / rate, 1),
        desc=input_path.name,
        unit="s",
        bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total:.1f} s [{elapsed}<{remaining}]",
        disable=None if progress is None else not progress,
        leave=False,
    )
    with bar, atomic_path(output_path) as tmp, _open(input_path) as handle:
        with sf.SoundFile(tmp, "w", rate, 1, subtype="FLOAT", format=container) as out:

            def write(samples: np.ndarray) -> None:
                nonlocal written
                out.write(samples)
                written += samples.shape[0]
                bar.update(round(written / rate, 1) - bar.n)

            blocks = (
                block * np.float32(gain) for block in _mono_blocks(handle, rate, block_frames)
            )
            pending = None  # the previous chunk's output over the overlap, not yet written
            for chunk in _chunks(blocks, size, hop):
                estimate = np.asarray(separator(chunk), dtype=np.float32)
                if estimate.shape != chunk.shape:
                    raise ValueError(
                        f"the separator returned shape {estimate.shape} for a chunk of shape "
                        f"{chunk.shape}"
                    )
                estimate = estimate / np.float32(gain)
                if pending is not None:  # written as pending + w * (estimate - pending)
                    head = estimate[:overlap]
                    head -= pending
                    head *= fade_in[: head.shape[0]]
                    head += pending[: head.shape[0]]
                split = max(estimate.shape[0] - overlap, 0)
                write(estimate[:split])
                pending = estimate[split:]
                n_chunks += 1
            if pending is not None:
                write(pending)
        if written != info.output_frames:
            raise InputError(
                f"{input_path}: changed while it was read ({written} samples at {rate} Hz, "
                f"{info.output_frames} before)"
            )
    seconds = time.perf_counter() - start
    return {
        "input": str(input_path),
        "output": str(output_path),
        "input_sample_rate": info.sample_rate,
        "channels": info.channels,
        "input_seconds": info.seconds,
        "output_samples": written,
        "output_seconds": written / rate,
        "chunks": n_chunks,
        "chunk_samples": size,
        "overlap_samples": overlap,
        "seconds": seconds,
        "real_time_factor": seconds / info.seconds,
    }
