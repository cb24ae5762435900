"""The conftest walk over every S2SError of the suite: what it lets through and what it stops."""
import pytest

from s2s.errors import NoRule, S2SError
from s2s.testing import error_problems as s2s_error_problems


@pytest.mark.makes_bad_errors
def test_it_stops_line_zero_a_missing_file_and_made_up_names(tmp_path):
    model = tmp_path / "model.py"
    model.write_text("def loss(w, t1):\n    return w * t1\n")
    assert s2s_error_problems(S2SError("cannot resolve name 'x'", str(model), 0, 0)) == [
        "names a file but no line (line 0)"]
    assert s2s_error_problems(S2SError("no rule", stage="analyze")) == [
        "raised by stage analyze without naming the user's file and line"]
    made_up = NoRule("cannot resolve name 't7' (from dt3)", str(model), 2, 4, stage="normalize")
    assert s2s_error_problems(made_up) == ["shows names s2s made up: dt3, t7"]
    # t1 is the user's own name: fine
    assert s2s_error_problems(NoRule("cannot resolve name 't1'", str(model), 2, 4)) == []
    assert s2s_error_problems(S2SError("argnums=3 is out of range for loss")) == []
