"""Every private Keras API the zoo relies on, in one place.

Keras promises nothing about `keras.src` or about attributes whose names start
with an underscore: any release may move or rename them. The zoo needs a few
(there is no public route to them), and the rest of the code reaches them only
through the functions below, each with a one-line comment on what it relies on.
`tests/test_keras_internals.py` checks every one of them, and names the one a
Keras release has moved; `pyproject.toml` bounds Keras at the newest release
that test (and the suite) has passed on.

Reached through this module (see each function; `INTERNALS` lists them for the test):

- `get_stateless_scope`, `in_stateless_scope` (zoo.core.backend): the active
  `keras.StatelessScope` of a JAX step, from keras.src.backend.common.stateless_scope.
- `set_compile_config` (zoo.core.model, `AdversarialModel.compile`): what
  `get_compile_config()` returns and `load_model` passes to `compile_from_config`.
- `compiled_loss_tracker` (zoo.core.model, `AdversarialModel.metrics`): the
  "loss" tracker of Keras's compiled loss, which a zoo model never updates.
- `all_layers` (zoo.core.model; tests): `Layer._flatten_layers()`.
- `is_functional` (zoo.core.ema): keras.src.models.functional.Functional.
- `save_weights_only` (zoo.presets): saving_lib's weights-only save that can
  leave objects (the optimizer) out.
- `backup_saved_epoch` (zoo.core.model, resuming a stream): the epoch
  `BackupAndRestore` last saved, from its private metadata file.
- `forget_compiled_steps` (zoo.models.dshgan, switching phase): the compiled
  train/test functions Keras's trainers cache.
- `tf_in_multi_worker_mode` (zoo.core.backend): TensorFlow's (not Keras's)
  private `StrategyExtended._in_multi_worker_mode()`.

Behaviour relied on without a private name:

- `JAX_TRAIN_STATE`, `JAX_TEST_STATE`: the layout of the `state` JAX's trainer
  passes to `train_step(state, data)` / `test_step(state, data)` and expects
  back (zoo.core.backend `_state_groups`, keras/src/backend/jax/trainer.py).

Private methods the zoo overrides in place (they cannot move here; `OVERRIDDEN`
lists them, and the test checks Keras still defines them, with the same
arguments, and still calls them):

- `AdversarialModel._maybe_symbolic_build` (zoo/core/model.py): the TF
  trainer (`TensorFlowTrainer`) calls it from fit/evaluate/train_on_batch/
  test_on_batch to build the model symbolically from a first batch, which it
  first averages over the replicas under tf.distribute; that fails under
  MultiWorkerMirroredStrategy (keras-team/keras#20585). A zoo model is built
  when constructed, so the override skips the build when every layer and the
  optimizer are built.

Where Keras offers a public route the zoo takes it instead: `get_compile_config()`
to read the compile config, `super().variables` for `PlayerOptimizers`' own
variables (not `Optimizer._variables`), `super().get_current_value()` in a
stateless scope (not its `state_mapping`).
"""

import collections
import json
import os

from keras.src.backend.common import stateless_scope as _stateless_scope
from keras.src.saving import serialization_lib as _serialization_lib

# keras.src.backend.common.stateless_scope.get_stateless_scope(): the innermost
# active keras.StatelessScope, or None (keras exports the class, not this getter).
get_stateless_scope = _stateless_scope.get_stateless_scope

# keras.src.backend.common.stateless_scope.in_stateless_scope(): True inside any
# keras.StatelessScope.
in_stateless_scope = _stateless_scope.in_stateless_scope


def set_compile_config(model, **config):
    """Record `config` as what `model.get_compile_config()` returns."""
    # Trainer._compile_config, a serialization_lib.SerializableDict: get_compile_config()
    # returns its serialize(); saving walks no attribute of that type (a plain dict of
    # optimizers would be saved as the model's children). There is no public setter.
    model._compile_config = _serialization_lib.SerializableDict(**config)


def compiled_loss_tracker(model):
    """The Mean "loss" tracker that `compile()` adds to `model.metrics`, or None."""
    # Trainer._loss_tracker: created by Trainer.compile(), listed first by Trainer.metrics;
    # None before compile.
    return getattr(model, "_loss_tracker", None)


def all_layers(layer):
    """`layer` and all its sublayers, recursively, each once."""
    # Layer._flatten_layers(include_self=True, recursive=True).
    return layer._flatten_layers()


def is_functional(model):
    """True for a model built from `keras.Input` (functional API)."""
    # keras.src.models.functional.Functional, not exported (keras.Sequential is not a subclass).
    from keras.src.models.functional import Functional

    return isinstance(model, Functional)


def save_weights_only(model, path, objects_to_skip=None):
    """`model.save_weights(path)` without the variables of `objects_to_skip`."""
    # keras.src.saving.saving_lib.save_weights_only(model, filepath, objects_to_skip=...):
    # what Model.save_weights calls; the public method has no objects_to_skip.
    from keras.src.saving import saving_lib

    saving_lib.save_weights_only(model, os.fspath(path), objects_to_skip=objects_to_skip)


def backup_metadata_path(backup):
    """The file in which a `keras.callbacks.BackupAndRestore` records its progress."""
    # BackupAndRestore._training_metadata_path: <backup_dir>/training_metadata.json
    # (the fallback, for a release without the attribute, is the same path).
    return getattr(backup, "_training_metadata_path", None) or os.path.join(
        backup.backup_dir, "training_metadata.json"
    )


def backup_saved_epoch(backup):
    """The number of epochs `backup` has saved as done, or None if it saved none."""
    # BackupAndRestore writes {"epoch": epochs done, "batch": ...} as JSON to that file
    # at each save and reads it in on_train_begin to set the initial epoch.
    path = backup_metadata_path(backup)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return int(json.load(f).get("epoch", 0))


def forget_compiled_steps(model):
    """Make the next `fit`/`evaluate` trace the model's steps again."""
    # Trainer.train_function / test_function: the steps make_train_function() /
    # make_test_function() compile and cache, rebuilt only when None (compile() sets None).
    model.train_function = model.test_function = None


def tf_in_multi_worker_mode(strategy):
    """True when a tf.distribute `strategy` spans several workers."""
    # TensorFlow's StrategyExtended._in_multi_worker_mode() (tensorflow.python.distribute),
    # as Keras's own TF trainer uses it; TensorFlow has no public equivalent.
    return strategy.extended._in_multi_worker_mode()


# JAXTrainer.train_step(state, data) unpacks and returns `state` as these groups, in
# this order; test_step(state, data) as the second (keras/src/backend/jax/trainer.py).
JAX_TRAIN_STATE = ("trainable_variables", "non_trainable_variables", "optimizer_variables", "metrics_variables")
JAX_TEST_STATE = ("trainable_variables", "non_trainable_variables", "metrics_variables")


# -- for tests/test_keras_internals.py ---------------------------------------------
#: One private name the zoo reaches. `owner`: "module" or "module:Qualified.name", or
#: the name of a probe object the test builds ("compiled model": a small keras.Model
#: after compile(); "backup": a keras.callbacks.BackupAndRestore). `kind`: "callable",
#: "class" or "attribute". `params`: keyword arguments the zoo passes. `used_by`: where.
Internal = collections.namedtuple("Internal", "owner name kind params used_by", defaults=((), ""))

INTERNALS = (
    Internal("keras.src.backend.common.stateless_scope", "get_stateless_scope", "callable", (),
             "zoo.core.backend"),
    Internal("keras.src.backend.common.stateless_scope", "in_stateless_scope", "callable", (),
             "zoo.core.backend"),
    Internal("keras.src.saving.serialization_lib", "SerializableDict", "class", (),
             "zoo.core.model: AdversarialModel.compile"),
    Internal("compiled model", "_compile_config", "attribute", (),
             "zoo.core.model: AdversarialModel.compile"),
    Internal("compiled model", "_loss_tracker", "attribute", (),
             "zoo.core.model: AdversarialModel.metrics"),
    Internal("keras:Model", "_flatten_layers", "callable", (),
             "zoo.core.model: AdversarialModel._maybe_symbolic_build; tests"),
    Internal("keras.src.models.functional", "Functional", "class", (),
             "zoo.core.ema: shadow_copy"),
    Internal("keras.src.saving.saving_lib", "save_weights_only", "callable",
             ("objects_to_skip",), "zoo.presets: save_preset"),
    Internal("backup", "_training_metadata_path", "attribute", (),
             "zoo.core.model: fit, resuming a stream"),
    Internal("compiled model", "train_function", "attribute", (),
             "zoo.models.dshgan: DSHGAN.phase"),
    Internal("compiled model", "test_function", "attribute", (),
             "zoo.models.dshgan: DSHGAN.phase"),
    Internal("keras:Model", "make_train_function", "callable", ("force",),
             "zoo.models.dshgan: DSHGAN.phase (caches train_function)"),
    Internal("keras:Model", "make_test_function", "callable", ("force",),
             "zoo.models.dshgan: DSHGAN.phase (caches test_function)"),
    Internal("tensorflow:distribute.StrategyExtended", "_in_multi_worker_mode", "callable", (),
             "zoo.core.backend: replica_logs"),
)

#: A private Keras method a zoo class overrides: `owner` defines it, `override` is
#: "module:Class" of the zoo's override, `callers`: the owner's methods that call it.
Override = collections.namedtuple("Override", "owner name params override callers why")

OVERRIDDEN = (
    Override(
        "keras.src.backend.tensorflow.trainer:TensorFlowTrainer",
        "_maybe_symbolic_build",
        ("iterator", "data_batch"),
        "zoo.core.model:AdversarialModel",
        ("fit", "evaluate", "train_on_batch", "test_on_batch"),
        "skip the symbolic build of a built model, which fails under "
        "MultiWorkerMirroredStrategy (keras-team/keras#20585)",
    ),
)
