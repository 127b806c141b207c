"""The ``synthsep`` command line: separate audio files with the book's trained models.

``synthsep separate noisy.wav --out separated/`` runs the best method whose models a run
folder holds (:func:`~synthsep_lib.pipeline.separators.available_methods`) on each input,
in chunks (:func:`~synthsep_lib.pipeline.long_audio.separate_file`), and writes
``separated/noisy.wav``. Everything that can be checked is checked before the models are
loaded (that takes seconds); a problem ends the command with one line on stderr,
``synthsep: error: …``, and exit status 1.

:func:`main` takes the arguments as a list and returns the exit status, so it can be
called in-process: ``main(["separate", "noisy.wav", "--out", "separated"])``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

from . import __version__
from .config import PROFILES, load_profile
from .pipeline.long_audio import (
    InputError,
    chunk_layout,
    inspect_input,
    model_grid,
    separate_file,
)
from .pipeline.runs import RunPaths
from .pipeline.separators import (
    CHECKPOINT_ROLES,
    SEPARATION_METHODS,
    ModelsMissingError,
    checkpoint_files,
    load_separator,
)

__all__ = ["main", "build_parser", "CommandError", "output_name"]

PROG = "synthsep"
SAMPLE_RATE = 22050  # of every model of the book (both profiles), hence of every output


class CommandError(Exception):
    """A problem with the command's arguments or inputs: printed as one line, exit 1."""


def output_name(input_path: str | os.PathLike) -> str:
    """Name of an input's estimate in the output folder: its name with ``.wav`` as suffix.

    ``noisy.flac`` → ``noisy.wav``; ``talk.2024.ogg`` → ``talk.2024.wav``.
    """
    return Path(input_path).stem + ".wav"


def _chapters(method: str) -> str:
    """The chapters that train ``method``'s models, in the order of its roles."""
    chapters = dict.fromkeys(CHECKPOINT_ROLES[role][1] for role in SEPARATION_METHODS[method].roles)
    return " and ".join(chapters)


def _paragraphs(*texts: str, width: int = 79) -> str:
    """Texts wrapped to ``width`` columns, as paragraphs (help texts keep this layout)."""
    return "\n\n".join(textwrap.fill(" ".join(t.split()), width) for t in texts)


def _table(rows: dict[str, str], width: int = 79) -> str:
    """``name  text`` rows, the text wrapped and aligned after the longest name."""
    indent = 2 + max(map(len, rows)) + 2
    return "\n".join(
        textwrap.fill(
            text,
            width,
            initial_indent=f"  {name:<{indent - 4}}  ",
            subsequent_indent=" " * indent,
        )
        for name, text in rows.items()
    )


METHODS_HELP = _table(
    {
        name: f"{method.description}; trained by {_chapters(name)}"
        for name, method in SEPARATION_METHODS.items()
    }
)
ROLES_HELP = _table({role: chapter for role, (_, chapter) in CHECKPOINT_ROLES.items()})


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``synthsep`` and its ``separate`` command."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=_paragraphs(
            "Speech separation by synthesis, as in the SynthSep book (Liu, Jackson and Wang, "
            "IEEE SPL 2019): the estimated speech is synthesised from the mixture, with the "
            "models the book's chapters train."
        ),
        epilog=f"example:\n  {PROG} separate noisy.wav --out separated/\n\n"
        f"Run '{PROG} separate --help' for the options.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", title="commands", metavar="COMMAND")
    commands.required = True
    separate = commands.add_parser(
        "separate",
        help="separate the speech in audio files with trained models",
        description=_paragraphs(
            "Separate the target speech of each INPUT from its background noise with the "
            "trained models of a run folder (<run-root>/<profile>/, what the chapters write) "
            "or with checkpoint files.",
            "Inputs: anything soundfile reads (WAV, FLAC, OGG ...), at any sample rate "
            f"(resampled to {SAMPLE_RATE} Hz), with any number of channels (averaged to "
            "mono), of any length (separated in overlapping chunks: memory does not grow "
            "with the length).",
            "Outputs: the estimate of INPUT is written to DIR under INPUT's name with the "
            "suffix .wav (noisy.flac -> DIR/noisy.wav; an existing file is replaced), always "
            f"a {SAMPLE_RATE} Hz mono 32-bit float WAV at the input's level.",
        ),
        epilog=(
            "methods, best first (the default is the first one whose models are found):\n"
            f"{METHODS_HELP}\n\n"
            "checkpoint roles (--checkpoint ROLE=PATH) and the chapters that train them:\n"
            f"{ROLES_HELP}\n\n"
            "examples:\n"
            f"  {PROG} separate noisy.wav --out separated/\n"
            f"  {PROG} separate talk.flac interview.ogg --out separated/ --method b2\n"
            f"  {PROG} separate noisy.wav --out separated/ --method proposed-parallel-ft \\\n"
            "      --checkpoint encoder=encoder.keras --checkpoint parallel-finetuned=gen.pth"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    separate.add_argument("inputs", nargs="+", metavar="INPUT", help="audio files to separate")
    separate.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="output folder, created if missing: INPUT's estimate is DIR/<INPUT's name>.wav",
    )
    separate.add_argument(
        "--method",
        choices=list(SEPARATION_METHODS),
        metavar="METHOD",
        help="separation method, one of the methods below (default: the best one whose "
        "models are found)",
    )
    separate.add_argument(
        "--profile",
        choices=PROFILES,
        default="reduced",
        help="profile the models were trained with (default: %(default)s)",
    )
    separate.add_argument(
        "--run-root",
        default="runs",
        metavar="DIR",
        help="folder holding the run folders <profile>/ (default: %(default)s)",
    )
    separate.add_argument(
        "--checkpoint",
        action="append",
        default=[],
        metavar="ROLE=PATH",
        help="use this checkpoint file for the model of ROLE (see below) instead of the run "
        "folder's; repeatable",
    )
    separate.add_argument(
        "--chunk-seconds",
        type=float,
        default=20.0,
        metavar="S",
        help="length of the pieces the models separate at a time, fitted to their blocks "
        "(0.74 s) (default: %(default)s)",
    )
    separate.add_argument(
        "--overlap-seconds",
        type=float,
        metavar="S",
        help="overlap of consecutive pieces, cross-faded; at most half a piece "
        "(default: 1, or half a piece if that is less)",
    )
    separate.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="no progress bars (shown on a terminal only anyway) or per-file summaries; "
        "notes and errors are still shown",
    )
    return parser


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """Send file descriptor 2 to the null device for a while.

    TensorFlow's C++ start-up messages (oneDNN, absl) go there, whatever
    ``TF_CPP_MIN_LOG_LEVEL`` says; load failures are still reported as exceptions.
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no descriptor 2 to redirect
        yield
        return
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def _note(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr, flush=True)


def _parse_checkpoints(items: list[str]) -> dict[str, Path]:
    checkpoints: dict[str, Path] = {}
    for item in items:
        role, sep, path = item.partition("=")
        if not sep or not role or not path:
            raise CommandError(f"--checkpoint {item!r}: expected ROLE=PATH")
        if role not in CHECKPOINT_ROLES:
            raise CommandError(
                f"--checkpoint {item!r}: unknown role {role!r}; roles: {', '.join(CHECKPOINT_ROLES)}"
            )
        if role in checkpoints:
            raise CommandError(f"--checkpoint: role {role!r} given twice")
        checkpoints[role] = Path(path)
    return checkpoints


def _choose_method(method: str | None, paths: RunPaths, checkpoints: dict[str, Path]) -> str:
    """The method to run: ``method`` if given, else the best one whose files exist.

    Raises CommandError (with the chapters to run) when the files are missing.
    """
    if method is not None:
        try:
            checkpoint_files(paths, method, checkpoints)
        except (ModelsMissingError, ValueError) as error:
            raise CommandError(str(error)) from None
        return method
    # with checkpoints given, only the methods that use all of them are candidates
    candidates = [
        m for m, spec in SEPARATION_METHODS.items() if set(checkpoints) <= set(spec.roles)
    ]
    if not candidates:
        raise CommandError(
            f"no method uses all the checkpoint roles given ({', '.join(checkpoints)}); "
            "give --method"
        )
    first_error = None
    for candidate in candidates:
        try:
            checkpoint_files(paths, candidate, checkpoints)
        except ModelsMissingError as error:
            first_error = first_error or error
            continue
        return candidate
    if checkpoints:
        raise CommandError(str(first_error))
    needs = "; ".join(f"{m}: {_chapters(m)}" for m in SEPARATION_METHODS)
    where = "" if paths.root.is_dir() else " (the folder does not exist)"
    raise CommandError(
        f"no trained models in {paths.root}{where}; run the chapters that train a method "
        f"with profile {paths.profile!r} ({needs}), or give --run-root, --profile or "
        "--checkpoint ROLE=PATH"
    )


def _check_output_folder(folder: Path) -> None:
    """Create ``folder`` if needed and make sure a file can be written in it."""
    if folder.exists() and not folder.is_dir():
        raise CommandError(f"--out {folder}: is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise CommandError(
            f"--out {folder}: cannot write there ({error.strerror or error})"
        ) from None


def _plan_outputs(inputs: list[str], folder: Path) -> list[tuple[Path, Path]]:
    """(input, output) pairs; refuses two inputs with one output, or overwriting an input."""
    plan, claimed = [], {}
    resolved_inputs = {Path(p).resolve() for p in inputs}
    for name in inputs:
        source = Path(name)
        target = folder / output_name(source)
        if target in claimed:
            raise CommandError(f"{claimed[target]} and {source} would both be written to {target}")
        if target.resolve() in resolved_inputs:
            raise CommandError(f"{target} would overwrite an input; choose another --out")
        if target.is_dir():
            raise CommandError(f"{target}: is a folder, cannot write the estimate of {source}")
        claimed[target] = source
        plan.append((source, target))
    return plan


def _separate(args: argparse.Namespace) -> int:
    checkpoints = _parse_checkpoints(args.checkpoint)
    if args.overlap_seconds is None:
        args.overlap_seconds = min(1.0, args.chunk_seconds / 2)
    profile = load_profile(args.profile)
    rate, grid = profile.features.sample_rate, model_grid(profile)
    try:
        chunk_layout(rate, args.chunk_seconds, args.overlap_seconds, *grid)
    except ValueError:
        raise CommandError(
            f"--chunk-seconds {args.chunk_seconds} --overlap-seconds {args.overlap_seconds}: "
            "need a positive chunk and an overlap between 0 and half of it"
        ) from None
    folder = Path(args.out)
    plan = _plan_outputs(args.inputs, folder)
    infos = {}
    for source, _ in plan:
        try:
            infos[source] = inspect_input(source, rate)
        except InputError as error:
            raise CommandError(str(error)) from None
    paths = RunPaths(args.run_root, args.profile)
    method = _choose_method(args.method, paths, checkpoints)
    _check_output_folder(folder)  # last: it creates the folder

    origin = "given checkpoints" if checkpoints else str(paths.root)
    _note(f"method {method}: {SEPARATION_METHODS[method].description} ({origin})")
    try:
        with _native_stderr_silenced():
            separator = load_separator(method, paths, profile, checkpoints)
    except Exception as error:  # noqa: BLE001 - a damaged or foreign checkpoint: say which
        files = ", ".join(str(p) for p in checkpoint_files(paths, method, checkpoints).values())
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise CommandError(f"cannot load the {method} models ({files}): {reason}") from None
    for source, target in plan:
        info = infos[source]
        if info.channels > 1:
            _note(f"{source}: {info.channels} channels averaged to mono")
        try:
            result = separate_file(
                source,
                target,
                separator,
                chunk_seconds=args.chunk_seconds,
                overlap_seconds=args.overlap_seconds,
                grid=grid,
                progress=False if args.quiet else None,  # None: on a terminal only
                info=info,
            )
        except InputError as error:
            raise CommandError(str(error)) from None
        except OSError as error:
            raise CommandError(f"{target}: cannot be written ({error})") from None
        if not args.quiet:
            _note(
                f"wrote {target} ({result['input_seconds']:.1f} s of audio in "
                f"{result['seconds']:.1f} s, real-time factor {result['real_time_factor']:.3f})"
            )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run ``synthsep`` with ``argv`` (default: ``sys.argv[1:]``); return the exit status.

    0: done; 1: an error, reported as one line ``synthsep: error: …`` on stderr;
    2: arguments argparse rejects (with the usage); 130: interrupted (no output is left
    half-written).
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # --help, --version, or a usage error argparse reported
        return stop.code if isinstance(stop.code, int) else 1
    try:
        return _separate(args)
    except CommandError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
