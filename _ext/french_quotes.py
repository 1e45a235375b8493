"""French typography for the book: quotes, and no line that starts with punctuation.

docutils "educates" straight quotes by guessing from the neighbouring characters. A
straight ``'`` just before inline markup (``d'`atexit` ``, ``l'**exécution**``) has
no letter after it in its text node, so docutils takes it for an opening single quote
and, with French's secondary quotes, renders ``”``. French prose uses « » for quotes
and never single quotes: here every single quote is an apostrophe, ``’``.

French also puts a space before ``: ; ? !`` and inside « », and that space must not
break: otherwise a line starts with « : » or « ? » (seen on phones, where lines are
short). Once the quotes are educated, the space before these signs becomes a
non-breaking one, in prose only (never in code, literal blocks or raw HTML).
"""

import re

from docutils import nodes
from sphinx.transforms import SphinxTransform

FRENCH_QUOTES = ("«\u00a0", "\u00a0»", "’", "’")
NBSP = "\u00a0"
BEFORE = re.compile(r"[ \t\n]+(?=[:;?!»])")
AFTER = re.compile(r"(?<=«)[ \t\n]+")
CODE = (nodes.FixedTextElement, nodes.literal, nodes.raw, nodes.math, nodes.comment)


def _set_locale(app):
    app.env.settings["smartquotes_locales"] = [("fr", FRENCH_QUOTES)]


class NonBreakingSpaces(SphinxTransform):
    """The space before : ; ? ! » and after « never breaks a line."""

    default_priority = 760  # after SmartQuotes (750), which makes the « »

    def apply(self, **kwargs):
        for text in list(self.document.findall(nodes.Text)):
            parent = text.parent
            if parent is None or any(
                isinstance(node, CODE) for node in _lineage(parent)
            ):
                continue
            fixed = AFTER.sub(NBSP, BEFORE.sub(NBSP, text.astext()))
            if fixed != text.astext():
                parent.replace(text, nodes.Text(fixed))


def _lineage(node):
    while node is not None:
        yield node
        node = node.parent


def setup(app):
    app.connect("builder-inited", _set_locale)
    app.add_transform(NonBreakingSpaces)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "env_version": 2}
