"""Harder mixtures for Chapter 8: reverberant rooms and several interferers at once.

:mod:`synthsep_lib.mixing` adds one dry noise clip to one dry utterance. Here the same
recipe gets two harder variants, alone or together:

* **reverberation** — every source (the target talker and each interferer) is heard
  through its own room impulse response (RIR), simulated with the image method in a
  shoebox room whose reverberation time T60 is chosen (:func:`room_impulse_responses`);
* **several interferers** — the noise clips are tiled to the target's length, scaled to
  equal energy at the microphone and summed.

The SNR is controlled as in :func:`~synthsep_lib.mixing.simulate_mixture_snr`, but between
the *reverberant* target image and the *reverberant* sum of interferers (energies over
the whole signal). What the methods must recover, and what the evaluation compares with,
is still the **dry** target: its reverberation counts as part of the noise. The dry target
is aligned with its image on the direct path (:func:`reverberate`), so that a perfect
dereverberation and denoising would give back exactly the returned ``target``.

Signals are 1-D float arrays at the feature sample rate (22050 Hz); RIRs must be
simulated at that rate too. pyroomacoustics (``pip install synthsep-lib[rooms]``) is
imported only by :func:`room_impulse_responses`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.signal

from .mixing import (
    MIXTURE_PEAK,
    Mixture,
    _check_pair,
    _name,
    _silent_noise,
    mix_and_rescale,
    tile_noise,
)

__all__ = [
    "MAX_IMAGE_ORDER",
    "ROOM_DIM",
    "HarderMixture",
    "RoomResponses",
    "reverberate",
    "room_impulse_responses",
    "simulate_mixture_harder",
]

#: Default shoebox room (length, width, height), metres: a living room.
ROOM_DIM = (6.0, 5.0, 3.0)

#: Cap on the image-source order (the cost grows with its cube). Sabine's formula asks for
#: order 106 at T60 = 0.8 s in :data:`ROOM_DIM`: 0.5 s per source on one core. Order 60
#: keeps the RIR 1.06 s long, past the -60 dB point of a 0.8 s room, takes 0.09 s per
#: source and lowers the measured T30 by about 2 %. Rooms up to T60 ≈ 0.45 s are not capped.
MAX_IMAGE_ORDER = 60

#: Distances that the positions keep, metres.
_WALL_MARGIN = 0.5
_TARGET_DISTANCE = (1.0, 2.0)
_INTERFERER_MIN_DISTANCE = 1.0
_MAX_DRAWS = 10_000


@dataclass
class RoomResponses:
    """Simulated RIRs from several sources to one microphone in a shoebox room.

    Attributes
    ----------
    rirs : list of numpy.ndarray, float64, shape (m_k,)
        One RIR per source: ``rirs[0]`` the target talker's, ``rirs[1:]`` the
        interferers'. Each starts with the propagation delay.
    direct_delays : list of int
        Sample of each RIR's direct-path peak (the propagation delay plus the centre of
        pyroomacoustics' fractional-delay filter): the argmax of a direct-path-only
        simulation. Usually ``argmax |rir|`` too, but not always: with little absorption
        two reflections arriving together can outweigh the direct path.
    sample_rate : int
        Hz.
    t60 : float
        Requested reverberation time, seconds.
    measured_t60 : float
        T60 of ``rirs[0]`` measured by ``pyroomacoustics.experimental.measure_rt60``
        (Schroeder integration, a fit over the 30 dB below -5 dB, extrapolated to
        -60 dB: T30), seconds.
    room_dim : tuple of float
        Room size (x, y, z), metres.
    source_positions : numpy.ndarray, shape (n_sources, 3)
        Positions in metres; row 0 is the target talker.
    mic_position : numpy.ndarray, shape (3,)
        Microphone position, metres.
    absorption : float
        Energy absorption coefficient of every wall (Sabine's inverse formula).
    max_order : int
        Image-source order used (Sabine's order, capped at the requested cap).
    seed : int
        Seed of the positions.
    """

    rirs: list[np.ndarray]
    direct_delays: list[int]
    sample_rate: int
    t60: float
    measured_t60: float
    room_dim: tuple[float, float, float]
    source_positions: np.ndarray
    mic_position: np.ndarray
    absorption: float
    max_order: int
    seed: int


@dataclass
class HarderMixture(Mixture):
    """A :class:`~synthsep_lib.mixing.Mixture` with the reverberant image kept apart.

    ``mixture``, ``target`` (the scaled **dry** target), ``noise`` (``mixture − target``:
    the interferers and the target's reverberation), ``scale``, ``snr_db`` (the SNR of
    the target image against the interferers, dB) and ``noise_gain`` (the gain g of the
    equal-energy sum of interferers) are as in ``Mixture``; ``noise_offset`` is the first
    interferer's.

    Attributes
    ----------
    target_image : numpy.ndarray, float32, shape (L,)
        ``scale ·`` the target as the microphone hears it (equal to ``target`` without a
        room); ``target_image − target`` is the target's reverberation and
        ``mixture − target_image`` the interferers.
    noise_offsets : tuple of int
        Start sample of the tiling of each interferer.
    """

    target_image: np.ndarray | None = None
    noise_offsets: tuple[int, ...] = ()


# --------------------------------------------------------------------------- rooms


def _draw_position(rng: np.random.Generator, room: np.ndarray, accept, what: str) -> np.ndarray:
    """Uniform position ≥ ``_WALL_MARGIN`` from the walls for which ``accept(p)`` holds."""
    low, high = np.full(3, _WALL_MARGIN), room - _WALL_MARGIN
    for _ in range(_MAX_DRAWS):
        p = rng.uniform(low, high)
        if accept(p):
            return p
    raise ValueError(
        f"could not place the {what} in a room of {tuple(room.tolist())} m "
        f"({_MAX_DRAWS} draws): the room is too small for the distances required"
    )


def _positions(rng: np.random.Generator, room: np.ndarray, n_sources: int):
    """Microphone, then the target 1–2 m from it, then interferers ≥ 1 m from it."""
    mic = rng.uniform(np.full(3, _WALL_MARGIN), room - _WALL_MARGIN)
    near, far = _TARGET_DISTANCE
    sources = [
        _draw_position(rng, room, lambda p: near <= np.linalg.norm(p - mic) <= far, "target talker")
    ]
    for k in range(1, n_sources):
        sources.append(
            _draw_position(
                rng,
                room,
                lambda p: np.linalg.norm(p - mic) >= _INTERFERER_MIN_DISTANCE,
                f"interferer {k}",
            )
        )
    return mic, np.stack(sources)


def room_impulse_responses(
    t60: float,
    n_sources: int,
    sample_rate: int,
    seed: int,
    room_dim: Sequence[float] = ROOM_DIM,
    *,
    max_order: int = MAX_IMAGE_ORDER,
) -> RoomResponses:
    """Simulate the RIRs of ``n_sources`` random sources to one microphone in a room.

    Recipe:

    1. ``pyroomacoustics.inverse_sabine(t60, room_dim)`` gives the walls' energy
       absorption and the image-source order that reaches T60; the order is capped at
       ``max_order`` (the cost grows with its cube).
    2. ``numpy.random.default_rng(seed)`` draws the microphone, then the target talker
       1–2 m from it, then each interferer at least 1 m from it, all uniformly inside
       the room and at least 0.5 m from every wall.
    3. The image method (``pyroomacoustics.ShoeBox``, no air absorption, no random
       jitter of the images) computes the RIRs, and the same room without reflections
       their direct paths. pyroomacoustics' hybrid image/ray-tracing simulator would be
       faster for long T60, but its RIRs differ from call to call (its rays are drawn
       in C++, beyond numpy's seed).

    With the default cap the RIRs last 1.06 s: enough for T60 up to about 0.9 s; for
    longer rooms raise ``max_order`` (order 106, Sabine's for 0.8 s, takes 0.5 s per
    source).

    The same arguments always give the same RIRs.

    Parameters
    ----------
    t60 : float
        Requested reverberation time, seconds (> 0).
    n_sources : int
        Number of sources (≥ 1): the target talker and ``n_sources − 1`` interferers.
    sample_rate : int
        Hz (22050 for this book's signals).
    seed : int
        Seed of the positions.
    room_dim : sequence of 3 float
        Room size (x, y, z), metres.
    max_order : int
        Cap on the image-source order (default :data:`MAX_IMAGE_ORDER`).

    Returns
    -------
    RoomResponses

    Raises
    ------
    ValueError
        Non-positive ``t60``, ``n_sources``, ``sample_rate`` or ``max_order``; a room
        that cannot reach ``t60`` (too large or too absorbing: pyroomacoustics' message
        is quoted) or is too small for the distances.
    """
    import pyroomacoustics as pra  # imported here: importing this module stays light

    if not (np.isfinite(t60) and t60 > 0):
        raise ValueError(f"t60 must be a positive number of seconds, got {t60!r}")
    if int(n_sources) != n_sources or n_sources < 1:
        raise ValueError(f"n_sources must be a positive integer, got {n_sources!r}")
    if int(sample_rate) != sample_rate or sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive integer in Hz, got {sample_rate!r}")
    if int(max_order) != max_order or max_order < 1:
        raise ValueError(f"max_order must be a positive integer, got {max_order!r}")
    room = np.asarray(room_dim, dtype=np.float64)
    if room.shape != (3,) or not np.all(room > 2 * _WALL_MARGIN):
        raise ValueError(
            f"room_dim must be 3 lengths in metres, each > {2 * _WALL_MARGIN}, got {room_dim!r}"
        )
    try:
        absorption, sabine_order = pra.inverse_sabine(float(t60), room.tolist())
    except ValueError as err:
        raise ValueError(
            f"a room of {tuple(room.tolist())} m cannot have T60 = {t60} s: {err}"
        ) from err
    order = int(min(sabine_order, max_order))
    mic, sources = _positions(np.random.default_rng(seed), room, int(n_sources))

    shoebox = pra.ShoeBox(
        room.tolist(),
        fs=int(sample_rate),
        materials=pra.Material(float(absorption)),
        max_order=order,
    )
    for position in sources:
        shoebox.add_source(position.tolist())
    shoebox.add_microphone(mic.tolist())
    shoebox.compute_rir()
    rirs = [np.asarray(h, dtype=np.float64) for h in shoebox.rir[0]]
    # the same room without reflections: its peaks are the direct paths
    direct = pra.ShoeBox(room.tolist(), fs=int(sample_rate), max_order=0)
    for position in sources:
        direct.add_source(position.tolist())
    direct.add_microphone(mic.tolist())
    direct.compute_rir()
    delays = [int(np.argmax(np.abs(h))) for h in direct.rir[0]]
    measured = pra.experimental.measure_rt60(rirs[0], fs=int(sample_rate), decay_db=30)
    return RoomResponses(
        rirs=rirs,
        direct_delays=delays,
        sample_rate=int(sample_rate),
        t60=float(t60),
        measured_t60=float(measured),
        room_dim=tuple(float(v) for v in room),
        source_positions=sources,
        mic_position=mic,
        absorption=float(absorption),
        max_order=order,
        seed=int(seed),
    )


def reverberate(
    signal: np.ndarray, rir: np.ndarray, length: int | None = None, *, delay: int | None = None
) -> np.ndarray:
    """Convolve ``signal`` with ``rir``, aligned on the direct path and cut to ``length``.

    The RIR's direct-path tap ``d`` is moved to sample 0: ``out[n] = (signal * rir)[n + d]``.
    The image then lines up with the dry signal, which the evaluation compares with; the
    taps before ``d`` act on later samples of ``signal``.

    Parameters
    ----------
    signal : numpy.ndarray, shape (n,)
        Dry signal.
    rir : numpy.ndarray, shape (m,)
        Impulse response at the signal's sample rate.
    length : int, optional
        Samples returned (default n); zero-padded if the convolution is shorter.
    delay : int, optional
        ``d``, the direct path's sample in ``rir`` (e.g. ``RoomResponses.direct_delays``).
        Default: the strongest tap, ``argmax |rir|``.

    Returns
    -------
    numpy.ndarray, float64, shape (length,)

    Raises
    ------
    ValueError
        Non-1-D, empty or non-finite ``signal`` or ``rir``; an all-zero ``rir``; a
        negative ``length``; a ``delay`` outside the RIR.
    """
    x = np.asarray(signal, dtype=np.float64)
    h = np.asarray(rir, dtype=np.float64)
    for name, arr in (("signal", x), ("rir", h)):
        if arr.ndim != 1 or arr.size == 0:
            raise ValueError(f"{name} must be a non-empty 1-D array, got shape {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} contains NaN or infinite samples")
    if not np.any(h):
        raise ValueError("rir is all zeros: it has no direct path")
    length = x.size if length is None else int(length)
    if length < 0:
        raise ValueError(f"length must be ≥ 0, got {length}")
    delay = int(np.argmax(np.abs(h))) if delay is None else int(delay)
    if not 0 <= delay < h.size:
        raise ValueError(f"delay must be a sample of the rir, in [0, {h.size}), got {delay}")
    # oaconvolve: overlap-add, fast when the signal is much longer than the RIR
    wet = scipy.signal.oaconvolve(x, h)[delay : delay + length]
    return np.pad(wet, (0, length - wet.size))


# --------------------------------------------------------------------------- mixtures


def _as_clips(noises) -> list:
    """A list of clips; one 1-D array counts as one clip."""
    if isinstance(noises, np.ndarray) and noises.ndim == 1:
        return [noises]
    clips = list(noises)
    if not clips:
        raise ValueError("noises is empty: give at least one noise clip")
    return clips


def simulate_mixture_harder(
    target: np.ndarray,
    noises: Sequence[np.ndarray] | np.ndarray,
    snr_db: float,
    *,
    rooms: RoomResponses | None = None,
    noise_offsets: Sequence[int] | None = None,
    peak: float = MIXTURE_PEAK,
    target_id: str | None = None,
    noise_ids: Sequence[str | None] | None = None,
) -> HarderMixture:
    """An SNR-controlled mixture with several interferers, optionally in a room.

    1. Each noise clip k is tiled to L = len(target) samples from ``noise_offsets[k]``
       (:func:`~synthsep_lib.mixing.tile_noise`).
    2. With ``rooms``, the target and interferer k are reverberated with ``rirs[0]``
       and ``rirs[k + 1]`` (:func:`reverberate`, aligned on ``direct_delays``); without,
       the images are the dry signals.
    3. The interferer images are scaled to the energy of the first one and summed: v.
    4. The gain g makes ``10 log10(Σ x² / Σ (g·v)²) = snr_db``, x the target image.
    5. ``mixture = x + g·v``, rescaled with every part so that it peaks at ``peak``
       (:func:`~synthsep_lib.mixing.mix_and_rescale`).

    With one noise and no room this is :func:`~synthsep_lib.mixing.simulate_mixture_snr`,
    sample for sample.

    Parameters
    ----------
    target : numpy.ndarray, shape (L,)
        Dry target at 22050 Hz.
    noises : sequence of numpy.ndarray, each shape (m_k,)
        One or more noise clips at the same rate, heard simultaneously; a single 1-D
        array counts as one clip.
    snr_db : float
        SNR of the target image against the sum of interferer images, dB.
    rooms : RoomResponses, optional
        RIRs of ``1 + len(noises)`` sources at the signals' rate; None for dry mixing.
    noise_offsets : sequence of int, optional
        Start sample of each clip's tiling (default all 0).
    peak : float
        Peak of the returned mixture.
    target_id : str, optional
        Name used in error messages.
    noise_ids : sequence of str, optional
        Names of the clips used in error messages.

    Returns
    -------
    HarderMixture
        float32 signals: ``target`` the scaled dry target, ``noise = mixture − target``,
        ``target_image`` the scaled reverberant target; ``snr_db`` the achieved image SNR
        and ``noise_gain`` g.

    Raises
    ------
    ValueError
        Silent, empty, non-1-D or NaN/inf target or clip (naming it); a non-finite
        ``snr_db`` or non-positive ``peak``; ``noise_offsets`` or ``noise_ids`` not one
        per clip, or an offset outside its clip; ``rooms`` with another number of RIRs;
        interferers that are silent over the L samples or
        cancel each other.
    """
    if not np.isfinite(snr_db):
        raise ValueError(f"snr_db must be a finite number of dB, got {snr_db!r}")
    if not (np.isfinite(peak) and peak > 0):
        raise ValueError(f"peak must be a positive number, got {peak!r}")
    clips = _as_clips(noises)
    n = len(clips)
    offsets = [0] * n if noise_offsets is None else [int(o) for o in noise_offsets]
    ids = [None] * n if noise_ids is None else list(noise_ids)
    for what, values in (("noise_offsets", offsets), ("noise_ids", ids)):
        if len(values) != n:
            raise ValueError(f"{what} has {len(values)} entries for {n} noise clip(s)")
    if rooms is not None and len(rooms.rirs) != 1 + n:
        raise ValueError(
            f"rooms holds {len(rooms.rirs)} RIR(s); {1 + n} are needed "
            f"(the target's, then one per noise clip)"
        )

    tiled = []
    for clip, offset, ident in zip(clips, offsets, ids, strict=True):
        s1, checked = _check_pair(target, clip, target_id, ident)
        tiled.append(tile_noise(checked, s1.shape[0], offset))
    length = s1.shape[0]
    if rooms is None:
        image, images = s1, tiled
    else:
        images = [
            reverberate(x, h, length, delay=d)
            for x, h, d in zip([s1, *tiled], rooms.rirs, rooms.direct_delays, strict=True)
        ]
        image, images = images[0], images[1:]

    energies = [float(np.sum(v * v)) for v in images]
    for energy, ident in zip(energies, ids, strict=True):
        if energy == 0.0:
            raise ValueError(_silent_noise(ident, length, "SNR undefined"))
    # equal energy at the microphone; the first image is left untouched, so that one dry
    # clip gives exactly simulate_mixture_snr's arithmetic
    noise_sum = images[0]
    for v, energy in zip(images[1:], energies[1:], strict=True):
        noise_sum = noise_sum + np.sqrt(energies[0] / energy) * v
    e1 = float(np.sum(image * image))
    e2 = float(np.sum(noise_sum * noise_sum))
    if e2 == 0.0:
        names = ", ".join(_name("noise", i) for i in ids)
        raise ValueError(f"the interferers ({names}) cancel each other: SNR undefined")
    gain = float(np.sqrt(e1 / (e2 * 10.0 ** (float(snr_db) / 10.0))))
    mixed = mix_and_rescale(image, noise_sum, gain, float(peak), offsets[0])

    # the dry target is what the methods must give back; everything else is noise (the
    # first term, the target's reverberation, is exactly 0 without a room, so that the
    # noise is simulate_mixture_snr's ``scale · (g · v)`` to the bit)
    noise = mixed.scale * (image - s1) + mixed.scale * (gain * noise_sum)
    fields = {f.name: getattr(mixed, f.name) for f in dataclasses.fields(mixed)}
    fields.update(target=(mixed.scale * s1).astype(np.float32), noise=noise.astype(np.float32))
    return HarderMixture(**fields, target_image=mixed.target, noise_offsets=tuple(offsets))
