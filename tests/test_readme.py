"""Facts the README states, checked: the rule count, what generated code imports."""
import os
import re

import pytest

from cli.main import main, rule_counts, rule_names
from generated_examples.regenerate import EXAMPLES, ROOT, expected_text

README = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()


def test_rule_count_and_its_split_by_module():
    stated = re.search(r"--list-rules` prints every\s+function with a derivative rule.*?\((\d+) of\s+them:(.*?)\)\.",
                       README, re.S)
    assert stated, "the README's sentence on --list-rules moved; keep its count checked here"
    names = rule_names()
    assert int(stated[1]) == len(names), f"README says {stated[1]} rules; --list-rules prints {len(names)}"
    printed = dict((m, int(n)) for m, n in re.findall(r"([\w.]+) (\d+)", rule_counts(names).split(":", 1)[1]))
    said = {{"array methods": "ndarray"}.get(label, label): int(n)
            for label, n in re.findall(r"([a-z.]+(?: methods)?) (\d+)", stated[2])}
    assert said == printed, f"README: {said}; --list-rules: {printed}"


def imported_modules(text):
    return {m.split(".")[0] for m in re.findall(r"^(?:import|from) ([\w.]+)", text, re.M)}


def test_generated_code_imports_only_what_the_readme_says(tmp_path, capsys):
    stated = re.search(r"The generated code imports (.*?)\.\n\n", README, re.S)
    assert stated, "the README's sentence on imports moved; keep it checked here"
    allowed = {m.split(".")[0] for m in re.findall(r"`([\w.]+)`", stated[1])}
    model = tmp_path / "model.py"
    model.write_text("import math\nimport numpy as np\nimport scipy.special\n\n\n"
                     "def loss(x, t):\n    return math.exp(t) * np.sum(scipy.special.expit(x))\n")
    texts = [expected_text(e) for e in EXAMPLES]
    for target in ("numpy", "cupy"):
        assert main([str(model), "--fn", "loss", "--wrt", "x,t", "--shapes", "t=", "--target", target]) == 0
        texts.append(capsys.readouterr().out)
    used = set().union(*(imported_modules(t) for t in texts))
    assert used == {"numpy", "math", "scipy", "cupy", "cupyx"} and used <= allowed, (used, allowed)


@pytest.mark.parametrize("words", ["S2S_CHECK=1", "breakpoint()", "S2S_CACHE_DIR"])
def test_readme_documents(words):
    assert words in README
