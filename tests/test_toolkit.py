"""The training toolkit on every backend: EMA generators, spectral norm, hinge, R1, DiffAugment.

Each check compares with a value computed by hand (a closed form, a hand-shifted
image, a singular value from NumPy's SVD), and where it could pass without the
feature doing anything, a negative control shows that it would fail.
"""

import json

import keras
import numpy as np
import pytest
from keras import ops

import zoo
from tests.test_resume import EPOCHS, STEPS, Interrupt, data, stream
from zoo import presets
from zoo.core import ema as averaging
from zoo.core.backend import input_gradient, input_value_and_grad, value_and_grad
from zoo.models import DSHGAN, GAN, VAE, VAEGAN, augment, blocks
from zoo.models.blocks import SpectralNorm
from zoo.models.gan import discriminator_cost, generator_cost

SHAPE = (8, 8, 1)
ALL = "color,translation,cutout"


def numpy(v):
    return np.array(keras.ops.convert_to_numpy(v))


def tiny_gan(**kwargs):
    # DCGAN's G has batch norm: its moving statistics are averaged too.
    kwargs.setdefault("seed", 3)
    return GAN.dcgan(SHAPE, latent_dim=4, width=4, **kwargs)


def images(n=16, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (n, *SHAPE)).astype("float32")


# ---------------------------------------------------------------------------
# EMA of the generator's weights
# ---------------------------------------------------------------------------
def decays(k, decay, start, warmup):
    """The documented schedule decay_t, t = 0..k-1."""
    out = []
    for t in range(k):
        d = decay
        if warmup:
            d = min(d, (1 + t - start) / (10 + t - start))
        out.append(0.0 if t < start else d)
    return out


def closed_form(history, ds):
    """w_ema after k updates: prod_j d_j w_0 + sum_i (1 - d_i) prod_{j > i} d_j w_i."""
    k = len(ds)
    total = np.prod(ds) * history[0]
    for i in range(1, k + 1):
        total = total + (1 - ds[i - 1]) * np.prod(ds[i:]) * history[i]
    return total


def train_recording(model, net, k, x):
    """k train steps; the raw network's weights before and after each, and the last logs."""
    history = [[numpy(v) for v in net.weights]]
    for _ in range(k):
        logs = model.train_on_batch(x, return_dict=True)
        history.append([numpy(v) for v in net.weights])
    return history, logs


def test_ema_after_k_steps_is_the_closed_form_average():
    # decay_t over the 5 steps: 0 (before ema_start), 0.1 and 2/11 (the warm-up
    # ramp), then 0.25 and 0.3 = ema_decay (the ramp capped): every branch.
    k, decay, start, warmup = 5, 0.3, 1, True
    # R1 and the hinge loss ride along: they train under jit here.
    gan = tiny_gan(ema_decay=decay, ema_start=start, ema_warmup=warmup, r1_gamma=1.0, gan_loss="hinge")
    gan.compile(d_optimizer=keras.optimizers.Adam(1e-2), g_optimizer=keras.optimizers.Adam(1e-2))
    history, logs = train_recording(gan, gan.generator, k, images())
    assert logs["r1"] > 0 and np.isfinite(logs["d_loss"])
    ds = decays(k, decay, start, warmup)
    assert ds == pytest.approx([0.0, 0.1, 2 / 11, 0.25, 0.3])
    shadow = [numpy(v) for v in gan.generator_ema.weights]
    assert len(shadow) == len(history[0]) and any("moving_mean" in v.path for v in gan.generator_ema.weights)
    for i, s in enumerate(shadow):
        expected = closed_form([h[i] for h in history], ds)
        np.testing.assert_allclose(s, expected, rtol=1e-5, atol=1e-6)
    # Controls: the average is neither the last iterate nor the initial weights.
    assert max(np.abs(s - h).max() for s, h in zip(shadow, history[-1])) > 1e-3
    assert max(np.abs(s - h).max() for s, h in zip(shadow, history[0])) > 1e-3
    assert not any(v.trainable for v in gan.generator_ema.weights)
    assert gan.generator_ema not in [gan.generator, gan.discriminator]


def tiny_vae(**kwargs):
    x = keras.Input(SHAPE)
    h = keras.layers.Dense(8, activation="relu")(keras.layers.Flatten()(x))
    encoder = keras.Model(x, [keras.layers.Dense(4)(h), keras.layers.Dense(4)(h)], name="encoder")
    z = keras.Input((4,))
    h = keras.layers.BatchNormalization()(keras.layers.Dense(8)(z))
    out = keras.layers.Reshape(SHAPE)(keras.layers.Dense(64, activation="tanh")(h))
    return VAE(encoder, keras.Model(z, out, name="decoder"), seed=0, **kwargs)


def test_vae_decoder_average_follows_the_vae_player():
    vae = tiny_vae(ema_decay=0.5)
    vae.compile(optimizer=keras.optimizers.Adam(1e-2))
    history, _ = train_recording(vae, vae.decoder, 3, images(8))
    for i, s in enumerate(vae.decoder_ema.weights):
        np.testing.assert_allclose(numpy(s), closed_form([h[i] for h in history], [0.5] * 3), rtol=1e-5, atol=1e-6)


def test_generate_samples_the_average_and_use_ema_false_the_raw_generator():
    gan = tiny_gan(ema_decay=0.5)
    for v in gan.generator.trainable_variables:  # as if trained: the raw G moved away
        v.assign(v * 1.5 + 0.01)
    z = np.random.default_rng(7).standard_normal((5, 4)).astype("float32")
    unit = lambda x: np.clip((numpy(x) + 1) / 2, 0, 1)  # noqa: E731
    averaged, raw = gan.generate(5, seed=7), gan.generate(5, seed=7, use_ema=False)
    np.testing.assert_allclose(averaged, unit(gan.generator_ema(z, training=False)), atol=1e-6)
    np.testing.assert_allclose(raw, unit(gan.generator(z, training=False)), atol=1e-6)
    np.testing.assert_allclose(gan.decode(z), averaged, atol=1e-6)
    assert np.abs(averaged - raw).max() > 1e-3  # control: the two generators differ
    assert gan.averaged("generator") is gan.generator_ema
    # Without ema_decay there is one generator, whatever use_ema says.
    plain = tiny_gan()
    assert plain.averaged("generator") is plain.generator and not hasattr(plain, "generator_ema")
    np.testing.assert_array_equal(plain.generate(3, seed=0), plain.generate(3, seed=0, use_ema=False))


def test_reset_ema_and_options_are_checked():
    gan = tiny_gan(ema_decay=0.9)
    gan.generator.weights[0].assign(gan.generator.weights[0] + 1.0)
    assert not np.allclose(numpy(gan.generator_ema.weights[0]), numpy(gan.generator.weights[0]))
    gan.reset_ema()
    np.testing.assert_array_equal(numpy(gan.generator_ema.weights[0]), numpy(gan.generator.weights[0]))
    for bad in (dict(ema_decay=1.0), dict(ema_decay=-0.1), dict(ema_decay=0.9, ema_start=-1)):
        with pytest.raises(ValueError, match="ema_"):
            tiny_gan(**bad)


# ---------------------------------------------------------------------------
# Spectral normalisation
# ---------------------------------------------------------------------------
def top_singular_value(kernel):
    m = numpy(kernel)
    return np.linalg.svd(m.reshape(-1, m.shape[-1]), compute_uv=False)[0]


def test_spectral_norm_top_singular_value_is_one_after_power_iterations():
    rng = np.random.default_rng(0)
    left, _ = np.linalg.qr(rng.standard_normal((10, 6)))
    right, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    singular = np.array([3.0, 1.2, 1.0, 0.8, 0.5, 0.3])
    kernel = (left * singular) @ right.T  # (fan_in 10, units 6), sigma_max = 3
    layer = SpectralNorm(keras.layers.Dense(6))
    layer.build((None, 10))
    layer.layer.kernel.assign(kernel.astype("float32"))
    # u mostly along the second singular direction: one iteration is not enough.
    u = 0.05 * right[:, 0] + right[:, 1]
    layer.u.assign((u / np.linalg.norm(u)).astype("float32"))
    x = rng.standard_normal((4, 10)).astype("float32")
    layer(x, training=True)
    early = top_singular_value(layer.normalized_kernel())
    assert early > 1.01, "control: after one iteration sigma is still underestimated"
    for _ in range(40):
        layer(x, training=True)
    # Tolerance: float32 power iteration with a singular-value gap of 3 / 1.2.
    assert abs(top_singular_value(layer.normalized_kernel()) - 1.0) < 1e-5
    assert abs(top_singular_value(layer.layer.kernel) - 3.0) < 1e-5, "W itself is not rewritten"
    # The layer computes with W / sigma.
    expected = x @ numpy(layer.normalized_kernel()) + numpy(layer.layer.bias)
    np.testing.assert_allclose(numpy(layer(x, training=False)), expected, rtol=1e-5, atol=1e-5)


def test_spectral_norm_of_a_conv_kernel_and_eval_equals_train():
    layer = SpectralNorm(keras.layers.Conv2D(4, 3, padding="same"))
    x = np.random.default_rng(1).standard_normal((2, 6, 6, 2)).astype("float32")
    layer(x)
    layer.layer.kernel.assign(3.0 * layer.layer.kernel)
    u0 = numpy(layer.u)
    eval_out, train_out = numpy(layer(x, training=False)), numpy(layer(x, training=True))
    np.testing.assert_allclose(eval_out, train_out, rtol=1e-6, atol=1e-6)
    assert not np.allclose(numpy(layer.u), u0), "a training call keeps its power iteration"
    for _ in range(100):
        layer(x, training=True)
    assert abs(top_singular_value(layer.normalized_kernel()) - 1.0) < 1e-4  # 18 x 4 Gaussian matrix
    assert top_singular_value(layer.layer.kernel) > 1.5


def test_spectral_norm_gradient_reaches_the_kernel_through_sigma():
    # d/dW of sum(x W / sigma(W)) has a term from sigma (the paper's gradient,
    # Miyato et al. eq. 12), computed here by hand in float64.
    layer = SpectralNorm(keras.layers.Dense(3, use_bias=False), power_iterations=1)
    x = np.random.default_rng(2).standard_normal((5, 4)).astype("float32")
    layer(x)
    for _ in range(50):
        layer(x, training=True)
    w, u = numpy(layer.layer.kernel).astype(np.float64), numpy(layer.u).astype(np.float64)
    _, _, (g,) = value_and_grad(lambda: (ops.sum(layer(x, training=False)), ()), [layer.layer.kernel])
    # u and v are held constant in the gradient (Miyato et al.), so differentiate with them fixed.
    v = w @ u
    v /= np.linalg.norm(v)
    u1 = w.T @ v
    u1 /= np.linalg.norm(u1)
    sigma = v @ w @ u1
    s = x.astype(np.float64).sum(axis=0)  # d/dW sum(x W) = outer(s, 1)
    expected = np.outer(s, np.ones(3)) / sigma - (s @ w).sum() / sigma**2 * np.outer(v, u1)
    np.testing.assert_allclose(numpy(g), expected, rtol=1e-4, atol=1e-5)
    assert not np.allclose(numpy(g), np.outer(s, np.ones(3)) / sigma, atol=1e-3)  # control: sigma's term


def test_spectral_norm_wraps_every_layer_of_the_discriminator_blocks():
    # (Training with it under jit: the resume test below.)
    gan = tiny_gan(spectral_norm=True)
    wrapped = [layer for layer in gan.discriminator.layers if isinstance(layer, SpectralNorm)]
    assert len(wrapped) == 2  # one conv at 8x8, and the logit
    for builder in (lambda: blocks.larsen_discriminator(SHAPE, 0.1, spectral_norm=True),
                    lambda: blocks.semi_supervised_discriminator(SHAPE, 3, 4, spectral_norm=True),
                    lambda: blocks.dcgan_discriminator(SHAPE, 4, num_classes=3, spectral_norm=True)):
        net = builder()
        plain = [layer for layer in net.layers if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense))]
        assert not plain, f"{net.name}: {[layer.name for layer in plain]} not normalised"


# ---------------------------------------------------------------------------
# Losses: hinge, R1
# ---------------------------------------------------------------------------
def test_hinge_loss_textbook_values():
    real = ops.convert_to_tensor([[2.0], [0.5], [-1.0]])
    fake = ops.convert_to_tensor([[-2.0], [0.0], [1.0]])
    # E max(0, 1 - l(x)) = (0 + 0.5 + 2) / 3; E max(0, 1 + l(G(z))) = (0 + 1 + 2) / 3.
    assert float(discriminator_cost(real, fake, "hinge")) == pytest.approx(2.5 / 3 + 1.0, abs=1e-6)
    zero = ops.zeros((4, 1))
    assert float(discriminator_cost(zero, zero, "hinge")) == pytest.approx(2.0, abs=1e-6)
    confident = float(discriminator_cost(ops.ones((4, 1)) * 3, -3 * ops.ones((4, 1)), "hinge"))
    assert confident == 0.0  # margins met: no loss
    assert float(generator_cost(fake, "hinge")) == pytest.approx(1.0 / 3, abs=1e-6)  # -E l(G(z))
    # Control: the logistic cost is something else.
    assert float(discriminator_cost(real, fake)) != pytest.approx(2.5 / 3 + 1.0, abs=1e-3)
    # The models use it.
    gan = GAN(linear_generator(), linear_discriminator(np.ones(64)), gan_loss="hinge")
    x = images(3)
    logits = numpy(gan.discriminator(np.concatenate([x, x])))
    loss, _ = gan.discriminator_loss(x, x, training=False)
    expected = float(discriminator_cost(logits[:3], logits[3:], "hinge"))
    assert float(numpy(loss)) == pytest.approx(expected, abs=1e-5)
    vaegan = VAEGAN.larsen(SHAPE, latent_dim=4, width=0.1, gan_loss="hinge")
    gan_term = vaegan.l_gan(real, [fake, zero[:3]])
    assert float(gan_term) == pytest.approx(-(2.5 / 3 + 1.0 + 1.0), abs=1e-6)
    with pytest.raises(ValueError, match="hinge"):
        VAEGAN.larsen(SHAPE, latent_dim=4, width=0.1, gan_loss="hinge", equilibrium=(0.68, 0.35))


def linear_discriminator(w, b=0.5):
    x = keras.Input(SHAPE)
    dense = keras.layers.Dense(1, name="logit")
    net = keras.Model(x, dense(keras.layers.Flatten()(x)), name="discriminator")
    dense.kernel.assign(np.asarray(w, "float32").reshape(-1, 1))
    dense.bias.assign(np.full((1,), b, "float32"))
    return net


def linear_generator():
    z = keras.Input((4,))
    out = keras.layers.Reshape(SHAPE)(keras.layers.Dense(64, activation="tanh")(z))
    return keras.Model(z, out, name="generator")


def test_r1_equals_the_hand_computed_gradient_norm_of_a_linear_d():
    rng = np.random.default_rng(0)
    w = rng.standard_normal(64).astype("float32")
    gamma = 3.0
    gan = GAN(linear_generator(), linear_discriminator(w), r1_gamma=gamma)
    x, fake = images(6), images(6, seed=1)
    cost_only = GAN(gan.generator, gan.discriminator).discriminator_loss(x, fake, training=False)[0]
    loss, (_, _, r1) = gan.discriminator_terms(x, fake)
    # grad_x l(x) = w for every image: R1 = gamma / 2 ||w||^2.
    assert float(r1) == pytest.approx(gamma / 2 * float(w @ w), rel=1e-5)
    assert float(loss) == pytest.approx(float(cost_only) + float(r1), rel=1e-5)
    # Double backpropagation: d R1 / d w = gamma * w, d R1 / d b = 0.
    kernel, bias = gan.discriminator.get_layer("logit").kernel, gan.discriminator.get_layer("logit").bias
    _, _, (g_w, g_b) = value_and_grad(lambda: (gan.discriminator_terms(x, fake)[1][2], ()), [kernel, bias])
    np.testing.assert_allclose(numpy(g_w).ravel(), gamma * w, rtol=1e-5, atol=1e-5)
    assert abs(float(numpy(g_b)[0])) < 1e-6
    # Off by default, and not in evaluation.
    assert float(GAN(gan.generator, gan.discriminator).discriminator_terms(x, fake)[1][2]) == 0.0
    assert float(gan.discriminator_terms(x, fake, training=False)[1][2]) == 0.0


def test_input_gradient_is_per_example_and_differentiable():
    # l(x) = (w . x)^2: grad = 2 (w . x_i) w, different per row (a control for a
    # gradient of the batch mean, or of the wrong rows).
    rng = np.random.default_rng(1)
    w = rng.standard_normal(5).astype("float32")
    x = rng.standard_normal((3, 5)).astype("float32")
    value, grad = input_gradient(lambda t: ops.square(ops.sum(ops.multiply(t, w), axis=-1)), x)
    np.testing.assert_allclose(numpy(value), (x @ w) ** 2, rtol=1e-5)
    np.testing.assert_allclose(numpy(grad), 2 * (x @ w)[:, None] * w[None, :], rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------
# DiffAugment
# ---------------------------------------------------------------------------
def shifted(x, dh, dw):
    """out[i, j] = x[i + dh, j + dw], zero outside: by hand."""
    out = np.zeros_like(x)
    h, w = x.shape[:2]
    for i in range(h):
        for j in range(w):
            if 0 <= i + dh < h and 0 <= j + dw < w:
                out[i, j] = x[i + dh, j + dw]
    return out


def test_translation_equals_a_hand_shifted_image_and_passes_gradients():
    x = np.random.default_rng(0).uniform(-1, 1, (3, 8, 8, 2)).astype("float32")
    shifts = [(2, -1), (-3, 0), (0, 1)]
    params = {"shift_h": np.array([s[0] for s in shifts]), "shift_w": np.array([s[1] for s in shifts])}
    out = numpy(augment.translation(ops.convert_to_tensor(x), params))
    for b, (dh, dw) in enumerate(shifts):
        np.testing.assert_array_equal(out[b], shifted(x[b], dh, dw))
    assert not np.array_equal(out[2], x[2])  # control: a shift of one pixel shows
    # d sum(out) / dx is 1 exactly at the pixels that stay in the frame.
    _, grad = input_value_and_grad(lambda t: ops.sum(augment.translation(t, params), axis=(1, 2, 3)), x)
    for b, (dh, dw) in enumerate(shifts):
        np.testing.assert_array_equal(numpy(grad)[b], shifted(np.ones_like(x[b]), -dh, -dw))


def test_flip_mirrors_exactly_the_drawn_images_and_policies_name_their_argument():
    x = np.random.default_rng(3).uniform(-1, 1, (3, 4, 5, 2)).astype("float32")
    out = numpy(augment.flip(ops.convert_to_tensor(x), {"flip": np.array([1, 0, 1])}))
    np.testing.assert_array_equal(out[0], x[0][:, ::-1])
    np.testing.assert_array_equal(out[1], x[1])  # not drawn: untouched
    np.testing.assert_array_equal(out[2], x[2][:, ::-1])
    assert not np.array_equal(out[0], x[0])  # control: the flip shows
    assert augment.check_policy(" flip , translation", "hash_augment") == "flip,translation"
    with pytest.raises(ValueError, match="hash_augment must be a comma-separated subset of .*flip"):
        augment.check_policy("flip,rotate", "hash_augment")
    params = augment.sample("translation,flip", 200, (8, 8, 3), lambda fn, shape, **kw: fn(shape, seed=1, **kw))
    draws = numpy(params["flip"])
    assert set(np.unique(draws)) == {0, 1} and 0.35 < draws.mean() < 0.65  # about half the images


def test_cutout_and_colour_equal_their_formulas():
    x = np.random.default_rng(1).uniform(-1, 1, (2, 8, 8, 3)).astype("float32")
    params = {"cutout_h": np.array([0, 5]), "cutout_w": np.array([3, 8]),
              "brightness": np.array([0.2, -0.4]).reshape(2, 1, 1, 1).astype("float32"),
              "saturation": np.array([1.5, 0.3]).reshape(2, 1, 1, 1).astype("float32"),
              "contrast": np.array([0.7, 1.2]).reshape(2, 1, 1, 1).astype("float32")}
    out = numpy(augment.cutout(ops.convert_to_tensor(x), params))
    mask = np.ones((2, 8, 8, 1), "float32")
    mask[0, 0:2, 1:5] = 0  # a 4x4 square centred at (0, 3), clipped at the top
    mask[1, 3:7, 6:8] = 0  # centred at (5, 8), clipped at the right
    np.testing.assert_array_equal(out, x * mask)
    y = x + params["brightness"]
    y = (y - y.mean(-1, keepdims=True)) * params["saturation"] + y.mean(-1, keepdims=True)
    y = (y - y.mean((1, 2, 3), keepdims=True)) * params["contrast"] + y.mean((1, 2, 3), keepdims=True)
    np.testing.assert_allclose(numpy(augment.color(ops.convert_to_tensor(x), params)), y, rtol=1e-5, atol=1e-5)
    # "flip" is a policy now (#24); "rotate" is in no policy
    with pytest.raises(ValueError, match="subset of color, translation, cutout, flip"):
        tiny_gan(diff_augment="color,rotate")


def test_a_gradient_reaches_g_through_diffaugment():
    gan = GAN(linear_generator(), linear_discriminator(np.linspace(-1, 1, 64)), diff_augment=ALL, seed=0)
    z = np.random.default_rng(0).standard_normal((8, 4)).astype("float32")
    g_vars = gan.generator.trainable_variables
    _, _, grads = value_and_grad(lambda: gan.generator_loss(z), g_vars)
    assert all(np.isfinite(numpy(g)).all() for g in grads)
    assert all(np.abs(numpy(g)).max() > 0 for g in grads), "every G variable gets a gradient"
    # Control: in training D sees other images than G made.
    fake = gan.generator(z, training=True)
    assert np.abs(numpy(gan.augmented(fake, gan.augment_params(8))) - numpy(fake)).max() > 0.1
    # The draws are the model's seeded noise: two models with one seed augment alike.
    a = numpy(tiny_gan(diff_augment=ALL, seed=11).augment_params(4)["shift_h"])
    b = numpy(tiny_gan(diff_augment=ALL, seed=11).augment_params(4)["shift_h"])
    np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------------
# Exact resume with the whole toolkit on (tests/test_resume.py's protocol)
# ---------------------------------------------------------------------------
def resumable():
    # The options with state to restore: the averages, SN's u, DiffAugment's
    # draws from the model's noise.
    gan = tiny_gan(spectral_norm=True, diff_augment="translation", ema_decay=0.9, ema_warmup=True, seed=5)
    gan.compile(d_optimizer=keras.optimizers.Adam(1e-3, beta_1=0.5),
                g_optimizer=keras.optimizers.Adam(1e-3, beta_1=0.5))
    return gan


def full_state(gan):
    return [numpy(v) for v in gan.trainable_variables + gan.non_trainable_variables + gan.optimizer.variables]


def fit(gan, backup_dir, *extra):
    keras.utils.set_random_seed(0)
    backup = keras.callbacks.BackupAndRestore(str(backup_dir))
    x = data() * 2 - 1  # the stream of tests/test_resume.py, in the DCGAN's [-1, 1]
    return gan.fit(stream(x), epochs=EPOCHS, steps_per_epoch=STEPS, verbose=0, callbacks=[backup, *extra])


def test_resume_is_exact_with_ema_spectral_norm_and_diffaugment(tmp_path):
    keras.utils.set_random_seed(0)
    straight = resumable()
    sn = [layer for layer in straight.discriminator.layers if isinstance(layer, SpectralNorm)]
    u0 = [numpy(layer.u) for layer in sn]
    fit(straight, tmp_path / "a")  # jit_compile="auto": XLA / jax.jit where they apply
    assert all(not np.allclose(numpy(layer.u), u) for layer, u in zip(sn, u0)), "power iterations kept"
    keras.utils.set_random_seed(0)
    with pytest.raises(KeyboardInterrupt):
        fit(resumable(), tmp_path / "b", Interrupt(epoch=1, batch=1))
    assert json.loads((tmp_path / "b" / "training_metadata.json").read_text())["epoch"] == 1
    import h5py

    with h5py.File(tmp_path / "b" / "latest.weights.h5") as f:  # the backup holds the averages
        names = []
        f.visit(names.append)
    assert any("generator_ema" in n for n in names)
    keras.utils.set_random_seed(123)
    resumed = resumable()
    fit(resumed, tmp_path / "b")
    assert int(numpy(resumed.optimizer.iterations)) == EPOCHS * STEPS
    for a, b in zip(full_state(straight), full_state(resumed)):
        np.testing.assert_allclose(a, b, atol=1e-6, rtol=1e-6)
    # Control: the averages compared above are not the raw weights.
    assert max(np.abs(numpy(a) - numpy(b)).max()
               for a, b in zip(straight.generator_ema.weights, straight.generator.weights)) > 1e-4


# ---------------------------------------------------------------------------
# Saving: .keras files and presets keep every option; old presets load
# ---------------------------------------------------------------------------
OPTIONS = dict(r1_gamma=2.0, diff_augment="translation,cutout", ema_decay=0.99, ema_start=10, ema_warmup=True)


def every_model():
    return {
        "gan": (tiny_gan(spectral_norm=True, gan_loss="hinge", **OPTIONS), "generator"),
        "vae": (VAE.larsen(SHAPE, latent_dim=4, width=0.1, ema_decay=0.99, ema_start=10, ema_warmup=True), "decoder"),
        "vaegan": (VAEGAN.larsen(SHAPE, latent_dim=4, width=0.1, spectral_norm=True, gan_loss="hinge",
                                 **OPTIONS), "decoder"),
        "dshgan": (DSHGAN.build_default(SHAPE, num_classes=3, code_length=8, latent_dim=4, g_width=4, d_width=4,
                                        h_width=4, spectral_norm=True, **OPTIONS), "generator"),
    }


def sample(model):
    if isinstance(model, DSHGAN):
        return model.generate(3, seed=0, labels=1)
    return model.generate(3, seed=0)


def test_keras_files_and_presets_keep_every_option(tmp_path):
    for name, (model, net) in every_model().items():
        raw = getattr(model, net)
        raw.weights[0].assign(raw.weights[0] + 0.5)  # the average now differs from the network
        for v in model.non_trainable_variables:
            if v.path.endswith("/u"):
                v.assign(v + 0.25)  # and SN's u from a fresh one
        model.save(tmp_path / f"{name}.keras")
        loaded = keras.saving.load_model(tmp_path / f"{name}.keras")
        others = [loaded]
        if name == "gan":  # presets: the same config and weights, written otherwise
            others.append(zoo.load(presets.save_preset(model, tmp_path / f"{name}_preset")))
        for other in others:
            config = other.get_config()
            for key, value in model.get_config().items():
                if key not in ("encoder", "decoder", "generator", "discriminator", "hasher"):
                    assert config[key] == value, (name, key)
            for a, b in zip(model.weights, other.weights):
                np.testing.assert_array_equal(numpy(a), numpy(b), err_msg=f"{name}: {a.path}")
            np.testing.assert_allclose(sample(other), sample(model), atol=1e-6)
        assert np.abs(sample(model) - (model.generate(3, seed=0, labels=1, use_ema=False) if name == "dshgan"
                                       else model.generate(3, seed=0, use_ema=False))).max() > 1e-4
        if name != "vae":
            assert any(isinstance(layer, SpectralNorm) for layer in loaded.discriminator.layers)
            assert loaded.r1_gamma == 2.0 and loaded.diff_augment == "translation,cutout"
        assert (loaded.ema_decay, loaded.ema_start, loaded.ema_warmup) == (0.99, 10, True)


def test_presets_saved_before_the_toolkit_load_with_it_off():
    gan = zoo.load("cdcgan_mnist")  # trained before the toolkit existed
    config = json.loads((presets.SAVED_MODELS / "cdcgan_mnist" / "config.json").read_text())["config"]
    assert "ema_decay" not in config and "r1_gamma" not in config  # an old preset indeed
    assert (gan.ema_decay, gan.r1_gamma, gan.diff_augment, gan.gan_loss) == (None, 0.0, None, "non_saturating")
    assert not hasattr(gan, "generator_ema")
    assert not any(isinstance(layer, SpectralNorm) for layer in gan.discriminator.layers)
    assert gan.averaged("generator") is gan.generator  # generate() samples G itself


def test_decay_schedule_and_shadow_copy():
    assert averaging.decay_at(5, 0.9) == 0.9
    assert float(averaging.decay_at(1, 0.9, ema_start=2)) == 0.0
    assert float(averaging.decay_at(2, 0.999, ema_start=2, ema_warmup=True)) == pytest.approx(0.1)
    assert float(averaging.decay_at(10**6, 0.999, ema_warmup=True)) == pytest.approx(0.999)
    g = blocks.dcgan_generator(SHAPE, 4, 4)
    shadow = averaging.shadow_copy(g)
    assert shadow is not g and not shadow.trainable_weights
    for a, b in zip(shadow.weights, g.weights):
        np.testing.assert_array_equal(numpy(a), numpy(b))
