"""Download and unpack the real corpora from the command line: LJ Speech 1.1 and ESC-50.

    python -m data_scripts.download ljspeech esc50 --dest data/real

A thin entry point over :func:`synthsep_lib.pipeline.downloads.fetch_corpora`, which
verifies every archive by checksum and moves each corpus into place with one rename.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from synthsep_lib.pipeline.downloads import CORPORA, MIRROR_ENV, DownloadError, fetch_corpora


def _name_value_pairs(
    values: Sequence[str], option: str, parser: argparse.ArgumentParser
) -> dict[str, str]:
    pairs = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not value:
            parser.error(f"{option} expects NAME=VALUE, got {item!r}")
        if name not in CORPORA:
            parser.error(f"{option}: unknown corpus {name!r} (choose from {', '.join(CORPORA)})")
        pairs[name] = value
    return pairs


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m data_scripts.download",
        description=(
            "Download, verify and unpack LJ Speech 1.1 and ESC-50 into DEST/LJSpeech-1.1 and "
            f"DEST/ESC-50-master. Set {MIRROR_ENV}=BASE_URL to download every archive from "
            "BASE_URL/<archive name> instead of the official servers."
        ),
    )
    parser.add_argument(
        "names", nargs="+", choices=sorted(CORPORA), metavar="CORPUS", help="ljspeech and/or esc50"
    )
    parser.add_argument("--dest", required=True, type=Path, help="data folder (created if needed)")
    parser.add_argument(
        "--url",
        action="append",
        default=[],
        metavar="NAME=URL",
        help="download NAME from URL (repeatable)",
    )
    parser.add_argument(
        "--hash",
        action="append",
        default=[],
        metavar="NAME=HASH",
        help="expected checksum of NAME's archive, e.g. sha256:<hex> (repeatable)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument(
        "--remove-archive", action="store_true", help="delete each archive after unpacking it"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (0 on success).

    Errors are printed as one message on stderr (no traceback) with exit status 1.
    """
    parser = _build_parser()
    args = parser.parse_args(argv)
    urls = _name_value_pairs(args.url, "--url", parser)
    hashes = _name_value_pairs(args.hash, "--hash", parser)
    try:
        folders = fetch_corpora(
            dict.fromkeys(args.names),  # unique, in order
            args.dest,
            urls=urls,
            known_hashes=hashes,
            progress=not args.no_progress,
            keep_archive=not args.remove_archive,
        )
    except (DownloadError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            "error: interrupted; nothing partial was kept, run again to restart.", file=sys.stderr
        )
        return 130
    for name, folder in folders.items():
        print(f"{name}: {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
