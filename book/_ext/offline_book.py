"""Sphinx extension: the rendered book loads nothing from the network at page load.

MathJax comes from ``sphinx-mathjax-offline`` and the ipywidgets manager from
``book/_static`` (see ``_config.yml``); this extension handles the rest:

* the chapters' "Open in Colab" badge (a remote image, kept remote in the notebooks
  so that it shows on GitHub) is swapped for the book's own copy;
* scripts registered twice are written once: Sphinx 7.4 repeats a body-only script
  that an extension adds once the builder exists (its copy in the registry has file
  ``""``, the builder's ``None``), and sphinx-thebe's second
  ``const THEBE_JS_URL = …`` is a SyntaxError on every page.
"""

from __future__ import annotations

from docutils import nodes
from sphinx.transforms import SphinxTransform

#: The remote badge the chapters link to Colab with, and the book's copy of it (a
#: path from the source root, which Sphinx copies into ``_images`` like any figure).
COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
LOCAL_BADGE = "/book/figures/colab-badge.svg"


class LocalColabBadge(SphinxTransform):
    """Point every image of the remote Colab badge at the book's copy."""

    default_priority = 100  # before Sphinx collects the images to copy

    def apply(self, **kwargs) -> None:
        for image in self.document.findall(nodes.image):
            if image["uri"] == COLAB_BADGE:
                image["uri"] = LOCAL_BADGE
                image["candidates"] = {"*": LOCAL_BADGE}


def drop_repeated_scripts(app, pagename, templatename, context, doctree) -> None:
    """Keep the first of identical scripts in the page (same file or body, attributes
    and priority); a body-only script's file is ``None`` or ``""`` depending on when
    it was registered, hence the ``or``."""
    seen: set[tuple] = set()
    kept = []
    for script in context.get("script_files", []):
        key = (script.filename or "", script.priority, *sorted(script.attributes.items()))
        if key not in seen:
            seen.add(key)
            kept.append(script)
    context["script_files"] = kept


def setup(app):
    app.add_transform(LocalColabBadge)
    app.connect("html-page-context", drop_repeated_scripts)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
