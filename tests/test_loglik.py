"""Log-likelihood estimators against a model whose marginal is exact.

The linear-Gaussian decoder p(x|z) = N(W z + b, s^2 I), p(z) = N(0, I) has
p(x) = N(b, W W^T + s^2 I) and the Gaussian posterior N(mu, Lambda^-1) with
Lambda = I + W^T W / s^2, mu = Lambda^-1 W^T (x - b) / s^2. All noise is seeded
(NumPy), so each backend sees the same draws.
"""

import math

import keras
import numpy as np
import pytest
from keras import ops

from zoo.metrics import ais_log_likelihood, grid_log_likelihood, iwae_log_likelihood
from zoo.metrics.loglik import annealing_schedule, log_mean_exp
from zoo.models import AVB, VAE, blocks

D, LATENT, S = 5, 2, 0.7
_rng = np.random.default_rng(0)
W = _rng.normal(size=(D, LATENT))
B = _rng.normal(size=D)
COV = W @ W.T + S**2 * np.eye(D)
X = _rng.multivariate_normal(B, COV, size=8).astype("float32")
PRECISION = np.eye(LATENT) + W.T @ W / S**2
POST_COV = np.linalg.inv(PRECISION)


def log_likelihood(x, z):
    """log N(x | W z + b, s^2 I) per row, in keras.ops."""
    mean = ops.matmul(z, ops.convert_to_tensor(W.T.astype("float32"))) + ops.convert_to_tensor(B.astype("float32"))
    return -0.5 * ops.sum(ops.square((x - mean) / S), axis=-1) - D * (math.log(S) + 0.5 * math.log(2 * math.pi))


def exact_log_px(x):
    r = x.astype(np.float64) - B
    _, logdet = np.linalg.slogdet(COV)
    return -0.5 * np.einsum("ni,ij,nj->n", r, np.linalg.inv(COV), r) - 0.5 * logdet - 0.5 * D * math.log(2 * math.pi)


def posterior_mean(x):
    return (x.astype(np.float64) - B) @ W @ POST_COV.T / S**2


# A known, deliberately imperfect q: the true posterior mean with twice the
# posterior's marginal variances. In 2-d, diag(2 Sigma_ii) - Sigma is positive
# semi-definite, so q is wider than the posterior in every direction and the
# importance weights p(x, z) / q(z|x) are bounded: IWAE's estimates are not
# heavy-tailed.
Q_VAR = 2.0 * np.diag(POST_COV)


def q_posterior(x):
    x = ops.convert_to_numpy(x)
    mu = posterior_mean(x)
    return mu.astype("float32"), np.tile(np.log(Q_VAR), (len(x), 1)).astype("float32")


def exact_elbo(x):
    """log p(x) - KL(q || posterior): two Gaussians with the same mean."""
    kl = 0.5 * (np.trace(PRECISION @ np.diag(Q_VAR)) - LATENT + np.linalg.slogdet(POST_COV)[1]
                - np.log(Q_VAR).sum())
    return exact_log_px(x) - kl


def test_grid_integration_is_exact_for_the_linear_gaussian():
    # Midpoint rule on 201^2 points over [-6, 6]^2 against a posterior of sd ~0.3:
    # error far below 1e-3 (float32 log-densities limit it to ~1e-5).
    got = grid_log_likelihood(log_likelihood, X[:3], latent_dim=LATENT)
    np.testing.assert_allclose(got, exact_log_px(X[:3]), atol=1e-3)


def test_ais_matches_the_exact_marginal():
    # Tolerance: at T = 300 transitions the chains' log-weights spread by ~0.55
    # nats, so the log-mean over 64 chains has a standard error of ~0.07 per
    # point; 0.3 is > 4 SE per point and 0.1 is > 3 SE for the mean over 8 points
    # (observed over seeds 0-2: max error 0.08-0.16, mean within 0.02, ESS >= 37).
    est, diag = ais_log_likelihood(log_likelihood, X, latent_dim=LATENT, num_steps=300, num_chains=64,
                                   leapfrog_steps=2, seed=0, return_diagnostics=True)
    err = est - exact_log_px(X)
    assert np.all(np.abs(err) < 0.3), err
    assert abs(err.mean()) < 0.1, err
    assert diag["log_weights"].shape == (8, 64) and diag["effective_sample_size"].min() > 16
    assert np.all((diag["acceptance_rate"] > 0.3) & (diag["acceptance_rate"] <= 1.0))
    np.testing.assert_allclose(est, log_mean_exp(diag["log_weights"], axis=1))


def test_ais_approaches_the_exact_value_from_below():
    # One chain per run: E[w] = p(x), so E[log w] <= log p(x) (Jensen), and the gap
    # shrinks as the anneal lengthens. 200 runs for each of the 8 points put the
    # standard errors of the mean gaps at 0.11, 0.03 and 0.011 nats; the gaps
    # observed: -2.74, -0.49 and -0.09 nats.
    reps = 200
    xs = np.repeat(X, reps, axis=0)
    exact = np.repeat(exact_log_px(X), reps)
    gaps, ses = [], []
    for steps in (5, 30, 150):
        lw = ais_log_likelihood(log_likelihood, xs, latent_dim=LATENT, num_steps=steps, num_chains=1,
                                leapfrog_steps=2, initial_step_size=0.25, seed=1, batch_size=len(xs))
        gaps.append((lw - exact).mean())
        ses.append((lw - exact).std() / math.sqrt(len(xs)))
    assert gaps[0] < gaps[1] - 3 * ses[1] and gaps[1] < gaps[2], gaps
    assert gaps[2] < 3 * ses[2], (gaps, ses)


def test_ais_is_seeded():
    kw = {"latent_dim": LATENT, "num_steps": 20, "num_chains": 4, "leapfrog_steps": 2, "seed": 3}
    a = ais_log_likelihood(log_likelihood, X[:4], **kw)
    np.testing.assert_array_equal(a, ais_log_likelihood(log_likelihood, X[:4], **kw))
    assert not np.array_equal(a, ais_log_likelihood(log_likelihood, X[:4], **{**kw, "seed": 4}))


def test_iwae_k1_is_the_elbo_and_tightens_with_k():
    # K = 1: each estimate is one draw of log p(x, z) / q(z|x), unbiased for the
    # ELBO; 4,000 draws per point give a standard error of ~0.045 nats (observed
    # errors 0.02-0.06); tolerance 3 SE.
    reps = 4000
    xs = np.repeat(X[:2], reps, axis=0)
    k1 = iwae_log_likelihood(log_likelihood, xs, posterior_fn=q_posterior, num_samples=1, seed=0)
    k1 = k1.reshape(2, reps)
    se = k1.std(1) / math.sqrt(reps)
    np.testing.assert_allclose(k1.mean(1), exact_elbo(X[:2]), atol=3 * se.max())
    # The bound rises with K toward log p(x). Here the ELBO gap KL(q || posterior)
    # is 1.24 nats (q ignores the posterior's correlation of -0.6); K = 10 closes
    # most of it (observed -0.03) and from K = 100 the O(1/K) remainder is below
    # the Monte Carlo error. 50 estimates per point: standard errors ~0.07 at K = 1
    # and < 0.005 from K = 10 on.
    xs = np.repeat(X, 50, axis=0)
    exact = exact_log_px(xs)
    means = [(iwae_log_likelihood(log_likelihood, xs, posterior_fn=q_posterior, num_samples=k, seed=1)
              - exact).mean() for k in (1, 10, 100, 1000)]
    assert means[0] < means[1] - 0.5 and means[1] < 0.01, means
    assert abs(means[2]) < 0.02 and abs(means[3]) < 0.02, means


ONE_HOT = np.eye(4, dtype="float32")


def small_vae():
    """q(z|x) = N(mu(x), 2 I): wider than the prior, so the importance weights
    p(x|z) p(z) / q(z|x) are bounded and IWAE's estimates are not heavy-tailed."""
    x = keras.Input((4,))
    h = keras.layers.Dense(16, activation="tanh")(x)
    log_var = keras.layers.Dense(2, kernel_initializer="zeros", bias_initializer=keras.initializers.Constant(math.log(2.0)))
    encoder = keras.Model(x, [keras.layers.Dense(2)(h), log_var(h)])
    return VAE(encoder, blocks.avb_decoder((4,), 2, hidden=(16,)), likelihood="bernoulli",
               data_range=(0.0, 1.0), seed=0)


def test_model_convenience_against_grid_integration():
    # Untrained nets, 2-d latent: the grid is exact. At T = 100 the chains'
    # log-weights spread by < 0.15 nats, so 16 chains give a standard error of
    # < 0.04 (observed errors < 0.045 over seeds 0-2): tolerance 0.1 nats.
    keras.utils.set_random_seed(0)
    avb = AVB.build_default((4,), latent_dim=2, hidden=(16,), seed=0)
    exact = grid_log_likelihood(avb, ONE_HOT)
    assert np.all(exact < 0) and np.all(np.isfinite(exact))
    est = ais_log_likelihood(avb, ONE_HOT, num_steps=100, num_chains=16, leapfrog_steps=2,
                             initial_step_size=0.5, seed=0)
    np.testing.assert_allclose(est, exact, atol=0.1)
    # The VAE's Gaussian q gives the IWAE bound. At K = 2,000 the estimates were
    # within 0.03 nats (either side: Monte Carlo error); K = 20,000 cuts that by
    # ~3x: tolerance 0.03.
    vae = small_vae()
    exact = grid_log_likelihood(vae, ONE_HOT)
    iwae = iwae_log_likelihood(vae, ONE_HOT, num_samples=20000, seed=0)
    np.testing.assert_allclose(iwae, exact, atol=0.03)


def test_schedules():
    for kind in ("sigmoid", "linear"):
        b = annealing_schedule(50, kind)
        assert b.shape == (51,) and b[0] == 0 and b[-1] == 1 and np.all(np.diff(b) > 0)
    # The sigmoid schedule starts and ends with smaller steps than the middle.
    d = np.diff(annealing_schedule(50, "sigmoid"))
    assert d[0] < d[25] and d[-1] < d[25]


def test_bad_input_is_named():
    kw = {"latent_dim": LATENT, "num_steps": 2, "num_chains": 2, "leapfrog_steps": 1}
    with pytest.raises(ValueError, match="NaN or infinite"):
        ais_log_likelihood(log_likelihood, np.full((2, D), np.nan, "float32"), **kw)
    with pytest.raises(ValueError, match=r"shape \(n, \.\.\.\)"):
        ais_log_likelihood(log_likelihood, np.zeros(D, "float32"), **kw)
    with pytest.raises(ValueError, match="latent_dim is needed"):
        ais_log_likelihood(log_likelihood, X, num_steps=2)
    for name, value in [("num_steps", 0), ("num_chains", 0), ("leapfrog_steps", 1.5), ("batch_size", -1)]:
        with pytest.raises(ValueError, match=f"{name} must be a positive integer"):
            ais_log_likelihood(log_likelihood, X, **{**kw, name: value})
    with pytest.raises(ValueError, match="target_acceptance must be in"):
        ais_log_likelihood(log_likelihood, X, target_acceptance=1.2, **kw)
    with pytest.raises(ValueError, match="initial_step_size must be in"):
        ais_log_likelihood(log_likelihood, X, initial_step_size=0.0, **kw)
    with pytest.raises(ValueError, match="schedule must be one of"):
        ais_log_likelihood(log_likelihood, X, schedule="cosine", **kw)
    with pytest.raises(ValueError, match="increase strictly from 0 to 1"):
        ais_log_likelihood(log_likelihood, X, schedule=[0.0, 0.7, 0.5, 1.0], **kw)
    with pytest.raises(ValueError, match="one value per row"):
        ais_log_likelihood(lambda x, z: z, X, **kw)
    avb = AVB.build_default((4,), latent_dim=2, hidden=(8,))
    with pytest.raises(ValueError, match=r"shape \(batch, 4\)"):
        ais_log_likelihood(avb, np.zeros((2, 5), "float32"), num_steps=2)
    with pytest.raises(ValueError, match="outside the model's data_range"):
        ais_log_likelihood(avb, np.full((2, 4), 3.0, "float32"), num_steps=2)
    with pytest.raises(ValueError, match="disagrees with the model"):
        ais_log_likelihood(avb, ONE_HOT, latent_dim=3, num_steps=2)
    with pytest.raises(ValueError, match="use ais_log_likelihood"):
        iwae_log_likelihood(avb, ONE_HOT)
    with pytest.raises(ValueError, match="posterior_fn"):
        iwae_log_likelihood(log_likelihood, X)
    with pytest.raises(ValueError, match="latent_dim <= 3"):
        grid_log_likelihood(log_likelihood, X, latent_dim=4)
    with pytest.raises(TypeError, match="Expected a zoo model"):
        ais_log_likelihood("decoder", X, **kw)
