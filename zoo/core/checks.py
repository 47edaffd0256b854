"""Bad training data fails early, whatever feeds `fit`.

`AdversarialModel.fit` checks arrays whole (one vectorised pass: shape, dtype,
range, NaN/Inf, labels) before the first step. A `tf.data.Dataset` or a Python
generator cannot be checked up front without reading it, so its first batch is
checked the same way and every later batch is checked for NaN and Inf as it is
read: a NaN at batch 300 stops training with an error naming the batch instead
of training on to `d_loss nan`.
"""

import re
import types

import numpy as np

#: Marks our message inside the framework's error, to re-raise it as a ValueError.
MARK = "zoo: a training batch holds NaN or Inf"


class NonFiniteBatchError(ValueError):
    """A batch read during `fit` holds NaN or infinite values."""


def checked_stream(x):
    """`x` with every batch checked for NaN/Inf as it is read (tf.data or a generator);
    anything else is returned unchanged."""
    if hasattr(x, "element_spec") and hasattr(x, "map"):
        import keras

        if keras.distribution.distribution() is not None:
            # keras.distribution (JAX data parallelism) reads the batch size from the
            # pipeline's graph (tf.data's compute_batch_size), which a map with an
            # assertion hides: there only the first batch is checked.
            return x
        return _checked_dataset(x)
    if isinstance(x, types.GeneratorType):
        return _checked_generator(x)
    return x


def _checked_dataset(ds):
    import tensorflow as tf

    def check(*element):
        checked = []
        for j, t in enumerate(element):
            if isinstance(t, tf.Tensor) and t.dtype.is_floating:
                finite = tf.math.is_finite(t)
                bad = tf.reduce_sum(tf.cast(tf.logical_not(finite), tf.int64))
                ok = tf.debugging.Assert(tf.reduce_all(finite), [MARK, "element", j, "bad values", bad])
                with tf.control_dependencies([ok]):
                    t = tf.identity(t)
            checked.append(t)
        return tuple(checked)

    # A plain map keeps the dataset's structure and batch size, which Keras's JAX
    # distribution reads (tf.data's compute_batch_size); the batch is named from
    # the step counter when the error surfaces (as_value_error).
    if isinstance(ds.element_spec, tuple):
        return ds.map(check)
    return ds.map(lambda t: check(t)[0])


def _checked_generator(gen):
    for i, batch in enumerate(gen):
        parts = batch if isinstance(batch, tuple) else (batch,)
        for j, t in enumerate(parts):
            a = np.asarray(t)
            if np.issubdtype(a.dtype, np.floating) and not np.isfinite(a).all():
                raise NonFiniteBatchError(
                    f"Batch {i} of the training generator holds {int((~np.isfinite(a)).sum())} "
                    f"NaN or infinite values (element {j} of the batch)."
                )
        yield batch


def as_value_error(e, steps_done=None):
    """Our NaN/Inf error from inside a tf.data pipeline (or a generator read
    through one) as a NonFiniteBatchError; else None. `steps_done`: the train
    steps this fit completed before the error, to name the batch."""
    if isinstance(e, NonFiniteBatchError):
        return e
    text = str(e)
    # TensorFlow's fit reads a generator through tf.data: our error comes back wrapped.
    wrapped = re.search(r"Batch \d+ of the training generator holds [^\n]*", text)
    if wrapped:
        return NonFiniteBatchError(wrapped[0])
    if MARK not in text:
        return None
    found = re.search(r"\[element\] \[(\d+)\] \[bad values\] \[(\d+)\]", text)
    what = f"holds {found[2]} NaN or infinite values (element {found[1]} of the batch)" if found else \
        "holds NaN or infinite values"
    after = f" after {steps_done} steps of this fit" if steps_done is not None else ""
    return NonFiniteBatchError(
        f"A training batch read from the dataset{after} {what}; every batch is checked. Clean "
        "the source data (or filter it in the pipeline)."
    )


def check_real_batch(x, data_shape, data_range):
    """Raise a ValueError naming the problem if `x` is not a batch of real data."""
    x = np.asarray(x)
    if tuple(x.shape[1:]) != tuple(data_shape):
        raise ValueError(
            f"Expected data of shape (batch, {', '.join(map(str, data_shape))}); "
            f"got {x.shape}."
        )
    if not np.issubdtype(x.dtype, np.floating):
        hint = " (raw uint8 pixels? zoo.data scales them)" if x.dtype == np.uint8 else ""
        raise ValueError(f"Expected floating-point data; got dtype {x.dtype}{hint}.")
    bad = non_finite_message(x)
    if bad:
        raise ValueError(f"The data holds {bad}.")
    if data_range is not None and x.size:
        lo, hi = data_range
        tol = 1e-3 * (hi - lo)
        if x.min() < lo - tol or x.max() > hi + tol:
            raise ValueError(
                f"Data values span [{x.min():.3g}, {x.max():.3g}], outside the model's "
                f"data_range [{lo:g}, {hi:g}]; scale them (zoo.data does)."
            )


def non_finite_message(x):
    """"" if x is finite, else e.g. "3 NaN and 1 infinite values (the first at row 300)"."""
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.inexact):
        return ""
    finite = np.isfinite(x)
    if finite.all():
        return ""
    n_nan = int(np.isnan(x).sum())
    n_inf = int(finite.size - finite.sum()) - n_nan
    parts = [f"{n_nan} NaN"] * bool(n_nan) + [f"{n_inf} infinite"] * bool(n_inf)
    first = int(np.flatnonzero(~finite.reshape(len(x), -1).all(axis=1))[0]) if x.ndim else 0
    return f"{' and '.join(parts)} values (the first at row {first})"
