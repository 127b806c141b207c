"""Write the Colab badge and the Colab setup cell into every chapter.

The repository, the ref that Colab opens and installs, and the extras it installs come
from one place, ``[tool.synthsep.colab]`` in ``pyproject.toml``. Each chapter has a
markdown cell tagged ``colab-badge`` and a code cell tagged ``colab-setup``; this tool
rewrites both, and strips outputs and execution counts from every cell. It refuses a ref
that is not pinned (the release tag ``v<version>`` or a full commit hash) and extras the
package does not declare.

    python tools/sync_notebooks.py          # rewrite the notebooks
    python tools/sync_notebooks.py --check  # exit 1 if any notebook is out of date
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]

SETUP_TEMPLATE = """# Setup. On Colab, install this book's library, pinned, with the extras Colab lacks (its own
# TensorFlow, Keras and PyTorch GPU builds are kept); locally, `make book` already did.
# Repository and ref: [tool.synthsep.colab] in pyproject.toml, via tools/sync_notebooks.py.
import sys

if "google.colab" in sys.modules:
    import subprocess

    requirement = "{requirement}"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", requirement], check=True)"""


def colab_settings(root: Path = ROOT) -> dict:
    """``[tool.synthsep.colab]`` of ``pyproject.toml``, checked, plus the package's ``name``.

    Returns ``repository`` (GitHub ``owner/name``), ``ref`` (the release tag
    ``v<version>`` or a 40-character commit hash), ``extras`` (list of extra names) and
    ``name`` (the distribution name from ``[project]``). Exits naming the bad value when
    the ref is not pinned or an extra is not declared in ``[project.optional-dependencies]``.
    """
    with open(root / "pyproject.toml", "rb") as handle:
        pyproject = tomllib.load(handle)
    project = pyproject["project"]
    settings = dict(pyproject["tool"]["synthsep"]["colab"], name=project["name"])
    release_tag = f"v{project['version']}"
    # A branch moves: a chapter must install the library it was written with.
    if settings["ref"] != release_tag and not re.fullmatch(r"[0-9a-f]{40}", settings["ref"]):
        raise SystemExit(
            f"pyproject.toml [tool.synthsep.colab] ref = {settings['ref']!r} is not pinned: "
            f"use the release tag {release_tag!r} or a full 40-character commit hash"
        )
    unknown = sorted(set(settings["extras"]) - set(project["optional-dependencies"]))
    if unknown:
        raise SystemExit(
            f"pyproject.toml [tool.synthsep.colab] extras {unknown} are not extras of "
            f"{project['name']} ([project.optional-dependencies])"
        )
    return settings


def badge_source(notebook: Path, settings: dict) -> str:
    url = (
        f"https://colab.research.google.com/github/{settings['repository']}/blob/"
        f"{settings['ref']}/notebooks/{notebook.name}"
    )
    return f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({url})"


def colab_requirement(settings: dict) -> str:
    """The pip requirement the setup cell installs on Colab, e.g.
    ``synthsep-lib[corpus] @ git+https://github.com/owner/repo@v0.1.0``."""
    extras = f"[{','.join(settings['extras'])}]" if settings["extras"] else ""
    url = f"git+https://github.com/{settings['repository']}@{settings['ref']}"
    return f"{settings['name']}{extras} @ {url}"


def setup_source(settings: dict) -> str:
    return SETUP_TEMPLATE.format(requirement=colab_requirement(settings))


def synced(notebook: Path, settings: dict) -> nbformat.NotebookNode:
    """The notebook with badge/setup cells rewritten and outputs stripped."""
    nb = nbformat.read(notebook, as_version=4)
    wanted = {
        "colab-badge": badge_source(notebook, settings),
        "colab-setup": setup_source(settings),
    }
    found = set()
    for cell in nb.cells:
        tags = set(cell.get("metadata", {}).get("tags", []))
        for tag, source in wanted.items():
            if tag in tags:
                cell.source = source
                found.add(tag)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    missing = set(wanted) - found
    if missing:
        raise SystemExit(
            f"{notebook}: no cell tagged {sorted(missing)}; add them after the title cell"
        )
    return nb


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--check", action="store_true", help="only report notebooks that are out of date"
    )
    args = parser.parse_args(argv)
    settings = colab_settings()
    stale = []
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        new = synced(notebook, settings)
        text = nbformat.writes(new) + "\n"
        if notebook.read_text() != text:
            stale.append(notebook)
            if not args.check:
                notebook.write_text(text)
    if args.check and stale:
        print("out of date (run python tools/sync_notebooks.py):", *map(str, stale), sep="\n  ")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
