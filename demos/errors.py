"""Messages for the app's users: expected errors, and every handler's failures, made readable."""

import functools
import logging

import gradio as gr

log = logging.getLogger("demos")

# A message for the user (a toast in the UI, AppError in gradio_client); expected, so no server traceback.
UserError = functools.partial(gr.Error, print_exception=False)


def readable(fn):
    """Every handler: a gr.Error with a message for any failure, the traceback only in the server log."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except Exception as e:  # noqa: BLE001
            log.exception("handler %s failed", fn.__name__)
            raise UserError(f"{fn.__name__} failed: {e.__class__.__name__}: {e}") from None

    return wrapper


def whole_number(value, name, lo, hi):
    """`value` as an int in [lo, hi], or a UserError naming the field."""
    try:
        v = int(value)
    except (TypeError, ValueError):
        raise UserError(f"{name} must be a whole number; got {value!r}.") from None
    if not lo <= v <= hi:
        raise UserError(f"{name} must be between {lo} and {hi}; got {v}.")
    return v
