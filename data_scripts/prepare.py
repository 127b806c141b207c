"""Make a profile's corpora available: build the mini corpus or download the real ones.

    python -m data_scripts.prepare --profile reduced --data-root data

``reduced`` builds the embedded mini corpus in ``<data-root>/mini`` (size and seed from
the profile; a no-op when an identical build is there); ``paper`` downloads and verifies
LJSpeech-1.1 and ESC-50 into ``<data-root>/real`` when missing. Chapter 1 calls
:func:`prepare_corpora`; the Makefile calls this module's command line.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from synthsep_lib.config import PROFILES, load_profile


def prepare_corpora(profile, data_root: str | os.PathLike, progress: bool = True):
    """Build (``mini``) or download (``real``) the profile's corpora; return their readers.

    Parameters
    ----------
    profile : Profile
        Its ``data`` section says which corpus and, for the mini corpus, size and seed.
    data_root : path-like
        Folder under which ``mini/`` or ``real/`` lives.
    progress : bool
        Show progress bars.

    Returns
    -------
    (synthsep_lib.corpora.LJSpeech, synthsep_lib.corpora.ESC50)
    """
    # Imported here, not at the top: the mini corpus builder's fresh worker processes
    # re-import this module as __main__, and must not pay for librosa and pandas each time.
    from synthsep_lib.corpora import corpus_folder, open_corpora

    folder = corpus_folder(profile, data_root)
    if profile.data.corpus == "mini":
        from data_scripts.mini_corpus import build_mini_corpus

        build_mini_corpus(
            folder,
            n_utterances=profile.data.mini_utterances,
            seed=profile.data.mini_seed,
            progress=progress,
        )
    else:
        from synthsep_lib.pipeline.downloads import fetch_corpora

        fetch_corpora(["ljspeech", "esc50"], folder, progress=progress)
    return open_corpora(profile, data_root)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--profile", default="reduced", choices=PROFILES)
    parser.add_argument("--data-root", default="data", help="folder holding mini/ and real/")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        lj, esc = prepare_corpora(
            load_profile(args.profile), args.data_root, progress=not args.no_progress
        )
    except (OSError, ValueError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"{args.profile}: {lj} and {esc} ready ({time.perf_counter() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
