"""The training core: saving, backends, callbacks, resume, jit, bad input."""

import json
import os
import re
import subprocess
import sys
import textwrap

import keras
from keras import ops
import numpy as np
import pytest

from tests.conftest import ROOT
from zoo.models import GAN

BACKENDS = ["tensorflow", "jax", "torch"]
BACKEND = keras.backend.backend()


def tiny_gan(**kwargs):
    kwargs.setdefault("seed", 3)
    return GAN.dcgan((16, 16, 1), latent_dim=8, width=8, **kwargs)


def images(n=32, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (n, 16, 16, 1)).astype("float32")


# ---------------------------------------------------------------------------
# Saving
# ---------------------------------------------------------------------------
def test_configs_saved_before_the_gan_loss_rename_still_load():
    # Presets saved before the rename carry "generator_loss" in config.json.
    config = tiny_gan(gan_loss="hinge").get_config()
    config["generator_loss"] = config.pop("gan_loss")
    loaded = GAN.from_config(config)
    assert loaded.gan_loss == "hinge"
    assert callable(loaded.generator_loss)  # the method, no longer a string
    with pytest.raises(ValueError, match="disagree"):
        tiny_gan(gan_loss="minimax", generator_loss="hinge")


def test_keras_file_round_trip_reproduces_generator_and_training_state(tmp_path):
    gan = tiny_gan(num_classes=4, d_steps=2, generator_loss="minimax")  # the old name of gan_loss
    gan.compile(d_optimizer=keras.optimizers.Adam(1e-3), g_optimizer=keras.optimizers.RMSprop(2e-4))
    gan.fit(images(), np.arange(32) % 4, batch_size=8, epochs=1, verbose=0)
    path = tmp_path / "gan.keras"
    gan.save(path)
    loaded = keras.saving.load_model(path)  # safe_mode=True: no code deserialised
    assert isinstance(loaded, GAN)
    assert (loaded.num_classes, loaded.d_steps, loaded.gan_loss) == (4, 2, "minimax")
    np.testing.assert_array_equal(
        gan.generate(6, seed=9, labels=[0, 1, 2, 3, 0, 1]),
        loaded.generate(6, seed=9, labels=[0, 1, 2, 3, 0, 1]),
    )
    # The players' optimizers come back with their slots and step counts.
    assert isinstance(loaded.optimizer["g"], keras.optimizers.RMSprop)
    for p in ("d", "g"):
        a = [np.asarray(v) for v in gan.optimizer[p].variables]
        b = [np.asarray(v) for v in loaded.optimizer[p].variables]
        assert len(a) == len(b) > 2
        for va, vb in zip(a, b):
            np.testing.assert_array_equal(va, vb)
    assert int(loaded.optimizer.iterations.numpy()) == 4
    assert int(loaded.optimizer["d"].iterations.numpy()) == 8
    # And training goes on from there.
    loaded.fit(images(), np.arange(32) % 4, batch_size=8, epochs=1, verbose=0)
    assert int(loaded.optimizer.iterations.numpy()) == 8


_CROSS_BACKEND_SCRIPT = textwrap.dedent(
    """
    import sys, numpy as np, keras
    from zoo.models import GAN
    keras.utils.set_random_seed(0)
    gan = GAN.dcgan((16, 16, 1), latent_dim=8, width=8, num_classes=3, seed=3)
    gan.compile()
    x = np.random.default_rng(0).uniform(-1, 1, (16, 16, 16, 1)).astype("float32")
    gan.fit(x, np.arange(16) % 3, batch_size=8, epochs=1, verbose=0)  # BN statistics move
    gan.save_weights(sys.argv[1])
    np.save(sys.argv[2], gan.generate(5, seed=1, labels=[0, 1, 2, 0, 1]))
    """
)


def test_weights_saved_under_another_backend_load_here(tmp_path):
    other = BACKENDS[(BACKENDS.index(BACKEND) + 1) % 3]
    weights, expected = tmp_path / "w.weights.h5", tmp_path / "out.npy"
    env = dict(os.environ, KERAS_BACKEND=other, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT))
    subprocess.run(
        [sys.executable, "-c", _CROSS_BACKEND_SCRIPT, str(weights), str(expected)],
        env=env, check=True, capture_output=True, timeout=300,
    )
    gan = GAN.dcgan((16, 16, 1), latent_dim=8, width=8, num_classes=3, seed=3)
    gan.load_weights(weights)
    # 1e-5: the same float32 network evaluated by two backends' kernels.
    np.testing.assert_allclose(
        gan.generate(5, seed=1, labels=[0, 1, 2, 0, 1]), np.load(expected), atol=1e-5
    )


# ---------------------------------------------------------------------------
# Keras callbacks, resume and jit
# ---------------------------------------------------------------------------
def test_keras_callbacks_work(tmp_path):
    gan = tiny_gan()
    gan.compile()
    callbacks = [
        keras.callbacks.ModelCheckpoint(str(tmp_path / "ckpt.keras")),
        keras.callbacks.BackupAndRestore(str(tmp_path / "backup")),
        keras.callbacks.TensorBoard(str(tmp_path / "tb"), update_freq=1),
        keras.callbacks.EarlyStopping(monitor="g_loss", mode="min", patience=100),
        keras.callbacks.TerminateOnNaN(),
        keras.callbacks.CSVLogger(str(tmp_path / "log.csv")),
    ]
    hist = gan.fit(images(), batch_size=8, epochs=2, callbacks=callbacks, verbose=0)
    assert len(hist.history["d_loss"]) == 2
    assert isinstance(keras.saving.load_model(tmp_path / "ckpt.keras"), GAN)
    assert any((tmp_path / "tb").rglob("events.out.tfevents*"))
    header = (tmp_path / "log.csv").read_text().splitlines()[0].split(",")
    assert {"D_G_z", "D_x", "d_loss", "g_loss"} <= set(header)


def test_terminate_on_nan_stops_a_diverging_run():
    gan = tiny_gan()
    gan.compile(
        d_optimizer=keras.optimizers.SGD(1e30), g_optimizer=keras.optimizers.SGD(1e30)
    )
    hist = gan.fit(
        images(64), batch_size=8, epochs=20, verbose=0, callbacks=[keras.callbacks.TerminateOnNaN()]
    )
    assert len(hist.history["d_loss"]) < 20


class _Interrupt(keras.callbacks.Callback):
    def __init__(self, epoch, batch):
        super().__init__()
        self.at = (epoch, batch)
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.epoch, batch) == self.at:
            raise KeyboardInterrupt("simulated interruption")


def test_backup_and_restore_resumes_with_optimizer_state(tmp_path):
    x = images(32)  # 4 batches of 8 per epoch
    gan = tiny_gan()
    gan.compile()
    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))
    with pytest.raises(KeyboardInterrupt):
        gan.fit(x, batch_size=8, epochs=3, verbose=0, callbacks=[backup, _Interrupt(1, 1)])
    # A new process would rebuild the model from code: do the same.
    resumed = tiny_gan()
    resumed.compile()
    hist = resumed.fit(
        x, batch_size=8, epochs=3, verbose=0,
        callbacks=[keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))],
    )
    # Epoch 0 came from the backup; epochs 1 and 2 ran again.
    assert len(hist.history["d_loss"]) == 2
    assert int(resumed.optimizer.iterations.numpy()) == 12
    assert int(resumed.optimizer["d"].iterations.numpy()) == 12
    assert int(resumed.optimizer["g"].iterations.numpy()) == 12


class FixedNoiseGAN(GAN):
    """A GAN whose training noise is a fixed function of its shape, with no
    random-number generator: TensorFlow's stateless RNG picks another algorithm
    under XLA, so the same seed draws other noise with jit_compile=True than
    without (measured: keras.random.normal((3,), seed=42) gives [0.016, -1.590,
    0.104] in a tf.function and [1.582, 0.127, -0.857] under XLA)."""

    def noise(self, draw, shape, **kwargs):
        ones = ops.ones(shape)
        return ops.sin(1.3 * ops.cumsum(ones, axis=0) + 0.7 * ops.cumsum(ones, axis=-1))


def test_jit_compiled_training_equals_uncompiled_training():
    # XLA on TF and JAX, torch.compile on PyTorch, against Keras's uncompiled
    # step (TF: a tf.function without XLA; JAX: op by op; torch: eager), from
    # the same weights and noise. SGD, so that float32 reordering by the
    # compiler stays proportional to the gradient (Adam's step has size ~lr
    # even for a gradient of rounding noise).
    runs = {}
    for jit in (True, False):
        keras.utils.set_random_seed(5)
        gan = FixedNoiseGAN.dcgan((16, 16, 1), latent_dim=8, width=8, seed=3)
        gan.compile(d_optimizer=keras.optimizers.SGD(0.05), g_optimizer=keras.optimizers.SGD(0.05),
                    jit_compile=jit)
        initial = [np.array(keras.ops.convert_to_numpy(v)) for v in gan.trainable_variables]
        hist = gan.fit(images(16), batch_size=8, epochs=1, shuffle=False, verbose=0)
        assert gan.jit_compile is jit
        assert int(gan.optimizer.iterations.numpy()) == 2
        runs[jit] = (initial, [np.array(keras.ops.convert_to_numpy(v)) for v in gan.trainable_variables],
                     hist.history)
    (init, compiled, logs), (init_eager, eager, logs_eager) = runs[True], runs[False]
    for a, b in zip(init, init_eager):
        np.testing.assert_array_equal(a, b)
    diff = max(float(np.abs(a - b).max()) for a, b in zip(compiled, eager))
    update = max(float(np.abs(a - b).max()) for a, b in zip(eager, init_eager))
    # Seen: diff 6.0e-8 (TF), 1.5e-8 (JAX, torch); update 6.1e-3 to 8.2e-3. A
    # compiled step that lost or doubled a term would be ~update away.
    assert diff <= 1e-5 and update >= 1e-3, (diff, update)
    for key in logs_eager:
        np.testing.assert_allclose(logs[key], logs_eager[key], rtol=1e-4, atol=1e-6)


# ---------------------------------------------------------------------------
# Bad input gets an error that names the problem
# ---------------------------------------------------------------------------
@pytest.fixture
def compiled():
    gan = tiny_gan()
    gan.compile()
    return gan


def test_wrong_image_shape_is_named(compiled):
    bad = np.zeros((8, 28, 28, 1), "float32")
    with pytest.raises(ValueError, match=r"shape \(batch, 16, 16, 1\).*\(8, 28, 28, 1\)"):
        compiled.fit(bad, epochs=1, verbose=0)


def test_uint8_pixels_are_refused(compiled):
    with pytest.raises(ValueError, match="floating-point.*uint8"):
        compiled.fit(np.zeros((8, 16, 16, 1), "uint8"), epochs=1, verbose=0)


def test_out_of_range_pixels_are_refused(compiled):
    x = np.random.default_rng(0).uniform(0, 255, (8, 16, 16, 1)).astype("float32")
    with pytest.raises(ValueError, match=r"outside the model's data_range \[-1, 1\]"):
        compiled.fit(x, epochs=1, verbose=0)


def test_out_of_range_pixels_in_a_dataset_are_refused(compiled):
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices(np.full((8, 16, 16, 1), 3.0, "float32")).batch(4)
    with pytest.raises(ValueError, match="data_range"):
        compiled.fit(ds, epochs=1, verbose=0)


def test_labels_for_an_unconditional_model_are_refused(compiled):
    with pytest.raises(ValueError, match="unconditional"):
        compiled.fit(images(8), np.zeros(8, "int32"), epochs=1, verbose=0)
    with pytest.raises(ValueError, match="unconditional"):
        compiled.generate(2, labels=[0, 1])


def test_conditional_model_needs_valid_labels():
    gan = tiny_gan(num_classes=3)
    gan.compile()
    with pytest.raises(ValueError, match="conditional on 3 classes"):
        gan.fit(images(8), epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"Class labels must be in \[0, 3\)"):
        gan.fit(images(8), np.full(8, 7), epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"Label vectors must have shape \(2, 3\)"):
        gan.generate(2, labels=np.zeros((2, 5)))
    with pytest.raises(ValueError, match="conditional on 3 classes: pass labels"):
        gan.generate(2)


def test_bad_constructor_and_compile_arguments_are_named():
    with pytest.raises(ValueError, match="gan_loss must be one of"):
        tiny_gan(generator_loss="wasserstein")
    with pytest.raises(ValueError, match="d_steps must be a positive integer"):
        tiny_gan(d_steps=0)
    with pytest.raises(TypeError, match=r"\['d_optimizer', 'g_optimizer'\]"):
        tiny_gan().compile(optimizer="adam")
    opt = keras.optimizers.Adam()
    with pytest.raises(ValueError, match="its own optimizer instance"):
        tiny_gan().compile(d_optimizer=opt, g_optimizer=opt)
    with pytest.raises(ValueError, match="image_shape"):
        GAN.dcgan((16, 16))


def test_training_without_compile_is_refused():
    with pytest.raises((RuntimeError, ValueError), match="compile"):
        tiny_gan().fit(images(8), epochs=1, verbose=0)


def test_missing_data_path_is_named(tmp_path):
    from zoo import data

    missing = tmp_path / "nowhere" / "mnist.npz"
    with pytest.raises(FileNotFoundError, match="nowhere/mnist.npz"):
        data.load(missing)


def test_recipe_reports_a_missing_data_path(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "recipes.train", "dcgan_mnist", "--data", str(tmp_path / "no.npz"),
         "--out", str(tmp_path / "run")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )
    assert out.returncode != 0
    assert "no.npz" in out.stderr and "does not exist" in out.stderr


def test_recipe_trains_and_writes_its_outputs(tmp_path, mnist_path):
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "recipes.train", "dcgan_mnist", "--data", str(mnist_path),
         "--out", str(out), "--epochs", "1", "--steps-per-epoch", "3", "--verbose", "0", "--no-eval"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["steps"] == 3 and summary["backend"] == BACKEND
    from PIL import Image

    with Image.open(out / "samples.png") as im:
        assert im.size[0] > 200
    preset = GAN.from_preset(out / "preset")  # the recipe writes a preset folder
    assert isinstance(preset, GAN)
    assert preset.preset_metadata["command"].startswith("python -m recipes.train dcgan_mnist")
    assert summary["command"] == preset.preset_metadata["command"]  # the summary says what wrote it
    # The commit that trained it (a clean clone in CI; "unknown" outside a git checkout).
    assert re.fullmatch(r"[0-9a-f]{40}( \(with uncommitted changes .*\))?|unknown",
                        preset.preset_metadata["git_commit"])


def test_recipe_reproduce_command_retrains_the_same_weights(tmp_path, mnist_path):
    # A run bounded by wall time records the --steps command that replays it;
    # two runs of that command give the same weights, byte for byte.
    def start(out):  # the two runs side by side: two cores
        return subprocess.Popen(
            [sys.executable, "-m", "recipes.train", "gan_mlp_mnist", "--data", str(mnist_path),
             "--out", str(out), "--steps-per-epoch", "4", "--verbose", "0", "--no-eval",
             "--steps", "6"],  # 1.5 epochs: the stop falls mid-epoch
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
        )

    def finish(proc, out):
        _, stderr = proc.communicate(timeout=600)
        assert proc.returncode == 0, stderr[-2000:]
        return json.loads((out / "preset" / "metadata.json").read_text())

    runs = [(start(tmp_path / d), tmp_path / d) for d in "ab"]
    first, second = (finish(proc, out) for proc, out in runs)
    assert first["training"]["steps"] == 6
    # The preset folder is complete as bundled (a copy into saved_models/ needs nothing more).
    card = (tmp_path / "a" / "preset" / "README.md").read_text()
    # Named after the recipe, not after the run's "preset" folder.
    assert "\n# gan_mlp_mnist\n" in card and 'from_preset("gan_mlp_mnist")' in card and "# preset\n" not in card
    assert (tmp_path / "a" / "preset" / "samples.png").exists()
    # The device it trained on (step speed, and bf16's gain, depend on the CPU's units).
    assert re.fullmatch(r"\w+ on .+, \d+ logical CPUs(, units: .+)?", first["training"]["device"])
    assert first["reproduce"].endswith("--steps 6") and "--minutes" not in first["reproduce"]
    assert first["sha256"] == second["sha256"]


def test_reproduce_command_replaces_the_budget_with_steps_per_phase():
    from recipes.train import reproduce_command

    cmd = reproduce_command(["dshgan_cifar10_12bit", "--minutes", "30", "--batch-size", "32"], [2000, 1500])
    assert cmd == "python -m recipes.train dshgan_cifar10_12bit --batch-size 32 --steps 2000 1500"
    # An earlier --steps (one per phase, or one for all) gives way to the steps run.
    cmd = reproduce_command(["dshgan_cifar10_12bit", "--steps", "9", "8", "--seed", "1"], [9, 4])
    assert cmd == "python -m recipes.train dshgan_cifar10_12bit --seed 1 --steps 9 4"
    assert reproduce_command(["gan_mlp_mnist", "--minutes=3"], [120]).endswith("gan_mlp_mnist --steps 120")


def test_protocol_seed_reaches_the_hashing_split_and_the_metadata(monkeypatch, capsys):
    """--protocol-seed 1 trains, validates and is measured on the second protocol
    split (#24's seed-1 figures); other recipes refuse it."""
    from recipes import evaluate, train
    from tests.test_bench_dshgan import toy_split

    seeds = []

    def fake_split(path, seed=0):
        seeds.append(seed)
        return toy_split(seed=seed)

    monkeypatch.setattr(train.zdata, "cifar10_hashing_split", fake_split)
    import dataclasses

    # The toy split has 20 labels a class: hold out 5 a class instead of the recipe's 50.
    recipe = dataclasses.replace(train.RECIPES["dshgan_cifar10_12bit"], validation_per_class=5)
    first, second = train.hashing_split_of(recipe, "x.zip", 0), train.hashing_split_of(recipe, "x.zip", 1)
    assert seeds == [0, 1]
    assert not np.array_equal(first.query, second.query)  # control: the two splits differ
    assert len(second.query) == 4 * recipe.validation_per_class  # validation queries of seed 1's labels
    assert "cifar10_hashing_split(seed 1)" in train.split_text(recipe, 1)
    assert train.split_text(recipe, 0) == recipe.split
    assert train.split_text(train.RECIPES["dcgan_mnist"], 1) == train.RECIPES["dcgan_mnist"].split
    # The evaluation follows the seed too (its figure text names it).
    monkeypatch.setattr("zoo.data.cifar10_hashing_split", fake_split)

    class Codes:
        code_length = 8

        def hash(self, x):
            return np.packbits(np.eye(8, dtype=bool)[toy_split().y[np.asarray(x)]], axis=1)
    figures = evaluate._measure_hashing(Codes(), "x.zip", {"queries": 40, "database": 100}, lambda *a: None, 1)
    assert seeds[-1] == 1 and "seed 1)" in figures["map"]["how"]
    with pytest.raises(SystemExit):
        train.main(["dcgan_mnist", "--protocol-seed", "1"])
    assert "--protocol-seed is for the hashing recipes" in capsys.readouterr().err
