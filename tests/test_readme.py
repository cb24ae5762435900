"""Facts the README states, checked: the rule count, what generated code imports."""
import os
import re

import pytest

from cli.main import main, rule_names
from generated_examples.regenerate import EXAMPLES, ROOT, expected_text

README = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()


def test_rule_count_and_its_split_by_module():
    stated = re.search(r"--list-rules` prints every\s+function with a derivative rule.*?\((\d+) of\s+them:(.*?)\)\.",
                       README, re.S)
    assert stated, "the README's sentence on --list-rules moved; keep its count checked here"
    names = rule_names()
    assert int(stated[1]) == len(names), f"README says {stated[1]} rules; --list-rules prints {len(names)}"
    by_module = {}
    for name in names:
        module = "ndarray" if name.startswith("ndarray.") else \
            next(m for m in ("scipy.special", "scipy.stats", "numpy.linalg", "numpy", "math", "builtins")
                 if name == m or name.startswith(m + ".") or m == "builtins")
        by_module[module] = by_module.get(module, 0) + 1
    shown = {"array methods": "ndarray"}
    for label, count in re.findall(r"([a-z.]+(?: [a-z]+)?) (\d+)", stated[2]):
        module = shown.get(label, label)
        assert by_module.get(module) == int(count), f"README: {label} {count}; --list-rules: {by_module.get(module)}"
    assert set(by_module) == {shown.get(label, label) for label, _ in re.findall(r"([a-z.]+(?: [a-z]+)?) (\d+)", stated[2])}


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
