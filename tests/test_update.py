"""--update / update=True: regenerate a hand-edited derivative and re-apply the edits (s2s.update)."""
import importlib.util
import itertools
import os
import textwrap

import numpy as np
import pytest

import s2s
from cli.main import main as s2s_diff
from s2s.merge import merge
from s2s.testing import numerical_grad

MODEL = textwrap.dedent('''\
    import numpy as np


    def loss(w, X, y):
        """Squared error of a tanh model, plus a penalty."""
        z = X @ w
        r = np.tanh(z) - y  # residuals
        penalty = 0.1 * np.sum(w ** 2)
        return np.sum(r ** 2) + penalty
    ''')
PENALTY_EDIT = ("    dw = dt3 * 2 * w\n", "    dw = dt3 * 2 * w * 3  # hand edit: triple the penalty's pull\n")
FORWARD_EDIT = ("np.tanh(z)  # line 7", "np.tanh(np.clip(z, -20.0, 20.0))  # line 7")
_names = itertools.count()


def load(path):
    spec = importlib.util.spec_from_file_location(f"s2s_test_update_{next(_names)}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def inputs():
    rng = np.random.default_rng(5)
    return rng.standard_normal(3), rng.standard_normal((6, 3)), rng.standard_normal(6)


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
    assert "    dw = dt4 * 2 * w * 3  # hand edit" in text and "0.5 * y" in text  # dt3 is dt4 now
    args = inputs()
    # the edit adds twice the penalty's gradient (0.2 w) to the new primal's gradient
    expected = numerical_grad(model.loss, args, 0) + 2 * 0.2 * args[0]
    got = s2s.grad(model.loss, source="grads/dloss.py")(*args)  # re-stamped: not stale
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
    np.testing.assert_allclose(s2s.grad(model.loss, source="grads/dloss.py")(*args),
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
    assert f"your edit of line {line}: the line it changes (`dw = dt3 * 2 * w`) was changed or " \
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
        s2s.grad(model.loss, source="grads/dloss.py")(*args)
    got = s2s.grad(model.loss, source="grads/dloss.py", update=True)(*args)
    np.testing.assert_allclose(got, numerical_grad(model.loss, args, 0) + 0.4 * args[0], rtol=1e-6)
    assert "    dw = dt4 * 2 * w * 3  # hand edit" in dloss(project).read_text()
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
