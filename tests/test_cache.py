"""@s2s.differentiable generates at import and caches in __pycache__/ (or S2S_CACHE_DIR); nothing stale is ever served."""
import importlib.util
import json
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

import s2s
import s2s.cache
from s2s.cache import CACHE_DIR, CacheWarning

MODEL = textwrap.dedent('''\
    import numpy as np
    import s2s
    from activations import act

    FACTOR = 2.0


    @s2s.differentiable
    def loss(w, X):
        return np.sum(act(X @ w)) * FACTOR
    ''')
ACTIVATIONS = "import numpy as np\n\n\ndef act(z):\n    return np.tanh(z)\n"

CHILD = textwrap.dedent('''\
    import json, warnings
    import numpy as np
    warnings.simplefilter("always")
    with warnings.catch_warnings(record=True) as caught:
        import model
        import s2s.cache
        after_import = dict(s2s.cache.STATS)
        rng = np.random.default_rng(0)
        w, X = rng.standard_normal(3), rng.standard_normal((4, 3))
        g = model.loss.grad(w, X)
        value, g2 = model.loss.value_and_grad(w, X)
        from s2s.testing import numerical_grad
        error = float(np.max(np.abs(g - numerical_grad(model.loss, (w, X), 0))))
        assert np.array_equal(g, g2) and value == model.loss(w, X)
    cache_warnings = [str(w.message) for w in caught if issubclass(w.category, s2s.cache.CacheWarning)]
    print(json.dumps({"import": after_import, "end": dict(s2s.cache.STATS), "error": error,
                      "warnings": cache_warnings}))
    ''')


@pytest.fixture
def project(tmp_path):
    (tmp_path / "model.py").write_text(MODEL)
    (tmp_path / "activations.py").write_text(ACTIVATIONS)
    (tmp_path / "child.py").write_text(CHILD)
    return tmp_path


def fresh_process(folder, **env):
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "S2S_CACHE": "1", **env}
    result = subprocess.run([sys.executable, "child.py"], cwd=folder, capture_output=True, text=True,
                            env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["error"] < 1e-6  # the gradient is right, whatever the cache did
    return report


def cache_files(folder):
    return sorted(p for p in (folder / CACHE_DIR).glob("*.s2s.*.py"))


def test_second_import_reads_the_cache(project):
    first = fresh_process(project)
    # at import: grad and value_and_grad, shape-polymorphic; at the calls: specialized to the shapes
    assert first["import"] == {"hits": 0, "generated": 2, "written": 2, "fallbacks": 0}
    assert first["end"] == {"hits": 0, "generated": 4, "written": 4, "fallbacks": 0}
    assert sorted(p.name.split(".")[3] for p in cache_files(project)) == [
        "grad", "grad", "value_and_grad", "value_and_grad"]
    second = fresh_process(project)
    assert second["import"] == {"hits": 2, "generated": 0, "written": 0, "fallbacks": 0}
    assert second["end"] == {"hits": 4, "generated": 0, "written": 0, "fallbacks": 0}
    assert second["warnings"] == []


def test_edited_primal_is_regenerated(project):
    fresh_process(project)
    (project / "model.py").write_text(MODEL.replace("* FACTOR", "* FACTOR + np.sum(w ** 2)"))
    report = fresh_process(project)  # the error check proves the new function's gradient
    assert report["end"]["generated"] == 4 and report["end"]["hits"] == 0
    assert len(cache_files(project)) == 4  # replaced, not accumulated


def test_a_function_moved_in_its_file_is_regenerated(project):
    """The derivative's ``# line N`` notes (and the errors located through them, such as
    numba's refusals) name the lines as they are now, not where the function was."""
    fresh_process(project)
    moved = MODEL.replace("FACTOR = 2.0\n", "FACTOR = 2.0\n\n\n\n")
    (project / "model.py").write_text(moved)
    report = fresh_process(project)
    assert report["end"]["generated"] == 4 and report["end"]["hits"] == 0
    line = moved.splitlines().index("    return np.sum(act(X @ w)) * FACTOR") + 1
    assert all(f"# line {line}" in p.read_text() for p in cache_files(project))


def test_edited_constant_is_regenerated(project):
    fresh_process(project)
    (project / "model.py").write_text(MODEL.replace("FACTOR = 2.0", "FACTOR = 3.0"))
    report = fresh_process(project)
    assert report["end"]["generated"] == 4 and report["end"]["hits"] == 0


def test_edited_helper_in_a_sibling_module_is_regenerated(project):
    fresh_process(project)
    (project / "activations.py").write_text(ACTIVATIONS.replace("np.tanh(z)", "np.exp(-z ** 2)"))
    report = fresh_process(project)
    assert report["end"]["generated"] == 4 and report["end"]["hits"] == 0


def test_changed_option_gets_its_own_derivative(project):
    fresh_process(project)
    (project / "child2.py").write_text(textwrap.dedent('''\
        import json
        import numpy as np
        import s2s, model
        from s2s.testing import numerical_grad
        w, X = np.ones(3) * 0.1, np.arange(12.0).reshape(4, 3) / 10
        dX = s2s.grad(model.loss, argnums=1)(w, X)
        print(json.dumps([s2s.cache.STATS["generated"],
                          float(np.max(np.abs(dX - numerical_grad(model.loss, (w, X), 1))))]))
        '''))
    out = subprocess.run([sys.executable, "child2.py"], cwd=project, capture_output=True, text=True,
                         env={**os.environ, "S2S_CACHE": "1"}, timeout=60)
    generated, error = json.loads(out.stdout)
    assert generated == 1 and error < 1e-6


def test_corrupt_cache_file_falls_back_with_a_warning(project):
    fresh_process(project)
    grad_file = next(p for p in cache_files(project) if ".grad." in p.name)
    grad_file.write_text("garbage \x00 not a cache file\n")
    report = fresh_process(project)
    assert report["end"]["generated"] == 1 and report["end"]["fallbacks"] == 1
    assert any("corrupt s2s cache file" in w for w in report["warnings"])
    assert fresh_process(project)["end"]["hits"] == 4  # and it was repaired


def test_truncated_cache_file_is_detected(project):
    fresh_process(project)
    grad_file = next(p for p in cache_files(project) if ".grad." in p.name)
    grad_file.write_text(grad_file.read_text()[:-40])
    report = fresh_process(project)
    assert report["end"]["fallbacks"] == 1 and report["end"]["generated"] == 1


def test_unwritable_cache_folder_falls_back_with_a_warning(project):
    (project / CACHE_DIR).write_text("a file where the cache folder should be")
    report = fresh_process(project)
    assert report["end"]["generated"] == 4 and report["end"]["fallbacks"] == 4
    assert len(report["warnings"]) == 4
    assert all("cannot write s2s cache file" in w for w in report["warnings"])


def load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_read_only_cache_folder_falls_back_with_a_warning(project, monkeypatch):
    folder = project / CACHE_DIR
    folder.mkdir()
    folder.chmod(0o555)
    monkeypatch.syspath_prepend(str(project))
    monkeypatch.setenv("S2S_CACHE", "1")
    if os.geteuid() == 0:  # root writes anyway: make the write fail as it does for everyone else
        def refuse(path, text, **_):
            raise PermissionError(13, "Permission denied", path)
        monkeypatch.setattr(s2s.cache, "write_text_atomic", refuse)
    before = dict(s2s.cache.STATS)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = load(project / "model.py", "s2s_test_readonly_model")
            w, X = np.ones(3) * 0.2, np.arange(12.0).reshape(4, 3) / 10
            np.testing.assert_allclose(model.loss.grad(w, X),
                                       2.0 * X.T @ (1 - np.tanh(X @ w) ** 2), rtol=1e-12)
    finally:
        folder.chmod(0o755)
    messages = [str(w.message) for w in caught if issubclass(w.category, CacheWarning)]
    assert len(messages) == 3 and all("cannot write s2s cache file" in m for m in messages)
    assert s2s.cache.STATS["fallbacks"] - before["fallbacks"] == 3  # 2 at import, 1 at the call
    assert list(folder.iterdir()) == []


def test_cache_goes_to_pycache_and_nothing_new_among_the_sources(project):
    before = sorted(p.name for p in project.iterdir())
    fresh_process(project)  # with PYTHONDONTWRITEBYTECODE=1: no __pycache__ from Python itself
    assert sorted(p.name for p in project.iterdir()) == sorted(before + [CACHE_DIR])
    assert len(cache_files(project)) == 4
    assert [p.name for p in (project / CACHE_DIR).iterdir() if ".s2s." not in p.name] == []


def test_cache_dir_environment_variable_moves_the_cache(project, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("user-cache")
    before = sorted(p.name for p in project.iterdir())
    first = fresh_process(project, S2S_CACHE_DIR=str(elsewhere))
    assert first["end"]["written"] == 4
    assert sorted(p.name for p in project.iterdir()) == before  # nothing in the project at all
    mirrored = elsewhere / str(project).lstrip(os.sep)
    assert len(list(mirrored.glob("model.s2s.loss.*.py"))) == 4
    assert fresh_process(project, S2S_CACHE_DIR=str(elsewhere))["end"]["hits"] == 4


def test_cache_off_with_environment_variable(project):
    report = fresh_process(project, S2S_CACHE="0")
    assert report["end"] == {"hits": 0, "generated": 4, "written": 0, "fallbacks": 0}
    assert not (project / CACHE_DIR).exists()


def test_helper_defined_below_the_decorated_function(tmp_path, monkeypatch):
    (tmp_path / "late_model.py").write_text(textwrap.dedent('''\
        import numpy as np
        import s2s


        @s2s.differentiable
        def loss(w):
            return np.sum(square(w)) * SCALE


        def square(z):
            return z * z


        SCALE = 1.5
        '''))
    monkeypatch.setenv("S2S_CACHE", "0")
    model = load(tmp_path / "late_model.py", "s2s_test_late_model")
    w = np.array([1.0, -2.0, 0.5])
    np.testing.assert_allclose(model.loss.grad(w), 3.0 * w)
    assert "SCALE = 1.5" in s2s.source(model.loss.grad)


def test_unsupported_function_is_refused_at_import(tmp_path):
    (tmp_path / "bad_model.py").write_text(textwrap.dedent('''\
        import numpy as np
        import s2s


        @s2s.differentiable
        def loss(w):
            with open("x") as fh:
                return np.sum(w)
        '''))
    with pytest.raises(s2s.S2SError, match="with statements are not supported"):
        load(tmp_path / "bad_model.py", "s2s_test_bad_model")
    assert not list(tmp_path.glob(f"{CACHE_DIR}/*.s2s.*"))
