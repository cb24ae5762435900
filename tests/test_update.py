"""--update / update=True: regenerate a hand-edited derivative and re-apply the edits (s2s.update)."""
import inspect
import os
import random
import re
import textwrap
from pathlib import Path

import numpy as np
import pytest
from test_handedit import inputs, load  # the same helpers

import s2s
from cli.main import main as s2s_diff
from generated_examples.regenerate import EXAMPLES, ROOT, generated_text
from s2s import provenance
from s2s.emit import compile_module
from s2s.merge import merge
from s2s.source import from_file
from s2s.testing import assert_close, numerical_grad

MODEL = textwrap.dedent('''\
    import numpy as np


    def loss(w, X, y):
        """Squared error of a tanh model, plus a penalty."""
        z = X @ w
        r = np.tanh(z) - y  # residuals
        penalty = 0.1 * np.sum(w ** 2)
        return np.sum(r ** 2) + penalty
    ''')
PENALTY_EDIT = ("    dw = 0.2 * w\n", "    dw = 0.2 * w * 3  # hand edit: triple the penalty's pull\n")
FORWARD_EDIT = ("np.tanh(z)  # line 7", "np.tanh(np.clip(z, -20.0, 20.0))  # line 7")
def edit(path, old, new):
    text = path.read_text()
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new))


def change_model(project, old, new):
    edit(project / "model.py", old, new)
    return load(project / "model.py")


def update(*options):
    return s2s_diff(["model.py", "--fn", "loss", "--update", "grads/dloss.py", *options])


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("S2S_CACHE", "0")
    (tmp_path / "model.py").write_text(MODEL)
    (tmp_path / "grads").mkdir()
    assert s2s_diff(["model.py", "--fn", "loss", "-o", "grads/dloss.py"]) == 0
    return tmp_path


def dloss(project):
    return project / "grads" / "dloss.py"


def record(project):
    return project / "grads" / "dloss.py.s2s-base"


def test_o_records_what_it_wrote(project):
    assert record(project).read_text() == dloss(project).read_text()


def test_backward_edit_survives_a_change_to_an_unrelated_primal_line(project, capsys):
    edit(dloss(project), *PENALTY_EDIT)
    model = change_model(project, "np.tanh(z) - y", "np.tanh(z) - 0.5 * y")
    assert update() == 0
    assert "updated grads/dloss.py: 1 edit(s) re-applied" in capsys.readouterr().err
    text = dloss(project).read_text()
    assert "    dw = 0.2 * w * 3  # hand edit" in text and "0.5 * y" in text
    args = inputs()
    # the edit adds twice the penalty's gradient (0.2 w) to the new primal's gradient
    expected = numerical_grad(model.loss, args, 0) + 2 * 0.2 * args[0]
    got = s2s.grad(model.loss, source="grads/dloss.py", check=False)(*args)  # re-stamped: not stale
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert record(project).read_text() != text  # the record is the new generation, without the edit
    assert "# hand edit" not in record(project).read_text()


def test_forward_edit_survives_a_new_statement_before_it(project):
    edit(dloss(project), *FORWARD_EDIT)
    model = change_model(project, "    z = X @ w\n", "    X = X * 0.5\n    z = X @ w\n")
    assert update("--check") == 0
    text = dloss(project).read_text()
    assert "np.tanh(np.clip(z, -20.0, 20.0))  # line 8" in text  # the anchor follows the primal
    assert "X2 = X * 0.5" in text
    args = inputs()
    np.testing.assert_allclose(s2s.grad(model.loss, source="grads/dloss.py", check=False)(*args),
                               numerical_grad(model.loss, args, 0), rtol=1e-6)


def test_edit_of_a_deleted_primal_statement_is_a_conflict_and_the_file_is_untouched(project, capsys):
    edit(dloss(project), *PENALTY_EDIT)
    edited, recorded = dloss(project).read_text(), record(project).read_text()
    before = dloss(project).stat().st_mtime_ns
    change_model(project, "    penalty = 0.1 * np.sum(w ** 2)\n    return np.sum(r ** 2) + penalty\n",
                 "    return np.sum(r ** 2)\n")
    assert update() == 1
    err = capsys.readouterr().err
    line = edited.splitlines().index(PENALTY_EDIT[1].rstrip("\n")) + 1
    assert f"grads/dloss.py:{line}:1: error: 1 of your edits could not be re-applied; " \
           "grads/dloss.py is unchanged" in err
    assert f"your edit of line {line}: the line it changes (`dw = 0.2 * w`) was changed or " \
           "removed in the new generation" in err
    assert "--update grads/dloss.py --markers" in err
    assert dloss(project).read_text() == edited and dloss(project).stat().st_mtime_ns == before
    assert record(project).read_text() == recorded
    assert [p.name for p in (project / "grads").iterdir()] == ["dloss.py", "dloss.py.s2s-base"] or \
        sorted(p.name for p in (project / "grads").iterdir()) == ["dloss.py", "dloss.py.s2s-base"]


def test_markers_write_the_conflict_into_the_file(project, capsys):
    edit(dloss(project), *PENALTY_EDIT)
    change_model(project, "    penalty = 0.1 * np.sum(w ** 2)\n    return np.sum(r ** 2) + penalty\n",
                 "    return np.sum(r ** 2)\n")
    assert update("--markers") == 1
    lines = dloss(project).read_text().splitlines()
    start = next(i for i, x in enumerate(lines, 1) if x.startswith("<<<<<<< yours"))
    end = next(i for i, x in enumerate(lines, 1) if x.startswith(">>>>>>> as s2s writes it now"))
    assert f"grads/dloss.py:{start}: conflict (lines {start}-{end})" in capsys.readouterr().err
    block = lines[start - 1:end]
    assert PENALTY_EDIT[1].rstrip("\n") in block and "||||||| as s2s wrote it before" in block
    assert "=======" in block
    # a file with markers is refused until they are resolved
    assert update() == 1
    assert "has unresolved conflict markers" in capsys.readouterr().err


def test_an_update_with_nothing_new_writes_nothing(project, capsys):
    edit(dloss(project), *PENALTY_EDIT)
    before = dloss(project).stat().st_mtime_ns
    assert update() == 0
    assert "grads/dloss.py is up to date" in capsys.readouterr().err
    assert dloss(project).stat().st_mtime_ns == before and PENALTY_EDIT[1] in dloss(project).read_text()


def test_unedited_file_is_simply_regenerated(project, capsys):
    change_model(project, "np.tanh(z) - y", "np.tanh(z) - 0.5 * y")
    assert update() == 0
    assert "regenerated grads/dloss.py (it had no edits)" in capsys.readouterr().err
    fresh = project / "fresh.py"
    assert s2s_diff(["model.py", "--fn", "loss", "-o", str(fresh)]) == 0
    assert dloss(project).read_text() == fresh.read_text() == record(project).read_text()


def test_a_merge_that_fails_check_leaves_the_file_untouched(project, capsys):
    edit(dloss(project), *PENALTY_EDIT)  # a wrong gradient: --check must catch it
    edited = dloss(project).read_text()
    change_model(project, "np.tanh(z) - y", "np.tanh(z) - 0.5 * y")
    assert update("--check") == 1
    assert "failed --check; grads/dloss.py is unchanged" in capsys.readouterr().err
    assert dloss(project).read_text() == edited


def test_update_from_python(project):
    edit(dloss(project), *PENALTY_EDIT)
    model = change_model(project, "np.tanh(z) - y", "np.tanh(z) - 0.5 * y")
    args = inputs()
    with pytest.raises(s2s.StaleDerivative):
        s2s.grad(model.loss, source="grads/dloss.py", check=False)(*args)
    got = s2s.grad(model.loss, source="grads/dloss.py", update=True, check=False)(*args)
    np.testing.assert_allclose(got, numerical_grad(model.loss, args, 0) + 0.4 * args[0], rtol=1e-6)
    assert "    dw = 0.2 * w * 3  # hand edit" in dloss(project).read_text()
    assert "source-file: model.py\n" in dloss(project).read_text()  # as s2s-diff wrote it


def test_update_from_python_refuses_conflicts_and_touches_nothing(project):
    edit(dloss(project), *PENALTY_EDIT)
    edited = dloss(project).read_text()
    model = change_model(project, "    penalty = 0.1 * np.sum(w ** 2)\n    return np.sum(r ** 2) + penalty\n",
                         "    return np.sum(r ** 2)\n")
    with pytest.raises(s2s.MergeConflict, match="s2s-diff model.py --fn loss --update grads/dloss.py"):
        s2s.grad(model.loss, source="grads/dloss.py", update=True)(*inputs())
    assert dloss(project).read_text() == edited


def test_without_the_record_the_edits_are_not_guessed(project, capsys):
    edit(dloss(project), *PENALTY_EDIT)
    os.remove(record(project))
    change_model(project, "np.tanh(z) - y", "np.tanh(z) - 0.5 * y")
    assert update() == 1
    assert "the record grads/dloss.py.s2s-base does not exist" in capsys.readouterr().err
    assert PENALTY_EDIT[1] in dloss(project).read_text()


def test_update_takes_its_options_from_the_header(project, capsys):
    assert update("--wrt", "X") == 2
    assert "--update takes the options from the file's header; drop --wrt" in capsys.readouterr().err
    assert s2s_diff(["model.py", "--fn", "loss", "--markers"]) == 2


def test_decorator_updates_at_import(project):
    edit(dloss(project), *PENALTY_EDIT)
    model = change_model(project, "np.tanh(z) - y", "np.tanh(z) - 0.5 * y").loss
    edit(project / "model.py", "import numpy as np\n", "import numpy as np\n\nimport s2s\n")
    edit(project / "model.py", "def loss(", '@s2s.differentiable(source="grads/dloss.py", update=True, check=False)\ndef loss(')
    decorated = load(project / "model.py").loss  # the update happens here, at import
    args = inputs()
    np.testing.assert_allclose(decorated.grad(*args), numerical_grad(model, args, 0) + 0.4 * args[0],
                               rtol=1e-6)


def test_the_header_is_restamped_under_a_note_of_yours(project):
    edit(dloss(project), "primal-sha256:", "edited by hand: see the penalty line\nprimal-sha256:")
    edit(dloss(project), *PENALTY_EDIT)
    model = change_model(project, "np.tanh(z) - y", "np.tanh(z) - 0.5 * y")
    assert update() == 0
    text = dloss(project).read_text()
    assert "edited by hand: see the penalty line\nprimal-sha256: " in text
    assert provenance.read_header(text, "dloss.py").digest == provenance.primal_digest(
        from_file("model.py", "loss"))
    args = inputs()
    np.testing.assert_allclose(s2s.grad(model.loss, source="grads/dloss.py", check=False)(*args),
                               numerical_grad(model.loss, args, 0) + 0.4 * args[0], rtol=1e-6)


def test_a_forward_mode_file_is_updated(project):
    assert s2s_diff(["model.py", "--fn", "loss", "--mode", "forward", "-o", "grads/dloss.py"]) == 0
    edit(dloss(project), "    r = t1 - y\n", "    r = t1 - y\n    # a note of mine\n")
    change_model(project, "penalty = 0.1 *", "penalty = 0.3 *")
    assert update("--check") == 0
    text = dloss(project).read_text()
    assert "    # a note of mine\n" in text and "0.3 *" in text and "def jvp_loss(" in text


# --- the merge itself, on text -------------------------------------------------------

BASE = textwrap.dedent('''\
    def f(x):
        t1 = x + 1
        t2 = t1 * 2
        # block
        a = t2 + 3
        b = a * 4
        return b
    ''')


def test_renamed_temporaries_are_followed():
    ours = BASE.replace("    t2 = t1 * 2\n", "    t2 = t1 * 2.5  # mine\n")
    theirs = BASE.replace("t1", "t4").replace("t2", "t5").replace("def f(x):\n", "def f(x):\n    t3 = 0\n")
    merged = merge(BASE, ours, theirs)
    assert not merged.conflicts and merged.applied == 1
    assert "    t5 = t4 * 2.5  # mine\n" in merged.text and "t3 = 0" in merged.text


def test_comments_s2s_adds_do_not_make_an_edit_a_conflict():
    """A newer s2s writes ``# line N`` on a line the user edited: matching ignores trailing comments."""
    ours = BASE.replace("    t2 = t1 * 2\n", "    t2 = t1 * 2.5\n")
    theirs = BASE.replace("    t2 = t1 * 2\n", "    t2 = t1 * 2  # line 3\n")
    merged = merge(BASE, ours, theirs)
    assert not merged.conflicts and merged.text == ours

def test_moved_block_keeps_its_edit():
    ours = BASE.replace("    b = a * 4\n", "    b = a * 40\n")
    theirs = textwrap.dedent('''\
        def f(x):
            # block
            a = t2 + 3
            b = a * 4
            t1 = x + 1
            t2 = t1 * 2
            return b
        ''')
    merged = merge(BASE, ours, theirs)
    assert not merged.conflicts
    assert merged.text == theirs.replace("    b = a * 4\n", "    b = a * 40\n")


def test_an_edit_reading_a_changed_temporary_is_a_conflict():
    ours = BASE.replace("    b = a * 4\n", "    b = a * 4 + t1\n")
    theirs = BASE.replace("    t1 = x + 1\n    t2 = t1 * 2\n", "    t1 = x - 1\n    t2 = t1 * 3\n")
    merged = merge(BASE, ours, theirs)
    assert [c.reason for c in merged.conflicts] == [
        "it reads `t1`, which the new generation computes differently or not at all"]


def test_an_insertion_next_to_new_code_is_a_conflict():
    ours = BASE.replace("    b = a * 4\n", "    b = a * 4\n    print(b)\n")
    theirs = BASE.replace("    b = a * 4\n", "    b = a * 4\n    c = b\n").replace("return b", "return c")
    merged = merge(BASE, ours, theirs)
    assert len(merged.conflicts) == 1 and merged.conflicts[0].ours == (7, 7)


# --- neutral edits on the bundled examples, through primal changes ------------------

def _neutral_edit(text, rng):
    """Two statements of the entry point edited without changing their value: ``x = (e) * 1``,
    or a comment line added after them."""
    lines = text.splitlines(True)
    start = next(i for i, line in enumerate(lines) if line.startswith("def grad_"))
    body = [i for i in range(start + 1, len(lines))
            if re.match(r"^\s+\w+ \+?= .+[^:]\n$", lines[i]) and '"""' not in lines[i]]
    for i in sorted(rng.sample(body, 2), reverse=True):
        indent, target, op, expr = re.match(r"^(\s+)(\w+) (\+?=) (.+?)(?:  #.*)?\n$", lines[i]).groups()
        if rng.random() < 0.5:
            lines[i] = f"{indent}{target} {op} ({expr}) * 1  # edited\n"
        else:
            lines.insert(i + 1, f"{indent}# a note\n")
    return "".join(lines)


PRIMAL_CHANGES = [  # (what, pattern, replacement), each applied once to the primal's text
    ("a statement first", r"(def \w+\([^)]*\):\n(?:    \"\"\".*\"\"\"\n)?)", r"\1    spare = 1.0\n"),
    ("X renamed by a new first statement", r"(def \w+\([^)]*\bX\b[^)]*\):\n(?:    \"\"\".*\"\"\"\n)?)",
     r"\1    X = X * 1.0\n"),
    ("a scaled return", r"\n    return (.*)\n$", r"\n    return 2.0 * (\1)\n"),
]


@pytest.mark.parametrize("example", [e for e in EXAMPLES if not e.forward and not e.edited
                                     and "--import" not in e.options],  # --update reads statically
                         ids=lambda e: e.module)
def test_a_clean_merge_of_neutral_edits_is_the_new_primals_gradient(example, tmp_path, monkeypatch):
    """Whatever the merge keeps, the gradient is the changed primal's; most merges are clean."""
    monkeypatch.chdir(tmp_path)
    rng = random.Random(example.module)
    original = (Path(ROOT) / example.primal_path).read_text()
    clean = 0
    for what, pattern, replacement in PRIMAL_CHANGES:
        changed = re.sub(pattern, replacement, original, count=1)
        if changed == original:
            continue
        (tmp_path / "m.py").write_text(original)
        base = generated_text(example, "m.py")
        ours = _neutral_edit(base, rng)
        (tmp_path / "m.py").write_text(changed)
        merged = merge(base, ours, generated_text(example, "m.py"))
        if merged.conflicts:
            continue
        clean += 1
        assert merged.text.count("# edited") + merged.text.count("# a note") == 2, what
        primal = getattr(load(tmp_path / "m.py"), example.fn)
        grad = compile_module(merged.text, "merged")[f"grad_{example.fn}"]
        for args in example.inputs(np.random.default_rng(0)):
            grads = grad(*args)
            for name, g in zip(example.wrt, grads if isinstance(grads, tuple) else (grads,)):
                expected = numerical_grad(primal, args, list(inspect.signature(primal).parameters).index(name))
                assert_close(g, expected, rtol=1e-6, atol=1e-7, what=f"{what}: d{name}")  # containers too
    assert clean >= 1

