"""The authors' published audio samples: download, load, align and score them.

The authors' repository ``QLQL/SpeechSynthesis4Separation`` publishes six test examples
in ``AudioSamples/`` (30 WAV files, 22050 Hz, mono)::

    Ind_<k>_source.wav        clean dry ground truth           FLOAT,  L samples
    Ind_<k>_mixture.wav       noisy input                      FLOAT,  L samples
    Ind_<k>_est_proposed.wav  the proposed method's output     FLOAT,  L samples
    Ind_<k>_est_B1.wav        baseline B1's output             DOUBLE, L + 1024 samples
    Ind_<k>_est_B2.wav        baseline B2's output             PCM_16, L - 6138 samples

for ``k = 0 … 5``. Scoring them with our metrics lets the book compare its own numbers
with the authors' outputs on identical material (Chapter 5).

Licence: the repository has **no licence** (no LICENSE file in any commit, no statement in
the README), so default copyright applies. The book therefore never redistributes these
files: :func:`fetch_author_samples` downloads them for the reader from the authors'
repository (pinned to commit ``d930db4``) and checks every file's sha256.

Alignment (see :func:`align_author_outputs`): the proposed output and the mixture have the
source's length; B1's 1024 extra samples are the inverse-STFT tail and are cut off
(truncation to ``len(source)``, as the authors' evaluation does); B2's output sample ``j``
corresponds to input sample ``j + 3069`` (half its receptive field of 6139 samples), so its
reference is ``source[3069 : 3069 + len(b2)]``. The authors' own Matlab evaluation used
``source(3069 : …)`` with 1-based indexing, i.e. a 0-based start of 3068, one sample off;
``b2_offset=3068`` reproduces that.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np

from synthsep_lib.pipeline.downloads import MIRROR_ENV, ChecksumMismatchError, DownloadError

__all__ = [
    "AUTHOR_SAMPLES",
    "AUTHOR_SAMPLES_BASE_URL",
    "AUTHOR_SAMPLES_COMMIT",
    "B1_EXTRA_SAMPLES",
    "B2_OFFSET",
    "B2_OFFSET_AUTHORS",
    "B2_SHORTER_BY",
    "INDICES",
    "METHODS",
    "MIRROR_ENV",
    "SAMPLE_RATE",
    "ChecksumMismatchError",
    "DownloadError",
    "align_author_outputs",
    "author_sample_name",
    "author_samples_present",
    "evaluate_author_samples",
    "fetch_author_samples",
    "load_author_sample_set",
]

#: Commit of ``QLQL/SpeechSynthesis4Separation`` the downloads are pinned to (repository
#: HEAD; the 30 files were added in ``413853f`` and never changed afterwards).
AUTHOR_SAMPLES_COMMIT = "d930db4f08ea860eeb35527377caf74804b2a617"

#: Base URL of the commit-pinned ``AudioSamples/`` folder (raw file contents).
AUTHOR_SAMPLES_BASE_URL = (
    "https://raw.githubusercontent.com/QLQL/SpeechSynthesis4Separation/"
    f"{AUTHOR_SAMPLES_COMMIT}/AudioSamples/"
)

#: Sample rate of every file (Hz).
SAMPLE_RATE = 22050

#: Example indices ``k`` of ``Ind_<k>_*.wav``.
INDICES: tuple[int, ...] = (0, 1, 2, 3, 4, 5)

#: Keys of :func:`load_author_sample_set` → the file-name part after ``Ind_<k>_``.
KINDS: dict[str, str] = {
    "source": "source",
    "mixture": "mixture",
    "proposed": "est_proposed",
    "b1": "est_B1",
    "b2": "est_B2",
}

#: Methods scored against the source (the mixture gives the paper's "Input" row).
METHODS: tuple[str, ...] = ("mixture", "proposed", "b1", "b2")

#: B2's output sample ``j`` is input sample ``j + B2_OFFSET`` (see original_code.md#oc-b2-offset).
B2_OFFSET = 3069

#: The 0-based start the authors' Matlab evaluation used for B2, one sample off (see
#: original_code.md#oc-evaluation).
B2_OFFSET_AUTHORS = 3068

#: B1's output is this many samples longer than the source (the inverse-STFT tail).
B1_EXTRA_SAMPLES = 1024

#: B2's output is this many samples shorter than the source (``2 * B2_OFFSET``).
B2_SHORTER_BY = 6138

#: File name → sha256 (hex) of the 30 files at commit ``d930db4`` (see
#: original_code.md#oc-author-samples).
AUTHOR_SAMPLES: dict[str, str] = {
    "Ind_0_source.wav": "006bc7c48f15212d2847cf28520d6ac24cf4da6c458153a06febde73caaca42f",
    "Ind_0_mixture.wav": "9b85a93b4b0af211abfcd657998e8617f9bbcebb9adc5b80775d649f6e6765bf",
    "Ind_0_est_proposed.wav": "12ff0c71763332155a2e653ad092cf3d98fc9f2d3a4da0c5124c284b97170844",
    "Ind_0_est_B1.wav": "2edcfae488f7c8240a41b085fa2347c1f34c3e578852eb0110199f29d35588da",
    "Ind_0_est_B2.wav": "2cf1664972e79f4fc397b4582cb47709aba2014a8c2af25e8efd3ec673888fd3",
    "Ind_1_source.wav": "abf3ff06914d1df01e7d81b29281b818e73b09dff60fa8e6096c9f28cbc55fe8",
    "Ind_1_mixture.wav": "73b6a383e5856b2c60671958b2bb7217bd7232e42017cd977cbe2eebfd83f9d8",
    "Ind_1_est_proposed.wav": "3771e2431499f527c91a33c9dcda526991a5e7a10f3d02516254f742c966dbdb",
    "Ind_1_est_B1.wav": "95387bf687fde4be71adad8b6d8300366fdb52cfa79540043cb5c132c8d54f32",
    "Ind_1_est_B2.wav": "de28c999c8d4a96a4c9caa0d3057bcc3186e5b7c62df6a0a453dbcd516c301c4",
    "Ind_2_source.wav": "589e45f6877ec04fe0bc98ec682e8824e5785755726dddea34bfcfb07f828a1b",
    "Ind_2_mixture.wav": "eecce0120bc4acd5e8840676bc697cb6ccfca9c69f448e7a28e85cd7bcf6e440",
    "Ind_2_est_proposed.wav": "36829039f1523990115671d6e48bb690c3993419172c7c5e37a5001512eabc74",
    "Ind_2_est_B1.wav": "768d400ddd7252b4873bf843a6481daa879e430b3424af8e8a63ec41f2c0934f",
    "Ind_2_est_B2.wav": "e8c9b1218ad157c7df5b5649dd11bfbe6c6f9c1ca2ac618d9ec8e384e3c9623f",
    "Ind_3_source.wav": "33cf85e680d138bac8c0146fed28dd9421685a8d65c4e9092c8d8c5f187cec38",
    "Ind_3_mixture.wav": "9607959363bb699d2957f71a8907b74879dc652a94aaa1147192acdd330c58f1",
    "Ind_3_est_proposed.wav": "13c3a16ddf2dd911a13e289efda5583fa5d790c8fc9eae68977a699f65eda828",
    "Ind_3_est_B1.wav": "4f778a201a0f2653363b0ebe74b1a5c3ccb76840f835b2c6d8d05bf6928a4468",
    "Ind_3_est_B2.wav": "b64abee486d02b1efc0f7194e8de34b3d6a589465b85ad36fda75757a3c1a08a",
    "Ind_4_source.wav": "17f187cf884ff70780059825c1919eb79e46e867a5e77861c32be048439cc3d3",
    "Ind_4_mixture.wav": "43cf8ae709de58b87f53917f96ce6608405e499869f91b2871a8c5033187b36c",
    "Ind_4_est_proposed.wav": "7572a92cbcd69d98b2a924cc02e1753f9566eceb1424f7f821d38952eeef8766",
    "Ind_4_est_B1.wav": "3bc987c2e8b95970beb9b0e8f47e19b46d90fce3ae9ec79da665e7f73f9a6cf4",
    "Ind_4_est_B2.wav": "d39cd0af0d357f2755643f69fa5a6ecf36f53af86cf2185ae4a690f9c40bac6b",
    "Ind_5_source.wav": "dbc09b4b9e672d4a624ffcdd573b2d9aa8910fff2f4fd7d6e97f6029fbd47025",
    "Ind_5_mixture.wav": "6f3664ba504eb28189f2a1c7dc0d4e469a5bfbf6e0ade4ed6896fdfef3aea2c9",
    "Ind_5_est_proposed.wav": "aaa619c4ed7b345c16203458a86db90fe1dc61dffaac6b08db0907bce42639a1",
    "Ind_5_est_B1.wav": "263b8d474a9406754fbb13ebbcf4c8d9288f2f4ce13d1fa555d34e98d2e6fc7a",
    "Ind_5_est_B2.wav": "5d4e5843a1681761b84cc4160f1ad8e98f38e3c3ef48693275b7b140d6b618e7",
}


# --------------------------------------------------------------------------- helpers


def author_sample_name(index: int, kind: str) -> str:
    """File name of one author sample, e.g. ``author_sample_name(0, "b2")``.

    Parameters
    ----------
    index : int
        Example index, one of :data:`INDICES`.
    kind : str
        ``"source"``, ``"mixture"``, ``"proposed"``, ``"b1"`` or ``"b2"``.

    Returns
    -------
    str
        ``"Ind_<index>_<part>.wav"``, e.g. ``"Ind_0_est_B2.wav"``.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown sample kind {kind!r}; choose from {', '.join(KINDS)}")
    if isinstance(index, bool) or int(index) != index or int(index) not in INDICES:
        raise ValueError(f"author sample index must be one of {INDICES}, got {index!r}")
    return f"Ind_{int(index)}_{KINDS[kind]}.wav"


def _pooch_hash(value: str) -> str:
    """``"<hex>"`` or ``"sha256:<hex>"`` → the pooch form ``"sha256:<hex>"``."""
    return value if ":" in value else f"sha256:{value}"


def _resolve_base_url(base_url: str | None) -> str:
    """Explicit ``base_url``, then ``$SYNTHSEP_MIRROR/AudioSamples/``, then the pinned URL."""
    if base_url:
        url = base_url
    else:
        mirror = os.environ.get(MIRROR_ENV, "").strip()
        url = mirror.rstrip("/") + "/AudioSamples/" if mirror else AUTHOR_SAMPLES_BASE_URL
    return url.rstrip("/") + "/"


def _file_hash(path: Path, algorithm: str = "sha256") -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _hash_ok(path: Path, expected: str) -> bool:
    algorithm, _, hexdigest = _pooch_hash(expected).partition(":")
    return _file_hash(path, algorithm) == hexdigest.lower()


def _unlink_quietly(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


@contextlib.contextmanager
def _quiet_pooch() -> Iterator[None]:
    """Silence pooch's one INFO line per file; our progress bar counts files instead."""
    import pooch

    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


# --------------------------------------------------------------------------- download


def fetch_author_samples(
    dest: str | os.PathLike,
    *,
    base_url: str | None = None,
    registry: Mapping[str, str] | None = None,
    progress: bool = True,
) -> Path:
    """Download the authors' 30 sample files into ``dest`` and verify their sha256.

    Uses :func:`pooch.create` with the file registry and fetches every file: a file
    already in ``dest`` with the right checksum is not downloaded again; a missing file,
    or one whose checksum differs, is downloaded into a temporary file and moved into
    place only when its checksum matches. An interrupted call leaves only complete,
    verified files behind; calling again fetches the rest.

    The files have **no licence**: the book downloads them for the reader from the
    authors' repository and never redistributes them.

    Parameters
    ----------
    dest : path-like
        Folder for the 30 WAV files (created if needed), e.g. ``data/author_samples``.
    base_url : str, optional
        URL of a folder serving the files under their names. Default:
        ``$SYNTHSEP_MIRROR/AudioSamples/`` if the environment variable ``SYNTHSEP_MIRROR``
        is set (the same mirror root as the corpora of ``synthsep_lib.pipeline.downloads``), else
        :data:`AUTHOR_SAMPLES_BASE_URL` (commit-pinned raw GitHub URL).
    registry : mapping of str to str, optional
        File name → checksum (``"<sha256 hex>"`` or pooch form ``"sha256:<hex>"``),
        replacing :data:`AUTHOR_SAMPLES` (for tests and mirrors of other material).
    progress : bool
        Show a progress bar counting the files.

    Returns
    -------
    pathlib.Path
        ``dest``, holding every file of the registry.

    Raises
    ------
    ChecksumMismatchError
        A downloaded file has a different checksum; the message names the file, the URL,
        the expected and the actual checksum. The bad file is deleted (as is an older copy
        under the same name).
    DownloadError
        The server cannot be reached, answers with an error (e.g. 404) or the transfer
        breaks off; the message names the file and the URL. Nothing partial is kept.
    """
    import pooch
    import requests
    from tqdm.auto import tqdm

    dest = Path(dest).expanduser()
    reg = {
        name: _pooch_hash(value)
        for name, value in (AUTHOR_SAMPLES if registry is None else registry).items()
    }
    pup = pooch.create(path=dest, base_url=_resolve_base_url(base_url), registry=reg)
    names = list(reg)
    with (
        _quiet_pooch(),
        tqdm(names, desc="author samples", unit="file", disable=not progress, leave=False) as bar,
    ):
        for name in bar:
            url = pup.get_url(name)
            try:
                pup.fetch(name, progressbar=False)
            except ValueError as err:
                message = str(err)
                if "does not match the known hash" not in message:
                    raise DownloadError(
                        f"could not download author sample {name} from {url}: {message}"
                    ) from err
                # pooch deleted its temporary download; an older file under the same name
                # (the one pooch wanted to replace) does not match either: remove it too.
                _unlink_quietly(dest / name)
                algorithm = reg[name].split(":")[0]
                actual = message.split("but got ")[-1].split(".")[0].strip()
                raise ChecksumMismatchError(
                    f"checksum mismatch for author sample {name} downloaded from {url}: "
                    f"expected {reg[name]}, got {algorithm}:{actual}. The bad file was "
                    "deleted. The server sent a different file than the one this book was "
                    "checked with (a wrong mirror, a changed file or a corrupted transfer)."
                ) from err
            except requests.exceptions.RequestException as err:
                raise DownloadError(
                    f"could not download author sample {name} from {url}: {err}. "
                    "Nothing partial was kept; run again to fetch the missing files."
                ) from err
    return dest


def author_samples_present(
    dest: str | os.PathLike,
    *,
    verify: bool = False,
    registry: Mapping[str, str] | None = None,
) -> bool:
    """Whether all author sample files are in ``dest`` (optionally with the right sha256).

    Parameters
    ----------
    dest : path-like
        Folder given to :func:`fetch_author_samples`.
    verify : bool
        Also check every file's checksum (reads about 17 MB); default: existence only.
    registry : mapping of str to str, optional
        File name → checksum, replacing :data:`AUTHOR_SAMPLES`.

    Returns
    -------
    bool
        True when every registry file is present (and, with ``verify``, matches).
    """
    dest = Path(dest).expanduser()
    reg = AUTHOR_SAMPLES if registry is None else registry
    for name, expected in reg.items():
        path = dest / name
        if not path.is_file():
            return False
        if verify and not _hash_ok(path, expected):
            return False
    return True


# --------------------------------------------------------------------------- load and align


def load_author_sample_set(dest: str | os.PathLike, index: int) -> dict[str, np.ndarray]:
    """Load the five files of one example as float64 arrays at 22050 Hz.

    Parameters
    ----------
    dest : path-like
        Folder given to :func:`fetch_author_samples`.
    index : int
        Example index, one of :data:`INDICES` (0 … 5).

    Returns
    -------
    dict of str to numpy.ndarray
        ``source``, ``mixture``, ``proposed``, ``b1``, ``b2``: mono float64 signals as
        stored (no alignment, no rescaling). Lengths: ``L``, ``L``, ``L``,
        ``L + 1024``, ``L - 6138``.

    Raises
    ------
    FileNotFoundError
        A file is missing (run :func:`fetch_author_samples` first).
    ValueError
        A file is not mono or not at 22050 Hz.
    """
    import soundfile as sf

    dest = Path(dest).expanduser()
    out: dict[str, np.ndarray] = {}
    for kind in KINDS:
        path = dest / author_sample_name(index, kind)
        if not path.is_file():
            raise FileNotFoundError(
                f"author sample {path} is missing; download the samples with "
                f"fetch_author_samples({str(dest)!r}) first."
            )
        data, rate = sf.read(path, dtype="float64", always_2d=True)
        if rate != SAMPLE_RATE:
            raise ValueError(f"{path} has sample rate {rate} Hz; expected {SAMPLE_RATE} Hz.")
        if data.shape[1] != 1:
            raise ValueError(f"{path} has {data.shape[1]} channels; expected mono.")
        out[kind] = np.ascontiguousarray(data[:, 0])
    return out


def align_author_outputs(
    sample_set: Mapping[str, np.ndarray], *, b2_offset: int = B2_OFFSET
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Pair each method's output with the matching stretch of the source.

    ============  =====================================  ===================================
    method        reference                              estimate
    ============  =====================================  ===================================
    ``mixture``   ``source[:n]``                         ``mixture[:n]``, n = shorter length
    ``proposed``  ``source[:n]``                         ``proposed[:n]``
    ``b1``        ``source[:n]``                         ``b1[:n]``: the 1024 extra samples
                                                         (inverse-STFT tail) are cut off
    ``b2``        ``source[b2_offset : b2_offset + n]``  ``b2[:n]``, n = ``len(b2)`` (or less
                                                         if the source ends first)
    ============  =====================================  ===================================

    B2 (a non-causal WaveNet with a 6139-sample receptive field) returns
    ``L - 6138`` samples whose sample ``j`` belongs to input sample ``j + 3069``
    (original_code.md#oc-b2-offset; the cross-correlation of the published files peaks at lag 3069).
    The authors' Matlab evaluation took ``source(3069 : …)`` with 1-based indexing,
    i.e. 0-based 3068, one sample off: pass ``b2_offset=B2_OFFSET_AUTHORS`` (3068) to
    reproduce their numbers.

    Parameters
    ----------
    sample_set : mapping of str to numpy.ndarray
        As returned by :func:`load_author_sample_set` (keys ``source`` and any of
        ``mixture``, ``proposed``, ``b1``, ``b2``).
    b2_offset : int
        0-based start of B2's reference in the source; default 3069 (the true offset).

    Returns
    -------
    dict of str to (numpy.ndarray, numpy.ndarray)
        Method → ``(reference, estimate)`` of equal length (views of the inputs), for the
        methods of :data:`METHODS` present in ``sample_set``, in that order.
    """
    if isinstance(b2_offset, bool) or int(b2_offset) != b2_offset or b2_offset < 0:
        raise ValueError(f"b2_offset must be a non-negative integer, got {b2_offset!r}")
    b2_offset = int(b2_offset)
    source = np.asarray(sample_set["source"])
    pairs: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for method in METHODS:
        if method not in sample_set:
            continue
        estimate = np.asarray(sample_set[method])
        start = b2_offset if method == "b2" else 0
        n = min(len(estimate), len(source) - start)
        if n <= 0:
            raise ValueError(
                f"{method}: nothing to compare (source has {len(source)} samples, "
                f"offset {start}, estimate {len(estimate)} samples)"
            )
        pairs[method] = (source[start : start + n], estimate[:n])
    return pairs


# --------------------------------------------------------------------------- evaluation


def evaluate_author_samples(
    dest: str | os.PathLike,
    *,
    metrics: Sequence[str] | None = None,
    b2_offset: int = B2_OFFSET,
    indices: Sequence[int] | None = None,
    progress: bool = True,
):
    """Score the authors' outputs (and the mixture) against the source, per example.

    Every pair comes from :func:`align_author_outputs` and is scored with
    ``synthsep_lib.evaluation.metrics.compute_metrics(reference, estimate, 22050, ...)``
    (no further alignment).

    Parameters
    ----------
    dest : path-like
        Folder holding the 30 files (see :func:`fetch_author_samples`).
    metrics : sequence of str, optional
        Metric names passed to ``compute_metrics``; default: its default set.
    b2_offset : int
        Start of B2's reference in the source: 3069 (true offset, default) or 3068
        (:data:`B2_OFFSET_AUTHORS`, the authors' evaluation).
    indices : sequence of int, optional
        Examples to score; default all six (:data:`INDICES`).
    progress : bool
        Show a progress bar over the (example, method) pairs.

    Returns
    -------
    pandas.DataFrame
        One row per (``index``, ``method``), ``method`` in ``mixture``, ``proposed``,
        ``b1``, ``b2`` (the mixture row is the paper's "Input" row); then one column per
        metric (``pesq_wb``, ``stoi``, ``si_sdr``, …).
    """
    import pandas as pd
    from tqdm.auto import tqdm

    from synthsep_lib.evaluation.metrics import compute_metrics

    indices = list(INDICES if indices is None else indices)
    kwargs = {} if metrics is None else {"metrics": metrics}
    rows = []
    with tqdm(
        total=len(indices) * len(METHODS),
        desc="author samples",
        unit="pair",
        disable=not progress,
        leave=False,
    ) as bar:
        for index in indices:
            pairs = align_author_outputs(load_author_sample_set(dest, index), b2_offset=b2_offset)
            for method, (reference, estimate) in pairs.items():
                scores = compute_metrics(reference, estimate, SAMPLE_RATE, **kwargs)
                rows.append({"index": int(index), "method": method, **scores})
                bar.update()
    return pd.DataFrame(rows)
