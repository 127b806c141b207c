"""Tests of synthsep_lib.harder_mixing: simulated rooms, reverberation, harder mixtures."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
from conftest import speech_like

from synthsep_lib import mixing
from synthsep_lib.harder_mixing import (
    MAX_IMAGE_ORDER,
    ROOM_DIM,
    HarderMixture,
    reverberate,
    room_impulse_responses,
    simulate_mixture_harder,
)

SR = 22050
SPEED_OF_SOUND = 343.0  # pyroomacoustics' default, m/s


def _noise(n: int = 3000, seed: int = 1, scale: float = 0.3) -> np.ndarray:
    return (scale * np.random.default_rng(seed).standard_normal(n)).astype(np.float32)


@pytest.fixture(scope="module")
def target() -> np.ndarray:
    return speech_like(1.0, seed=3, peak=0.999).astype(np.float32)


@pytest.fixture(scope="module")
def rooms() -> dict:
    """One room per T60 with a target and two interferers (simulated once: ~0.4 s)."""
    return {t60: room_impulse_responses(t60, 3, SR, seed=7) for t60 in (0.3, 0.8)}


# --------------------------------------------------------------------------- rooms


def test_rooms_are_deterministic_per_seed(rooms):
    again = room_impulse_responses(0.3, 3, SR, seed=7)
    first = rooms[0.3]
    assert len(again.rirs) == 3
    for a, b in zip(first.rirs, again.rirs, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(first.source_positions, again.source_positions)
    np.testing.assert_array_equal(first.mic_position, again.mic_position)
    assert first.direct_delays == again.direct_delays
    other = room_impulse_responses(0.3, 3, SR, seed=8)
    assert not np.allclose(other.source_positions, first.source_positions)


@pytest.mark.parametrize("t60", [0.3, 0.8])
def test_measured_t60_is_close_to_the_request(rooms, t60):
    room = rooms[t60]
    assert room.t60 == t60
    # the image method decays ~15 % slower than Sabine's formula predicts (0.93 s for 0.8 s)
    assert 0.65 * t60 <= room.measured_t60 <= 1.35 * t60
    # the RIR lasts past the -60 dB point, so T30 is measured on a complete decay
    assert len(room.rirs[0]) / SR > t60


def test_image_order_is_sabines_capped(rooms):
    assert rooms[0.3].max_order == 40  # Sabine's own order, under the cap
    assert rooms[0.8].max_order == MAX_IMAGE_ORDER
    assert 0 < rooms[0.8].absorption < rooms[0.3].absorption < 1


def test_positions_keep_their_distances():
    room = np.asarray(ROOM_DIM)
    for seed in range(12):
        r = room_impulse_responses(0.2, 4, SR, seed)  # short T60: fast
        points = np.vstack([r.mic_position, r.source_positions])
        assert np.all(points >= 0.5) and np.all(points <= room - 0.5)
        distances = np.linalg.norm(r.source_positions - r.mic_position, axis=1)
        assert 1.0 <= distances[0] <= 2.0
        assert np.all(distances[1:] >= 1.0)


def test_direct_delays_follow_the_geometry():
    for seed in range(4):
        r = room_impulse_responses(0.2, 4, SR, seed)
        distances = np.linalg.norm(r.source_positions - r.mic_position, axis=1)
        # relative delays: whatever the filter's offset, they are the path differences
        expected = (distances - distances[0]) / SPEED_OF_SOUND * SR
        got = np.asarray(r.direct_delays) - r.direct_delays[0]
        np.testing.assert_allclose(got, expected, atol=1.0)
        assert r.direct_delays[0] > distances[0] / SPEED_OF_SOUND * SR


def test_direct_delay_is_not_always_the_strongest_tap():
    """Seed 34 at T60 = 0.8 s: two reflections outweigh the direct path by 38 samples."""
    r = room_impulse_responses(0.8, 1, SR, seed=34)
    assert int(np.argmax(np.abs(r.rirs[0]))) - r.direct_delays[0] > 30


def test_room_errors():
    with pytest.raises(ValueError, match="T60 = 0.05"):
        room_impulse_responses(0.05, 1, SR, 0, room_dim=(20.0, 20.0, 5.0))
    with pytest.raises(ValueError, match="t60"):
        room_impulse_responses(0.0, 1, SR, 0)
    with pytest.raises(ValueError, match="n_sources"):
        room_impulse_responses(0.3, 0, SR, 0)
    with pytest.raises(ValueError, match="too small"):
        room_impulse_responses(0.3, 1, SR, 0, room_dim=(1.5, 1.5, 1.5))


# --------------------------------------------------------------------------- reverberate


def test_reverberate_moves_the_direct_path_to_sample_zero():
    x = np.arange(1.0, 7.0)
    rir = np.array([0.1, 0.0, 1.0, 0.0, 0.5])  # strongest tap at 2, an echo 2 later
    out = reverberate(x, rir)
    expected = np.array([1, 2, 3 + 0.5, 4 + 1, 5 + 1.5, 6 + 2]) + 0.1 * np.r_[x[2:], 0, 0]
    np.testing.assert_allclose(out, expected)
    assert reverberate(x, rir, length=10).shape == (10,)
    np.testing.assert_allclose(reverberate(x, rir, length=10)[8:], 0.0)  # past the tail
    # an explicit delay overrides the strongest tap
    np.testing.assert_allclose(reverberate(x, rir, delay=0)[:3], [0.1, 0.2, 1.3])


def test_reverberated_image_lines_up_with_the_dry_signal(rooms):
    dry = np.random.default_rng(0).standard_normal(SR // 2)
    room = rooms[0.8]
    wet = reverberate(dry, room.rirs[0], delay=room.direct_delays[0])
    assert wet.shape == dry.shape
    corr = scipy.signal.correlate(wet, dry, mode="full")
    lags = scipy.signal.correlation_lags(wet.size, dry.size, mode="full")
    assert lags[np.argmax(np.abs(corr))] == 0


def test_reverberate_errors():
    with pytest.raises(ValueError, match="rir is all zeros"):
        reverberate(np.ones(4), np.zeros(3))
    with pytest.raises(ValueError, match="signal contains NaN"):
        reverberate(np.array([1.0, np.nan]), np.ones(2))
    with pytest.raises(ValueError, match="delay"):
        reverberate(np.ones(4), np.ones(3), delay=3)


# --------------------------------------------------------------------------- mixtures


@pytest.mark.parametrize(("snr", "offset", "peak"), [(5.0, 0, 0.999), (-3.0, 1234, 0.5)])
def test_one_dry_noise_is_simulate_mixture_snr(target, snr, offset, peak):
    clip = _noise()
    expected = mixing.simulate_mixture_snr(target, clip, snr, offset, peak)
    got = simulate_mixture_harder(target, [clip], snr, noise_offsets=[offset], peak=peak)
    assert isinstance(got, HarderMixture) and isinstance(got, mixing.Mixture)
    for name in ("mixture", "target", "noise"):
        np.testing.assert_array_equal(getattr(got, name), getattr(expected, name))
    assert (got.scale, got.snr_db, got.noise_gain, got.noise_offset) == (
        expected.scale,
        expected.snr_db,
        expected.noise_gain,
        expected.noise_offset,
    )
    np.testing.assert_array_equal(got.target_image, got.target)
    assert got.noise_offsets == (offset,)


@pytest.mark.parametrize("t60", [None, 0.3, 0.8])
@pytest.mark.parametrize("snr", [-5.0, 10.0])
def test_image_snr_and_parts(target, rooms, t60, snr):
    room = None if t60 is None else rooms[t60]
    clips = [_noise(3000, 1), _noise(5000, 2, scale=0.02)]
    m = simulate_mixture_harder(target, clips, snr, rooms=room, noise_offsets=[10, 20])
    assert m.snr_db == pytest.approx(snr, abs=1e-9)
    image = m.target_image.astype(np.float64)
    interferers = m.mixture.astype(np.float64) - image
    assert mixing.snr_db(image, interferers) == pytest.approx(snr, abs=1e-6)
    # the parts add up to the mixture to float32 precision, and it peaks at 0.999
    np.testing.assert_allclose(m.target + m.noise, m.mixture, rtol=0, atol=3e-7)
    assert np.max(np.abs(m.mixture)) == pytest.approx(mixing.MIXTURE_PEAK, rel=1e-6)
    # the target is the scaled dry target; with a room its image differs from it
    np.testing.assert_allclose(m.target, m.scale * target, rtol=1e-6, atol=1e-7)
    if room is None:
        np.testing.assert_array_equal(m.target_image, m.target)
    else:
        expected = reverberate(target, room.rirs[0], delay=room.direct_delays[0])
        np.testing.assert_allclose(image, m.scale * expected, atol=1e-6)
        assert mixing.snr_db(m.target, m.target_image - m.target) < 15.0  # clearly reverberant


@pytest.mark.parametrize("t60", [None, 0.8])
def test_interferers_get_equal_energy(target, rooms, t60):
    room = None if t60 is None else rooms[t60]
    clips = [_noise(3000, 1, scale=1.0), _noise(4000, 2, scale=0.01)]  # 40 dB apart
    m = simulate_mixture_harder(target, clips, 0.0, rooms=room)
    n = target.size
    images = [mixing.tile_noise(c.astype(np.float64), n) for c in clips]
    if room is not None:
        images = [
            reverberate(v, h, delay=d)
            for v, h, d in zip(images, room.rirs[1:], room.direct_delays[1:], strict=True)
        ]
    # the interferer part is a0·v0 + a1·v1: find a0, a1 and compare the two energies
    part = m.mixture.astype(np.float64) - m.target_image.astype(np.float64)
    coef, *_ = np.linalg.lstsq(np.stack(images, axis=1), part, rcond=None)
    energies = [c * c * float(np.sum(v * v)) for c, v in zip(coef, images, strict=True)]
    assert energies[0] == pytest.approx(energies[1], rel=1e-4)


def test_equal_energy_makes_a_louder_copy_count_once(target):
    clip = _noise()
    once = simulate_mixture_harder(target, [clip], 3.0)
    twice = simulate_mixture_harder(target, [clip, 100 * clip], 3.0)  # = 2·clip after scaling
    np.testing.assert_allclose(twice.mixture, once.mixture, atol=1e-6)
    assert twice.noise_gain == pytest.approx(once.noise_gain / 2)


def test_errors_name_the_item(target, rooms):
    clip = _noise()
    with pytest.raises(ValueError, match="target 'LJ1' is silent"):
        simulate_mixture_harder(np.zeros(100), [clip], 0.0, target_id="LJ1")
    with pytest.raises(ValueError, match="noise 'b.wav' is empty"):
        simulate_mixture_harder(target, [clip, np.array([])], 0.0, noise_ids=["a.wav", "b.wav"])
    bad = clip.copy()
    bad[5] = np.nan
    with pytest.raises(ValueError, match="noise 'b.wav' contains NaN"):
        simulate_mixture_harder(target, [clip, bad], 0.0, noise_ids=["a.wav", "b.wav"])
    with pytest.raises(ValueError, match="noise 'a.wav' is silent"):
        simulate_mixture_harder(target, [np.zeros(50)], 0.0, noise_ids=["a.wav"])
    with pytest.raises(ValueError, match=r"rooms holds 3 RIR\(s\); 2 are needed"):
        simulate_mixture_harder(target, [clip], 0.0, rooms=rooms[0.3])
    with pytest.raises(ValueError, match="noise_offsets has 1 entries for 2 noise clip"):
        simulate_mixture_harder(target, [clip, clip], 0.0, noise_offsets=[0])
    with pytest.raises(ValueError, match="noise_ids has 3 entries"):
        simulate_mixture_harder(target, [clip], 0.0, noise_ids=["a", "b", "c"])
    with pytest.raises(ValueError, match="noise_offset must be in"):
        simulate_mixture_harder(target, [clip], 0.0, noise_offsets=[len(clip)])
    with pytest.raises(ValueError, match="noises is empty"):
        simulate_mixture_harder(target, [], 0.0)
    with pytest.raises(ValueError, match="snr_db"):
        simulate_mixture_harder(target, [clip], float("nan"))
    with pytest.raises(ValueError, match="cancel each other"):
        simulate_mixture_harder(target, [clip, -clip], 0.0)


def test_one_bare_clip_counts_as_one_noise(target):
    clip = _noise()
    a = simulate_mixture_harder(target, clip, 2.0)
    b = simulate_mixture_harder(target, [clip], 2.0)
    np.testing.assert_array_equal(a.mixture, b.mixture)
