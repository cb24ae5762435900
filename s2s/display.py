"""Generated source for people: highlighted in notebooks, primal beside derivative.

``s2s.source(g)`` returns a `Source`: a plain ``str`` (print it, write it to a
file) that Jupyter and IPython render as highlighted Python. ``s2s.show(f)``
puts the primal and its derivative side by side.
"""
from __future__ import annotations

import html

LEXER_CSS = "s2s-source"


class Source(str):
    """Python source text that notebooks display highlighted (pygments when installed)."""

    def _repr_markdown_(self) -> str:
        return f"```python\n{self.rstrip()}\n```"

    def _repr_html_(self) -> str:
        return highlighted(self)


def highlighted(text: str) -> str:
    """``text`` as an HTML block of highlighted Python (escaped plain text without pygments)."""
    try:
        from pygments import highlight
        from pygments.formatters import HtmlFormatter
        from pygments.lexers import PythonLexer
    except ImportError:
        return f'<pre class="{LEXER_CSS}"><code class="language-python">{html.escape(text)}</code></pre>'
    formatter = HtmlFormatter(noclasses=True, cssclass=LEXER_CSS)
    return highlight(text, PythonLexer(), formatter)


class SideBySide:
    """A primal and its derivative: two columns in a notebook, one after the other when printed."""

    def __init__(self, primal: str, derivative: str, titles=("primal", "derivative")):
        self.primal = Source(primal)
        self.derivative = Source(derivative)
        self.titles = titles

    def __str__(self) -> str:
        parts = []
        for title, text in zip(self.titles, (self.primal, self.derivative)):
            parts += [f"# --- {title} " + "-" * max(0, 60 - len(title)), text.rstrip(), ""]
        return "\n".join(parts)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        cells = "".join(
            f'<td style="vertical-align:top;text-align:left"><b>{html.escape(title)}</b>'
            f"{highlighted(text)}</td>" for title, text in zip(self.titles, (self.primal, self.derivative)))
        return f"<table><tr>{cells}</tr></table>"

    def _repr_markdown_(self) -> str:
        return "\n\n".join(f"**{title}**\n\n{text._repr_markdown_()}"
                           for title, text in zip(self.titles, (self.primal, self.derivative)))
