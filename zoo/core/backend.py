"""The one place where the zoo speaks to a backend directly.

A zoo model writes its update rule once, with `keras.ops`, as a sequence of
player updates::

    d_loss, aux = self.update("d", lambda: self.discriminator_loss(x, fake))

This module supplies the things `keras.ops` cannot express the same way on
every backend:

1. `player_update(optimizer, variables, loss_fn)`: take the gradient of
   `loss_fn()` with respect to one player's variables only and apply it with that
   player's optimizer. TensorFlow uses a `GradientTape`, PyTorch
   `torch.autograd.grad`, JAX `jax.value_and_grad` over the player's values.
2. `stateless_step(fn)`: JAX's trainer calls `train_step(state, data)` with the
   model's state as arrays and expects the new state back. We run the model's
   ordinary `train_step(data)` inside one `keras.StatelessScope` holding that
   state, let every assignment land in the scope, and read the new state out of
   it. TensorFlow and PyTorch mutate variables in place, so there the step is
   returned unchanged.
3. `input_gradient(fn, x)`: a gradient with respect to a network's input that
   can itself be differentiated (double backpropagation), for penalties such as
   R1 inside a player's loss.

Nothing else in the project imports tensorflow, jax or torch for training.
"""

import contextlib
import functools
import os

import keras

from zoo.core.keras_internals import get_stateless_scope
from zoo.core.keras_internals import in_stateless_scope
from zoo.core.keras_internals import tf_in_multi_worker_mode

BACKEND = keras.backend.backend()


def _zeros_for_missing(grads, variables):
    # A variable that does not reach the loss gets a zero gradient on every
    # backend (JAX gives zeros, TF/torch give None): Adam's moments then decay
    # the same way everywhere.
    return [
        keras.ops.zeros(v.shape, v.dtype) if g is None else g
        for g, v in zip(grads, variables)
    ]


def _decide(gate, aux):
    return None if gate is None else gate(aux)


def _gated_apply(optimizer, grads, variables, gate):
    """optimizer.apply, kept only where `gate` is true (in-place backends)."""
    if gate is None:
        optimizer.apply(grads, variables)
        return
    state = list(variables) + optimizer.variables
    old = [keras.ops.copy(v.value) for v in state]
    optimizer.apply(grads, variables)
    for v, o in zip(state, old):
        v.assign(keras.ops.where(gate, v.value, o))


# ---------------------------------------------------------------------------
# TensorFlow
# ---------------------------------------------------------------------------
def _tf_replica_context():
    """The tf.distribute replica context when the step runs on several replicas."""
    import tensorflow as tf

    ctx = tf.distribute.get_replica_context()
    return ctx if ctx is not None and ctx.num_replicas_in_sync > 1 else None


def _tf_player_update(optimizer, variables, loss_fn, gate):
    import tensorflow as tf

    ctx = _tf_replica_context()
    with tf.GradientTape() as tape:
        loss, aux = loss_fn()
        # Under a tf.distribute strategy each replica's loss is a mean over its
        # share of the global batch and the optimizer sums the replicas'
        # gradients: scale by 1 / replicas for the gradient of the global mean.
        scaled = optimizer.scale_loss(loss / ctx.num_replicas_in_sync if ctx else loss)
    grads = tape.gradient(scaled, variables)
    if ctx:  # sparse gradients (of gathers) have a per-replica row count
        grads = [tf.convert_to_tensor(g) if isinstance(g, tf.IndexedSlices) else g for g in grads]
    # A gate decides for all replicas at once, on the global means of aux.
    decision = None
    if gate is not None:
        decision = gate(aux if ctx is None else ctx.all_reduce("mean", aux))
    _gated_apply(optimizer, _zeros_for_missing(grads, variables), variables, decision)
    return loss, aux


def _tf_players_update(entries, loss_fn):
    import tensorflow as tf

    ctx = _tf_replica_context()
    # One forward pass, one persistent tape: each player's gradient of its own loss.
    with tf.GradientTape(persistent=True) as tape:
        losses, aux = loss_fn()
        scaled = {p: opt.scale_loss(losses[p] / ctx.num_replicas_in_sync if ctx else losses[p])
                  for p, opt, _, _ in entries}
    grads = {p: tape.gradient(scaled[p], variables) for p, _, variables, _ in entries}
    del tape
    gate_aux = aux if ctx is None or all(g is None for *_, g in entries) else ctx.all_reduce("mean", aux)
    for p, opt, variables, gate in entries:  # every gradient is taken before any is applied
        g = grads[p]
        if ctx:
            g = [tf.convert_to_tensor(t) if isinstance(t, tf.IndexedSlices) else t for t in g]
        _gated_apply(opt, _zeros_for_missing(g, variables), variables, _decide(gate, gate_aux))
    return losses, aux


# ---------------------------------------------------------------------------
# PyTorch
# ---------------------------------------------------------------------------
def _torch_player_update(optimizer, variables, loss_fn, gate):
    import torch

    loss, aux = loss_fn()
    # autograd.grad (not .backward) leaves the other players' .grad untouched.
    grads = torch.autograd.grad(
        optimizer.scale_loss(loss), [v.value for v in variables], allow_unused=True
    )
    loss, aux = _detach(loss), _detach(aux)
    with torch.no_grad():
        _gated_apply(optimizer, _zeros_for_missing(list(grads), variables), variables, _decide(gate, aux))
    return loss, aux


def _torch_players_update(entries, loss_fn):
    import torch

    losses, aux = loss_fn()
    grads = {}
    for i, (p, opt, variables, _) in enumerate(entries):
        # The graph of the one forward pass is kept until the last player's gradient.
        grads[p] = torch.autograd.grad(opt.scale_loss(losses[p]), [v.value for v in variables],
                                       allow_unused=True, retain_graph=i < len(entries) - 1)
    losses, aux = _detach(losses), _detach(aux)
    with torch.no_grad():  # applied after all gradients: in place, they would change the graph
        for p, opt, variables, gate in entries:
            _gated_apply(opt, _zeros_for_missing(list(grads[p]), variables), variables, _decide(gate, aux))
    return losses, aux


def _detach(tree):
    import torch

    return keras.tree.map_structure(
        lambda t: t.detach() if isinstance(t, torch.Tensor) else t, tree
    )


# ---------------------------------------------------------------------------
# JAX
# ---------------------------------------------------------------------------
class _ZooScope(keras.StatelessScope):
    """The outer scope of one JAX step; it knows every variable of the state."""

    def __init__(self, variables, values):
        super().__init__(state_mapping=list(zip(variables, values)))
        self.variables = list(variables)


def _jax_value_and_grad(variables, loss_fn, others, current, scale=lambda loss: loss):
    """(loss, aux, grads of scale(loss), side-effect values of `others`) with JAX autodiff."""
    import jax

    other_values = [current(v) for v in others]
    player_values = [current(v) for v in variables]

    def loss_of(values):
        mapping = list(zip(others, other_values)) + list(zip(variables, values))
        with keras.StatelessScope(state_mapping=mapping) as inner:
            loss, aux = loss_fn()
        # Side effects of the forward pass (batch-norm statistics, RNG state).
        updated = [inner.get_current_value(v) for v in others]
        return scale(loss), (loss, aux, updated)

    (_, (loss, aux, updated)), grads = jax.value_and_grad(loss_of, has_aux=True)(
        player_values
    )
    return loss, aux, grads, updated


def _stateless_scale_loss(optimizer, opt_values, loss):
    # optimizer.scale_loss reads LossScaleOptimizer's dynamic scale, a variable
    # of the jitted state: read it from this step's values.
    mapping = list(zip(optimizer.variables, opt_values))
    with keras.StatelessScope(state_mapping=mapping):
        return optimizer.scale_loss(loss)


def _jax_player_update(optimizer, variables, loss_fn, gate):
    outer = get_stateless_scope()
    if not isinstance(outer, _ZooScope):
        raise RuntimeError(
            "On the JAX backend a player update must run inside the model's "
            "train_step, called by fit() or train_on_batch()."
        )
    player_ids = {id(v) for v in variables}
    others = [v for v in outer.variables if id(v) not in player_ids]
    player_values = [outer.get_current_value(v) for v in variables]
    opt_vars = optimizer.variables
    old_opt_values = [outer.get_current_value(v) for v in opt_vars]
    loss, aux, grads, updated = _jax_value_and_grad(
        variables, loss_fn, others, outer.get_current_value,
        scale=lambda loss: _stateless_scale_loss(optimizer, old_opt_values, loss),
    )
    for v, value in zip(others, updated):
        outer.add_update((v, value))
    new_values, new_opt_values = optimizer.stateless_apply(
        old_opt_values, grads, player_values
    )
    new, old = new_values + new_opt_values, player_values + old_opt_values
    keep = _decide(gate, aux)
    for v, n, o in zip(list(variables) + opt_vars, new, old):
        outer.add_update((v, n if keep is None else keras.ops.where(keep, n, o)))
    return loss, aux


def _jax_players_update(entries, loss_fn):
    import jax
    import jax.numpy as jnp

    outer = get_stateless_scope()
    if not isinstance(outer, _ZooScope):
        raise RuntimeError(
            "On the JAX backend a player update must run inside the model's "
            "train_step, called by fit() or train_on_batch()."
        )
    player_vars = [list(variables) for _, _, variables, _ in entries]
    player_ids = {id(v) for vs in player_vars for v in vs}
    others = [v for v in outer.variables if id(v) not in player_ids]
    other_values = [outer.get_current_value(v) for v in others]
    values = [[outer.get_current_value(v) for v in vs] for vs in player_vars]
    old_opt = [[outer.get_current_value(v) for v in opt.variables] for _, opt, _, _ in entries]

    def losses_of(all_values):
        mapping = list(zip(others, other_values)) + [
            (v, x) for vs, xs in zip(player_vars, all_values) for v, x in zip(vs, xs)]
        with keras.StatelessScope(state_mapping=mapping) as inner:
            losses, aux = loss_fn()
        updated = [inner.get_current_value(v) for v in others]
        scaled = tuple(_stateless_scale_loss(opt, o, losses[p]) for (p, opt, _, _), o in zip(entries, old_opt))
        return scaled, (losses, aux, updated)

    # One forward pass (jax.vjp keeps its residuals); one backward pass per player,
    # each with its own loss as the only cotangent, keeping its own variables' part.
    scaled, backward, (losses, aux, updated) = jax.vjp(losses_of, values, has_aux=True)
    grads = []
    for i in range(len(entries)):
        cotangent = tuple(jnp.ones_like(s) if j == i else jnp.zeros_like(s) for j, s in enumerate(scaled))
        grads.append(backward(cotangent)[0][i])
    for v, value in zip(others, updated):
        outer.add_update((v, value))
    for (p, opt, variables, gate), g, x, o in zip(entries, grads, values, old_opt):
        new_values, new_opt = opt.stateless_apply(o, g, x)
        keep = _decide(gate, aux)
        for v, n, old in zip(list(variables) + opt.variables, new_values + new_opt, x + o):
            outer.add_update((v, n if keep is None else keras.ops.where(keep, n, old)))
    return losses, aux


def _jax_stateless_step(fn, state_groups):
    """Adapt `fn(self, data)` to JAX's `step(self, state, data) -> (logs, state)`."""

    @functools.wraps(fn)
    def step(self, *args):
        if len(args) == 1 or in_stateless_scope():
            # Called from inside another step (e.g. a subclass calling super()).
            return fn(self, *args[-1:])
        state, data = args
        refs = state_groups(self, len(state))
        flat_refs = [v for group in refs for v in group]
        flat_values = [v for group in state for v in group]
        with _ZooScope(flat_refs, flat_values) as scope:
            logs = fn(self, data)
        new_state = tuple(
            [scope.get_current_value(v) for v in group] for group in refs
        )
        return logs, new_state

    return step


def _state_groups(model, n):
    # The layouts of keras/src/backend/jax/trainer.py: train_step gets four
    # groups, test_step three.
    if n == 4:
        return (
            model.trainable_variables,
            model.non_trainable_variables,
            model.optimizer.variables,
            model.metrics_variables,
        )
    if n == 3:
        return (
            model.trainable_variables,
            model.non_trainable_variables,
            model.metrics_variables,
        )
    raise ValueError(f"Unexpected JAX trainer state with {n} groups.")


# ---------------------------------------------------------------------------
# The two entry points
# ---------------------------------------------------------------------------
_PLAYER_UPDATE = {
    "tensorflow": _tf_player_update,
    "torch": _torch_player_update,
    "jax": _jax_player_update,
}


def player_update(optimizer, variables, loss_fn, gate=None):
    """One gradient step of `optimizer` on `loss_fn()` w.r.t. `variables` only.

    `loss_fn` takes no argument and returns `(scalar_loss, aux)`; `aux` is any
    structure of tensors (diagnostics) passed back unchanged. Returns
    `(loss, aux)`. Variables of other players may be read by `loss_fn` but are
    never changed by this step (their non-trainable state, such as batch-norm
    statistics, is).

    `gate`: None, or a function of `aux` returning a boolean scalar tensor; when
    it is false the step leaves the player's variables and optimizer state as
    they were (VAE-GAN's equilibrium rule). Data-dependent, so it works under jit.
    """
    if not variables:
        return loss_fn()
    try:
        update = _PLAYER_UPDATE[BACKEND]
    except KeyError:
        raise NotImplementedError(
            f"The zoo trains on tensorflow, jax and torch; got backend {BACKEND!r}."
        ) from None
    return update(optimizer, list(variables), loss_fn, gate)


_PLAYERS_UPDATE = {
    "tensorflow": _tf_players_update,
    "torch": _torch_players_update,
    "jax": _jax_players_update,
}


def players_update(entries, loss_fn):
    """One step of several players from one forward pass.

    `entries`: (player, optimizer, variables, gate) for each player, their
    variables disjoint. `loss_fn() -> ({player: scalar loss}, aux)` runs the
    networks once; each player's gradient is that of its own loss with respect to
    its own variables only, all taken at the same state, then all applied (a
    persistent tape on TensorFlow, `autograd.grad(retain_graph=True)` on PyTorch,
    one `jax.vjp` with a backward pass per player on JAX). Gates as in
    `player_update`. Returns `(losses, aux)`.
    """
    entries = [(p, opt, list(variables), gate) for p, opt, variables, gate in entries]
    seen = set()
    for p, _, variables, _ in entries:
        if seen & {id(v) for v in variables}:
            raise ValueError(f"Player {p!r} shares variables with another player of the same update.")
        seen |= {id(v) for v in variables}
    try:
        update = _PLAYERS_UPDATE[BACKEND]
    except KeyError:
        raise NotImplementedError(
            f"The zoo trains on tensorflow, jax and torch; got backend {BACKEND!r}."
        ) from None
    return update(entries, loss_fn)


def value_and_grad(loss_fn, variables):
    """`(loss, aux, grads)` of `loss_fn() -> (loss, aux)` w.r.t. `variables`,
    outside training and without changing anything: for tests and analysis
    (e.g. checking which player a loss term reaches)."""
    variables = list(variables)
    if BACKEND == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss, aux = loss_fn()
        return loss, aux, _zeros_for_missing(tape.gradient(loss, variables), variables)
    if BACKEND == "torch":
        import torch

        loss, aux = loss_fn()
        grads = torch.autograd.grad(loss, [v.value for v in variables], allow_unused=True)
        return _detach(loss), _detach(aux), _zeros_for_missing(_detach(list(grads)), variables)
    if BACKEND == "jax":
        loss, aux, grads, _ = _jax_value_and_grad(variables, loss_fn, [], lambda v: v.value)
        return loss, aux, grads
    raise NotImplementedError(f"Unsupported backend {BACKEND!r}.")


def stateless_step(fn):
    """Wrap a model's `train_step(self, data)` / `test_step` for the backend."""
    if BACKEND == "jax":
        return _jax_stateless_step(fn, _state_groups)
    return fn


def _tf_multi_worker(strategy):
    import tensorflow as tf

    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and (
        tf_in_multi_worker_mode(strategy)
    )


def replica_logs(logs):
    """A step's logs in a form Keras's trainer can reduce over the replicas.

    Under MultiWorkerMirroredStrategy Keras's TF trainer averages each log along
    axis 0 across workers, which fails on the scalars every model logs
    (keras-team/keras#20585); as shape-(1,) tensors they average to the same
    scalars. Elsewhere the logs are returned as they are.
    """
    if BACKEND == "tensorflow":
        import tensorflow as tf

        if _tf_multi_worker(tf.distribute.get_strategy()):
            return {k: tf.reshape(v, (1,)) if v.shape.rank == 0 else v for k, v in logs.items()}
    return logs


def replica_draw(draw, shape):
    """`draw(shape)`, made the same on one device and on several.

    JAX's data parallelism (`keras.distribution.DataParallel`) compiles one
    program for the global batch, so a draw there already is the global draw. A
    tf.distribute strategy runs the step once per replica on its share of the
    batch, with the same seed state on every replica: each would draw the same
    noise. There we draw for the global batch and keep this replica's rows, so
    the replicas together use exactly the noise one device would.
    """
    if BACKEND == "tensorflow":
        ctx = _tf_replica_context()
        if ctx is not None:
            rows = shape[0]
            full = draw((rows * ctx.num_replicas_in_sync, *shape[1:]))
            start = ctx.replica_id_in_sync_group * rows
            return full[start:start + rows]
    return draw(shape)


def input_value_and_grad(fn, x):
    """`(fn(x), d sum(fn(x)) / dx)` for a tensor `x` (not a variable).

    For samplers that follow the gradient of a log density in its argument, such
    as the HMC transitions of annealed importance sampling. `fn` maps a tensor to
    a tensor (e.g. one log density per row); the gradient is that of its sum, so
    rows stay independent. Nothing is trained and no variable changes.
    """
    if BACKEND == "tensorflow":
        import tensorflow as tf

        x = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            value = fn(x)
            total = tf.reduce_sum(value)
        return tf.stop_gradient(value), tape.gradient(total, x)
    if BACKEND == "torch":
        import torch

        with torch.enable_grad():
            x = keras.ops.convert_to_tensor(x).detach().requires_grad_(True)
            value = fn(x)
            (grad,) = torch.autograd.grad(value.sum(), x)
        return value.detach(), grad.detach()
    if BACKEND == "jax":
        import jax

        def total(x):
            value = fn(x)
            return keras.ops.sum(value), value

        (_, value), grad = jax.value_and_grad(total, has_aux=True)(
            keras.ops.convert_to_tensor(x)
        )
        return value, grad
    raise NotImplementedError(f"Unsupported backend {BACKEND!r}.")


class _ReadThroughScope(keras.StatelessScope):
    """A stateless scope inside another one (JAX): it reads the variables' values
    from `parent` (the traced values of the step) and keeps the assignments made
    inside it (batch-norm statistics, power-iteration vectors, RNG state) to
    itself, so that none of the inner transformation's tracers leak out."""

    def __init__(self, parent):
        super().__init__()
        self.parent = parent
        self.assigned = {}

    def add_update(self, update):
        super().add_update(update)
        self.assigned[id(update[0])] = update[0]

    def get_current_value(self, variable):
        value = super().get_current_value(variable)
        if value is None and self.parent is not None:
            return self.parent.get_current_value(variable)
        return value


def input_gradient(fn, x, has_aux=False):
    """`(fn(x), d sum(fn(x)) / dx)` with the gradient itself differentiable:
    double backpropagation, for penalties on a network's input gradient such as
    R1 (Mescheder et al. 2018), gamma/2 E||grad_x D(x)||^2.

    Call it inside a player's loss: the player's update then differentiates the
    penalty through the gradient (TensorFlow: a GradientTape nested in the
    update's tape; PyTorch: `torch.autograd.grad(create_graph=True)`; JAX:
    `jax.value_and_grad` inside the update's `jax.value_and_grad`). `fn(x)`
    returns a tensor (one value per row: the gradient of the sum is then each
    row's own gradient, if rows do not interact, as they do through batch norm),
    or with `has_aux=True` a pair `(tensor, aux)`; the result is then
    `(value, aux, grad)`. Variables that `fn` assigns (batch-norm statistics,
    spectral norm's power iteration) are updated once, as by a plain call.
    """
    def split(out):
        return out if has_aux else (out, None)

    def result(value, aux, grad):
        return (value, aux, grad) if has_aux else (value, grad)

    if BACKEND == "tensorflow":
        import tensorflow as tf

        x = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:  # recorded by any tape around this call
            tape.watch(x)
            value, aux = split(fn(x))
            total = tf.reduce_sum(tf.cast(value, "float32"))
        return result(value, aux, tape.gradient(total, x))
    if BACKEND == "torch":
        import torch

        def run(x):
            x = keras.ops.convert_to_tensor(x)
            if not x.requires_grad:
                x = x.detach().requires_grad_(True)
            with torch.enable_grad():
                value, aux = split(fn(x))
                (grad,) = torch.autograd.grad(value.float().sum(), x, create_graph=True)
            return value, aux, grad

        # torch.compile (jit_compile=True) has no double backward: this part
        # runs eagerly inside the compiled step.
        return result(*torch.compiler.disable(run)(x))
    if BACKEND == "jax":
        import jax

        parent = get_stateless_scope()
        assigned = []

        def total(x):
            with _ReadThroughScope(parent) as scope:
                value, aux = split(fn(x))
            variables = list(scope.assigned.values())
            assigned[:] = variables
            new = [scope.get_current_value(v) for v in variables]
            return keras.ops.sum(keras.ops.cast(value, "float32")), (value, aux, new)

        (_, (value, aux, new)), grad = jax.value_and_grad(total, has_aux=True)(
            keras.ops.convert_to_tensor(x)
        )
        for v, n in zip(assigned, new):
            if parent is not None:
                parent.add_update((v, n))
            else:
                v.assign(n)
        return result(value, aux, grad)
    raise NotImplementedError(f"Unsupported backend {BACKEND!r}.")


# ---------------------------------------------------------------------------
# Data parallelism, on the engines Keras already drives
# ---------------------------------------------------------------------------
_TF_STRATEGIES = {}


@contextlib.contextmanager
def data_parallel(devices=None):
    """Build, compile and fit a zoo model inside this to train it data-parallel::

        with zoo.core.data_parallel():
            gan = GAN.dcgan((28, 28, 1))
            gan.compile(...)
            gan.fit(dataset_of_global_batches, ...)

    The batch the data yields is the global batch; it is split over the devices.
    TensorFlow: `tf.distribute.MirroredStrategy(devices)` (default: every GPU, or
    every CPU device), or `MultiWorkerMirroredStrategy` when `TF_CONFIG` is set.
    JAX: `keras.distribution.DataParallel(devices)` (default: every device of
    every process; on several hosts call `keras.distribution.initialize()`
    first). Yields the strategy or distribution. PyTorch: Keras's `fit` has no
    data parallelism there, so this raises.
    """
    if BACKEND == "tensorflow":
        import tensorflow as tf

        if os.environ.get("TF_CONFIG"):
            # One strategy per process, as TensorFlow requires.
            if "multi_worker" not in _TF_STRATEGIES:
                _TF_STRATEGIES["multi_worker"] = tf.distribute.MultiWorkerMirroredStrategy()
            with _TF_STRATEGIES["multi_worker"].scope():
                yield _TF_STRATEGIES["multi_worker"]
            return
        if devices is None:
            gpus = tf.config.list_logical_devices("GPU")
            devices = [d.name for d in gpus or tf.config.list_logical_devices("CPU")]
        # One strategy per set of devices and process: a second strategy over
        # the same devices reuses collective keys and its all-reduces can pair
        # with the first one's (seen as shape mismatches between replicas).
        key = tuple(devices)
        if key not in _TF_STRATEGIES:
            _TF_STRATEGIES[key] = tf.distribute.MirroredStrategy(list(devices))
        strategy = _TF_STRATEGIES[key]
        with strategy.scope():
            yield strategy
    elif BACKEND == "jax":
        distribution = keras.distribution.DataParallel(devices=devices)
        with distribution.scope():
            yield distribution
    else:
        raise NotImplementedError(
            f"Keras's fit() has no data parallelism on the {BACKEND} backend; train "
            "on one device there, or use the tensorflow or jax backend (see README, "
            "'Several GPUs and hosts')."
        )
