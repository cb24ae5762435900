"""s2s-diff --check a user can trust: given inputs, time limits, inconclusive verdicts, header shapes."""
import textwrap

import numpy as np
import pytest

from cli.main import main

SIMULATION = textwrap.dedent('''\
    import numpy as np


    def simulate(k, x0, dt):
        x = x0
        t = 0.0
        while t < 1.0:
            x = x - dt * k * x
            t = t + dt
        return np.sum(x ** 2)


    def over_rows(w, X):
        total = np.sum(w ** 2)
        for i in range(X.shape[0]):
            total = total + np.sum(w * X[i])
        return total


    def flat(w, c):
        return 0.0 * np.sum(w) + np.sum(c ** 2)


    def loss(w, X):
        return np.sum(np.tanh(X @ w))
    ''')
INPUTS = textwrap.dedent('''\
    import numpy as np


    def simulate_args():
        return 0.5, np.array([1.0, -2.0, 0.5]), 0.1


    def empty_rows():
        return {"w": np.ones(3), "X": np.zeros((0, 3))}
    ''')


@pytest.fixture
def project(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("S2S_CACHE", "0")
    (tmp_path / "model.py").write_text(SIMULATION)
    (tmp_path / "inputs.py").write_text(INPUTS)

    def check(*options):
        status = main(["model.py", *options])
        out, err = capsys.readouterr()
        return status, out, err
    return check


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning")  # x grows while the loop never ends
def test_a_step_from_args_passes_and_a_random_negative_step_times_out(project):
    status, out, err = project("--fn", "simulate", "--wrt", "k,x0", "--shapes", "k=", "dt=",
                               "--check", "--args", "inputs:simulate_args")
    assert status == 0, err
    assert "def grad_simulate(" in out
    assert "  d/dk (): relative error" in err and "  d/dx0 (3,): relative error" in err  # per argument
    assert "check passed: generated grad_simulate" in err and "dt=0.1" in err
    # drawn at random (seed 0), dt is negative: `while t < 1.0` never ends
    status, out, err = project("--fn", "simulate", "--wrt", "k", "--shapes", "k=", "dt=", "--check",
                               "--timeout", "0.5")
    assert status == 1 and out == ""
    assert "check TIMED OUT: simulate did not return within 0.5 s at inputs k=0.126, x0=3, dt=-0.536" in err
    assert "--args module:function" in err
    status, _, err = project("--fn", "simulate", "--wrt", "k", "--shapes", "k=", "dt=", "--check",
                             "--seed", "1")  # dt > 0 with this seed
    assert status == 0 and "check passed" in err and "dt=0.905" in err


def test_a_loop_that_ran_no_iteration_is_inconclusive(project):
    status, out, err = project("--fn", "over_rows", "--check", "--args", "inputs:empty_rows")
    assert status == 3 and out == ""
    assert "model.py:15: this loop ran no iteration at these inputs" in err
    assert "check INCONCLUSIVE: generated grad_over_rows: 1 loop(s) ran no iteration" in err
    status, _, err = project("--fn", "over_rows", "--check", "--shapes", "w=3", "X=4x3")
    assert status == 0 and "check passed" in err


def test_zero_on_both_sides_is_inconclusive_not_passed(project):
    status, _, err = project("--fn", "flat", "--wrt", "w,c", "--check")
    assert status == 3
    assert "  d/dw (3,): relative error 0.00e+00 (zero on both sides: nothing compared)" in err
    assert "  d/dc (3,): relative error" in err and "d/dc (3,): relative error 0.00e+00 (zero" not in err
    assert "check INCONCLUSIVE: generated grad_flat: 1 of 2 compared values are zero on both sides" in err


def test_derivative_file_is_checked_with_the_shapes_its_header_records(project, tmp_path):
    assert project("--fn", "loss", "--shapes", "w=3", "X=5x3", "-o", "dloss.py")[0] == 0
    status, _, err = project("--fn", "loss", "--check", "--derivative", "dloss.py")
    assert status == 0, err  # without the header's shapes, X would be drawn as a vector
    assert "at inputs w=3, X=5x3" in err
    text = (tmp_path / "dloss.py").read_text()
    (tmp_path / "dloss.py").write_text(text.replace("return dw", "return 1.5 * dw"))
    status, _, err = project("--fn", "loss", "--check", "--derivative", "dloss.py")
    assert status == 1 and "check FAILED: dloss.py: grad_loss: worst relative error" in err


def test_args_errors_are_the_users(project):
    status, _, err = project("--fn", "loss", "--check", "--args", "inputs:nothing_here")
    assert status == 1 and "error: --args: inputs has no function 'nothing_here'" in err
    status, _, err = project("--fn", "loss", "--check", "--args", "inputs:simulate_args")
    assert status == 1 and "must return 2 arguments (w, X), got tuple of length 3" in err
    assert main(["model.py", "--fn", "loss", "--args", "inputs:simulate_args"]) == 2


def test_a_known_nonscalar_output_is_refused_when_generating(project, tmp_path, capsys):
    (tmp_path / "vec.py").write_text("import numpy as np\n\n\ndef f(w, X):\n    h = np.tanh(X @ w)\n"
                                     "    return h * 2.0\n")
    status = main(["vec.py", "--fn", "f", "--shapes", "w=3", "X=5x3", "-o", "dvec.py"])
    assert status == 1 and not (tmp_path / "dvec.py").exists()
    assert capsys.readouterr().err.startswith("vec.py:6:12: error: f returns an array of shape 5, not a scalar")
    assert main(["vec.py", "--fn", "f", "--shapes", "w=3", "X=5x3", "--returns", "vjp"]) == 0


def test_nonscalar_refusal_names_the_return_and_the_shape(tmp_path):
    import s2s
    from s2s.errors import NonScalarOutput
    path = tmp_path / "vec.py"
    path.write_text("import numpy as np\n\n\ndef f(w, X):\n    h = np.tanh(X @ w)\n    return h * 2.0\n")
    from s2s.source import from_file
    from s2s.derive import reverse_module
    with pytest.raises(NonScalarOutput) as caught:
        reverse_module(from_file(str(path), "f"), ["w"], known_shapes={"w": (3,), "X": (5, 3)})
    message = str(caught.value)
    assert message.startswith(f"{path}:6:12: error: f returns an array of shape 5, not a scalar")
    assert "s2s.vjp" in message
    # s2s.grad knows the shapes at its first call: the same refusal, before any code runs
    namespace = {}
    exec(compile(path.read_text(), str(path), "exec"), namespace)
    with pytest.raises(NonScalarOutput, match="returns an array of shape 5"):
        s2s.grad(namespace["f"])(np.ones(3), np.ones((5, 3)))
    # unknown shapes: still refused, when called (the generated check)
    reverse_module(from_file(str(path), "f"), ["w"])
