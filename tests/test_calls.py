"""Calls as people write them (issue 12): decorators, ``*args``/``**kw``, ``f(*xs)``, methods
of small user classes, generators consumed by list()/zip()/enumerate()/comprehensions;
each checked against central finite differences in reverse and forward mode (and hvp)."""
import functools

import numba
import numpy as np
import pytest

import s2s
from s2s import derive
from s2s.source import from_file
from s2s.testing import assert_close, check_mode, numerical_grad

MODES = ("grad", "jvp", "hvp")
x0 = np.array([0.3, -0.7, 1.1])


# --- decorators: only those known to keep the function's values are seen through ----------

def double(fn):
    @functools.wraps(fn)
    def wrapper(*args):
        return 2.0 * fn(*args)
    return wrapper


@double
def doubled(x):
    return np.sum(x ** 2)


def cube(x):
    return np.sum(x ** 3)


cube_twice = double(cube)  # wrapped without the decorator syntax


def calls_a_wrapped_helper(x):
    return cube_twice(x) + 1.0


REGISTRY = {}


def register(fn):  # returns the function itself: what is called is what s2s reads
    REGISTRY[fn.__name__] = fn
    return fn


@register
def registered(x):
    return np.sum(np.sin(x) * x)


@numba.njit
def compiled_helper(x):
    return np.tanh(x) * 2.0


@functools.lru_cache(maxsize=None)
def cached_scale(n):
    return 0.5 * n


def calls_transparent_wrappers(x):
    return np.sum(compiled_helper(x)) * cached_scale(3) + registered(x)


@pytest.mark.parametrize("fn, line", [(doubled, "@double"), (calls_a_wrapped_helper, "def cube(x):")])
def test_value_changing_decorators_are_refused(fn, line):
    with pytest.raises(s2s.S2SError) as info:
        s2s.grad(fn)(x0)
    text = str(info.value)
    assert "a wrapper made by a decorator" in text and "double.<locals>.wrapper" in text
    assert f"{__file__}:" in text and line in text


@pytest.mark.parametrize("mode", MODES)
def test_transparent_decorators(mode):
    check_mode(mode, calls_transparent_wrappers, (x0,))
    check_mode(mode, registered, (x0,))


def test_decorators_read_from_a_file(tmp_path):
    (tmp_path / "model.py").write_text(
        "import numba\nimport numpy as np\nfrom mydecorators import double\n\n"
        "@numba.njit(cache=True)\ndef fast(x):\n    return np.sin(x)\n\n"
        "@double\ndef slow(x):\n    return np.cos(x)\n\n"
        "def ok(x):\n    return np.sum(fast(x))\n\n"
        "def refused(x):\n    return np.sum(slow(x))\n")
    path = str(tmp_path / "model.py")
    gen = derive.reverse_module(from_file(path, "ok"), ["x"])
    assert "np.cos(x)" in gen.text
    with pytest.raises(s2s.S2SError) as info:
        derive.reverse_module(from_file(path, "refused"), ["x"])
    assert f"{path}:9:2" in str(info.value) and "the decorator double" in str(info.value)


# --- *args, **kw, f(*xs), f(**kw) --------------------------------------------------------

A0 = np.array([[0.5, -0.3, 0.2], [0.1, 0.4, -0.6], [0.3, 0.2, 0.1]])


def total(*terms, scale=1.0):
    out = 0.0
    for t in terms:
        out = out + np.sum(t)
    return scale * out / len(terms)


def layer(h, W, *, act=np.tanh, bias=0.0):
    return act(W @ h) + bias


def forward(h, W, **options):  # **kw passed through
    return layer(h, W, **options)


def apply(f, *args, **kw):
    return f(*args, **kw)


def star_calls(x, W):
    pair = (x, W)
    opts = {"bias": 0.5}
    a = total(x ** 2, np.sin(x), scale=2.0) + total(x)
    b = np.sum(forward(*pair, **opts)) + np.sum(layer(x, W, act=np.sin))
    c = np.sum(apply(layer, x, W, bias=1.0)) + np.sum(apply(np.cos, *(x,)))
    return a + b + c + total(*[x, W @ x], **{"scale": 0.5})


@pytest.mark.parametrize("mode", MODES)
def test_star_arguments(mode):
    check_mode(mode, star_calls, (x0, A0), (0, 1))


def test_star_arguments_hessian():
    check_mode("hessian", star_calls, (x0, A0))


def spreads_an_array(x):
    return total(*x)


def passes_a_function_through_kw(x):
    return np.sum(forward(x, A0, act=np.sin))


def takes_star_args(*xs):
    return np.sum(xs[0])


@pytest.mark.parametrize("fn, message", [
    (spreads_an_array, "*x: s2s passes the items of a tuple, list or dict whose length it knows"),
    (passes_a_function_through_kw, "a function passed to forward through *args or **kwargs"),
    (takes_star_args, "*args and **kwargs parameters of the differentiated function")])
def test_star_refusals(fn, message):
    with pytest.raises(s2s.S2SError) as info:
        s2s.grad(fn)(x0)
    assert message in str(info.value) and f"{__file__}:" in str(info.value)


# --- generators consumed by list(), zip(), enumerate(), sum() and comprehensions ----------

def make_network(sizes):
    """The factory of issue 12, its generator consumed other than by a plain for loop."""
    shapes = list(zip(sizes[:-1], sizes[1:]))
    count = sum((m + 1) * n for m, n in shapes)

    def unpack_layers(w):
        for m, n in shapes:
            yield w[:m * n].reshape((m, n)), w[m * n:m * n + n]
            w = w[(m + 1) * n:]

    def predict(w, X):
        layers = list(unpack_layers(w))
        for W, b in layers:
            X = np.tanh(X @ W + b)
        return X

    def loss(w, X):
        penalty = 0.0
        for k, (W, b) in enumerate(unpack_layers(w)):
            penalty = penalty + (k + 1) * np.sum(W ** 2)
        for (W, b), s in zip(unpack_layers(w), (0.5, 2.0)):
            penalty = penalty + s * np.sum(np.sin(b))
        norms = [np.sum(W * W) for W, _ in unpack_layers(w)]
        return np.sum(predict(w, X) ** 2) + 0.1 * penalty + sum(norms) * 0.01
    return count, loss


def pairs(x):
    for i in range(2):
        yield x[i], x[i + 1]


def products(x):
    i = 0
    for a, b in pairs(x):  # a generator reading another
        yield a * b * (i + 1)
        i = i + 1


def generator_values(x):
    return np.sum(np.stack(list(pairs(x)))) + sum(products(x)) + np.sum(np.stack(
        [p ** 2 for p in products(x)]))


def counted(x):
    k = 0
    while k < 2:
        yield x * k
        k = k + 1


def yields_in_a_while_loop(x):
    return np.sum(np.stack(list(counted(x))))


@pytest.mark.parametrize("mode", MODES)
def test_generators_as_values(mode):
    count, loss = make_network([3, 4, 2])
    w = np.random.default_rng(2).normal(size=count) * 0.5
    X = np.random.default_rng(3).normal(size=(5, 3))
    check_mode(mode, loss, (w, X), 0 if mode == "hvp" else (0, 1))
    check_mode(mode, generator_values, (x0,))


def test_generator_with_an_unknown_trip_count_is_refused():
    with pytest.raises(s2s.S2SError) as info:
        s2s.grad(yields_in_a_while_loop)(x0)
    assert "the generator counted yields in a loop or branch whose trip count" in str(info.value)
    assert f"{__file__}:" in str(info.value)


def generator_to_numpy(x):
    return np.sum(np.stack(pairs(x)))  # numpy does not iterate a generator: refused


def test_generator_passed_to_numpy_is_refused():
    with pytest.raises(s2s.S2SError) as info:
        s2s.grad(generator_to_numpy)(x0)
    assert "pairs is a generator: s2s reads generators only where Python iterates them" in str(info.value)


# --- methods of small user classes that hold parameters ----------------------------------

class Layer:
    def __init__(self, W, scale):
        self.W, self.scale = W, scale

    def __call__(self, h):
        return np.tanh(self.W @ h) * self.scale


class Model:
    REG = 0.1

    def __init__(self, W):
        self.W = W
        self.head = Layer(W.T * 0.5, 2.0)
        self.depth = 2

    @staticmethod
    def square(z):
        return z ** 2

    @classmethod
    def penalty(cls, z):
        return cls.REG * np.sum(z ** 2)

    def hidden(self, x):
        h = x
        for _ in range(self.depth):
            h = np.tanh(self.W @ h)
        return h

    def loss(self, x, scale=1.0):
        return scale * np.sum(self.square(self.hidden(x))) + self.penalty(x) + np.sum(self.head(x))


model = Model(A0)


class Dense:
    def __init__(self, W):
        self.W = W

    def forward(self, h):
        return np.tanh(self.W @ h)


class Sequential:
    def __init__(self, first, second):
        self.first, self.second = first, second

    def forward(self, x):  # calls another forward: not recursion
        return np.sum(self.second.forward(self.first.forward(x)) ** 2)


network = Sequential(Dense(A0), Dense(A0.T * 0.7))



def uses_the_model(x):
    return model.loss(x, scale=2.0) + Model.square(x)[0] + np.sum(model.head(x) * x)


@pytest.mark.parametrize("mode", MODES + ("hessian",))
def test_methods_of_user_classes(mode):
    check_mode(mode, model.loss, (x0,))
    check_mode(mode, uses_the_model, (x0,))
    check_mode(mode, network.forward, (x0,))


def test_a_model_s_parameters_read_when_they_change():
    """``self.W`` is read when the derivative runs; rebinding it regenerates (or swaps it)."""
    m = Model(A0.copy())
    dloss = s2s.grad(m.loss)
    assert_close(dloss(x0), numerical_grad(m.loss, [x0], 0))
    text = s2s.source(dloss)
    code = "\n".join(line.split("#")[0] for line in text.splitlines())
    assert "# W: self.W, as it is when the derivative runs" in text and "self." not in code
    m.W = A0 * 0.5  # a new array, same shape: swapped in
    assert_close(dloss(x0), numerical_grad(m.loss, [x0], 0))
    m.depth = 3  # a number: generated again
    assert_close(dloss(x0), numerical_grad(m.loss, [x0], 0))
    m.head = Layer(A0, 1.0)  # another object
    assert_close(dloss(x0), numerical_grad(m.loss, [x0], 0))


class Holder:
    def __init__(self):
        self.parts = [A0, A0]

    def loss(self, x):
        return np.sum(self.parts[0] @ x)


def constructs_an_object(x, W):
    layer = Layer(W, 1.0)
    return np.sum(layer(x))


@pytest.mark.parametrize("fn, message", [
    (Holder().loss, "self.parts holds a list: s2s reads arrays and numbers from objects"),
    (constructs_an_object, "making a Layer inside a differentiated function")])
def test_objects_refused(fn, message):
    with pytest.raises(s2s.S2SError) as info:
        s2s.grad(fn)(x0) if fn is not constructs_an_object else s2s.grad(fn)(x0, A0)
    assert message in str(info.value) and f"{__file__}:" in str(info.value)


# --- functions kept in a module's (or an object's) list or dict ---------------------------

def relu_ish(z):
    return z * np.tanh(z)


ACTIVATIONS = {"relu": relu_ish, "tanh": np.tanh}
STAGES = [np.sin, relu_ish, lambda z: 0.5 * z ** 2]


class Pipeline:
    def __init__(self):
        self.stages = (np.cos, relu_ish)

    def run(self, x):
        return np.sum(self.stages[1](x) * self.stages[0](x))


pipeline = Pipeline()


def module_tables(x):
    total = np.sum(ACTIVATIONS["relu"](x)) + np.sum(ACTIVATIONS["tanh"](x) * x)
    for stage in STAGES:
        x = stage(x)
    return total + np.sum(x) + pipeline.run(x)


def indexes_a_table_at_run_time(x, k):
    return np.sum(STAGES[k](x))


@pytest.mark.parametrize("mode", MODES)
def test_module_tables_of_functions(mode):
    check_mode(mode, module_tables, (x0,))


def test_a_table_indexed_at_run_time_is_refused():
    with pytest.raises(s2s.S2SError) as info:
        s2s.grad(indexes_a_table_at_run_time)(x0, 1)
    assert "s2s cannot tell which function of 'STAGES' this calls" in str(info.value)
    assert f"{__file__}:" in str(info.value)


# --- found by the random programs with functions as values (tests/fuzz_functions.py) -----

S_GLOBAL = 0.25


def twice(g, z):
    return g(g(z)) * 0.5 + z * S_GLOBAL


def closures_after_an_early_return(x, s):
    if np.sum(x) > 5.0:
        return np.sum(x)
    kept = x * s  # loop-invariant: read by the closure in every iteration
    scaled = lambda t: np.tanh(t * kept)
    acc = twice(lambda t: s, x)  # a lambda returning a variable it reads (was renamed: NameError)
    for _ in range(2):
        acc = acc + scaled(acc)
    return np.sum(acc)


def shadows_a_global_of_the_helper(x, S_GLOBAL):
    return np.sum(twice(lambda t: t * S_GLOBAL, x))


def captures(f, x):
    y = x * 3.0  # the helper's own y
    return f(x) + y


def closures_read_names_the_helper_uses(x):
    y = x * 2.0
    return np.sum(captures(lambda z: z * y, x)) + np.sum(captures(lambda z: y, x))


@pytest.mark.parametrize("mode", MODES)
def test_closures_found_by_random_programs(mode):
    check_mode(mode, closures_after_an_early_return, (x0, 0.7), (0, 1))
    # the closure's S_GLOBAL is the parameter, the helper's the module's (it was read as the global)
    check_mode(mode, shadows_a_global_of_the_helper, (x0, 0.7), 1 if mode == "hvp" else (0, 1))
    check_mode(mode, closures_read_names_the_helper_uses, (x0,))


OFFSET = np.linspace(-0.3, 0.4, 3)


def iterate(g, z):
    t = z
    for _ in range(3):
        t = g(t) * 0.8 + 0.1 * z
    return t


def passes_a_module_array(x, s):
    return np.sum(np.tanh(iterate(lambda t: s - x, OFFSET)))


@pytest.mark.parametrize("mode", MODES)
def test_a_module_array_passed_to_a_helper(mode):
    """hvp crashed: forward mode over the gradient bound the module's array to None (F5's
    placeholder for a value that may be unbound, given to a global)."""
    check_mode(mode, passes_a_module_array, (x0, 0.8), 1 if mode == "hvp" else (0, 1))


# --- objects passed as values ------------------------------------------------------------

def squared_norm(model, x):  # `model` is the parameter here, not the module's `model`
    return np.sum((model.W @ x) ** 2) + len(model.W) * np.sum(x)


def passes_the_model(x):
    return squared_norm(model, x) + squared_norm(network.first, np.sin(x))


@pytest.mark.parametrize("mode", MODES)
def test_objects_passed_to_functions(mode):
    other = Model(A0 * 0.3)  # not the module-level `model`: it was read instead (a wrong gradient)
    if mode == "grad":
        assert_close(s2s.grad(squared_norm, 1)(other, x0), numerical_grad(squared_norm, [other, x0], 1))
    check_mode(mode, lambda x: squared_norm(other, x), (x0,))
    check_mode(mode, passes_the_model, (x0,))


def runs_a_model(m, x):  # m.hidden and m.head(x): methods of the object it is given
    return np.sum(m.hidden(x) * m.head(x)) * m.REG + squared_norm(m, x)


other_model = Model(A0.T)


def passes_models(x):
    return runs_a_model(model, x) + runs_a_model(other_model, np.cos(x))


@pytest.mark.parametrize("mode", MODES)
def test_methods_of_objects_passed_to_functions(mode):
    check_mode(mode, passes_models, (x0,))


def test_an_object_passed_to_a_function_is_read_when_it_changes():
    m = Model(A0.copy())
    dloss = s2s.grad(lambda x: runs_a_model(m, x))
    assert_close(dloss(x0), numerical_grad(lambda x: runs_a_model(m, x), [x0], 0))
    m.W = A0 * 0.5
    m.head = Layer(A0.T, 0.5)
    assert_close(dloss(x0), numerical_grad(lambda x: runs_a_model(m, x), [x0], 0))
    m.head.W = A0 * 0.2  # an attribute of an object held by the object: followed too
    assert_close(dloss(x0), numerical_grad(lambda x: runs_a_model(m, x), [x0], 0))
    dglobal = s2s.grad(uses_the_model)
    assert_close(dglobal(x0), numerical_grad(uses_the_model, [x0], 0))
    saved = model.head.W
    try:
        model.head.W = A0 * 0.1  # model.head(x) through __call__: its self.W followed
        assert_close(dglobal(x0), numerical_grad(uses_the_model, [x0], 0))
    finally:
        model.head.W = saved


class Fixed:
    def apply(self, z):
        return OFFSET


fixed = Fixed()


def resets_to_a_module_array(x, y):
    for _ in range(2):
        x = fixed.apply(x * y)  # x = OFFSET: no tangent (hvp read an undefined dOFFSET)
    return np.sum(np.tanh(x) * y)


@pytest.mark.parametrize("mode", MODES)
def test_a_value_reset_to_a_module_array_in_a_loop(mode):
    check_mode(mode, resets_to_a_module_array, (x0, x0 * 0.5), 0 if mode == "hvp" else (0, 1))


def shifts(p, z):
    return z * p.REG + p.depth  # a number attribute of the object given: a known scalar


def loops_over_a_shifted_vector(x):
    z = shifts(model, x)
    for a, b in zip(z, z):
        b -= np.cos(b)  # b is a number (z is a vector): z is not changed
    return np.sum(np.tanh(z))


@pytest.mark.parametrize("mode", MODES)
def test_attributes_of_an_object_given_to_a_helper(mode):
    """``p.REG`` was read as it runs, of unknown kind: the loop's item was taken for a view of
    ``z`` and written into (a crash, seed 9 #199)."""
    check_mode(mode, loops_over_a_shifted_vector, (x0,))
