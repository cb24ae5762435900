import os

import numpy as np
import pytest
from hypothesis import settings

from s2s.errors import S2SError
from s2s.testing import error_problems

# CI replays the same random programs every run (a failure there is reproducible);
# a developer's run draws new ones each time.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture
def rng():
    return np.random.default_rng(0)


# --- every S2SError made while the suite runs names the user's code --------------------------
#
# Each S2SError created in this process is recorded; after each test, those of the test
# must pass `s2s.testing.error_problems`: a line (never 0) with a file, a file when a
# pipeline stage raised them, no temporary s2s made up in the message.

_MADE = []
_original_init = S2SError.__init__


def _recording_init(self, *args, **kwargs):
    _original_init(self, *args, **kwargs)
    _MADE.append((self, os.getcwd()))  # a relative file name is relative to it


S2SError.__init__ = _recording_init


@pytest.fixture(autouse=True)
def _s2s_errors_name_the_users_code(request):
    start = len(_MADE)
    yield
    made, _MADE[start:] = _MADE[start:], []
    if request.node.get_closest_marker("makes_bad_errors"):
        return  # the test of the walk itself
    bad = [(e, p) for e, cwd in made for p in error_problems(e, cwd)]
    if bad:
        pytest.fail("an S2SError a user would see does not name their code:\n" + "\n".join(
            f"- {problem}:\n{e.render()}" for e, problem in bad), pytrace=False)
