"""s2s-diff, run as a subprocess the way people run it."""
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from s2s.testing import numerical_grad

MODEL = textwrap.dedent('''\
    import time
    import numpy as np

    print("the model's top level ran")
    time.sleep(30)
    raise RuntimeError("the top level must not run")


    def predict(w, b, X):
        return np.tanh(X @ w + b)


    def loss(w, b, X, y):
        r = predict(w, b, X) - y
        return np.sum(r ** 2) / len(y)


    def guarded(x):
        try:
            return np.sum(x)
        except ValueError:
            return 0.0
    ''')
PRIMAL_OK = MODEL.replace('time.sleep(30)\nraise RuntimeError("the top level must not run")\n', "")
OLD = "an existing file that must survive a failed run\n"


def s2s_diff():
    exe = shutil.which("s2s-diff", path=os.path.dirname(sys.executable) + os.pathsep
                       + os.environ.get("PATH", ""))
    return [exe] if exe else [sys.executable, "-m", "cli.main"]


def run(cwd, *args, timeout=20):
    return subprocess.run([*s2s_diff(), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture
def model(tmp_path):
    (tmp_path / "model.py").write_text(MODEL)
    return tmp_path


@pytest.fixture
def existing(tmp_path):
    """An -o target with known content and an old mtime."""
    out = tmp_path / "dloss.py"
    out.write_text(OLD)
    os.utime(out, ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))
    return out


def assert_untouched(out):
    assert out.read_text() == OLD
    assert out.stat().st_mtime_ns == 1_000_000_000_000_000_000
    assert [p.name for p in out.parent.iterdir() if p.name.startswith(".dloss")] == []


def primal_loss(tmp_path):
    namespace = {}
    exec(compile(PRIMAL_OK, str(tmp_path / "primal.py"), "exec"), namespace)
    return namespace["loss"]


def test_stdout_module_compiles_and_matches_finite_differences(model):
    result = run(model, "model.py", "--fn", "loss", "--wrt", "w,b")
    assert result.returncode == 0, result.stderr
    assert "top level" not in result.stdout + result.stderr  # never ran, never slept
    namespace = {}
    exec(compile(result.stdout, "dloss.py", "exec"), namespace)
    rng = np.random.default_rng(1)
    args = (rng.standard_normal(3), 0.3, rng.standard_normal((5, 3)), rng.standard_normal(5))
    dw, db = namespace["grad_loss"](*args)
    loss = primal_loss(model)
    np.testing.assert_allclose(dw, numerical_grad(loss, args, 0), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(db, numerical_grad(loss, args, 1), rtol=1e-6, atol=1e-8)
    assert "source-file: model.py\n" in result.stdout
    assert str(model) not in result.stdout  # no absolute path of this machine


def test_output_file_is_the_stdout_module(model, existing):
    printed = run(model, "model.py", "--fn", "loss").stdout
    result = run(model, "model.py", "--fn", "loss", "-o", "dloss.py")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert existing.read_text() == printed
    assert "def grad_loss(w, b, X, y):" in printed


def test_bad_fn_lists_the_functions_and_touches_nothing(model, existing):
    result = run(model, "model.py", "--fn", "los", "-o", "dloss.py")
    assert result.returncode == 1
    assert "error: no function named 'los' in model.py" in result.stderr
    assert "functions defined there: guarded, loss, predict" in result.stderr
    assert_untouched(existing)


def test_syntax_error_points_at_the_line(model, existing):
    (model / "model.py").write_text("import numpy as np\n\ndef loss(w):\n    return np.sum(w **)\n")
    result = run(model, "model.py", "--fn", "loss", "-o", "dloss.py")
    assert result.returncode == 1
    first = result.stderr.splitlines()[0]
    assert first.startswith("model.py:4:") and "error: syntax error" in first, result.stderr
    assert "return np.sum(w **)" in result.stderr
    assert_untouched(existing)


def test_unsupported_construct_is_refused_with_location(model, existing):
    result = run(model, "model.py", "--fn", "guarded", "-o", "dloss.py")
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert lines[0] == "model.py:19:5: error: try statements are not supported"
    assert lines[1].strip() == "try:"
    assert lines[2] == "    " + " " * 4 + "^"
    assert_untouched(existing)


def test_list_rules(tmp_path):
    result = run(tmp_path, "--list-rules")
    assert result.returncode == 0
    names = result.stdout.splitlines()
    assert {"numpy.tanh", "numpy.exp", "ndarray.sum", "ndarray.T"} <= set(names)
    assert names == sorted(names) and len(names) == len(set(names))


def test_check_passes_for_the_generated_gradient(tmp_path):
    (tmp_path / "model.py").write_text(PRIMAL_OK)
    result = run(tmp_path, "model.py", "--fn", "loss", "--wrt", "w,b", "--check",
                 "--shapes", "w=3", "b=", "X=7x3", "y=7", "-o", "dloss.py")
    assert result.returncode == 0, result.stderr
    assert "check passed" in result.stderr and "worst relative error" in result.stderr
    options = next(line for line in (tmp_path / "dloss.py").read_text().splitlines()
                   if line.startswith("options: "))
    assert options.startswith("options: mode=reverse, wrt=w,b, returns=grad, target=numpy, scalars=b")
    assert "shapes=X=(7, 3) w=(3,) y=(7,)" in options  # specialized to --shapes


def test_check_of_a_wrong_hand_edit_fails(tmp_path):
    (tmp_path / "model.py").write_text(PRIMAL_OK)
    assert run(tmp_path, "model.py", "--fn", "loss", "-o", "dloss.py").returncode == 0
    path = tmp_path / "dloss.py"
    text = path.read_text()
    assert text.count("    return dw\n") == 1
    path.write_text(text.replace("    return dw\n", "    return 2 * dw\n"))
    result = run(tmp_path, "model.py", "--fn", "loss", "--check", "--derivative", "dloss.py",
                 "--shapes", "b=", "X=4x3", "y=4")
    assert result.returncode == 1
    assert "check FAILED" in result.stderr
    path.write_text(text)
    ok = run(tmp_path, "model.py", "--fn", "loss", "--check", "--derivative", "dloss.py",
             "--shapes", "b=", "X=4x3", "y=4")
    assert ok.returncode == 0, ok.stderr


def test_check_runs_the_model_so_its_top_level_error_is_reported(tmp_path):
    (tmp_path / "model.py").write_text(PRIMAL_OK.replace('print(', 'raise RuntimeError(', 1))
    result = run(tmp_path, "model.py", "--fn", "loss", "--check")
    assert result.returncode == 1
    assert "RuntimeError: the model's top level ran" in result.stderr


def test_name_target_and_value_and_grad(model):
    result = run(model, "model.py", "--fn", "loss", "--name", "dloss", "--target", "cupy",
                 "--returns", "value_and_grad")
    assert result.returncode == 0, result.stderr
    assert "def dloss(w, b, X, y):" in result.stdout
    assert "import cupy as cp" in result.stdout and "np." not in result.stdout


def test_usage_errors_exit_2(model):
    assert run(model, "model.py").returncode == 2  # no --fn
    assert run(model, "--fn", "loss").returncode == 2  # no model
    result = run(model, "model.py", "--fn", "loss", "--check", "--shapes", "q=3")
    assert result.returncode == 2 and "'q' is not an argument" in result.stderr


def test_forward_mode_checks_against_finite_differences(tmp_path):
    (tmp_path / "model.py").write_text(PRIMAL_OK)
    result = run(tmp_path, "model.py", "--fn", "loss", "--mode", "forward", "--wrt", "w,b",
                 "--check", "--shapes", "b=", "X=4x3", "y=4")
    assert result.returncode == 0, result.stderr
    assert "check passed" in result.stderr and "def jvp_loss(" in result.stdout


def test_help_documents_the_options(tmp_path):
    result = run(tmp_path, "--help")
    assert result.returncode == 0
    for text in ("--wrt", "grad_<fn>", "--check", "--shapes", "--list-rules", "--dump-after",
                 "s2s-diff model.py --fn loss"):
        assert text in result.stdout


def test_dask_target_rebinds_adjoints_and_checks_on_numpy(tmp_path):
    (tmp_path / "model.py").write_text(PRIMAL_OK)
    result = run(tmp_path, "model.py", "--fn", "loss", "--wrt", "w,b", "--target", "dask",
                 "--check", "--shapes", "b=", "X=4x3", "y=4")
    assert result.returncode == 0, result.stderr
    assert "check passed" in result.stderr and "target=dask" in result.stdout
    assert "+=" not in result.stdout
    refused = run(tmp_path, "model.py", "--fn", "loss", "--mode", "forward", "--target", "dask")
    assert refused.returncode == 2 and "--target dask is for reverse mode" in refused.stderr


FACTORY = textwrap.dedent('''\
    import functools
    import numpy as np

    print("the factory module ran")


    def make_funs(scale):
        def predict(w, X):
            return np.tanh(X @ w)

        def loss(w, X, y):
            return scale * np.sum((predict(w, X) - y) ** 2) + np.dot(w, w)

        return predict, loss


    class Model:
        def __init__(self, scale):
            self.scale = scale

        def loss(self, w, X, y):
            return self.scale * np.sum(np.sin(X @ w) * y)


    predict, loss = make_funs(0.5)
    lam = lambda w, X, y: loss(w, X, y) * 3.0
    part = functools.partial(loss, y=np.ones(4))
    method = Model(2.0).loss
    ''')


def test_import_differentiates_a_closure_as_the_live_api_does(tmp_path, existing):
    import s2s
    (tmp_path / "factory.py").write_text(FACTORY)
    static = run(tmp_path, "factory.py", "--fn", "loss", "-o", "dloss.py")
    assert static.returncode == 1 and "no function named 'loss'" in static.stderr
    assert "add --import" in static.stderr and "ran" not in static.stdout  # never ran
    assert_untouched(existing)
    result = run(tmp_path, "factory.py", "--fn", "loss", "--import",
                 "--shapes", "w=3", "X=4x3", "y=4", "-o", "dloss.py")
    assert result.returncode == 0, result.stderr
    text = existing.read_text()
    assert "source-file: factory.py\n" in text and str(tmp_path) not in text
    assert "scale = 0.5\n" in text  # the closure variable, a constant of the module
    (tmp_path / "factory_live.py").write_text(FACTORY)
    namespace = {}
    exec(compile(FACTORY, str(tmp_path / "factory_live.py"), "exec"), namespace)
    rng = np.random.default_rng(2)
    args = (rng.standard_normal(3), rng.standard_normal((4, 3)), rng.standard_normal(4))
    live = s2s.grad(namespace["loss"])
    live(*args)
    assert text == str(s2s.source(live)).replace(f"source-file: {tmp_path / 'factory_live.py'}",
                                                  "source-file: factory.py")
    generated = {}
    exec(compile(text, "dloss.py", "exec"), generated)
    np.testing.assert_allclose(generated["grad_loss"](*args),
                               numerical_grad(namespace["loss"], args, 0), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("fn, shapes", [("lam", ["y=4"]), ("part", []), ("method", ["y=4"])])
def test_import_takes_lambdas_partials_and_bound_methods(tmp_path, fn, shapes):
    (tmp_path / "factory.py").write_text(FACTORY)
    result = run(tmp_path, "factory.py", "--fn", fn, "--import", "--check",
                 "--shapes", "w=3", "X=4x3", *shapes)
    assert result.returncode == 0, result.stderr
    assert "check passed" in result.stderr and "def grad_" in result.stdout


def test_import_errors_leave_the_output_untouched(tmp_path, existing):
    (tmp_path / "factory.py").write_text(FACTORY + "raise RuntimeError('broken top level')\n")
    result = run(tmp_path, "factory.py", "--fn", "loss", "--import", "-o", "dloss.py")
    assert result.returncode == 1 and "RuntimeError: broken top level" in result.stderr
    assert_untouched(existing)
    (tmp_path / "factory.py").write_text(FACTORY)
    missing = run(tmp_path, "factory.py", "--fn", "nope", "--import", "-o", "dloss.py")
    assert missing.returncode == 1 and "has no function 'nope' once imported" in missing.stderr
    assert_untouched(existing)
    usage = run(tmp_path, "factory.py", "--fn", "loss", "--import", "--update", "dloss.py")
    assert usage.returncode == 2 and "--import" in usage.stderr
