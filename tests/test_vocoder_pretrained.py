"""Tests of synthsep_lib.pipeline.pretrained_wavenet against a local HTTP server on 127.0.0.1.

A small WaveNet is saved in the published checkpoint's format (r9y9 ``weight_g`` /
``weight_v`` names) together with a preset JSON in r9y9's hparams format, served under
the published file names, and fetched, verified and loaded. Nothing touches the internet.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import pytest

from synthsep_lib.pipeline.downloads import MIRROR_ENV

torch = pytest.importorskip("torch")

from synthsep_lib.pipeline import pretrained_wavenet as pretrained  # noqa: E402
from synthsep_lib.pipeline.pretrained_wavenet import (  # noqa: E402
    CHECKPOINT_NAME,
    LEDGER_NAME,
    PRESET_NAME,
    PUBLISHED_URLS,
    ChecksumMismatchError,
    DownloadError,
    fetch_pretrained_wavenet,
    load_pretrained_wavenet,
    wavenet_config_from_preset,
)
from synthsep_lib.vocoder.wavenet import WaveNet, WaveNetConfig, to_r9y9_state_dict  # noqa: E402

#: The published preset's keys (original_code.md#oc-wavenet-checkpoint), without
#: ``legacy`` like the original.
PAPER_PRESET = {
    "name": "wavenet_vocoder",
    "builder": "wavenet",
    "input_type": "raw",
    "quantize_channels": 65536,
    "sample_rate": 22050,
    "silence_threshold": 2,
    "num_mels": 80,
    "fmin": 125,
    "fmax": 7600,
    "fft_size": 1024,
    "hop_size": 256,
    "frame_shift_ms": None,
    "min_level_db": -100,
    "ref_level_db": 20,
    "rescaling": True,
    "rescaling_max": 0.999,
    "allow_clipping_in_normalization": True,
    "log_scale_min": -32.23619130191664,
    "out_channels": 30,
    "layers": 24,
    "stacks": 4,
    "residual_channels": 512,
    "gate_channels": 512,
    "skip_out_channels": 256,
    "dropout": 0.050000000000000044,
    "kernel_size": 3,
    "weight_normalization": True,
    "cin_channels": 80,
    "upsample_conditional_features": True,
    "upsample_scales": [4, 4, 4, 4],
    "freq_axis_kernel_size": 3,
    "gin_channels": -1,
    "n_speakers": 7,
    "batch_size": 2,
    "max_time_steps": 8000,
    "ema_decay": 0.9999,
}

SMALL = WaveNetConfig.small()


def small_preset() -> dict:
    """The published preset with the small model's sizes."""
    sizes = ("layers", "stacks", "residual_channels", "gate_channels", "skip_out_channels")
    return {**PAPER_PRESET, **{key: getattr(SMALL, key) for key in sizes}}


def published_checkpoint(model) -> dict:
    """``model`` as r9y9's published checkpoint holds it: the r9y9 ``state_dict``
    (``weight_g`` / ``weight_v`` names) and r9y9's bookkeeping entries."""
    return {
        "state_dict": to_r9y9_state_dict(model),
        "optimizer": None,
        "global_step": 320000,
        "global_epoch": 12,
        "global_test_step": 0,
    }


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """Folder with a fake checkpoint and preset under the published names; the model."""
    folder = tmp_path_factory.mktemp("published")
    torch.manual_seed(0)
    model = WaveNet(SMALL).eval()
    with torch.no_grad():  # weights away from the initial g = ||v||
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    torch.save(published_checkpoint(model), folder / CHECKPOINT_NAME)
    (folder / PRESET_NAME).write_text(json.dumps(small_preset(), indent=2))
    hashes = {
        name: hashlib.sha256((folder / name).read_bytes()).hexdigest()
        for name in (CHECKPOINT_NAME, PRESET_NAME)
    }
    return {"folder": folder, "model": model, "sha256": hashes}


@pytest.fixture
def server(published, local_server):
    return local_server(published["folder"])


def leftovers(dest: Path) -> list[str]:
    """Temporary files of interrupted writes."""
    return [p.name for p in dest.glob(".*tmp*")]


# --------------------------------------------------------------------------- fetch


def test_published_urls_force_a_download():
    assert PUBLISHED_URLS == {
        CHECKPOINT_NAME: "https://www.dropbox.com/s/zdbfprugbagfp2w/"
        "20180510_mixture_lj_checkpoint_step000320000_ema.pth?dl=1",
        PRESET_NAME: "https://www.dropbox.com/s/0vsd7973w20eskz/"
        "20180510_mixture_lj_checkpoint_step000320000_ema.json?dl=1",
    }


def test_url_resolution(monkeypatch):
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    assert pretrained._resolve_urls(None) == PUBLISHED_URLS
    monkeypatch.setenv(MIRROR_ENV, "http://mirror.example/data/")
    assert (
        pretrained._resolve_urls(None)[PRESET_NAME] == f"http://mirror.example/data/{PRESET_NAME}"
    )
    assert (
        pretrained._resolve_urls("http://h/x")[CHECKPOINT_NAME] == f"http://h/x/{CHECKPOINT_NAME}"
    )


def test_first_download_records_sha256_and_reuse_downloads_nothing(server, published, tmp_path):
    dest = tmp_path / "pretrained"
    files = fetch_pretrained_wavenet(dest, base_url=server.url, progress=False)
    assert files.checkpoint == dest / CHECKPOINT_NAME and files.preset == dest / PRESET_NAME
    assert files.sha256 == published["sha256"]
    assert json.loads((dest / LEDGER_NAME).read_text()) == published["sha256"]
    assert server.hits == {f"/{CHECKPOINT_NAME}": 1, f"/{PRESET_NAME}": 1}
    assert sorted(p.name for p in dest.iterdir()) == sorted(
        [CHECKPOINT_NAME, PRESET_NAME, LEDGER_NAME]
    )

    server.hits.clear()
    again = fetch_pretrained_wavenet(dest, base_url=server.url, progress=True)
    assert again == files
    assert sum(server.hits.values()) == 0


def test_tampered_cached_file_is_a_clear_error(server, published, tmp_path):
    dest = tmp_path / "pretrained"
    fetch_pretrained_wavenet(dest, base_url=server.url, progress=False)
    (dest / PRESET_NAME).write_text(json.dumps({**small_preset(), "layers": 2}))
    actual = hashlib.sha256((dest / PRESET_NAME).read_bytes()).hexdigest()
    server.hits.clear()
    with pytest.raises(ChecksumMismatchError) as info:
        fetch_pretrained_wavenet(dest, base_url=server.url, progress=False)
    message = str(info.value)
    assert str(dest / PRESET_NAME) in message
    assert actual in message and published["sha256"][PRESET_NAME] in message
    assert str(dest / LEDGER_NAME) in message and "delete it" in message
    assert sum(server.hits.values()) == 0


def test_wrong_expected_hash_leaves_no_file(server, published, tmp_path):
    dest = tmp_path / "pretrained"
    wrong = "0" * 64
    with pytest.raises(ChecksumMismatchError) as info:
        fetch_pretrained_wavenet(
            dest, expected_sha256={PRESET_NAME: wrong}, base_url=server.url, progress=False
        )
    message = str(info.value)
    assert PRESET_NAME in message and f"{server.url}/{PRESET_NAME}" in message
    assert f"sha256:{wrong}" in message and published["sha256"][PRESET_NAME] in message
    assert not (dest / PRESET_NAME).exists()
    assert not leftovers(dest)
    # the checkpoint before it was fine: kept and recorded
    ledger = json.loads((dest / LEDGER_NAME).read_text())
    assert ledger == {CHECKPOINT_NAME: published["sha256"][CHECKPOINT_NAME]}


def test_right_expected_hash_is_checked_and_recorded(server, published, tmp_path):
    dest = tmp_path / "pretrained"
    expected = {name: f"SHA256:{h.upper()}" for name, h in published["sha256"].items()}
    files = fetch_pretrained_wavenet(
        dest, expected_sha256=expected, base_url=server.url, progress=False
    )
    assert files.sha256 == published["sha256"]
    # a cached file against an expected hash: checked, nothing downloaded
    server.hits.clear()
    with pytest.raises(ChecksumMismatchError, match="the expected hash given"):
        fetch_pretrained_wavenet(
            dest, expected_sha256={PRESET_NAME: "1" * 64}, base_url=server.url, progress=False
        )
    assert sum(server.hits.values()) == 0


@pytest.mark.parametrize(
    "expected, match",
    [({"model.pth": "0" * 64}, "unknown file 'model.pth'"), ({PRESET_NAME: "md5:abc"}, "64 hex")],
)
def test_bad_expected_hash_values(tmp_path, expected, match):
    with pytest.raises(ValueError, match=match):
        fetch_pretrained_wavenet(tmp_path, expected_sha256=expected, base_url="http://127.0.0.1:9")


def test_damaged_ledger_is_named(tmp_path):
    (tmp_path / LEDGER_NAME).write_text("[1, 2")
    with pytest.raises(ValueError, match=rf"ledger .*{LEDGER_NAME} is damaged"):
        fetch_pretrained_wavenet(tmp_path, base_url="http://127.0.0.1:9")


def test_mirror_variable(server, published, tmp_path, monkeypatch):
    monkeypatch.setenv(MIRROR_ENV, server.url + "/")
    files = fetch_pretrained_wavenet(tmp_path / "via_mirror", progress=False)
    assert files.sha256 == published["sha256"]
    assert server.hits == {f"/{CHECKPOINT_NAME}": 1, f"/{PRESET_NAME}": 1}


def test_broken_transfer_html_page_and_404(server, published, tmp_path, local_server):
    dest = tmp_path / "pretrained"
    server.break_next(CHECKPOINT_NAME)
    with pytest.raises(DownloadError, match=rf"could not download {CHECKPOINT_NAME} from"):
        fetch_pretrained_wavenet(dest, base_url=server.url, progress=False)
    assert not (dest / CHECKPOINT_NAME).exists() and not leftovers(dest)
    fetch_pretrained_wavenet(dest, base_url=server.url, progress=False)  # the retry works

    (tmp_path / "other").mkdir()
    other = local_server(tmp_path / "other")
    url = f"{other.url}/{CHECKPOINT_NAME}"
    with pytest.raises(DownloadError, match=rf"{CHECKPOINT_NAME} from {url}: 404"):
        fetch_pretrained_wavenet(tmp_path / "d2", base_url=other.url, progress=False)
    other.put(CHECKPOINT_NAME, b"\n<!DOCTYPE html><html>preview</html>")
    with pytest.raises(DownloadError, match=rf"{url} sent an HTML page") as info:
        fetch_pretrained_wavenet(tmp_path / "d2", base_url=other.url, progress=False)
    assert not isinstance(info.value, ChecksumMismatchError)
    assert not (tmp_path / "d2" / CHECKPOINT_NAME).exists() and not leftovers(tmp_path / "d2")


# --------------------------------------------------------------------------- load


def test_loaded_model_equals_the_original(server, published, tmp_path):
    model = load_pretrained_wavenet(tmp_path / "pretrained", base_url=server.url, progress=False)
    assert not model.training
    assert model.config == SMALL
    torch.manual_seed(1)
    c = torch.rand(2, SMALL.cin_channels, 3)
    x = torch.rand(2, 1, 3 * SMALL.hop_size) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(model(x, c), published["model"](x, c), rtol=0, atol=1e-6)


# --------------------------------------------------------------------------- preset


def test_published_preset_is_the_papers_model(tmp_path):
    path = tmp_path / PRESET_NAME
    path.write_text(json.dumps(PAPER_PRESET))
    config = wavenet_config_from_preset(path)
    assert config == WaveNetConfig.paper()
    assert config.legacy is True and config.receptive_field == 505
    assert math.isclose(config.dropout, 0.05)
    assert wavenet_config_from_preset({**PAPER_PRESET, "legacy": False}).legacy is False
    assert wavenet_config_from_preset({}) == WaveNetConfig.paper()
    mulaw = {"input_type": "mulaw-quantize", "quantize_channels": 256, "out_channels": 256}
    assert wavenet_config_from_preset({**PAPER_PRESET, **mulaw}).mulaw


@pytest.mark.parametrize(
    "change, match",
    [
        ({"builder": "wavenet_v2"}, r"builder='wavenet_v2'.*only 'wavenet'"),
        ({"input_type": "mulaw"}, r"cannot build: input_type must be"),
        ({"gin_channels": 16}, r"gin_channels=16.*no speaker embedding"),
        ({"cin_channels": -1}, r"cin_channels=-1"),
        ({"upsample_conditional_features": False}, r"upsample_conditional_features=False"),
        ({"upsample_net": "ConvInUpsampleNetwork"}, r"upsample_net="),
        ({"cin_pad": 2}, r"cin_pad=2"),
        ({"layers": "24"}, r"layers='24'.*values like 24"),
        ({"upsample_scales": [4, 4.0, 4, 4]}, r"upsample_scales="),
        ({"weight_normalization": 1}, r"weight_normalization=1"),
        ({"layers": 25}, r"cannot build: layers \(25\) must be a multiple"),
        ({"hop_size": 275}, r"hop_size=275.*multiply to 256"),
    ],
)
def test_unsupported_presets_are_named(change, match):
    with pytest.raises(ValueError, match=match):
        wavenet_config_from_preset({**PAPER_PRESET, **change})


def test_preset_file_errors_name_the_file(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match=r"preset .*bad\.json is not valid JSON"):
        wavenet_config_from_preset(path)
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match=r"bad\.json must hold a JSON object"):
        wavenet_config_from_preset(path)
    path.write_text(json.dumps({**PAPER_PRESET, "gin_channels": 8}))
    with pytest.raises(ValueError, match=r"preset .*bad\.json has gin_channels=8"):
        wavenet_config_from_preset(path)


def test_the_paper_profiles_separator_decodes_with_the_published_wavenet(
    server, published, tmp_path
):
    """``synthsep separate --profile paper`` loads the checkpoint Chapter 3 downloaded
    (not a trained ``checkpoint_ema.pth``), verified against the recorded hashes."""
    import keras
    import numpy as np

    from synthsep_lib.config import load_profile
    from synthsep_lib.encoder.model import build_encoder
    from synthsep_lib.pipeline.runs import RunPaths
    from synthsep_lib.pipeline.separators import load_separator
    from synthsep_lib.separation import separate_proposed

    paper = RunPaths(tmp_path / "runs", "paper")
    load_pretrained_wavenet(paper.published_wavenet, base_url=server.url, progress=False)
    reduced = load_profile("reduced")  # a small encoder: the paper's features, CPU seconds
    encoder_file = tmp_path / "encoder.keras"
    build_encoder("proposed", reduced.encoder).save(encoder_file)

    separator = load_separator("proposed", paper, checkpoints={"encoder": encoder_file})
    assert separator.checkpoints["wavenet"] == paper.published_wavenet / CHECKPOINT_NAME
    profile = load_profile("paper")
    mixture = np.zeros(profile.features.lead_in + 4 * profile.features.hop_size, np.float32)
    mixture[profile.features.lead_in :] = 0.1 * np.sin(np.arange(4 * 256) / 5.0)
    encoder = keras.models.load_model(encoder_file, compile=False)
    expected = separate_proposed(mixture, encoder, published["model"], profile)
    np.testing.assert_allclose(separator.separate_padded(mixture), expected, atol=1e-5)

    (paper.published_wavenet / CHECKPOINT_NAME).write_bytes(b"tampered")
    with pytest.raises(pretrained.ChecksumMismatchError):
        load_separator("proposed", paper, checkpoints={"encoder": encoder_file})
