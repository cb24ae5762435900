"""Containers of arrays and floats (pytrees, as JAX has them), at both ends of the pipeline.

At run time, `spec` describes an argument's structure: tuples, lists, dicts and
namedtuples nested to any depth, with a kind per leaf (``"float"``, ``"int"``,
``(shape, dtype kind)``, or None for anything else). ``s2s.grad`` specializes
on it as it does on shapes.

At generation time a `Static` is a container whose structure the normalizer
knows: its leaves are atoms (names and constants) of the core language, so the
engine only ever sees plain names. `leaf_names` gives each leaf of a structured
parameter its own name (``params["W1"]`` -> ``params_W1``), `unpacking` reads
them at the top of the generated function, and `display` writes a structure of
leaf expressions back as Python (``{"W1": dparams_W1, ...}``).
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

import numpy as np

from .astutil import walk

SEQUENCES = {"tuple": tuple, "list": list}


# --- run time: the structure of a value -------------------------------------------------

def is_container(value) -> bool:
    return isinstance(value, (tuple, list, dict))


def leaf_kind(value):
    """What generated code may assume of a leaf (as `api._kinds` for an argument)."""
    if type(value) is float:
        return "float"
    if type(value) is int:
        return "int"
    if isinstance(value, np.ndarray):
        return (value.shape, value.dtype.kind)
    return None


def spec(value):
    """A hashable description of ``value``'s structure and leaf kinds."""
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return ("namedtuple", type(value), tuple(spec(v) for v in value))
    if isinstance(value, (tuple, list)):
        return (type(value).__name__, None, tuple(spec(v) for v in value))
    if isinstance(value, dict):
        return ("dict", tuple(value), tuple(spec(v) for v in value.values()))
    return ("leaf", leaf_kind(value))


def leaves(value) -> list:
    """The leaves of ``value``, depth first, in the order of `spec`."""
    if isinstance(value, dict):
        return [x for v in value.values() for x in leaves(v)]
    if isinstance(value, (tuple, list)):
        return [x for v in value for x in leaves(v)]
    return [value]


def differentiable(kind) -> bool:
    """Is a leaf of this kind differentiated (floats and float arrays)?"""
    return kind == "float" or (isinstance(kind, tuple) and kind[1] in "fc")


def shaped_like(g, x):
    """A gradient as the kind of its argument ``x``: floats for floats, arrays of ``x``'s
    shape and dtype, the same container structure, None for leaves that are not floats."""
    if isinstance(x, dict):
        return {k: shaped_like(g[k], v) for k, v in x.items()}
    if isinstance(x, tuple) and hasattr(x, "_fields"):
        return type(x)(*(shaped_like(a, b) for a, b in zip(g, x)))
    if isinstance(x, (tuple, list)):
        return type(x)(shaped_like(a, b) for a, b in zip(g, x))
    if is_container(g) and not is_container(x):
        return g
    kind = leaf_kind(x)
    if kind == "float":
        return float(g)
    if isinstance(x, np.ndarray):
        if not differentiable(kind):
            return g
        if not isinstance(g, np.ndarray) or g.dtype != x.dtype or g.shape != x.shape:
            return np.asarray(g, dtype=x.dtype).reshape(x.shape)
        return g
    return g


def spec_classes(tree_spec) -> dict:
    """The namedtuple classes in a `spec`, by name (generated code builds them)."""
    if tree_spec[0] == "leaf":
        return {}
    out = {tree_spec[1].__name__: tree_spec[1]} if tree_spec[0] == "namedtuple" else {}
    for child in tree_spec[2]:
        out.update(spec_classes(child))
    return out


def classes(*trees) -> dict:
    """The namedtuple classes in these `Static` trees, by name (generated code builds them)."""
    out = {}
    for tree in trees:
        if isinstance(tree, Static):
            if tree.kind == "namedtuple":
                out[tree.cls.__name__] = tree.cls
            out.update(classes(*tree.items))
    return out


# --- generation time: containers the normalizer knows ------------------------------------

@dataclass
class Static:
    """A tuple, list, dict or namedtuple of atoms (or of other `Static` values)."""

    kind: str  # "tuple" | "list" | "dict" | "namedtuple"
    items: list
    keys: list | None = None  # dict keys; namedtuple field names
    cls: object = None  # the namedtuple class
    name: str = ""  # the user's name for it, when it has one (for leaf names)

    def copy(self) -> "Static":
        return Static(self.kind, list(self.items), None if self.keys is None else list(self.keys),
                      self.cls, self.name)

    def structure(self):
        """(kind, keys or class, children): equal for equal structures."""
        return (self.kind, self.cls if self.kind == "namedtuple" else
                (tuple(self.keys) if self.kind == "dict" else None),
                tuple(i.structure() if isinstance(i, Static) else None for i in self.items))

    def flat(self) -> list:
        return [x for i in self.items for x in (i.flat() if isinstance(i, Static) else [i])]

    def flat_containers(self) -> list:
        """Every container inside this one (not itself)."""
        return [c for i in self.items if isinstance(i, Static) for c in [i] + i.flat_containers()]

    def map(self, fn) -> "Static":
        """The same structure with each leaf replaced by ``fn(leaf)``."""
        out = self.copy()
        out.items = [i.map(fn) if isinstance(i, Static) else fn(i) for i in self.items]
        return out

    def get(self, key):
        if self.kind == "dict":
            return self.items[self.keys.index(key)]
        return self.items[key]


def from_spec(tree_spec, base: str, fresh) -> Static | str:
    """A `Static` of fresh leaf names for a parameter of this structure (or a name for a leaf).

    ``params`` with key ``"W1"`` gets ``params_W1``; ``layers[0][1]`` gets ``layers_0_1``.
    """
    kind, keys, children = tree_spec if tree_spec[0] != "leaf" else (None, None, None)
    if kind is None:
        return fresh(base)
    labels = [_label(k, i) for i, k in enumerate(keys)] if kind == "dict" else (
        list(keys._fields) if kind == "namedtuple" else [str(i) for i in range(len(children))])
    items = [from_spec(c, f"{base}_{label}", fresh) for c, label in zip(children, labels)]
    items = [ast.Name(i, ast.Load()) if isinstance(i, str) else i for i in items]
    return Static(kind, items, list(keys) if kind == "dict" else
                  (list(keys._fields) if kind == "namedtuple" else None),
                  keys if kind == "namedtuple" else None, base)


def leaf_kinds(tree_spec, tree) -> dict:
    """Leaf name -> leaf kind, for a `Static` made by `from_spec`."""
    if tree_spec[0] == "leaf":
        return {tree.id: tree_spec[1]} if isinstance(tree, ast.Name) else {}
    out = {}
    for child, item in zip(tree_spec[2], tree.items):
        out.update(leaf_kinds(child, item))
    return out


def _label(key, index) -> str:
    text = re.sub(r"\W", "_", str(key))
    return text if text and text.isascii() and text.isidentifier() else f"{index}"


def spelling(tree: Static, kinds) -> str:
    """``tree``'s structure as ``--shapes`` takes it: ``[(3x4,4),(4x1,1)]``, ``{W:3x4,s:float}``."""
    def leaf(atom):
        kind = kinds.get(atom.id) if isinstance(atom, ast.Name) else None
        if kind == "float":
            return "float"
        if isinstance(kind, tuple):
            return "x".join(map(str, kind[0])) or "()"
        return "?"
    if not isinstance(tree, Static):
        return leaf(tree)
    items = [spelling(i, kinds) for i in tree.items]
    if tree.kind == "dict":
        return "{" + ",".join(f"{k}:{v}" for k, v in zip(tree.keys, items)) + "}"
    if tree.kind == "list":
        return "[" + ",".join(items) + "]"
    if tree.kind == "namedtuple":
        return f"{tree.cls.__name__}(" + ",".join(items) + ")"
    return "(" + ",".join(items) + ("," if len(items) == 1 else "") + ")"


def display(tree, leaf=lambda atom: atom) -> ast.expr:
    """``tree`` written as a Python expression: a tuple, list or dict display."""
    if not isinstance(tree, Static):
        return leaf(tree)
    items = [display(i, leaf) for i in tree.items]
    if tree.kind == "dict":
        return ast.Dict([ast.Constant(k) for k in tree.keys], items)
    if tree.kind == "namedtuple":
        return ast.Call(ast.Name(tree.cls.__name__, ast.Load()), items, [])
    return (ast.List if tree.kind == "list" else ast.Tuple)(items, ast.Load())


def unpacking(param: str, tree: Static) -> list[ast.stmt]:
    """Statements that read the leaves of parameter ``param`` into their names.

    Tuples and lists unpack in one statement (``(W, b), (W_1, b_1) = layers``);
    dicts and namedtuples are read key by key.
    """
    if _sequences_only(tree):
        target = display(tree, lambda atom: ast.Name(atom.id, ast.Store()))
        _as_store(target)
        return [ast.Assign([target], ast.Name(param, ast.Load()))]
    out = []
    for path, name in _paths(tree, ()):
        value: ast.expr = ast.Name(param, ast.Load())
        for kind, key in path:
            value = ast.Attribute(value, key, ast.Load()) if kind == "namedtuple" else \
                ast.Subscript(value, ast.Constant(key), ast.Load())
        out.append(ast.Assign([ast.Name(name, ast.Store())], value))
    return out


def _sequences_only(tree) -> bool:
    return not isinstance(tree, Static) or (tree.kind in SEQUENCES and tree.items and
                                            all(_sequences_only(i) for i in tree.items))


def _as_store(node):
    for n in walk(node):
        if isinstance(n, (ast.Name, ast.Tuple, ast.List)):
            n.ctx = ast.Store()


def _paths(tree: Static, prefix):
    for i, item in enumerate(tree.items):
        key = tree.keys[i] if tree.kind in ("dict", "namedtuple") else i
        step = prefix + ((tree.kind, key),)
        if isinstance(item, Static):
            yield from _paths(item, step)
        elif isinstance(item, ast.Name) and item.id != "_":
            yield step, item.id


@dataclass
class Leaves:
    """The structured parameters of a normalized function and the names of their leaves."""

    trees: dict = field(default_factory=dict)  # parameter -> Static of leaf names
    kinds: dict = field(default_factory=dict)  # leaf name -> leaf kind

    def flat(self, param) -> list[str]:
        tree = self.trees.get(param)
        return [param] if tree is None else [a.id for a in tree.flat()]
