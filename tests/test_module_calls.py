"""A call to the user's own function through its module (``mymodel.helper(w)``) is inlined like ``helper(w)``."""
import importlib
import sys
import textwrap

import numpy as np
import pytest

import s2s
from cli.main import main
from s2s.testing import numerical_grad

HELPERS = "import numpy as np\n\nSCALE = 3.0\n\n\ndef helper(w):\n    return np.sum(np.sin(w) ** 2) * SCALE\n"
USER = textwrap.dedent('''\
    import numpy as np
    import s2s_test_mymodel


    def f(w):
        return s2s_test_mymodel.helper(w) + np.sum(w)
    ''')


@pytest.fixture
def modules(tmp_path, monkeypatch):
    (tmp_path / "s2s_test_mymodel.py").write_text(HELPERS)
    (tmp_path / "s2s_test_user.py").write_text(USER)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("S2S_CACHE", "0")
    yield tmp_path
    for name in ("s2s_test_mymodel", "s2s_test_user"):
        sys.modules.pop(name, None)


def test_module_qualified_call_of_a_user_function(modules, capsys):
    user = importlib.import_module("s2s_test_user")
    w = np.linspace(-1.0, 1.0, 4)
    np.testing.assert_allclose(s2s.grad(user.f)(w), numerical_grad(user.f, (w,), 0), rtol=1e-6)
    # read statically by s2s-diff: the module beside the file
    assert main([str(modules / "s2s_test_user.py"), "--fn", "f"]) == 0
    out = capsys.readouterr().out
    assert "# helper, s2s_test_mymodel.py line 7: return np.sum(np.sin(w) ** 2) * SCALE" in out
    assert "SCALE = 3.0" in out
