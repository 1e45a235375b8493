"""The book's one table of tool versions, generated from versions.toml.

    ```{tool-versions}
    ```

renders a table (tool, version, where it comes from). versions.toml is the single source:
the CI scripts, the compose file and the notebooks read it too.
"""

import tomllib
from pathlib import Path

from docutils import nodes
from sphinx.util.docutils import SphinxDirective


def load_versions(root: Path) -> dict:
    return tomllib.loads((root / "versions.toml").read_text(encoding="utf-8"))


class ToolVersions(SphinxDirective):
    has_content = False

    def run(self):
        path = Path(self.env.srcdir) / "versions.toml"
        self.env.note_dependency(str(path))
        tools = load_versions(Path(self.env.srcdir))
        table = nodes.table(classes=["tool-versions"])
        group = nodes.tgroup(cols=3)
        table += group
        for width in (30, 12, 58):
            group += nodes.colspec(colwidth=width)
        head, body = nodes.thead(), nodes.tbody()
        group += head
        group += body
        head += self._row(["Outil", "Version", "D'où il vient"], literal=False)
        for tool in tools.values():
            body += self._row([tool["name"], tool["version"], tool["source"]])
        return [table]

    @staticmethod
    def _row(cells, literal=True):
        row = nodes.row()
        for i, text in enumerate(cells):
            entry = nodes.entry()
            para = nodes.paragraph()
            para += nodes.literal(text=text) if literal and i == 1 else nodes.Text(text)
            entry += para
            row += entry
        return row


def setup(app):
    app.add_directive("tool-versions", ToolVersions)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}
