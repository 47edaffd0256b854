"""TensorFlow SavedModel export with serving signatures for what each model does.

    >>> from zoo.export import export_saved_model
    >>> export_saved_model(zoo.load("dcgan_mnist"), "exports/dcgan_mnist")
    >>> # anywhere with TensorFlow, no zoo needed:
    >>> m = tf.saved_model.load("exports/dcgan_mnist")
    >>> images = m.generate(z=tf.random.normal((16, 100)))["images"]

Signatures (images are float32 NHWC in [0, 1]; batch size free):

    GAN            generate(z[, labels])            -> images
    VAE, VAE-GAN   generate(z), encode(images)      -> images; mu, log_var
                   reconstruct(images)              -> images (Dec(mu))
    AVB            generate(z), encode(images, eps) -> images; z
                   reconstruct(images, eps)         -> images
    DSH-GAN        generate(z, labels), hash(images) -> images; codes (packed uint8,
                                                        numpy.packbits order), bits, scores
    classifier     classify(images in [-1, 1])      -> logits, features

Generators and decoders are exported as sampled: their moving average when the
model keeps one (`ema_decay`), as `generate()` does. `labels` are int32 class indices. z ~ N(0, I) (uniform on [-sqrt 3, sqrt 3] for a
GAN built with latent_distribution="uniform"); `eps` is AVB's encoder noise, N(0, I).

Works from the TensorFlow and the JAX backend (JAX through jax2tf, via
`keras.export.ExportArchive`). Keras cannot export from PyTorch this way; presets
are backend-independent, so load the preset under TensorFlow and export there
(`recipes.export` does that by itself).
"""

import json
import math
import os
import shutil
import tempfile
from pathlib import Path

import keras
from keras import ops

from zoo.data import ranges


def _unit(x, data_range):
    return ops.clip(ranges.unit_of(x, data_range), 0.0, 1.0)


def _model_range(images, data_range):
    return ranges.from_unit(images, data_range)


def _spec(shape, dtype="float32"):
    import tensorflow as tf

    return tf.TensorSpec((None, *shape), dtype)


def endpoints(model):
    """{name: (fn, input_signature, description)} of the model's serving signatures."""
    from zoo.models.capabilities import Autoencoder, Generator, Hasher

    eps_out = {}
    if isinstance(model, Generator):
        # A GAN on unbounded (toy) data has no data_range: its output passes as is.
        rng = model.data_range if isinstance(model, Autoencoder) else (model.data_range or (0.0, 1.0))
        if model.num_classes:
            c = model.num_classes

            def generate(z, labels):
                y = ops.one_hot(ops.cast(labels, "int32"), c)
                return {"images": _unit(model.decode_tensor(z, y), rng)}

            eps_out["generate"] = (generate, [_spec((model.latent_dim,)), _spec((), "int32")],
                                   f"z (n, {model.latent_dim}), labels (n,) int32 in [0, {c}) -> images in [0, 1]")
        else:
            def generate(z):
                return {"images": _unit(model.decode_tensor(z), rng)}

            what = "the decoder's mean" if isinstance(model, Autoencoder) else "G(z)"
            eps_out["generate"] = (generate, [_spec((model.latent_dim,))],
                                   f"z (n, {model.latent_dim}) -> images in [0, 1] ({what})")
    if isinstance(model, Hasher):
        q = model.code_length
        pad = 8 * math.ceil(q / 8) - q

        def hash_fn(images):
            h = model.hash_scores_tensor(_model_range(images, model.data_range))
            bits = ops.cast(h > 0.5, "int32")
            padded = ops.pad(bits, [[0, 0], [0, pad]]) if pad else bits
            weights = ops.convert_to_tensor([128, 64, 32, 16, 8, 4, 2, 1], "int32")
            packed = ops.sum(ops.reshape(padded, (-1, (q + pad) // 8, 8)) * weights, axis=-1)
            return {"codes": ops.cast(packed, "uint8"), "bits": ops.cast(bits, "uint8"), "scores": h}

        eps_out["hash"] = (hash_fn, [_spec(model.data_shape)],
                           f"images in [0, 1] -> codes (n, {math.ceil(q / 8)}) uint8 packed, "
                           f"bits (n, {q}) uint8, scores h (n, {q}) in (0, 1)")
    if isinstance(model, Autoencoder):
        rng = model.data_range
        if model.posterior_inputs:  # AVB: z = z_phi(x, eps), a sample of q(z|x)
            def encode(images, eps):
                return model.posterior_tensors(_model_range(images, rng), eps)

            def reconstruct(images, eps):
                return {"images": _unit(model.decode_tensor(encode(images, eps)["z"]), rng)}

            sig = [_spec(model.data_shape), _spec((model.noise_dim,))]
            eps_out["encode"] = (encode, sig, f"images, eps (n, {model.noise_dim}) ~ N(0, I) -> z ~ q(z|x)")
            eps_out["reconstruct"] = (reconstruct, sig, "images, eps -> Dec(z), z ~ q(z|x)")
        else:
            def encode(images):
                return model.posterior_tensors(_model_range(images, rng))

            def reconstruct(images):
                return {"images": _unit(model.decode_tensor(encode(images)["mu"]), rng)}

            sig = [_spec(model.data_shape)]
            eps_out["encode"] = (encode, sig, "images in [0, 1] -> mu, log_var of q(z|x)")
            eps_out["reconstruct"] = (reconstruct, sig, "images in [0, 1] -> Dec(mu(x)) in [0, 1]")
    if eps_out:
        return eps_out

    if isinstance(model, keras.Model) and not hasattr(model, "players"):
        features = keras.Model(model.inputs, [model.outputs[0], model.get_layer("features").output]) \
            if any(layer.name == "features" for layer in model.layers) else None

        def classify(images):
            if features is None:
                return {"logits": model(images, training=False)}
            logits, feats = features(images, training=False)
            return {"logits": logits, "features": feats}

        return {"classify": (classify, [_spec(tuple(model.inputs[0].shape[1:]))],
                             "images in [-1, 1] -> logits (and penultimate features)")}
    raise TypeError(f"No serving signatures are defined for {type(model).__name__}.")


def export_saved_model(model, out_dir, metadata=None):
    """Write `model` as a TensorFlow SavedModel at `out_dir` (which must not exist), atomically.

    Signatures: see the module docstring. `metadata` (e.g. the preset's) goes to
    `assets.extra/zoo.json` beside the signatures' descriptions. Returns the Path."""
    backend = keras.backend.backend()
    if backend not in ("tensorflow", "jax"):
        raise RuntimeError(
            f"SavedModel export runs on the TensorFlow or JAX backend, not {backend}. Presets are "
            "backend-independent: save this model with zoo.save_preset, then export it under "
            "TensorFlow (KERAS_BACKEND=tensorflow python -m recipes.export PRESET OUT_DIR)."
        )
    out_dir = Path(out_dir)
    if out_dir.exists():
        raise FileExistsError(f"{out_dir} already exists; choose a new export directory (nothing was written).")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    eps = endpoints(model)
    archive = keras.export.ExportArchive()
    nets = [getattr(model, n) for n in model.network_names()] if hasattr(model, "network_names") else [model]
    for net in nets:
        archive.track(net)
    for name, (fn, signature, _) in eps.items():
        archive.add_endpoint(name, fn, input_signature=signature)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        target = tmp / "saved_model"
        archive.write_out(str(target), verbose=False)
        extra = target / "assets.extra"
        extra.mkdir(exist_ok=True)
        info = {
            "model": type(model).__name__, "backend": backend, "keras_version": keras.__version__,
            "signatures": {name: desc for name, (_, _, desc) in eps.items()}, "preset_metadata": metadata or {},
        }
        (extra / "zoo.json").write_text(json.dumps(info, indent=2, default=str) + "\n")
        if out_dir.exists():
            raise FileExistsError(f"{out_dir} appeared while exporting; the export was not written there.")
        os.replace(target, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


__all__ = ["export_saved_model", "endpoints"]
