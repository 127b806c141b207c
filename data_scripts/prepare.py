"""Make a profile's corpora available: build the mini corpus or download the real ones.

    python -m data_scripts.prepare --profile reduced --data-root data

``reduced`` builds the embedded mini corpus in ``<data-root>/mini`` (size and seed from
the profile; a no-op when an identical build is there); ``paper`` downloads and verifies
LJSpeech-1.1 and ESC-50 into ``<data-root>/real`` when missing. Chapter 1 does the same
through :func:`synthsep_lib.corpora.ensure_corpora`; this is the Makefile's entry point.

Used in: the Makefile (`make corpus`, `make book`, `make test`).
"""

from __future__ import annotations

import argparse
import sys
import time

from synthsep_lib.config import PROFILES, load_profile


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--profile", default="reduced", choices=PROFILES)
    parser.add_argument("--data-root", default="data", help="folder holding mini/ and real/")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    args = parser.parse_args(argv)
    # Imported here, not at the top: the mini corpus builder's fresh worker processes
    # re-import this module as __main__, and must not pay for librosa and pandas each time.
    from synthsep_lib.corpora import ensure_corpora

    start = time.perf_counter()
    try:
        lj, esc = ensure_corpora(
            load_profile(args.profile), args.data_root, progress=not args.no_progress
        )
    except (OSError, ValueError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"{args.profile}: {lj} and {esc} ready ({time.perf_counter() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
