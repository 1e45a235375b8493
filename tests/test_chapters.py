"""What every teaching chapter's page shows: code included from the files CI tests
(``literalinclude``), never pasted into the page.

One rule for all chapters; the exceptions below each say why they are one.
"""

import pytest
from markdown_it import MarkdownIt
from mdit_py_plugins.colon_fence import colon_fence_plugin
from mdit_py_plugins.front_matter import front_matter_plugin

from tests.helpers import ROOT, TEACHING_CHAPTERS

MARKDOWN = MarkdownIt("commonmark").use(colon_fence_plugin).use(front_matter_plugin)
# Directives that hold no code: their body is Markdown, a diagram or a page list.
NOT_CODE = {
    "admonition", "note", "important", "warning", "tip", "seealso", "tab-set",
    "tab-item", "graphviz", "toctree", "list-table", "figure", "glossary",
}  # fmt: skip
# Directives whose body is Markdown, searched for nested blocks.
NESTED = NOT_CODE - {"graphviz", "toctree"}

OTHER_SOURCES = {
    # Every chapter extends the fil rouge, examples/resilia (added to all below).
    "securite": {
        "tools/coursekit/src/coursekit/tls.py": "the notebooks' own TLS helper is the "
        "example: its certificate chain is what the chapter explains",
        "examples/kubernetes/base/networkpolicy.yaml": "the firewall's counterpart in "
        "a cluster, as the Kubernetes chapter deploys and validates it",
    },
    "tests": {
        "tests/test_observabilite.py": "a test of the course is the example of a test "
        "asserting an observability claim",
    },
    "audit": {
        "examples/securite/": "the audit reviews the security chapter's proxy",
        "examples/spark/": "the audit reviews the Spark chapter's image and pods",
    },
    "documentation": {
        "conf.py": "the book's own Sphinx configuration is the example",
        ".github/workflows/pages.yml": "the workflow that publishes this book",
    },
    "airflow": {
        "tests/test_airflow.py": "the test that loads the chapter's DAGs is the example",
    },
    "devops": {
        ".github/workflows/": "this repository's CI is the chapter's example",
    },
    "docker": {
        "tools/coursekit/src/coursekit/dockerkit.py": "the helper the notebooks run "
        "containers with is the example of cleaning up",
        ".github/workflows/docker.yml": "this repository's image-building workflow",
    },
}
PASTED = {
    # (chapter, info string of the block): why the block is not included from a file
    ("industrialisation", "text"): "a directory listing, not code; checked against "
    "examples/resilia by test_industrialisation.py::test_layout_shown_in_the_chapter_exists",
    ("industrialisation", "bash"): "a terminal session; each command is parsed by the "
    "real CLI in test_industrialisation.py::test_cli_session_shown_in_the_chapter_parses",
}


def blocks(text, first_line=1):
    """The fenced, colon-fenced and indented blocks of a MyST page, nested ones too;
    each token's ``line`` is its first line in ``text``."""
    for token in MARKDOWN.parse(text):
        if token.type in ("fence", "colon_fence", "code_block"):
            token.meta["line"] = first_line + token.map[0]
            yield token
            if directive(token) in NESTED:
                yield from blocks(token.content, token.meta["line"] + 1)


def directive(token):
    info = token.info.strip()
    return info[1:].split("}", 1)[0] if info.startswith("{") else None


def is_pasted(token):
    """A block of code written in the page itself."""
    return token.type == "code_block" or directive(token) not in {
        *NOT_CODE,
        "literalinclude",
    }


def chapter_blocks(chapter):
    return list(blocks((ROOT / "chapters" / f"{chapter}.md").read_text("utf-8")))


def included(chapter):
    """The files a chapter includes, relative to the repository."""
    return [
        (ROOT / "chapters" / t.info.split(maxsplit=1)[1].strip()).resolve()
        for t in chapter_blocks(chapter)
        if directive(t) == "literalinclude"
    ]


@pytest.mark.parametrize("chapter", TEACHING_CHAPTERS)
def test_chapter_includes_code_only_from_tested_files(chapter):
    allowed = (
        f"examples/{chapter}/",
        "examples/resilia/",
        *OTHER_SOURCES.get(chapter, {}),
    )
    paths = included(chapter)
    assert paths, f"{chapter}.md includes no file"
    for target in paths:
        relative = target.relative_to(ROOT).as_posix()
        assert target.is_file(), f"{chapter}.md includes {relative}, which is missing"
        assert relative.startswith(allowed), (
            f"{chapter}.md includes {relative}: code shown comes from examples/{chapter}/ "
            "or examples/resilia/ (or an exception of OTHER_SOURCES, with its reason)"
        )


@pytest.mark.parametrize("chapter", TEACHING_CHAPTERS)
def test_chapter_has_no_pasted_code(chapter):
    pasted = [
        (t.meta["line"], t.type, t.info.strip())
        for t in chapter_blocks(chapter)
        if is_pasted(t)
    ]
    pasted = [p for p in pasted if (chapter, p[2]) not in PASTED]
    assert not pasted, (
        f"{chapter}.md: code pasted into the page (line, kind, info): {pasted}; "
        "include it from a tested file under examples/ with literalinclude"
    )


def test_exceptions_are_still_needed():
    # An exception that no longer matches anything is removed, not kept "just in case".
    for chapter, sources in OTHER_SOURCES.items():
        paths = [p.relative_to(ROOT).as_posix() for p in included(chapter)]
        for source in sources:
            assert any(p.startswith(source) for p in paths), (chapter, source)
    for chapter, info in PASTED:
        assert any(t.info.strip() == info for t in chapter_blocks(chapter)), (
            chapter,
            info,
        )


def test_the_rule_sees_pasted_and_nested_code():
    page = (
        "```python\nx = 1\n```\n\n:::{note}\n```bash\nls\n```\n:::\n\n"
        "```{code-block} yaml\na: 1\n```\n\n    indented = True\n\n"
        "```{literalinclude} ../examples/x.py\n```\n\n```{graphviz}\ndigraph {}\n```\n"
    )
    kinds = [
        (t.type, directive(t) or t.info.strip()) for t in blocks(page) if is_pasted(t)
    ]
    assert kinds == [
        ("fence", "python"),
        ("fence", "bash"),
        ("fence", "code-block"),
        ("code_block", ""),
    ]
