"""The published LJSpeech WaveNet of r9y9: download, verify and load it (the paper's decoder).

r9y9 published the checkpoint the paper decodes with, and its hyper-parameters, as two
Dropbox files (see original_code.md#oc-wavenet-checkpoint)::

    20180510_mixture_lj_checkpoint_step000320000_ema.pth   EMA weights, r9y9 format
    20180510_mixture_lj_checkpoint_step000320000_ema.json  the preset (r9y9 hparams)

No size or checksum was ever published for them. :func:`fetch_pretrained_wavenet`
therefore records each file's sha256 in a small ledger next to the files
(``pretrained_sha256.json``) at the first download and checks every later reuse against
it ("trust on first use"); a reader who knows the hashes can pass them instead, and the
download is then checked against them. Files reach their final names only complete and
verified.

The checkpoint uses the names of the old ``torch.nn.utils.weight_norm``
(``<module>.weight_g`` / ``weight_v``); PyTorch ≥ 2.1's parametrisation calls them
``<module>.parametrizations.weight.original0`` / ``original1``.
:func:`~synthsep_lib.vocoder.wavenet.load_r9y9_checkpoint` translates between the two,
so :func:`load_pretrained_wavenet` loads the file as published.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from synthsep_lib.files import atomic_path, write_json_atomic
from synthsep_lib.pipeline.downloads import MIRROR_ENV, ChecksumMismatchError, DownloadError
from synthsep_lib.pipeline.torch_training import load_torch_file
from synthsep_lib.vocoder.wavenet import WaveNet, WaveNetConfig, load_r9y9_checkpoint

__all__ = [
    "CHECKPOINT_NAME",
    "LEDGER_NAME",
    "PRESET_NAME",
    "PUBLISHED_URLS",
    "ChecksumMismatchError",
    "DownloadError",
    "PretrainedWaveNetFiles",
    "fetch_pretrained_wavenet",
    "load_pretrained_wavenet",
    "wavenet_config_from_preset",
]

#: File name of the published checkpoint (EMA weights after 320k fine-tuning steps).
CHECKPOINT_NAME = "20180510_mixture_lj_checkpoint_step000320000_ema.pth"

#: File name of its preset (r9y9 hparams as JSON).
PRESET_NAME = "20180510_mixture_lj_checkpoint_step000320000_ema.json"

#: File name → download URL, as in r9y9's README with ``dl=0`` (an HTML preview page)
#: changed to ``dl=1`` (the file itself, after redirects; see
#: original_code.md#oc-wavenet-checkpoint).
PUBLISHED_URLS: dict[str, str] = {
    CHECKPOINT_NAME: f"https://www.dropbox.com/s/zdbfprugbagfp2w/{CHECKPOINT_NAME}?dl=1",
    PRESET_NAME: f"https://www.dropbox.com/s/0vsd7973w20eskz/{PRESET_NAME}?dl=1",
}

#: The ledger in the download folder: file name → sha256 (hex) recorded at first download.
LEDGER_NAME = "pretrained_sha256.json"

#: Preset keys whose value this model supports in one way only (the r9y9 2092a64 values).
_FIXED_HPARAMS: dict[str, Any] = {
    "builder": "wavenet",
    "upsample_conditional_features": True,
    "cin_pad": 0,
    "output_distribution": "Logistic",
}

#: Preset keys of later wavenet_vocoder versions, whose upsampling network this model lacks.
_LATER_HPARAMS = ("upsample_net", "upsample_params")


@dataclass(frozen=True)
class PretrainedWaveNetFiles:
    """The two downloaded files and their sha256.

    Attributes
    ----------
    checkpoint : pathlib.Path
        ``<dest>/20180510_mixture_lj_checkpoint_step000320000_ema.pth``.
    preset : pathlib.Path
        ``<dest>/20180510_mixture_lj_checkpoint_step000320000_ema.json``.
    sha256 : dict of str to str
        File name → sha256 (64 hex digits), as verified by this call.
    """

    checkpoint: Path
    preset: Path
    sha256: dict[str, str]


# --------------------------------------------------------------------------- helpers


def _sha256(path: Path) -> str:
    import pooch

    return pooch.file_hash(str(path), alg="sha256")


def _expected_hashes(expected_sha256: Mapping[str, str] | None) -> dict[str, str]:
    """Validate ``expected_sha256`` → file name → lower-case hex."""
    out: dict[str, str] = {}
    for name, value in (expected_sha256 or {}).items():
        if name not in PUBLISHED_URLS:
            raise ValueError(
                f"expected_sha256 names an unknown file {name!r}; use "
                f"{CHECKPOINT_NAME!r} and/or {PRESET_NAME!r}"
            )
        hexdigest = str(value).strip().lower().removeprefix("sha256:")
        if not re.fullmatch(r"[0-9a-f]{64}", hexdigest):
            raise ValueError(
                f"expected sha256 of {name} must be 64 hex digits (optionally after "
                f"'sha256:'); got {value!r}"
            )
        out[name] = hexdigest
    return out


def _resolve_urls(base_url: str | None) -> dict[str, str]:
    """Explicit ``base_url``, then ``$SYNTHSEP_MIRROR``, then the Dropbox URLs."""
    base = base_url or os.environ.get(MIRROR_ENV, "").strip()
    if not base:
        return dict(PUBLISHED_URLS)
    return {name: f"{base.rstrip('/')}/{name}" for name in PUBLISHED_URLS}


def _read_ledger(path: Path) -> dict[str, str]:
    """File name → sha256 recorded in ``path`` (empty if there is no ledger yet)."""
    if not path.is_file():
        return {}
    try:
        ledger = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        ledger = None
    if not isinstance(ledger, dict) or not all(isinstance(v, str) for v in ledger.values()):
        raise ValueError(
            f"the hash ledger {path} is damaged (expected a JSON object of file name → "
            "sha256). Delete it together with the downloaded files and run again."
        )
    return ledger


def _type_matches(value: Any, default: Any) -> bool:
    """Whether a preset value has the type of the ``WaveNetConfig`` default it replaces."""
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, list):
        return isinstance(value, list) and all(_type_matches(v, 0) for v in value)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    return isinstance(value, type(default))


def _download(url: str, path: Path, expected: str | None, progress: bool) -> str:
    """Download ``url`` to ``path`` via a temporary file; return the verified sha256."""
    import pooch
    import requests

    try:
        with atomic_path(path) as tmp:
            pooch.HTTPDownloader(progressbar=progress, chunk_size=1 << 16)(url, str(tmp), None)
            with open(tmp, "rb") as handle:
                head = handle.read(512).lstrip()
            if head[:1] == b"<":
                raise DownloadError(
                    f"{url} sent an HTML page instead of {path.name} (a preview or error "
                    "page; is the link still shared, with dl=1?). Nothing was kept."
                )
            actual = _sha256(tmp)
            if expected is not None and actual != expected:
                raise ChecksumMismatchError(
                    f"checksum mismatch for {path.name} downloaded from {url}: expected "
                    f"sha256:{expected}, got sha256:{actual}. The download was deleted. Check "
                    "the expected hash, or the server sent a different file."
                )
    except requests.exceptions.RequestException as err:
        raise DownloadError(
            f"could not download {path.name} from {url}: {err}. Nothing partial was kept; "
            "run again to restart the download."
        ) from err
    return actual


# --------------------------------------------------------------------------- public API


def fetch_pretrained_wavenet(
    dest: str | os.PathLike,
    *,
    expected_sha256: Mapping[str, str] | None = None,
    base_url: str | None = None,
    progress: bool = True,
) -> PretrainedWaveNetFiles:
    """Download the published checkpoint and preset into ``dest``, or verify the cached ones.

    For each of the two files:

    - **not in** ``dest``: download it into a temporary file next to its final name
      (pooch's HTTP downloader, following Dropbox's redirects), reject an HTML page,
      compute its sha256, check it against ``expected_sha256`` when given, and only
      then rename it into place and record the hash in ``<dest>/pretrained_sha256.json``
      (written atomically). A failed or interrupted download leaves nothing under the
      final name.
    - **in** ``dest``: nothing is downloaded; its sha256 must equal the expected hash if
      one is given, else the hash the ledger recorded at its first download. A file
      without either (e.g. copied there by hand) is trusted as it is and its hash
      recorded.

    Parameters
    ----------
    dest : path-like
        Folder for the two files and the ledger (created if needed), e.g.
        ``data/pretrained``. The checkpoint is a few hundred MB.
    expected_sha256 : mapping of str to str, optional
        File name (:data:`CHECKPOINT_NAME`, :data:`PRESET_NAME`) → sha256, as 64 hex
        digits or ``"sha256:<hex>"``; files not named use the ledger.
    base_url : str, optional
        URL of a folder serving both files under their names. Default:
        ``$SYNTHSEP_MIRROR`` if that environment variable is set (the mirror root of
        ``synthsep_lib.pipeline.downloads``), else the Dropbox URLs of :data:`PUBLISHED_URLS`.
    progress : bool
        Show a download progress bar (bytes).

    Returns
    -------
    PretrainedWaveNetFiles
        Paths of the checkpoint and the preset, and their sha256.

    Raises
    ------
    ChecksumMismatchError
        A download differs from the expected hash (the download is deleted), or a cached
        file differs from the expected or recorded hash (the message names the file, both
        hashes, and says to delete the file and run again).
    DownloadError
        The server cannot be reached, answers with an error, breaks off, or sends an HTML
        page; the message names the file and the URL.
    ValueError
        ``expected_sha256`` names an unknown file or is not a sha256; the ledger is
        damaged.
    """
    dest = Path(dest).expanduser()
    expected = _expected_hashes(expected_sha256)
    urls = _resolve_urls(base_url)
    ledger_path = dest / LEDGER_NAME
    ledger = _read_ledger(ledger_path)
    hashes: dict[str, str] = {}
    for name, url in urls.items():
        path = dest / name
        if not path.is_file():
            hashes[name] = _download(url, path, expected.get(name), progress)
        else:
            hashes[name] = _sha256(path)
            reference = expected.get(name, ledger.get(name))
            if reference is not None and hashes[name] != reference:
                source = (
                    "the expected hash given"
                    if name in expected
                    else f"the hash recorded in {ledger_path} at its first download"
                )
                raise ChecksumMismatchError(
                    f"{path} has sha256:{hashes[name]}, but {source} is sha256:{reference}. "
                    "The file changed or is damaged; delete it and run again to download "
                    "it afresh."
                )
        if ledger.get(name) != hashes[name]:
            ledger[name] = hashes[name]
            write_json_atomic(ledger_path, ledger)
    return PretrainedWaveNetFiles(
        checkpoint=dest / CHECKPOINT_NAME, preset=dest / PRESET_NAME, sha256=hashes
    )


def wavenet_config_from_preset(preset: str | os.PathLike | Mapping[str, Any]) -> WaveNetConfig:
    """The :class:`WaveNetConfig` of an r9y9 preset (hparams JSON).

    Every :class:`WaveNetConfig` field is an r9y9 hparams name (``out_channels``,
    ``input_type``, ``quantize_channels``, ``layers``, ``stacks``, ``residual_channels``,
    ``gate_channels``, ``skip_out_channels``, ``kernel_size``, ``dropout``,
    ``cin_channels``, ``upsample_scales``, ``freq_axis_kernel_size``,
    ``weight_normalization``, ``legacy``, ``log_scale_min``) and is taken from the preset.
    A key the preset lacks keeps r9y9's default at commit 2092a64, which is the paper's
    value (``WaveNetConfig`` defaults); in particular a preset without ``legacy`` —
    like the published one, which predates the flag — means ``legacy=True``. Keys that
    do not shape the model (audio, training) are ignored.

    Parameters
    ----------
    preset : path-like or mapping
        The preset JSON file, or its parsed content.

    Returns
    -------
    WaveNetConfig

    Raises
    ------
    ValueError
        The file is not a JSON object, or the preset describes a model this WaveNet
        cannot represent: a ``builder`` other than ``"wavenet"``, no local conditioning
        (``cin_channels`` ≤ 0, ``upsample_conditional_features`` false), a speaker
        embedding (``gin_channels`` > 0), a later wavenet_vocoder's upsampling network
        (``upsample_net``, ``upsample_params``, ``cin_pad`` ≠ 0, ``output_distribution``
        ≠ ``"Logistic"``), a ``hop_size`` other than the product of ``upsample_scales``,
        a value of the wrong type, or values ``WaveNetConfig`` rejects. The message names
        the preset and the key.
    """
    if isinstance(preset, Mapping):
        source, hparams = "the preset", dict(preset)
    else:
        source = f"preset {Path(preset)}"
        try:
            hparams = json.loads(Path(preset).read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"{source} is not valid JSON: {err}") from err
        if not isinstance(hparams, dict):
            raise ValueError(f"{source} must hold a JSON object; got {type(hparams).__name__}")

    def unsupported(key: str, expected: str) -> ValueError:
        return ValueError(
            f"{source} has {key}={hparams[key]!r}; this WaveNet supports only {expected}"
        )

    for key, value in _FIXED_HPARAMS.items():
        if key in hparams and hparams[key] != value:
            raise unsupported(key, repr(value))
    for key in _LATER_HPARAMS:
        if key in hparams:
            raise unsupported(key, "the upsampling of wavenet_vocoder 0.1.1 (no such key)")
    gin_channels = hparams.get("gin_channels", -1)
    if not isinstance(gin_channels, int) or gin_channels > 0:
        raise unsupported("gin_channels", "-1 (no speaker embedding)")

    defaults = WaveNetConfig()
    values: dict[str, Any] = {"legacy": True}  # the published preset predates the flag
    for field in dataclasses.fields(WaveNetConfig):
        if field.name in hparams:
            value = hparams[field.name]
            if not _type_matches(value, getattr(defaults, field.name)):
                raise unsupported(field.name, f"values like {getattr(defaults, field.name)!r}")
            values[field.name] = value
    try:
        config = WaveNetConfig(**values)
    except ValueError as err:
        raise ValueError(f"{source} describes a WaveNet this model cannot build: {err}") from err
    if config.cin_channels <= 0:
        raise unsupported("cin_channels", "a positive number of mel bands")
    hop = hparams.get("hop_size")
    if hop is not None and hop != config.hop_size:
        raise ValueError(
            f"{source} has hop_size={hop!r}, but its upsample_scales "
            f"{config.upsample_scales} multiply to {config.hop_size}"
        )
    return config


def load_pretrained_wavenet(
    dest: str | os.PathLike,
    device: str | torch.device = "cpu",
    *,
    expected_sha256: Mapping[str, str] | None = None,
    base_url: str | None = None,
    progress: bool = True,
    allow_pickle: bool = False,
) -> WaveNet:
    """The published LJSpeech WaveNet, downloaded or verified, in eval mode on ``device``.

    :func:`fetch_pretrained_wavenet` (download or verify), then
    :func:`wavenet_config_from_preset` on the preset and
    :func:`~synthsep_lib.vocoder.wavenet.load_r9y9_checkpoint` on the checkpoint (its
    ``state_dict``, published ``weight_g`` / ``weight_v`` names translated). For the
    published files the model has the paper's 24 737 396 parameters.

    Parameters
    ----------
    dest : path-like
        Download folder, as for :func:`fetch_pretrained_wavenet`.
    device : str or torch.device
        Where the model lives (``"cpu"``, ``"cuda"``, …).
    expected_sha256, base_url, progress
        As for :func:`fetch_pretrained_wavenet`.
    allow_pickle : bool
        Let ``load_r9y9_checkpoint`` fall back to full unpickling if
        ``torch.load(weights_only=True)`` refuses the file (trusted files only).

    Returns
    -------
    WaveNet
        In eval mode; ``model.config`` is the preset's configuration. Input: mel
        ``(B, cin_channels, Tc)``; output audio has ``hop_size * Tc`` samples at 22050 Hz.

    Raises
    ------
    ChecksumMismatchError, DownloadError, ValueError
        As for :func:`fetch_pretrained_wavenet` and :func:`wavenet_config_from_preset`.
    KeyError
        The checkpoint's tensors do not match the preset's model (all keys named).
    RunConfigError
        The checkpoint is damaged or holds no dict (names the file); without
        ``allow_pickle``, also if it holds objects ``weights_only`` refuses.
    """
    files = fetch_pretrained_wavenet(
        dest, expected_sha256=expected_sha256, base_url=base_url, progress=progress
    )
    config = wavenet_config_from_preset(files.preset)
    # The book's one .pth loader names the file if it is damaged; with allow_pickle the
    # r9y9 loader reads it (it can fall back to full unpickling).
    checkpoint = (
        files.checkpoint
        if allow_pickle
        else load_torch_file(
            files.checkpoint,
            what="the published r9y9 WaveNet checkpoint (a dict with its state_dict)",
            advice=f"delete it to download it again into {dest}, or pass allow_pickle=True "
            "if it is a trusted file with other objects",
        )
    )
    model, _ = load_r9y9_checkpoint(checkpoint, config, allow_pickle=allow_pickle)
    return model.to(device).eval()
