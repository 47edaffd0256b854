"""Larsen et al. 2016: who learns from which loss, and the VAE baseline."""

import math

import keras
import numpy as np
import pytest
from keras import ops

from tests.conftest import changed, weights_of
from zoo.core.backend import value_and_grad
from zoo.models import VAE, VAEGAN
from zoo.models.common import gaussian_kl

SHAPE = (16, 16, 1)


def tiny_vaegan(**kwargs):
    kwargs.setdefault("seed", 2)
    return VAEGAN.larsen(SHAPE, latent_dim=4, width=0.125, **kwargs)


def batch(n=6, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (n, *SHAPE)).astype("float32")


def noise(n, dim, seed):
    return np.random.default_rng(seed).standard_normal((n, dim)).astype("float32")


def grads(model, loss_fn, player):
    _, _, g = value_and_grad(lambda: (loss_fn(), ()), model.player_variables(player))
    return [ops.convert_to_numpy(v) for v in g]


def assert_grads_close(a, b, rtol=1e-4, atol=1e-6):
    assert len(a) == len(b)
    for ga, gb in zip(a, b):
        np.testing.assert_allclose(ga, gb, rtol=rtol, atol=atol)


def norm(gs):
    return math.sqrt(sum(float((g**2).sum()) for g in gs))


@pytest.fixture
def case():
    """A tiny VAE-GAN and one fixed draw of x, eps, z_p (so every loss sees the same state)."""
    m = tiny_vaegan(gamma=0.3, gan_loss="minimax")
    x = ops.convert_to_tensor(batch())
    eps, z_p = ops.convert_to_tensor(noise(6, 4, 1)), ops.convert_to_tensor(noise(6, 4, 2))
    # Evaluate everything in inference mode, so that batch norm uses fixed
    # statistics and repeated forward passes agree exactly.
    mu, log_var = m.encoder(x, training=False)
    z = mu + ops.exp(0.5 * log_var) * eps
    x_rec, x_p = m.decoder(z, training=False), m.decoder(z_p, training=False)

    def terms(z_override=None):
        mu, log_var = m.encoder(x, training=False)
        zz = mu + ops.exp(0.5 * log_var) * eps if z_override is None else z_override
        xr, xp = m.decoder(zz, training=False), m.decoder(z_p, training=False)
        (l_x, f_x), (l_r, f_r), (l_p, _) = m.dis([x, xr, xp], training=False)
        return {
            "prior": m.l_prior(mu, log_var),
            "llike": m.l_llike(f_x, f_r),
            "gan": m.l_gan(l_x, m.fake_logits(l_r, l_p)),
        }

    return m, x, eps, z_p, ops.stop_gradient(z), ops.stop_gradient(x_rec), ops.stop_gradient(x_p), terms


def test_encoder_learns_only_from_prior_and_llike(case):
    m, x, eps, z_p, *_, terms = case
    g_enc = grads(m, lambda: m.encoder_loss(x, eps, z_p, training=False)[0], "enc")
    g_want = grads(m, lambda: terms()["prior"] + terms()["llike"], "enc")
    assert_grads_close(g_enc, g_want)
    # ...and L_GAN does reach the encoder's parameters through z, so leaving it
    # out is a choice the loss makes, not an accident of the graph.
    assert norm(grads(m, lambda: terms()["gan"], "enc")) > 1e-6


def test_discriminator_learns_only_from_gan(case):
    m, x, eps, z_p, z, x_rec, x_p, terms = case
    g_dis = grads(m, lambda: m.discriminator_loss(x, x_rec, x_p, training=False)[0], "dis")
    assert_grads_close(g_dis, grads(m, lambda: -terms()["gan"], "dis"))
    assert norm(grads(m, lambda: terms()["llike"], "dis")) > 1e-6  # it would reach Dis


def test_decoder_gradient_is_gamma_llike_minus_gan(case):
    m, x, eps, z_p, z, *_, terms = case
    g_dec = grads(m, lambda: m.decoder_loss(x, z, z_p, training=False)[0], "dec")
    g_llike = grads(m, lambda: terms(z)["llike"], "dec")
    g_gan = grads(m, lambda: terms(z)["gan"], "dec")
    want = [m.gamma * a - b for a, b in zip(g_llike, g_gan)]
    assert_grads_close(g_dec, want, rtol=1e-3, atol=1e-6)
    assert norm(g_llike) > 1e-6 and norm(g_gan) > 1e-6


class PureStep(VAEGAN):
    """One training step on one loss only, to watch which weights move."""

    mode = "gan"

    def train_step(self, data):
        x, _ = self._unpack(data)
        n = ops.shape(x)[0]
        eps = keras.random.normal((n, self.latent_dim), seed=self.seed_generator)
        z_p = keras.random.normal((n, self.latent_dim), seed=self.seed_generator)
        if self.mode == "gan":  # L_GAN only: the discriminator's loss, then nothing else
            x_rec = self.decoder(self.encoder(x)[0])
            loss, _ = self.update("dis", lambda: self.discriminator_loss(x, x_rec, self.decoder(z_p)))
        else:  # the reconstruction term only: the encoder's loss
            loss, _ = self.update("enc", lambda: self.encoder_loss(x, eps, z_p))
        return self.track(enc_loss=loss)


@pytest.mark.parametrize("mode, moved, still", [("gan", "dis", "encoder"), ("rec", "enc", "discriminator")])
def test_one_pure_step_leaves_the_other_players_weights(mode, moved, still):
    m = PureStep.larsen(SHAPE, latent_dim=4, width=0.125, seed=2)
    m.mode = mode
    m.compile(enc_optimizer=keras.optimizers.Adam(1e-2), dec_optimizer=keras.optimizers.Adam(1e-2),
              dis_optimizer=keras.optimizers.Adam(1e-2))
    nets = {"encoder": m.encoder, "decoder": m.decoder, "discriminator": m.discriminator}
    before = {k: weights_of(v) for k, v in nets.items()}
    m.train_on_batch(batch())
    after = {k: weights_of(v) for k, v in nets.items()}
    assert not any(changed(before[still], after[still]))
    assert not any(changed(before["decoder"], after["decoder"]))
    moved_net = "discriminator" if moved == "dis" else "encoder"
    assert any(changed(before[moved_net], after[moved_net]))


def test_kl_matches_closed_form():
    mu = np.array([[0.5, -1.0], [0.0, 2.0]], "float32")
    log_var = np.array([[0.0, math.log(0.25)], [math.log(4.0), 0.0]], "float32")
    # KL(N(mu, s^2) || N(0, 1)) = 1/2 (mu^2 + s^2 - 1 - log s^2), per dim.
    want = [0.5 * (0.25 + 0) + 0.5 * (1.0 + 0.25 - 1 - math.log(0.25)),
            0.5 * (0 + 4 - 1 - math.log(4)) + 0.5 * 4.0]
    np.testing.assert_allclose(ops.convert_to_numpy(gaussian_kl(mu, log_var)), want, rtol=1e-6)
    # And against Monte Carlo with 200k draws (std error ~0.01 here).
    rng = np.random.default_rng(0)
    s = np.exp(0.5 * log_var[0])
    z = mu[0] + s * rng.standard_normal((200000, 2))
    log_q = -0.5 * (((z - mu[0]) / s) ** 2).sum(1) - np.log(s).sum()
    log_p = -0.5 * (z**2).sum(1)
    assert (log_q - log_p).mean() == pytest.approx(want[0], abs=0.03)


def test_training_step_runs_with_equilibrium_gating_and_logs():
    m = tiny_vaegan(equilibrium=(0.68, 0.35))
    m.compile()
    hist = m.fit(batch(12), batch_size=6, epochs=2, verbose=0)
    for k in ("enc_loss", "dec_loss", "dis_loss", "prior", "llike", "gan", "D_x", "D_G_z", "loss"):
        assert np.isfinite(hist.history[k][-1]), k
    assert int(m.optimizer["enc"].iterations.numpy()) == 4


def test_equilibrium_gate_freezes_the_discriminator_when_it_wins():
    # A centre far above any reachable cost: Dis's cost is always "below
    # centre - margin", so Dis must never move; Dec's gate (cost above
    # centre + margin) never closes, so Dec moves.
    m = tiny_vaegan(equilibrium=(100.0, 1.0))
    m.compile()
    dis0, dec0 = weights_of(m.discriminator), weights_of(m.decoder)
    m.fit(batch(12), batch_size=6, epochs=1, verbose=0)
    assert not any(changed(dis0, weights_of(m.discriminator)))
    assert any(changed(dec0, weights_of(m.decoder)))
    # Adam's slots stayed put too (a gated step is no step at all).
    assert all(float(np.abs(np.asarray(v)).sum()) == 0 for v in m.optimizer["dis"].variables[2:])


def test_api_shapes_ranges_and_interpolation():
    m = tiny_vaegan()
    imgs = np.random.default_rng(0).integers(0, 256, (5, *SHAPE), dtype=np.uint8)
    mu, log_var = m.posterior(imgs)
    assert mu.shape == (5, 4) and log_var.shape == (5, 4)
    rec = m.reconstruct(imgs)
    assert rec.shape == (5, *SHAPE) and rec.min() >= 0 and rec.max() <= 1
    np.testing.assert_array_equal(m.generate(3, seed=1), m.generate(3, seed=1))
    path = m.interpolate(imgs[0], imgs[1], steps=5)
    assert path.shape == (5, *SHAPE)
    np.testing.assert_allclose(path[0], m.decode(mu[:1])[0], atol=1e-5)
    np.testing.assert_allclose(path[-1], m.decode(mu[1:2])[0], atol=1e-5)
    assert m.interpolate(mu[0], mu[1], steps=3, spherical=True).shape == (3, *SHAPE)


def test_keras_round_trip(tmp_path):
    m = tiny_vaegan(reconstruction_fake=False, equilibrium=(0.68, 0.35))
    m.compile()
    m.fit(batch(12), batch_size=6, epochs=1, verbose=0)
    m.save(tmp_path / "m.keras")
    back = keras.saving.load_model(tmp_path / "m.keras")
    assert isinstance(back, VAEGAN) and back.reconstruction_fake is False and back.equilibrium == (0.68, 0.35)
    x = batch(3)
    np.testing.assert_allclose(back.reconstruct(x * 0.5 + 0.5), m.reconstruct(x * 0.5 + 0.5), atol=1e-6)
    np.testing.assert_array_equal(back.generate(2, seed=3), m.generate(2, seed=3))


def test_bad_input_is_named():
    m = tiny_vaegan()
    m.compile()
    with pytest.raises(ValueError, match=r"shape \(batch, 16, 16, 1\)"):
        m.fit(np.zeros((4, 8, 8, 1), "float32"), verbose=0)
    with pytest.raises(ValueError, match="labels were given"):
        m.fit(batch(4), np.zeros(4), verbose=0)
    with pytest.raises(ValueError, match=r"Float images must be in \[0, 1\]"):
        m.reconstruct(np.full((1, *SHAPE), 3.0, "float32"))
    with pytest.raises(ValueError, match=r"z must have shape \(n, 4\)"):
        m.decode(np.zeros((2, 5)))
    with pytest.raises(ValueError, match="at least one kind of fake"):
        tiny_vaegan(reconstruction_fake=False, prior_fake=False)
    with pytest.raises(ValueError, match="equilibrium"):
        tiny_vaegan(equilibrium=(0.68,))


def test_vae_baseline_elbo_decreases_and_round_trips(tmp_path):
    v = VAE.larsen(SHAPE, latent_dim=4, width=0.125, seed=1)
    v.compile(optimizer=keras.optimizers.Adam(1e-3))
    x = np.tile(batch(4), (8, 1, 1, 1))  # 4 images repeated: learnable quickly
    hist = v.fit(x, batch_size=8, epochs=6, verbose=0)
    assert set(hist.history) == {"loss", "reconstruction", "kl"}
    assert hist.history["loss"][-1] < hist.history["loss"][0]
    np.testing.assert_allclose(hist.history["loss"][-1],
                               hist.history["reconstruction"][-1] + hist.history["kl"][-1], rtol=1e-4)
    v.save(tmp_path / "v.keras")
    back = keras.saving.load_model(tmp_path / "v.keras")
    np.testing.assert_allclose(back.reconstruct(x[:2] * 0.5 + 0.5), v.reconstruct(x[:2] * 0.5 + 0.5), atol=1e-6)
