"""SavedModel export: reloaded with plain tf.saved_model.load (no zoo) in a subprocess,
its signatures match the Keras models within 1e-5."""

import math
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import zoo
from zoo import presets
from zoo.models.common import seeded_normal

from tests.conftest import ROOT
from tests.test_presets import LATENT, SHAPE, tiny_gan, tiny_vae

pytestmark = pytest.mark.skipif(
    keras.backend.backend() == "torch",
    reason="Keras writes SavedModels from TensorFlow and JAX only; under torch, recipes.export loads the "
           "(backend-independent) preset under TensorFlow, which the tensorflow run of this suite covers",
)


def tiny_dshgan(bits=12, classes=3, seed=0):
    keras.utils.set_random_seed(seed)
    z, y = keras.Input((LATENT,)), keras.Input((classes,))
    h = keras.layers.Dense(16, activation="relu")(keras.layers.Concatenate()([z, y]))
    g = keras.Model([z, y], keras.layers.Reshape(SHAPE)(keras.layers.Dense(math.prod(SHAPE), activation="tanh")(h)),
                    name="generator")
    x = keras.Input(SHAPE)
    f = keras.layers.Dense(16, activation="relu")(keras.layers.Flatten()(x))
    d = keras.Model(x, [keras.layers.Dense(1)(f), keras.layers.Dense(classes)(f)], name="discriminator")
    x2 = keras.Input(SHAPE)
    f2 = keras.layers.Dense(16, activation="relu")(keras.layers.Flatten()(x2))
    hasher = keras.Model(x2, [keras.layers.Dense(bits, activation="sigmoid")(f2), keras.layers.Dense(classes)(f2),
                              keras.layers.Dense(1)(f2)], name="hasher")
    return zoo.DSHGAN(g, d, hasher, seed=seed)


def tiny_avb(seed=0):
    keras.utils.set_random_seed(seed)
    x, eps = keras.Input(SHAPE), keras.Input((3,))
    h = keras.layers.Concatenate()([keras.layers.Flatten()(x), eps])
    enc = keras.Model([x, eps], keras.layers.Dense(LATENT)(keras.layers.Dense(8, activation="relu")(h)),
                      name="encoder")
    z = keras.Input((LATENT,))
    dec = keras.Model(z, keras.layers.Reshape(SHAPE)(keras.layers.Dense(math.prod(SHAPE))(z)), name="decoder")
    xa, za = keras.Input(SHAPE), keras.Input((LATENT,))
    t = keras.layers.Dense(1)(keras.layers.Concatenate()([keras.layers.Flatten()(xa), za]))
    return zoo.AVB(enc, dec, keras.Model([xa, za], t, name="adversary"), seed=seed)


RELOAD = textwrap.dedent("""
    import json, sys
    import numpy as np
    import tensorflow as tf
    assert "zoo" not in sys.modules
    calls = json.load(open(sys.argv[1]))
    out = {}
    for name, call in calls.items():
        m = tf.saved_model.load(call["dir"])
        args = {k: tf.constant(np.load(v)) for k, v in call["inputs"].items()}
        res = getattr(m, call["signature"])(**args)
        for k, v in res.items():
            out[f"{name}/{k}"] = v.numpy()
    np.savez(sys.argv[2], **out)
    print("sys.modules has zoo:", "zoo" in sys.modules)
""")


def reload_in_plain_tensorflow(tmp_path, calls):
    """Run each call {name: (export dir, signature, {arg: array})} in a process that imports only TF."""
    import json

    spec = {}
    for name, (folder, signature, inputs) in calls.items():
        paths = {}
        for k, v in inputs.items():
            paths[k] = str(tmp_path / f"{name}_{k}.npy")
            np.save(paths[k], v)
        spec[name] = {"dir": str(folder), "signature": signature, "inputs": paths}
    (tmp_path / "calls.json").write_text(json.dumps(spec))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("KERAS_BACKEND", None)
    done = subprocess.run([sys.executable, "-c", RELOAD, str(tmp_path / "calls.json"), str(tmp_path / "out.npz")],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "sys.modules has zoo: False" in done.stdout
    return dict(np.load(tmp_path / "out.npz"))


def test_exports_reload_without_zoo_and_match_keras(tmp_path):
    from zoo.export import export_saved_model

    rng = np.random.default_rng(0)
    images = rng.uniform(0, 1, (5, *SHAPE)).astype("float32")
    z = rng.standard_normal((5, LATENT)).astype("float32")
    labels = np.array([0, 1, 2, 1, 0], "int32")

    cgan, vae, dsh, avb = tiny_gan(num_classes=3), tiny_vae(), tiny_dshgan(bits=12), tiny_avb()
    dirs = {name: export_saved_model(m, tmp_path / name) for name, m in
            (("cgan", cgan), ("vae", vae), ("dsh", dsh), ("avb", avb))}
    eps = seeded_normal(5, avb.noise_dim, 7)
    got = reload_in_plain_tensorflow(tmp_path, {
        "cgan": (dirs["cgan"], "generate", {"z": z, "labels": labels}),
        "vae_gen": (dirs["vae"], "generate", {"z": z}),
        "vae_enc": (dirs["vae"], "encode", {"images": images}),
        "vae_rec": (dirs["vae"], "reconstruct", {"images": images}),
        "dsh_hash": (dirs["dsh"], "hash", {"images": images}),
        "dsh_gen": (dirs["dsh"], "generate", {"z": z, "labels": labels}),
        "avb_enc": (dirs["avb"], "encode", {"images": images, "eps": eps}),
        "avb_rec": (dirs["avb"], "reconstruct", {"images": images, "eps": eps}),
    })
    tol = dict(atol=1e-5, rtol=0)
    np.testing.assert_allclose(got["cgan/images"], cgan.decode(z, np.eye(3, dtype="float32")[labels]), **tol)
    np.testing.assert_allclose(got["vae_gen/images"], vae.decode(z), **tol)
    mu, log_var = vae.posterior(images)
    np.testing.assert_allclose(got["vae_enc/mu"], mu, **tol)
    np.testing.assert_allclose(got["vae_enc/log_var"], log_var, **tol)
    np.testing.assert_allclose(got["vae_rec/images"], vae.reconstruct(images), **tol)
    np.testing.assert_array_equal(got["dsh_hash/codes"], dsh.hash(images))
    np.testing.assert_array_equal(got["dsh_hash/bits"], dsh.hash(images, packed=False))
    np.testing.assert_allclose(got["dsh_hash/scores"], dsh.hash_scores(images), **tol)
    np.testing.assert_allclose(got["dsh_gen/images"], dsh.decode(z, np.eye(3, dtype="float32")[labels]),
                               **tol)
    z_q = avb.sample_posterior(images, 1, seed=7)[:, 0]  # the export's eps are seed 7's
    np.testing.assert_allclose(got["avb_enc/z"], z_q, **tol)
    np.testing.assert_allclose(got["avb_rec/images"], avb.decode(z_q), **tol)


def test_recipe_exports_a_preset_and_refuses_an_existing_directory(tmp_path):
    gan = tiny_gan()
    preset = presets.save_preset(gan, tmp_path / "gan_preset", {"description": "tiny"})
    out = tmp_path / "exported"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    cmd = [sys.executable, "-m", "recipes.export", str(preset), str(out)]
    done = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (out / "saved_model.pb").exists() and (out / "assets.extra" / "zoo.json").exists()
    again = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert again.returncode != 0 and "already exists" in again.stderr
    z = np.random.default_rng(1).standard_normal((3, LATENT)).astype("float32")
    got = reload_in_plain_tensorflow(tmp_path, {"gan": (out, "generate", {"z": z})})
    np.testing.assert_allclose(got["gan/images"], gan.decode(z), atol=1e-5, rtol=0)


def test_export_into_an_existing_directory_is_an_error(tmp_path):
    from zoo.export import export_saved_model

    (tmp_path / "taken").mkdir()
    with pytest.raises(FileExistsError, match="already exists"):
        export_saved_model(tiny_vae(), tmp_path / "taken")
    assert list((tmp_path / "taken").iterdir()) == []
