"""The private Keras APIs the zoo relies on (zoo/core/keras_internals.py) are still there.

Keras may move or rename anything under `keras.src` or with a leading underscore in
any release. pyproject.toml bounds Keras at the newest release the suite has passed
on; before raising that bound, run this file on every backend with the new release:
a failure names the internal that moved and the zoo code that uses it.
"""

import importlib
import inspect
import os
import pkgutil
import re

import keras
import numpy as np
import pytest

import zoo
from tests.conftest import ROOT
from zoo.core import keras_internals
from zoo.core import backend
from zoo.core.keras_internals import INTERNALS, OVERRIDDEN, Internal, Override

BACKEND = keras.backend.backend()


class Probe(keras.Model):
    """A small subclassed model, as a zoo model is (not functional, not Sequential)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(2)

    def call(self, x):
        return self.dense(x)


def _compiled_model():
    model = Probe()
    model(np.zeros((1, 3), "float32"))
    model.compile(optimizer="sgd", loss="mse")
    return model


def _data(n=8):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 3)).astype("float32"), rng.normal(size=(n, 2)).astype("float32")


@pytest.fixture
def probes(tmp_path):
    return {
        "compiled model": _compiled_model,
        "backup": lambda: keras.callbacks.BackupAndRestore(os.fspath(tmp_path / "backup")),
    }


# ---------------------------------------------------------------------------
# The checker, and its negative control
# ---------------------------------------------------------------------------
def _resolve(owner, probes):
    """The object `owner` names: a probe, a module, or "module:Qualified.name"."""
    if owner in probes:
        return probes[owner]()
    module, _, qualname = owner.partition(":")
    obj = importlib.import_module(module)
    for part in filter(None, qualname.split(".")):
        obj = getattr(obj, part)
    return obj


def _kind_of(value):
    if inspect.isclass(value):
        return "class"
    if callable(value):
        return "callable"
    return "attribute"


def _missing_params(fn, params):
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return list(params)
    accepts_any = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    return [] if accepts_any else [p for p in params if p not in signature.parameters]


def problems(entries, probes):
    """One message per entry that Keras no longer has as the zoo expects; [] if all is well."""
    found = []
    for entry in entries:
        where = f"{entry.owner}.{entry.name}" if entry.owner not in probes else f"({entry.owner}).{entry.name}"
        used = f" (used by {entry.used_by})" if entry.used_by else ""
        try:
            owner = _resolve(entry.owner, probes)
        except (ImportError, AttributeError) as e:
            found.append(f"{where}: its owner {entry.owner!r} is gone ({type(e).__name__}: {e}){used}")
            continue
        if not hasattr(owner, entry.name):
            found.append(f"{where}: Keras no longer has {entry.name!r}{used}")
            continue
        value = getattr(owner, entry.name)
        kind = _kind_of(value)
        if entry.kind != "attribute" and kind != entry.kind:
            found.append(f"{where}: expected a {entry.kind}, found a {kind} ({value!r}){used}")
            continue
        missing = _missing_params(value, entry.params) if entry.params else []
        if missing:
            found.append(f"{where}: no longer takes {missing}{used}")
    return found


def test_every_internal_the_zoo_uses_is_still_in_keras(probes):
    found = problems(INTERNALS, probes)
    assert not found, (
        f"Keras {keras.__version__} moved or renamed internals the zoo relies on "
        "(zoo/core/keras_internals.py):\n  " + "\n  ".join(found)
    )


def test_the_checker_names_what_is_missing(probes):
    # Negative control: made-up names, a wrong kind and a missing argument are reported by name.
    made_up = (
        Internal("keras:Model", "_no_such_keras_internal", "callable"),
        Internal("keras.src.no_such_module", "anything", "callable"),
        Internal("compiled model", "_no_such_compile_state", "attribute"),
        Internal("keras.src.saving.serialization_lib", "SerializableDict", "callable"),
        Internal("keras.src.saving.saving_lib", "save_weights_only", "callable", ("no_such_argument",)),
    )
    found = problems(made_up, probes)
    assert len(found) == len(made_up), found
    for entry, message in zip(made_up, found):
        assert entry.name in message, message
    assert "no_such_module" in found[1] and "expected a callable, found a class" in found[3]
    assert "no_such_argument" in found[4]
    # ...and the real entries pass the same checker (not vacuously: each was looked up).
    assert problems(INTERNALS[:1], probes) == []


def test_private_keras_names_are_reached_only_through_the_module():
    # Outside zoo/core/keras_internals.py, the code of zoo/, recipes/, demos/ and
    # bench/ names no keras.src module and none of the module's private names (an
    # overridden method only in its override's file): new uses belong in the module.
    reached = {e.name for e in INTERNALS if e.name.startswith("_") or e.owner == "compiled model"}
    pattern = re.compile(r"keras\.src|\.(%s)\b" % "|".join(sorted(map(re.escape, reached))))
    overrides = {o.name: importlib.import_module(o.override.partition(":")[0]).__file__ for o in OVERRIDDEN}
    override_pattern = re.compile(r"\b(%s)\b" % "|".join(sorted(map(re.escape, overrides))))
    offenders = []
    for top in ("zoo", "recipes", "demos", "bench"):
        for folder, _, files in os.walk(os.path.join(ROOT, top)):
            for name in sorted(f for f in files if f.endswith(".py")):
                path = os.path.join(folder, name)
                if os.path.samefile(path, keras_internals.__file__):
                    continue
                with open(path) as f:
                    for number, line in enumerate(f, 1):
                        hits = pattern.findall(line) + [
                            m for m in override_pattern.findall(line)
                            if not os.path.samefile(path, overrides[m])
                        ]
                        if hits or "keras.src" in line:
                            offenders.append(f"{os.path.relpath(path, ROOT)}:{number}: {line.strip()}")
    assert not offenders, (
        "Keras internals reached outside zoo/core/keras_internals.py:\n  " + "\n  ".join(offenders)
    )


# ---------------------------------------------------------------------------
# Private methods the zoo overrides in place
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("override", OVERRIDDEN, ids=lambda o: o.name)
def test_overridden_private_methods_are_still_keras_hooks(override: Override):
    keras_class = _resolve(override.owner, {})
    name = f"{override.owner}.{override.name} (overridden by {override.override})"
    assert callable(getattr(keras_class, override.name, None)), f"Keras no longer defines {name}"
    assert not _missing_params(getattr(keras_class, override.name), override.params), (
        f"{name} no longer takes {override.params}: "
        f"{inspect.signature(getattr(keras_class, override.name))}"
    )
    # Keras still calls it, so the override still has an effect.
    for caller in override.callers:
        source = inspect.getsource(getattr(keras_class, caller))
        assert f"self.{override.name}(" in source, f"{override.owner}.{caller} no longer calls {name}"
    zoo_class = _resolve(override.override, {})
    assert override.name in vars(zoo_class), f"{override.override} no longer overrides {override.name}"
    assert list(inspect.signature(vars(zoo_class)[override.name]).parameters)[1:] == list(override.params)
    if issubclass(keras.Model, keras_class):  # the backend's trainer: keras.Model has it
        assert callable(getattr(keras.Model, override.name, None)), f"keras.Model lacks {name}"


def _zoo_keras_classes():
    classes = []
    for info in pkgutil.walk_packages(zoo.__path__, "zoo."):
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if (inspect.isclass(value) and value.__module__ == module.__name__ and _is_zoo(value)
                    and issubclass(value, (keras.layers.Layer, keras.optimizers.Optimizer,
                                           keras.callbacks.Callback, keras.metrics.Metric))):
                classes.append(value)
    return classes


_KERAS_NAMES = {}


def _keras_names(keras_base):
    """Every name a Keras object of `keras_base`'s kind has, set lazily ones too."""
    if keras_base not in _KERAS_NAMES:
        _KERAS_NAMES[keras_base] = _probe_names(keras_base)
    return _KERAS_NAMES[keras_base]


def _probe_names(keras_base):
    names = set(dir(keras_base))
    if issubclass(keras_base, keras.Model):
        model = _compiled_model()
        model.fit(*_data(), batch_size=4, epochs=1, verbose=0)
        model.evaluate(*_data(), verbose=0)
        names |= set(dir(model)) | set(dir(model.optimizer))
    elif issubclass(keras_base, keras.optimizers.Optimizer):
        optimizer = keras.optimizers.SGD()
        optimizer.build([keras.Variable(np.zeros(2, "float32"))])
        names |= set(dir(optimizer))
    elif issubclass(keras_base, keras.layers.Layer):
        layer = keras.layers.Dense(1)
        layer(np.zeros((1, 2), "float32"))
        names |= set(dir(layer))
    elif issubclass(keras_base, keras.callbacks.Callback):
        callback = keras.callbacks.Callback()
        callback.set_model(_compiled_model())
        names |= set(dir(callback))
    return names


def _is_zoo(cls):
    return cls.__module__.startswith("zoo")


def _shadowing(cls, ours=_is_zoo):
    """The private names that `cls`'s own classes (`ours`) give themselves (methods,
    or `self._x = ...`) and that Keras's base class also has, except OVERRIDDEN ones."""
    allowed = {(o.override, o.name) for o in OVERRIDDEN}
    keras_base = next(k for k in cls.__mro__ if not ours(k))
    keras_names = _keras_names(keras_base)
    clashes = []
    for own_class in filter(ours, cls.__mro__):
        own = {n for n in vars(own_class) if n.startswith("_") and not n.startswith("__")}
        own |= set(re.findall(r"self\.(_[A-Za-z]\w*)\s*=(?!=)", inspect.getsource(own_class)))
        for name in sorted(own & keras_names):
            if (f"{own_class.__module__}:{own_class.__qualname__}", name) not in allowed:
                clashes.append(f"{own_class.__module__}.{own_class.__qualname__}.{name} "
                               f"(Keras's {keras_base.__name__} has it)")
    return clashes


def test_zoo_private_names_do_not_shadow_keras_ones():
    # Such a name would silently replace Keras's own: only OVERRIDDEN may.
    clashes = sorted({c for cls in _zoo_keras_classes() for c in _shadowing(cls)})
    assert not clashes, "zoo names that shadow Keras internals:\n  " + "\n  ".join(clashes)


class ShadowingProbe(Probe):
    """The negative control of the test above: two names that shadow Keras's."""

    def _flatten_layers(self, *args, **kwargs):
        return []

    def reset(self):
        self._loss_tracker = None


def test_the_shadowing_check_finds_a_clash():
    clashes = _shadowing(ShadowingProbe, ours=lambda k: k is ShadowingProbe)
    assert [c.split(" ")[0].rsplit(".", 1)[1] for c in clashes] == ["_flatten_layers", "_loss_tracker"], clashes
    assert _shadowing(Probe, ours=lambda k: k is Probe) == []


# ---------------------------------------------------------------------------
# The behaviour each function of the module relies on
# ---------------------------------------------------------------------------
def test_stateless_scope_getters():
    assert keras_internals.get_stateless_scope() is None
    assert not keras_internals.in_stateless_scope()
    with keras.StatelessScope() as outer:
        assert keras_internals.get_stateless_scope() is outer and keras_internals.in_stateless_scope()
        with keras.StatelessScope() as inner:
            assert keras_internals.get_stateless_scope() is inner
        assert keras_internals.get_stateless_scope() is outer
    assert keras_internals.get_stateless_scope() is None


def test_set_compile_config_is_what_get_compile_config_returns():
    model = _compiled_model()
    optimizer = keras.optimizers.Adam(1e-3)
    keras_internals.set_compile_config(model, jit_compile=False, g_optimizer=optimizer)
    config = model.get_compile_config()
    assert config["jit_compile"] is False
    assert keras.saving.deserialize_keras_object(config["g_optimizer"]).get_config() == optimizer.get_config()
    assert "loss" not in config  # replaced, not merged with compile()'s


def test_compiled_loss_tracker_is_the_loss_metric_of_compile():
    model = Probe()
    assert keras_internals.compiled_loss_tracker(model) is None
    model.compile(optimizer="sgd", loss="mse")
    tracker = keras_internals.compiled_loss_tracker(model)
    assert isinstance(tracker, keras.metrics.Mean) and tracker.name == "loss"
    assert any(m is tracker for m in model.metrics)


def test_all_layers_walks_nested_networks():
    inner_dense = keras.layers.Dense(2)
    inner = keras.Sequential([keras.Input((3,)), inner_dense])
    outer = keras.Sequential([keras.Input((3,)), inner, keras.layers.Dense(1)])
    layers = keras_internals.all_layers(outer)
    assert layers[0] is outer and any(l is inner for l in layers) and any(l is inner_dense for l in layers)
    assert len({id(l) for l in layers}) == len(layers)


def test_is_functional():
    inputs = keras.Input((3,))
    functional = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    assert keras_internals.is_functional(functional)
    assert not keras_internals.is_functional(keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)]))
    assert not keras_internals.is_functional(Probe())


def test_save_weights_only_leaves_the_skipped_objects_out(tmp_path):
    model = _compiled_model()
    model.fit(*_data(), batch_size=4, epochs=1, verbose=0)  # the optimizer has state
    path = tmp_path / "model.weights.h5"
    keras_internals.save_weights_only(model, path, objects_to_skip=[model.optimizer])
    fresh = Probe()
    fresh(np.zeros((1, 3), "float32"))
    fresh.load_weights(path)  # an uncompiled model: no optimizer to load into
    for a, b in zip(fresh.weights, model.weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))


def test_backup_saved_epoch_reads_what_backup_and_restore_wrote(tmp_path):
    backup = keras.callbacks.BackupAndRestore(os.fspath(tmp_path / "backup"), delete_checkpoint=False)
    assert keras_internals.backup_metadata_path(backup) == os.path.join(
        tmp_path / "backup", "training_metadata.json")
    assert keras_internals.backup_saved_epoch(backup) is None
    _compiled_model().fit(*_data(), batch_size=4, epochs=2, verbose=0, callbacks=[backup])
    assert keras_internals.backup_saved_epoch(backup) == 2


def test_forget_compiled_steps_makes_keras_build_them_again():
    model = _compiled_model()
    model.make_train_function()
    model.make_test_function()
    train, test = model.train_function, model.test_function
    assert train is not None and test is not None
    model.make_train_function()
    assert model.train_function is train  # cached: why the zoo must forget them
    keras_internals.forget_compiled_steps(model)
    assert model.train_function is None and model.test_function is None
    model.make_train_function()
    assert model.train_function is not None and model.train_function is not train


def test_tf_in_multi_worker_mode_on_the_default_strategy():
    tf = pytest.importorskip("tensorflow")
    assert keras_internals.tf_in_multi_worker_mode(tf.distribute.get_strategy()) is False


@pytest.mark.skipif(BACKEND != "jax", reason="the JAX trainer's state layout")
def test_jax_trainer_state_layout():
    seen = {}

    class Recorder(Probe):
        def train_step(self, state, data):
            seen["train"] = [[tuple(v.shape) for v in group] for group in state]
            return super().train_step(state, data)

        def test_step(self, state, data):
            seen["test"] = [[tuple(v.shape) for v in group] for group in state]
            return super().test_step(state, data)

    model = Recorder()
    model(np.zeros((1, 3), "float32"))
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    model.fit(*_data(), batch_size=4, epochs=1, verbose=0)
    model.evaluate(*_data(), verbose=0)

    def group(name):
        variables = model.optimizer.variables if name == "optimizer_variables" else getattr(model, name)
        return [tuple(v.shape) for v in variables]

    assert seen["train"] == [group(n) for n in keras_internals.JAX_TRAIN_STATE]
    assert seen["test"] == [group(n) for n in keras_internals.JAX_TEST_STATE]
    # zoo.core.backend reads the state in that layout.
    assert [[tuple(v.shape) for v in g] for g in backend._state_groups(model, 4)] == seen["train"]
    assert [[tuple(v.shape) for v in g] for g in backend._state_groups(model, 3)] == seen["test"]
