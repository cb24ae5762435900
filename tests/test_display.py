"""s2s.source and s2s.show in notebooks: highlighted Python, primal beside derivative."""
import numpy as np

import s2s
from s2s.display import Source


def loss(w, X):
    return np.sum(np.tanh(X @ w) ** 2)


def test_source_is_a_string_that_notebooks_highlight():
    dloss = s2s.grad(loss)
    dloss(np.ones(3), np.ones((4, 3)))
    text = s2s.source(dloss)
    assert isinstance(text, str) and isinstance(text, Source) and "def grad_loss(w, X):" in text
    markdown = text._repr_markdown_()
    assert markdown.startswith("```python\n") and markdown.endswith("\n```") and "def grad_loss" in markdown
    html = text._repr_html_()
    assert html.count("<pre") == 1 and "grad_loss" in html and "<script" not in html
    assert "&gt;" in html or "&lt;" in html or "@" in html  # escaped source, not raw markup


def test_show_puts_the_primal_beside_its_derivative():
    shown = s2s.show(loss, np.ones(3), np.ones((4, 3)))
    assert shown.primal.startswith("def loss(w, X):\n    return np.sum(np.tanh(X @ w) ** 2)")
    assert "def grad_loss(w, X):" in shown.derivative
    assert "shapes=X=(4, 3) w=(3,)" in shown.derivative  # specialised to the arguments given
    html = shown._repr_html_()
    assert html.startswith("<table><tr><td") and html.count("<td") == 2
    assert "loss (test_display.py:8)" in html
    printed = str(shown)
    assert printed.index("def loss(") < printed.index("def grad_loss(")
    again = s2s.show(s2s.value_and_grad(loss))  # a derivative made by s2s: shape-polymorphic
    assert "def value_and_grad_loss(" in again.derivative or "value" in again.derivative
