"""Every citation in the repository can be followed by someone who cloned it.

Facts about the original code are cited by a section label of the book page
``book/original_code.md``, written like ``original_code.md#oc-lead-in``, or, in
notebooks and book pages, as a MyST ``{ref}`` to such a label. These tests check that

* no tracked text file cites notes that are not part of the repository (the forbidden
  names are assembled below, so this file does not match itself);
* every such citation names a label that the page defines;
* every label of the page is defined once.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTES_PAGE = ROOT / "book" / "original_code.md"

#: Tracked files searched: these suffixes, plus every file named ``Makefile``.
TEXT_SUFFIXES = (".py", ".md", ".ipynb", ".yml", ".toml", ".cfg")

#: Citations of notes that are not in the repository. Each pattern is assembled from
#: pieces, so that this file's own text does not contain it.
FORBIDDEN = {
    "private facts sheet": re.compile(re.escape("PAPER" + "_FACTS")),
    "private datasets notes": re.compile(re.escape("DATASETS" + ".md")),
    "private design notes": re.compile(re.escape("DESIGN" + ".md")),
    "bare section sign and number": re.compile("\u00a7" + r"\s*\d"),
}

#: The page's file name, ``#`` and a label, as written in docstrings, comments and links.
PAGE_CITATION = re.compile(r"original_code\.md#([A-Za-z0-9_-]*)")

#: MyST ``{ref}`` roles: ``{ref}`label``` or ``{ref}`text <label>```.
REF_ROLE = re.compile(r"\{ref\}`(?:[^`<]*<)?([^`<>]+?)>?`")

#: A MyST target line, ``(label)=``.
LABEL_LINE = re.compile(r"^\(([^()\s]+)\)=\s*$", re.MULTILINE)


def _tracked_text_files() -> list[Path]:
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: the tracked files are unknown")
    files = []
    for name in out.decode("utf-8", "surrogateescape").split("\0"):
        if not name or name.startswith(".git/"):
            continue
        path = ROOT / name
        if path.name != "Makefile" and not path.name.endswith(TEXT_SUFFIXES):
            continue
        if path.is_file():  # a tracked file may have been moved in the working tree
            files.append(path)
    return files


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace")


def _line_of(text: str, index: int) -> int:
    return text.count("\n", 0, index) + 1


def _page_labels(page: Path = NOTES_PAGE) -> list[str]:
    return LABEL_LINE.findall(_read(page))


def _citations(files: list[Path], root: Path) -> list[tuple[str, str]]:
    """(where, label) of every citation of the notes page in ``files``."""
    found = []
    for path in files:
        text = _read(path)
        rel = path.relative_to(root).as_posix()
        for m in PAGE_CITATION.finditer(text):
            found.append((f"{rel}:{_line_of(text, m.start())}", m.group(1)))
        if path.suffix in (".md", ".ipynb"):
            for m in REF_ROLE.finditer(text):
                label = m.group(1).strip()
                if label.startswith("oc-"):
                    found.append((f"{rel}:{_line_of(text, m.start())}", label))
    return found


def find_forbidden(files: list[Path], root: Path = ROOT) -> list[str]:
    """``path:line: what: text`` for every citation of notes outside the repository."""
    problems = []
    for path in files:
        text = _read(path)
        rel = path.relative_to(root).as_posix()
        for what, pattern in FORBIDDEN.items():
            for m in pattern.finditer(text):
                line = text.splitlines()[_line_of(text, m.start()) - 1].strip()
                problems.append(f"{rel}:{_line_of(text, m.start())}: {what}: {line[:120]}")
    return problems


def find_unknown_labels(files: list[Path], labels: set[str], root: Path = ROOT) -> list[str]:
    """``path:line: label`` for every citation of a label the notes page lacks."""
    return [
        f"{where}: {label or '(empty)'}"
        for where, label in _citations(files, root)
        if label not in labels
    ]


def test_notes_page_exists():
    assert NOTES_PAGE.is_file(), "book/original_code.md is missing"


def test_no_citations_of_notes_outside_the_repository():
    problems = find_forbidden(_tracked_text_files())
    assert not problems, (
        "cite a section of book/original_code.md, or the paper, instead of:\n" + "\n".join(problems)
    )


def test_every_cited_label_exists():
    labels = set(_page_labels())
    problems = find_unknown_labels(_tracked_text_files(), labels)
    assert not problems, "labels not defined in book/original_code.md:\n" + "\n".join(problems)


def test_labels_of_the_notes_page_are_unique_and_well_formed():
    labels = _page_labels()
    assert labels, "book/original_code.md defines no labels"
    duplicates = sorted({label for label in labels if labels.count(label) > 1})
    assert not duplicates, f"labels defined more than once: {duplicates}"
    malformed = [label for label in labels if not re.fullmatch(r"oc-[a-z0-9-]+", label)]
    assert not malformed, f"labels not of the form oc-<short-name>: {malformed}"


def test_the_checks_catch_bad_citations(tmp_path):
    """The searches above find what they are meant to find, and only that."""
    bad = tmp_path / "bad.py"
    bad.write_text(
        "# see " + "PAPER" + "_FACTS" + " \u00a7" + "2.6\n"
        "# see " + "DATASETS" + ".md and " + "DESIGN" + ".md\n"
        "# see original_code.md" + "#oc-no-such-label\n"
        "# see original_code.md" + "#oc-lead-in, paper, Sec. 2\n",
        encoding="utf-8",
    )
    page = tmp_path / "page.md"
    page.write_text("{ref}`oc-missing` and {ref}`the lead-in <oc-lead-in>`\n", encoding="utf-8")
    files = [bad, page]
    assert len(find_forbidden(files, tmp_path)) == 4
    labels = set(_page_labels())
    assert find_unknown_labels(files, labels, tmp_path) == [
        "bad.py:3: oc-no-such-label",
        "page.md:1: oc-missing",
    ]
