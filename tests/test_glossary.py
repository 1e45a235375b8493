"""The glossary (chapters/glossaire.md) is the one source of the book's terms: each
chapter links a defined term at its first use, and links only defined terms."""

import re

import pytest

from tests.helpers import ROOT, TEACHING_CHAPTERS

GLOSSARY = ROOT / "chapters" / "glossaire.md"
CODE_FENCES = ("```{code-cell", "```{literalinclude", "```{graphviz", "```{toctree")
ROLE = re.compile(r"\{term\}`([^`<]*?)(?:\s*<([^`>]+)>)?`")


def glossary_terms():
    block = GLOSSARY.read_text(encoding="utf-8").split("```{glossary}\n", 1)[1]
    block = block.split("\n```", 1)[0]
    return [line for line in block.splitlines() if line and not line[0].isspace()]


def prose(text):
    """The chapter's running text: no code, no headings, no directive options."""
    kept, fence = [], None
    for line in text.splitlines():
        stripped = line.strip()
        if fence:
            if stripped == fence:
                fence = None
            continue
        if stripped.startswith("```") and (
            stripped.startswith(CODE_FENCES) or not stripped.startswith("```{")
        ):
            if stripped != "```":
                fence = "```"
            continue
        if stripped.startswith(("#", ":", "```", ":::")):
            continue
        kept.append(line)
    text = "\n".join(kept)
    # Inline code is not prose, but a {term} role (which has backticks) is.
    return re.sub(
        r"(\{term\}`[^`]*`)|(`[^`]*`)", lambda m: m[1] or " " * len(m[2]), text
    )


def term_pattern(term):
    """The term in running text: each word may take a plural (variables d'environnement)."""
    words = (
        re.escape(w) + r"[sx]?" if w.strip() else r"\s+"
        for w in re.split(r"(\s+)", term)
    )
    return re.compile(rf"(?<![\w-]){''.join(words)}(?![\w-])", flags=re.IGNORECASE)


def _mask(text, pattern):
    return pattern.sub(lambda m: "\0" * len(m[0]), text)


def _first_use_problems(text, terms):
    roles = list(ROLE.finditer(text))
    masked = _mask(text, ROLE)
    problems = []
    for term in terms:
        # "environnement" inside "environnement virtuel" is a use of the longer term.
        here = masked
        for longer in terms:
            if longer != term and term_pattern(term).search(longer):
                here = _mask(here, term_pattern(longer))
        plain = term_pattern(term).search(here)
        linked = next(
            (m for m in roles if (m[2] or m[1]).strip().lower() == term.lower()), None
        )
        if plain and (linked is None or plain.start() < linked.start()):
            line = text.count("\n", 0, plain.start()) + 1
            problems.append(f"{term!r} first used without a link (prose line {line})")
    return problems


@pytest.mark.parametrize("chapter", TEACHING_CHAPTERS)
def test_terms_are_linked_at_first_use(chapter):
    text = prose((ROOT / "chapters" / f"{chapter}.md").read_text(encoding="utf-8"))
    problems = _first_use_problems(text, glossary_terms())
    assert not problems, f"{chapter}.md: " + "; ".join(problems)


@pytest.mark.parametrize("chapter", TEACHING_CHAPTERS)
def test_only_defined_terms_are_linked(chapter):
    terms = {t.lower() for t in glossary_terms()}
    text = (ROOT / "chapters" / f"{chapter}.md").read_text(encoding="utf-8")
    unknown = {(m[2] or m[1]).strip() for m in ROLE.finditer(text)} - terms
    unknown = {t for t in unknown if t.lower() not in terms}
    assert not unknown, (
        f"{chapter}.md links terms the glossary does not define: {unknown}"
    )


def test_each_entry_gives_the_english_term():
    text = GLOSSARY.read_text(encoding="utf-8")
    for term in glossary_terms():
        definition = text.split(f"\n{term}\n", 1)[1].lstrip()
        assert (
            "*" in definition.split(".")[0] or "anglais" in definition.split(".")[0]
        ), term


def test_the_checker_catches_an_unlinked_first_use():
    text = "Un {term}`paquet` est installé. Le paquet sert."
    assert not _first_use_problems(text, ["Paquet"])
    assert _first_use_problems("Le paquet sert. Un {term}`paquet`.", ["Paquet"])
    assert _first_use_problems("Deux paquets, puis {term}`paquet`.", ["Paquet"])
    terms = ["Environnement", "Environnement virtuel"]
    text = "Un {term}`environnement virtuel`, des environnements virtuels, un {term}`environnement`."
    assert not _first_use_problems(text, terms)
    assert _first_use_problems("Un environnement, un {term}`environnement`.", terms)
