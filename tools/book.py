"""Execute the chapters with papermill and render the book from the executed copies.

    python tools/book.py execute --profile reduced --out _build/executed
    python tools/book.py render --executed _build/executed --out _build/html

Chapters are taken from ``_toc.yml``. ``execute`` runs them in book order, except the
evaluation chapters (:data:`RUN_LAST`), which run after every other chapter; it stops at
the first chapter that fails (later chapters depend on its artifacts) and exits
non-zero, naming the chapter and the cell. ``render`` keeps the book order: it copies
the book sources beside the executed notebooks into a staging folder (without
papermill's injected-parameters cell, which holds this machine's paths) and runs Jupyter
Book there with execution off, so nothing is executed twice and the committed notebooks
stay free of outputs.

A complete ``execute`` from an empty run folder leaves a record (:data:`RECORD`) of what
it ran on; ``make test`` reuses those executed chapters and their run folder instead of
executing the book a second time while the record matches the sources
(:func:`reusable_execution`), and ``render`` notes which execution, and which book
sources (:func:`rendering_fingerprint`), a rendering shows.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

from synthsep_lib.config import PROFILES

ROOT = Path(__file__).resolve().parents[1]
BOOK_SOURCES = ("_config.yml", "_toc.yml", "book")
#: Chapters (stems) that execute after every other chapter, in book order among
#: themselves: they evaluate the outputs the others write (Table I scores every method
#: folder, the listening test compares them), so a chapter placed after them in the
#: book, such as one adding a method beyond the paper, must have run first.
RUN_LAST = ("05_evaluation", "06_listening_test")
#: What a chapter's results depend on besides its parameters and the corpus: the
#: chapters, the library (profiles included), the corpus builder, the book order, this
#: tool and the pinned dependencies.
EXECUTION_SOURCES = (
    "notebooks",
    "synthsep_lib",
    "data_scripts",
    "_toc.yml",
    "tools/book.py",
    "pyproject.toml",
)
SOURCE_SUFFIXES = (".ipynb", ".py", ".yaml", ".yml", ".txt", ".toml")
#: File beside the executed chapters (and in a rendered book) recording what they ran on.
RECORD = "EXECUTED.json"


def chapters(root: Path = ROOT) -> list[Path]:
    """Notebook paths (relative to ``root``) in the order of ``_toc.yml``."""
    files: list[str] = []

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                files.append(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(yaml.safe_load((root / "_toc.yml").read_text()))
    return [Path(f"{name}.ipynb") for name in files if (root / f"{name}.ipynb").exists()]


def execution_order(notebooks: list[Path]) -> list[Path]:
    """``notebooks`` (book order) with the :data:`RUN_LAST` chapters moved to the end.

    The sort is stable, so every other chapter, and the ``RUN_LAST`` chapters among
    themselves, keep their book order.
    """
    return sorted(notebooks, key=lambda notebook: notebook.stem in RUN_LAST)


def execute(
    profile: str,
    data_root: Path,
    run_root: Path,
    out: Path,
    only: list[str] | None = None,
    root: Path = ROOT,
) -> int:
    """Run the chapters of the book at ``root`` with papermill into ``out``.

    Chapters run in :func:`execution_order`; ``only`` (chapter stems) runs just those, in
    the same order. Returns 0 when every chapter ran, 1 at the first failure (later
    chapters need its artifacts, so they are not attempted).
    """
    import papermill

    out.mkdir(parents=True, exist_ok=True)
    (out / RECORD).unlink(missing_ok=True)
    parameters = {
        "profile": profile,
        "data_root": str(data_root.resolve()),
        "run_root": str(run_root.resolve()),
    }
    # A record is left only by a complete run from an empty run folder: a run that
    # resumed earlier training did not execute the chapters from scratch.
    from_scratch = not only and not any((run_root / profile).glob("*"))
    fingerprint = execution_fingerprint(profile, data_root, run_root, root)
    for notebook in execution_order(chapters(root)):
        if only and notebook.stem not in only:
            continue
        target = out / notebook
        target.parent.mkdir(parents=True, exist_ok=True)
        print(f"[book] executing {notebook} (profile={profile}) ...", flush=True)
        start = time.perf_counter()
        try:
            papermill.execute_notebook(
                str(root / notebook),
                str(target),
                parameters=parameters,
                kernel_name="python3",
                cwd=str(root),
                progress_bar=False,
            )
        except papermill.PapermillExecutionError as error:
            print(
                f"[book] FAILED: {notebook}, cell {error.cell_index}: {error.ename}: {error.evalue}\n"
                f"[book] the executed copy with the traceback is {target}",
                file=sys.stderr,
            )
            return 1
        print(f"[book] {notebook} done in {time.perf_counter() - start:.0f} s", flush=True)
    if from_scratch:
        record = {"fingerprint": fingerprint, **parameters}
        (out / RECORD).write_text(json.dumps(record, indent=2) + "\n")
    return 0


def execution_fingerprint(profile: str, data_root: Path, run_root: Path, root: Path = ROOT) -> str:
    """sha256 (hex) of everything the chapters' results depend on.

    The parameters (profile, absolute data and run folders), every source file under
    :data:`EXECUTION_SOURCES` (path and bytes) and the corpus' build record
    (``BUILD_INFO.json`` of the mini corpus, which lists every file's size).
    """
    from synthsep_lib.config import load_profile
    from synthsep_lib.corpora import corpus_folder

    digest = hashlib.sha256()
    digest.update(f"{profile}\0{data_root.resolve()}\0{run_root.resolve()}\0".encode())
    _hash_sources(digest, EXECUTION_SOURCES, root, SOURCE_SUFFIXES)
    build_info = corpus_folder(load_profile(profile), data_root) / "BUILD_INFO.json"
    digest.update(build_info.read_bytes() if build_info.exists() else b"no build record")
    return digest.hexdigest()


def rendering_fingerprint(root: Path = ROOT) -> str:
    """sha256 (hex) of what a rendering adds to the executed chapters: the book sources
    (:data:`BOOK_SOURCES`, every file) and this tool."""
    digest = hashlib.sha256()
    _hash_sources(digest, (*BOOK_SOURCES, "tools/book.py"), root)
    return digest.hexdigest()


def _hash_sources(digest, names, root: Path, suffixes: tuple[str, ...] | None = None) -> None:
    """Feed the path and bytes of every file under ``names`` (files or folders of
    ``root``; only those ending in ``suffixes`` when given) to ``digest``, in a fixed order."""
    for name in names:
        source = root / name
        files = sorted(source.rglob("*")) if source.is_dir() else [source]
        for path in files:
            if not path.is_file() or "__pycache__" in path.parts:
                continue
            if suffixes is None or path.suffix in suffixes:
                digest.update(f"{path.relative_to(root).as_posix()}\0".encode())
                digest.update(hashlib.sha256(path.read_bytes()).digest())


def reusable_execution(
    executed: Path, profile: str, data_root: Path, root: Path = ROOT
) -> dict | None:
    """The record of ``executed`` when its chapters can stand for a fresh execution.

    That is when a complete run from an empty run folder wrote them (:func:`execute`
    leaves :data:`RECORD` only then), for ``profile`` and ``data_root``, from the sources
    as they are now, and its run folder is still there. Returns the record (``run_root``
    among its keys) or None.
    """
    try:
        record = json.loads((executed / RECORD).read_text())
        run_root = Path(record["run_root"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if record.get("profile") != profile or record.get("data_root") != str(data_root.resolve()):
        return None
    if not (run_root / profile).is_dir() or any(
        not (executed / notebook).exists() for notebook in chapters(root)
    ):
        return None
    if record.get("fingerprint") != execution_fingerprint(profile, data_root, run_root, root):
        return None
    return record


def stage_notebook(executed: Path, target: Path) -> None:
    """Copy an executed chapter for rendering, without this machine's paths.

    papermill adds a cell tagged ``injected-parameters`` and a ``papermill`` metadata
    entry that hold this machine's absolute data and run folders; the staged copy (the
    page and its downloadable notebook) keeps neither. Nor does it keep the cells'
    stderr streams, which the pages leave out (``nb_output_stderr: remove``) and which
    hold warnings naming this machine's library folder; the downloadable notebook shows
    what its page shows. The chapter's own ``parameters`` cell stays, and the executed
    notebook itself is unchanged.
    """
    import nbformat

    nb = nbformat.read(executed, as_version=4)
    nb.cells = [c for c in nb.cells if "injected-parameters" not in c.metadata.get("tags", [])]
    nb.metadata.pop("papermill", None)
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        if cell.cell_type == "code":
            cell.outputs = [
                out
                for out in cell.outputs
                if not (out.output_type == "stream" and out.name == "stderr")
            ]
    nbformat.write(nb, target)


def render(executed: Path, out: Path) -> int:
    """Render ``executed`` notebooks plus the book sources into ``out`` (HTML)."""
    stage = out.parent / "stage"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    for name in BOOK_SOURCES:
        source = ROOT / name
        (shutil.copytree if source.is_dir() else shutil.copy2)(source, stage / name)
    missing = [str(nb) for nb in chapters() if not (executed / nb).exists()]
    if missing:
        print(
            f"[book] not executed yet: {', '.join(missing)}; run `make chapters` first",
            file=sys.stderr,
        )
        return 1
    for notebook in chapters():
        (stage / notebook).parent.mkdir(parents=True, exist_ok=True)
        stage_notebook(executed / notebook, stage / notebook)
    result = subprocess.run(
        [
            str(Path(sys.executable).with_name("jupyter-book")),
            "build",
            str(stage),
            "--path-output",
            str(stage),
            "--all",
            "-q",
        ],
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        print(
            result.stdout,
            result.stderr,
            "[book] jupyter-book build failed",
            sep="\n",
            file=sys.stderr,
        )
        return result.returncode
    shutil.rmtree(out, ignore_errors=True)
    shutil.move(str(stage / "_build" / "html"), str(out))
    if (executed / RECORD).exists():
        record = json.loads((executed / RECORD).read_text())
        record["rendering"] = rendering_fingerprint()
        (out / RECORD).write_text(json.dumps(record, indent=2) + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("execute", help="execute the chapters with papermill")
    run.add_argument("--profile", default="reduced", choices=PROFILES)
    run.add_argument("--data-root", type=Path, default=Path("data"))
    run.add_argument("--run-root", type=Path, default=Path("runs"))
    run.add_argument("--out", type=Path, default=Path("_build/executed"))
    run.add_argument(
        "--only", nargs="*", help="chapter stems to run, in execution order (default: all)"
    )
    ren = sub.add_parser("render", help="render the executed chapters with Jupyter Book")
    ren.add_argument("--executed", type=Path, default=Path("_build/executed"))
    ren.add_argument("--out", type=Path, default=Path("_build/html"))
    args = parser.parse_args(argv)
    if args.command == "execute":
        return execute(args.profile, args.data_root, args.run_root, args.out, args.only)
    return render(args.executed, args.out)


if __name__ == "__main__":
    sys.exit(main())
