"""Streaming separation of audio files (synthsep_lib.pipeline.long_audio): every format and
rate ``soundfile`` reads, chunks cross-faded without seams, bounded memory, atomic output."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

from synthsep_lib.pipeline.long_audio import (
    TARGET_PEAK,
    InputError,
    chunk_layout,
    inspect_input,
    separate_file,
)

RATE = 22050

#: (format, subtype, sample rate, channels): the kinds of file the command line must read.
KINDS = {
    "wav-int16-16k-mono": ("WAV", "PCM_16", 16000, 1),
    "flac-44k-stereo": ("FLAC", "PCM_16", 44100, 2),
    "ogg-48k-stereo": ("OGG", "VORBIS", 48000, 2),
    "wav-float-22k-mono": ("WAV", "FLOAT", 22050, 1),
}
SUFFIX = {"WAV": ".wav", "FLAC": ".flac", "OGG": ".ogg"}


def speechlike(seconds: float, rate: int, channels: int, seed: int = 0) -> np.ndarray:
    """(n, channels) float64: a few partials under a slow envelope, plus a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * rate)) / rate
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 1.3 * t) ** 2
    columns = []
    for c in range(channels):
        tone = sum(np.sin(2 * np.pi * f * t + c) / k for k, f in enumerate((180, 410, 950), 1))
        columns.append(0.3 * envelope * tone + 0.01 * rng.standard_normal(t.shape))
    return np.stack(columns, axis=1)


def write_kind(folder, kind: str, seconds: float = 3.0, name: str = "noisy"):
    fmt, subtype, rate, channels = KINDS[kind]
    path = folder / f"{name}{SUFFIX[fmt]}"
    sf.write(path, speechlike(seconds, rate, channels), rate, format=fmt, subtype=subtype)
    return path


def expected_mono(path) -> np.ndarray:
    """The file as the separator's input should be: mono average, resampled, float32."""
    data, rate = sf.read(path, dtype="float32", always_2d=True)
    mono = data.mean(axis=1, dtype=np.float32)
    return mono if rate == RATE else soxr.resample(mono, rate, RATE, quality="HQ")


class Recorder:
    """A separator: ``fn(chunk)``, recording each chunk it was given."""

    sample_rate = RATE

    def __init__(self, fn=lambda x: x):
        self.fn = fn
        self.chunks: list[np.ndarray] = []

    def __call__(self, chunk):
        self.chunks.append(np.array(chunk))
        return self.fn(chunk)


@pytest.mark.parametrize("kind", KINDS)
def test_inspect_input_reads_every_kind(tmp_path, kind):
    path = write_kind(tmp_path, kind)
    _, _, rate, channels = KINDS[kind]
    info = inspect_input(path, RATE, block_frames=4096)
    reference = expected_mono(path)
    assert (info.sample_rate, info.channels) == (rate, channels)
    assert info.frames == sf.info(path).frames
    assert info.output_frames == reference.shape[0]
    assert info.output_frames == pytest.approx(info.frames * RATE / rate, abs=1)
    assert info.peak == pytest.approx(np.abs(reference).max(), rel=1e-6)
    assert info.seconds == pytest.approx(3.0, abs=1e-3)


@pytest.mark.parametrize("kind", KINDS)
def test_a_linear_separator_in_chunks_gives_the_whole_file_result(tmp_path, kind):
    path = write_kind(tmp_path, kind)
    out = tmp_path / "out" / "noisy.wav"
    separator = Recorder(lambda x: 0.5 * x)
    # 3 s in 0.5-s chunks overlapping by 0.1 s: 7 full chunks (hop 0.4 s) and 0.2 s left,
    # so seven seams; blocks smaller than a chunk
    result = separate_file(
        path,
        out,
        separator,
        chunk_seconds=0.5,
        overlap_seconds=0.1,
        progress=False,
        block_frames=3000,
    )
    estimate, rate = sf.read(out, dtype="float32")
    reference = expected_mono(path)
    assert sf.info(out).subtype == "FLOAT" and rate == RATE and estimate.ndim == 1
    assert estimate.shape == reference.shape
    np.testing.assert_allclose(estimate, 0.5 * reference, rtol=1e-5, atol=1e-6)
    assert result["chunks"] == len(separator.chunks) == 8
    assert result["output_samples"] == reference.shape[0]
    assert result["input_sample_rate"] == KINDS[kind][2]
    assert result["channels"] == KINDS[kind][3]
    assert result["input_seconds"] == pytest.approx(3.0, abs=1e-3)
    assert result["real_time_factor"] == pytest.approx(result["seconds"] / 3.0, rel=1e-3)
    assert sorted(p.name for p in out.parent.iterdir()) == ["noisy.wav"]  # no temporary left


def exact_file(tmp_path, n: int):
    """A 22 050 Hz float WAV of n samples (no resampling: sample counts are exact)."""
    path = tmp_path / f"exact_{n}.wav"
    sf.write(path, speechlike(n / RATE, RATE, 1, seed=n)[:, 0], RATE, subtype="FLOAT")
    return path


@pytest.mark.parametrize(
    "n, chunk_lengths",
    [
        (1, [1]),
        (999, [999]),
        (1000, [1000]),  # exactly one chunk: its tail needs no second chunk
        (1001, [1000, 101]),
        (1900, [1000, 1000]),
        (1901, [1000, 1000, 101]),
        (2345, [1000, 1000, 545]),
    ],
)
def test_chunks_tile_the_signal_and_identity_passes_unchanged(tmp_path, n, chunk_lengths):
    path = exact_file(tmp_path, n)
    out = tmp_path / "out.wav"
    separator = Recorder()  # identity
    separate_file(
        path,
        out,
        separator,
        chunk_seconds=1000 / RATE,
        overlap_seconds=100 / RATE,
        progress=False,
        block_frames=256,
    )
    source, _ = sf.read(path, dtype="float32")
    estimate, _ = sf.read(out, dtype="float32")
    assert [c.shape[0] for c in separator.chunks] == chunk_lengths
    # chunk k is the signal from k * 900 on, at the training level
    gain = TARGET_PEAK / np.abs(source).max()
    for k, chunk in enumerate(separator.chunks):
        np.testing.assert_allclose(chunk, gain * source[900 * k : 900 * k + 1000], rtol=1e-6)
    assert max(np.abs(c).max() for c in separator.chunks) == pytest.approx(TARGET_PEAK, rel=1e-6)
    # identity in, identity out: the level is restored and the seams leave no trace
    assert estimate.shape == source.shape
    np.testing.assert_allclose(estimate, source, rtol=1e-6, atol=1e-7)


def test_overlaps_are_cross_faded_with_weights_that_sum_to_one(tmp_path):
    path = exact_file(tmp_path, 2345)
    out = tmp_path / "out.wav"
    count = iter(range(100))
    # chunk k comes back as the constant k (scaled back by the gain on the way out)
    separate_file(
        path,
        out,
        lambda x: np.full_like(x, next(count)),
        sample_rate=RATE,
        chunk_seconds=1000 / RATE,
        overlap_seconds=100 / RATE,
        progress=False,
    )
    estimate, _ = sf.read(out, dtype="float64")
    source, _ = sf.read(path, dtype="float64")
    level = estimate / (np.abs(source).max() / TARGET_PEAK)  # back in chunk units
    np.testing.assert_allclose(level[:900], 0.0, atol=1e-6)
    np.testing.assert_allclose(level[1000:1800], 1.0, rtol=1e-6)
    np.testing.assert_allclose(level[1900:], 2.0, rtol=1e-6)
    for start, before in ((900, 0.0), (1800, 1.0)):
        ramp = level[start : start + 100] - before  # weight of the later chunk
        assert np.all(np.diff(ramp) > 0) and 0 < ramp[0] < 0.01 and 0.99 < ramp[-1] < 1
        np.testing.assert_allclose(ramp + ramp[::-1], 1.0, rtol=1e-5)  # raised cosine


@pytest.mark.parametrize("chunk, overlap", [(20, 1), (5, 0), (2, 1), (1, 0.5), (60, 2.5)])
def test_chunk_layout_fits_the_block_grid(chunk, overlap):
    grid, lead_in = 16384, 768
    size, over = chunk_layout(RATE, chunk, overlap, grid, lead_in)
    hop = size - over
    assert hop % grid == 0 and (size + lead_in) % grid == 0
    assert round(overlap * RATE) <= over <= hop
    # the hop is the grid's nearest to the wanted one, unless the overlap needed more
    assert abs(hop - (chunk - overlap) * RATE) <= grid / 2 or over > hop - grid


def test_chunk_layout_without_a_grid_is_the_wanted_lengths():
    assert chunk_layout(RATE, 20, 1) == (441000, 22050)
    assert chunk_layout(RATE, 20, 1, 16384, 768) == (457984, 32000)  # 20.8 s, 1.45 s


def blockwise(grid: int, lead_in: int):
    """A separator in the layout of the book's: ``lead_in`` zeros first, then blocks of
    ``grid`` samples, each scaled by its own RMS (so the result depends on the cuts)."""

    def separator(x):
        padded = np.zeros(-(-(lead_in + x.shape[0]) // grid) * grid, dtype=np.float32)
        padded[lead_in : lead_in + x.shape[0]] = x
        blocks = padded.reshape(-1, grid)
        out = blocks * np.sqrt(np.mean(blocks**2, axis=1, keepdims=True))
        return out.reshape(-1)[lead_in : lead_in + x.shape[0]]

    separator.sample_rate = RATE
    return separator


def test_on_the_grid_chunks_give_what_the_whole_file_gives(tmp_path):
    path = exact_file(tmp_path, 9000)
    grid, lead_in = 512, 24
    separator = blockwise(grid, lead_in)
    whole, chunked, off_grid = (tmp_path / f"{n}.wav" for n in ("whole", "chunked", "off"))
    separate_file(path, whole, separator, chunk_seconds=1.0, overlap_seconds=0, progress=False)
    seconds = {"chunk_seconds": 2000 / RATE, "overlap_seconds": 300 / RATE, "progress": False}
    result = separate_file(path, chunked, separator, grid=(grid, lead_in), **seconds)
    separate_file(path, off_grid, separator, **seconds)
    reference = sf.read(whole, dtype="float32")[0]
    size, overlap = result["chunk_samples"], result["overlap_samples"]
    assert result["chunks"] > 3 and (size + lead_in) % grid == 0 and (size - overlap) % grid == 0
    # identical but where chunks overlap: there a chunk's first block lacks the real
    # lead-in (zeros instead), and the fade gives it little weight
    seams = np.zeros(reference.shape, dtype=bool)
    for k in range(1, result["chunks"]):
        seams[k * (size - overlap) : k * (size - overlap) + overlap] = True
    estimate = sf.read(chunked, dtype="float32")[0]
    np.testing.assert_allclose(estimate[~seams], reference[~seams], rtol=1e-5)
    np.testing.assert_allclose(estimate[seams], reference[seams], rtol=0.05, atol=1e-3)
    off = sf.read(off_grid, dtype="float32")[0]
    assert np.abs(off[~seams] - reference[~seams]).max() > 1e-2


def test_inspect_names_the_file_for_every_bad_input(tmp_path):
    text = tmp_path / "notes.wav"
    text.write_text("not audio")
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0), RATE)
    zeros = tmp_path / "zeros.flac"
    sf.write(zeros, np.zeros(RATE), RATE)
    cancel = tmp_path / "cancel.wav"
    x = speechlike(1.0, 16000, 1)[:, 0]
    sf.write(cancel, np.stack([x, -x], axis=1), 16000, subtype="FLOAT")
    nan = tmp_path / "nan.wav"
    sf.write(nan, np.r_[x, np.nan], 16000, subtype="FLOAT")
    cases = {
        tmp_path / "missing.wav": "no such file",
        tmp_path: "is a folder",
        text: "not an audio file",
        empty: "is empty",
        zeros: "is silent (all samples are zero)",
        cancel: "cancel out",
        nan: "NaN",
    }
    for path, reason in cases.items():
        with pytest.raises(InputError) as error:
            inspect_input(path)
        assert str(error.value).startswith(f"{path}: ") and reason in str(error.value)


@pytest.mark.parametrize("failure", [RuntimeError("model crashed"), KeyboardInterrupt()])
def test_a_failure_midway_leaves_no_file_and_the_old_output_untouched(tmp_path, failure):
    path = exact_file(tmp_path, 5000)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    old = out_dir / "exact_5000.wav"
    old.write_bytes(b"previous result")
    calls = iter(range(100))

    def separator(chunk):
        if next(calls) == 2:  # after two chunks were written
            raise failure
        return chunk

    with pytest.raises(type(failure)):
        separate_file(
            path,
            old,
            separator,
            sample_rate=RATE,
            chunk_seconds=0.05,
            overlap_seconds=0.01,
            progress=False,
        )
    assert [p.name for p in out_dir.iterdir()] == ["exact_5000.wav"]
    assert old.read_bytes() == b"previous result"


def test_chunk_settings_that_do_not_fit_are_refused(tmp_path):
    path = exact_file(tmp_path, 100)
    for chunk, overlap in ((0.0, 0.0), (1.0, 0.6), (1.0, -0.1)):
        with pytest.raises(ValueError, match="overlap"):
            separate_file(
                path,
                tmp_path / "o.wav",
                Recorder(),
                chunk_seconds=chunk,
                overlap_seconds=overlap,
                progress=False,
            )
    assert not (tmp_path / "o.wav").exists()


# ---------------------------------------------------------------------------- memory

# The child reports VmHWM, the peak resident memory of its own address space. Not
# ru_maxrss: Linux carries the parent's peak over into it through (v)fork and exec, so
# a child of a big pytest process would report the parent's size.
CHILD = textwrap.dedent(
    """
    import sys
    import numpy as np
    import soundfile as sf
    from synthsep_lib.pipeline.long_audio import separate_file

    mode, source, target = sys.argv[1:]
    if mode == "stream":
        separate_file(source, target, lambda x: 0.5 * x, sample_rate=22050, progress=False)
    else:  # what a whole-file implementation holds, at least: the decoded signal
        data, rate = sf.read(source)
    with open("/proc/self/status") as status:
        print(next(line.split()[1] for line in status if line.startswith("VmHWM:")))  # KiB
    """
)


def peak_rss_mib(mode: str, source, target) -> float:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, mode, str(source), str(target)],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(done.stdout.split()[-1]) / 1024


def write_long(path, seconds: float, rate: int = 44100) -> None:
    """A 16-bit mono WAV written block by block (this process never holds it whole)."""
    block = speechlike(10.0, rate, 1)[:, 0]
    with sf.SoundFile(path, "w", rate, 1, subtype="PCM_16") as handle:
        for _ in range(int(seconds // 10)):
            handle.write(block)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux's /proc")
def test_memory_does_not_grow_with_the_length_of_the_file(tmp_path):
    short, long = tmp_path / "short.wav", tmp_path / "long.wav"
    write_long(short, 30)
    write_long(long, 600)  # 10 min at 44.1 kHz: 26.5 M samples, 212 MB as float64
    stream_short = peak_rss_mib("stream", short, tmp_path / "short_out.wav")
    stream_long = peak_rss_mib("stream", long, tmp_path / "long_out.wav")
    whole_long = peak_rss_mib("whole", long, "-")
    assert sf.info(tmp_path / "long_out.wav").frames == 600 * RATE
    assert stream_long - stream_short < 30, (stream_short, stream_long)
    # the measurement would catch a whole-file implementation: decoding alone costs more
    assert whole_long - stream_short > 100, (stream_short, whole_long)
