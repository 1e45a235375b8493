"""Sphinx extension: the book's interface, legible and accessible, in French.

- Diagrams (``{graphviz}``) are rendered as ``<img>`` with a text alternative read
  from the graph itself (its boxes and arrows) unless the page gives ``:alt:``, a
  minimum width that keeps their smallest label at 9 px (narrower screens scroll
  the diagram instead of shrinking it), and a link that opens the SVG alone.
- Figures in notebook outputs get a French text alternative (the titles the cell
  gives its plots) instead of their file path, and the same link to enlarge them.
- The article header buttons of sphinx-book-theme get French tooltips.
- MyST-NB's folded cells (the exercises' solutions) are named by their visible
  French prompt, not by MyST-NB's fixed aria-label "Toggle hidden content".
"""

from __future__ import annotations

import hashlib
import html
import math
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from docutils import nodes
from myst_nb.sphinx_ import HideCodeCellNode, depart_HideCellInput
from sphinx.application import Sphinx
from sphinx.ext import graphviz as sphinx_graphviz

SVG = "{http://www.w3.org/2000/svg}"
PT_TO_PX = 4 / 3
# Smallest label size, in CSS px, below which a diagram scrolls instead of shrinking.
LEGIBLE_PX = 9

# sphinx-book-theme's header buttons, by their "label": French tooltip and text.
BUTTONS = {
    "source-buttons": ("Dépôt du livre", None),
    "source-repository-button": ("Dépôt du livre sur GitHub", "Dépôt"),
    "source-edit-button": ("Proposer une modification de cette page", "Modifier"),
    "source-issues-button": ("Signaler un problème sur cette page", "Signaler"),
    "download-buttons": ("Télécharger cette page", None),
    "download-notebook-button": ("Télécharger le notebook", None),
    "download-source-button": ("Télécharger le fichier source", None),
    "download-pdf-button": ("Imprimer en PDF", None),
    "fullscreen-button": ("Plein écran", None),
    "onyxia-launch-button": ("Ouvrir dans Onyxia (SSP Cloud)", None),
}
# The theme's new-issue link pre-fills an English title and body.
ISSUE_TEXT = {
    "Issue%20on%20page": "Probl%C3%A8me%20sur%20la%20page",
    "Your%20issue%20content%20here.": "D%C3%A9crivez%20le%20probl%C3%A8me%20ici.",
}


def smallest_font_px(svg_path: Path) -> float:
    """The smallest text of a graphviz SVG, in px at its natural size."""
    sizes = re.findall(r'font-size="([0-9.]+)"', svg_path.read_text(encoding="utf-8"))
    return min((float(size) for size in sizes), default=14.0) * PT_TO_PX


def describe_svg(svg_path: Path) -> tuple[str, float, float]:
    """A text alternative listing an SVG graph's boxes and arrows; its size in px."""
    root = ET.parse(svg_path).getroot()
    width = float(root.get("width", "0pt").removesuffix("pt")) * PT_TO_PX
    height = float(root.get("height", "0pt").removesuffix("pt")) * PT_TO_PX

    def text_of(group) -> str:
        lines = [(t.text or "").strip() for t in group.iter(f"{SVG}text")]
        lines = [line for line in lines if line]
        return " ".join(lines)

    labels, boxes, arrows = {}, [], []
    for group in root.iter(f"{SVG}g"):
        kind, title = group.get("class"), group.findtext(f"{SVG}title", "").strip()
        if kind == "node":
            labels[title] = text_of(group) or title
            boxes.append(labels[title])
    for group in root.iter(f"{SVG}g"):
        if group.get("class") != "edge":
            continue
        title = group.findtext(f"{SVG}title", "")
        ends = re.split(r"->|--", title)
        if len(ends) != 2:
            continue
        tail, head = (end.strip() for end in ends)
        tail, head = (labels.get(end.split(":")[0], end) for end in (tail, head))
        label = text_of(group)
        arrows.append(f"{tail} vers {head}" + (f" ({label})" if label else ""))
    text = "Schéma. Éléments : " + " ; ".join(boxes) + "."
    if arrows:
        text += " Liens : " + " ; ".join(arrows) + "."
    return text, width, height


def visit_graphviz(self, node) -> None:
    """<img> instead of <object>: a text alternative, a natural size, a zoom link."""
    try:
        fname, outfn = sphinx_graphviz.render_dot(
            self, node["code"], node["options"], "svg", "graphviz", node.get("filename")
        )
    except sphinx_graphviz.GraphvizError as exc:
        raise nodes.SkipNode from exc
    described, width, height = describe_svg(Path(outfn))
    min_width = min(width, width * LEGIBLE_PX / smallest_font_px(Path(outfn)))
    alt = html.escape(node.get("alt") or described)
    src = fname.as_posix()
    classes = " ".join(["graphviz", *node.get("classes", [])])
    align = node.get("align", "center")
    self.body.append(
        f'<div class="diagram align-{align}" style="--diagram-width: {width:.0f}px; '
        f'--diagram-min-width: {math.ceil(min_width)}px">'
        f'<a class="diagram-zoom" href="{src}" title="Agrandir le schéma">'
        f'<img src="{src}" alt="{alt}" class="{classes}" width="{width:.0f}" '
        f'height="{height:.0f}" /></a></div>\n'
    )
    raise nodes.SkipNode


TITLE_CALL = re.compile(r"""(?:suptitle|set_title|title)\(\s*(?:f?["'])(.+?)["']""")


def label_notebook_figures(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    """Give output images a French text alternative (site.js links them to enlarge)."""
    for image in list(doctree.findall(nodes.image)):
        cell = image.parent
        while cell is not None and cell.get("nb_element") != "cell_code":
            cell = cell.parent
        if cell is None:
            continue
        if not image.get("alt"):
            blocks = cell.findall(nodes.literal_block)
            source = "\n".join(block.astext() for block in blocks)
            titles = [t.replace("\\n", " ") for t in TITLE_CALL.findall(source)]
            alt = "Graphique produit par la cellule de code ci-dessus"
            image["alt"] = alt + (" : " + " ; ".join(titles) if titles else "")
        image["classes"].append("notebook-figure")


def french_buttons(app: Sphinx, pagename, templatename, context, doctree) -> None:
    """French header buttons (after sphinx-book-theme, 501, and Onyxia, 502)."""
    buttons = list(context.get("header_buttons", []))
    for button in buttons:
        buttons.extend(button.get("buttons", []))
    for button in buttons:
        tooltip, text = BUTTONS.get(button.get("label"), (None, None))
        if tooltip:
            button["tooltip"] = tooltip
        if text and button.get("text"):
            button["text"] = text
        if button.get("label") == "source-issues-button":
            for english, french in ISSUE_TEXT.items():
                button["url"] = button["url"].replace(english, french)


def visit_hidden_cell(self, node) -> None:
    """A folded cell's <details>, its <summary> named by the shown prompt."""
    classes = " ".join(node["classes"])
    show, hide = html.escape(node["prompt_show"]), html.escape(node["prompt_hide"])
    self.body.append(
        f'<details class="admonition hide {classes}">\n<summary>\n'
        f'<p class="collapsed admonition-title">{show}</p>\n'
        f'<p class="expanded admonition-title">{hide}</p>\n</summary>\n'
    )


def fingerprint(root: Path) -> str:
    """A digest of the book's extensions, templates and static files."""
    digest = hashlib.sha256()
    for folder in ("_ext", "_templates", "_static"):
        for path in sorted((root / folder).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(path.relative_to(root).as_posix().encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()


def on_config_inited(app: Sphinx, config) -> None:
    # Sphinx does not notice a change to an extension or a template: as part of the
    # configuration, the fingerprint makes `make html` rebuild every page then.
    config.site_ui_fingerprint = fingerprint(Path(app.confdir))


def setup(app: Sphinx) -> dict:
    app.add_config_value("site_ui_fingerprint", "", "env")
    app.connect("config-inited", on_config_inited)
    app.setup_extension("sphinx.ext.graphviz")
    app.add_node(sphinx_graphviz.graphviz, override=True, html=(visit_graphviz, None))
    app.setup_extension("myst_nb")
    hidden_cell = (visit_hidden_cell, depart_HideCellInput)
    app.add_node(HideCodeCellNode, override=True, html=hidden_cell)
    app.connect("doctree-resolved", label_notebook_figures)
    app.connect("html-page-context", french_buttons, priority=503)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
