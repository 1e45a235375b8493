"""French typographic quotes for the book's smart-quotes pass.

docutils "educates" straight quotes by guessing from the neighbouring characters. A
straight ``'`` just before inline markup (``d'`atexit` ``, ``l'**exécution**``) has
no letter after it in its text node, so docutils takes it for an opening single quote
and, with French's secondary quotes, renders ``”``. French prose uses « » for quotes
and never single quotes: here every single quote is an apostrophe, ``’``.
"""

FRENCH_QUOTES = ("«\u00a0", "\u00a0»", "’", "’")


def _set_locale(app):
    app.env.settings["smartquotes_locales"] = [("fr", FRENCH_QUOTES)]


def setup(app):
    app.connect("builder-inited", _set_locale)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "env_version": 1}
