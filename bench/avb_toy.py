"""The AVB paper's toy problem (Mescheder et al. 2017, Sec. 6.1): four data points.

The data are the four one-hot vectors of R^4 with a Bernoulli decoder and a 2-d
latent. The best model puts each point in a quarter of the prior's mass and
decodes it with certainty: p(x) = 1/4, a negative log-likelihood of
log 4 = 1.386 nats per point. A Gaussian q(z|x) cannot fill a quarter of the
plane, so the VAE's ELBO keeps its decoder away from that optimum; AVB's
black-box q can. Trained: AVB, AVB with adaptive contrast and the Gaussian VAE,
all with the same decoder. NLL per point by AIS and by dense grid integration
(exact for a 2-d latent); posteriors q(z|x) plotted as the paper's figure.

T has ReLU units here (`--t-activation`): the log-ratio it must learn has sharp
edges where the four posteriors meet. With the library's default ELU units
(chosen for MNIST, where ReLU units of theta(x) died), plain AVB ended 0.20 and
0.08 nats above log 4 (seeds 0, 1; its q collapsed onto curves), with ReLU
units 0.010 and 0.009.

    KERAS_BACKEND=tensorflow python bench/avb_toy.py --minutes 3
"""

import argparse
import json
import math
import time
from pathlib import Path

import keras
import numpy as np

from zoo.callbacks import TimeLimit
from zoo.metrics import ais_log_likelihood, grid_log_likelihood
from zoo.models import AVB, VAE, blocks

ONE_HOT = np.eye(4, dtype="float32")
LOG4 = math.log(4.0)
MODELS = ("avb", "avb_ac", "vae")
TITLES = {"avb": "AVB", "avb_ac": "AVB + adaptive contrast", "vae": "VAE (Gaussian q)"}
# 128 chains: the chains' weights are skewed here (a chain left in another
# point's region weighs ~0), so 16 chains gave per-point errors of ~0.15 nats.
AIS = {"num_steps": 500, "num_chains": 128, "leapfrog_steps": 5, "initial_step_size": 0.5}


def gaussian_encoder(hidden):
    """x -> (mu, log_var): the VAE's encoder, an MLP of the same widths as AVB's."""
    x = keras.Input((4,), name="x")
    h = x
    for u in hidden:
        h = keras.layers.Dense(u, activation="relu")(h)
    return keras.Model(x, [keras.layers.Dense(2, name="mu")(h), keras.layers.Dense(2, name="log_var")(h)],
                       name="encoder")


def build(kind, hidden, noise_dim, contrast_samples, seed, t_activation="relu"):
    keras.utils.set_random_seed(seed)
    decoder = blocks.avb_decoder((4,), 2, hidden)
    if kind == "vae":
        return VAE(gaussian_encoder(hidden), decoder, likelihood="bernoulli", data_range=(0.0, 1.0), seed=seed)
    return AVB(blocks.avb_encoder((4,), 2, noise_dim, hidden), decoder, blocks.avb_adversary((4,), 2, hidden, activation=t_activation),
               adaptive_contrast=kind == "avb_ac", contrast_samples=contrast_samples, seed=seed)


class TimeCosineDecay(keras.callbacks.Callback):
    """Cosine decay of the learning rates to `alpha` times their start over the
    wall-clock budget (the number of steps a budget buys is not known in advance);
    the toy's optimum needs the fine tuning of a small final rate. Counts steps."""

    def __init__(self, optimizers, lr, minutes, alpha=0.1, every=50):
        super().__init__()
        self.optimizers, self.lr, self.seconds, self.alpha, self.every = optimizers, lr, 60 * minutes, alpha, every

    def on_train_begin(self, logs=None):
        self.start, self.steps = time.monotonic(), 0

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        if self.steps % self.every == 0:
            frac = min(1.0, (time.monotonic() - self.start) / self.seconds)
            lr = self.lr * (self.alpha + (1 - self.alpha) * 0.5 * (1 + math.cos(math.pi * frac)))
            for opt in self.optimizers:
                opt.learning_rate.assign(lr)


def train(model, kind, args):
    """Adam(beta_1 = 0.5) for each player, as the authors; the same number of
    (x, z) pairs per step for every model (AVB+AC draws `contrast_samples` z per x)."""
    opts = [keras.optimizers.Adam(args.lr, beta_1=0.5) for _ in range(1 if kind == "vae" else 2)]
    if kind == "vae":
        model.compile(optimizer=opts[0])
    else:
        model.compile(T_optimizer=opts[0], vae_optimizer=opts[1])
    batch = args.batch_size // args.contrast_samples if kind == "avb_ac" else args.batch_size
    x = np.tile(ONE_HOT, (max(batch, 64) * 16 // 4, 1))
    decay = TimeCosineDecay(opts, args.lr, args.minutes)
    start = time.monotonic()
    hist = model.fit(x, batch_size=batch, epochs=1_000_000, verbose=0,
                     callbacks=[TimeLimit(args.minutes), decay])
    return decay.steps, time.monotonic() - start, {k: float(v[-1]) for k, v in hist.history.items()}


def posterior_samples(model, kind, n, seed):
    """(4, n, 2) samples of q(z|x) per data point."""
    if kind == "vae":
        mu, log_var = model.posterior(ONE_HOT)
        eps = np.random.default_rng(seed).standard_normal((4, n, 2))
        return mu[:, None] + np.exp(0.5 * log_var)[:, None] * eps
    return model.sample_posterior(ONE_HOT, n_samples=n, seed=seed)


def plot(samples, rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = ["tab:blue", "tab:orange", "tab:green", "tab:red"]
    fig, axes = plt.subplots(1, len(samples), figsize=(4.2 * len(samples), 4.4))
    for ax, (kind, z) in zip(np.atleast_1d(axes), samples.items()):
        for i in range(4):
            ax.scatter(z[i, :, 0], z[i, :, 1], s=1.5, alpha=0.35, color=colors[i], rasterized=True,
                       label=f"x = e{i + 1}")
        r = rows[kind]
        ax.set_title(f"{TITLES[kind]}\nNLL {r['nll_grid']:.3f} nats (optimum {LOG4:.3f})", fontsize=10)
        ax.set_xlim(-3.5, 3.5)
        ax.set_ylim(-3.5, 3.5)
        ax.set_aspect("equal")
        ax.grid(alpha=0.3)
    np.atleast_1d(axes)[0].legend(loc="lower left", markerscale=6, fontsize=8)
    fig.suptitle("Posteriors q(z|x) of the four one-hot points (encoder samples)")
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--minutes", type=float, default=3.0, help="training budget per model")
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--hidden", default="64,64", help="MLP widths of every net")
    p.add_argument("--noise-dim", type=int, default=64, help="AVB encoder noise (the paper: 64)")
    p.add_argument("--batch-size", type=int, default=512, help="(x, z) pairs per step")
    p.add_argument("--contrast-samples", type=int, default=8, help="AVB+AC: z per x for r_alpha's moments")
    p.add_argument("--t-activation", default="relu",
                   help="T's hidden units: the toy's log q/p has sharp edges between the four posteriors, "
                        "which ReLU units fit and ELU units (the library's default, for MNIST) did not")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save", default="bench/out/avb_toy", help="where the trained models go")
    p.add_argument("--eval-only", action="store_true", help="evaluate and plot the saved models")
    p.add_argument("--out", default="bench/results")
    args = p.parse_args()
    hidden = tuple(int(u) for u in args.hidden.split(","))
    out = Path(args.out)
    rows, samples = {}, {}
    for kind in args.models.split(","):
        path = Path(args.save) / f"{kind}.keras"
        if args.eval_only:
            model = keras.saving.load_model(path)
            info = json.loads(path.with_suffix(".json").read_text())
        else:
            model = build(kind, hidden, args.noise_dim, args.contrast_samples, args.seed, args.t_activation)
            steps, seconds, last = train(model, kind, args)
            info = {"steps": steps, "model_steps": int(keras.ops.convert_to_numpy(model.optimizer.iterations)),
                    "minutes": round(seconds / 60, 2),
                    "neg_elbo_train": round(last["loss"], 4), "kl_train": round(last["kl"], 4)}
            path.parent.mkdir(parents=True, exist_ok=True)
            model.save(path)
            path.with_suffix(".json").write_text(json.dumps(info))
        grid = grid_log_likelihood(model, ONE_HOT, limit=6.0, points_per_dim=401)
        t0 = time.monotonic()
        ais, diag = ais_log_likelihood(model, ONE_HOT, seed=1, return_diagnostics=True, **AIS)
        rows[kind] = {
            "model": kind, "backend": keras.backend.backend(), **info,
            "nll_ais": round(float(-ais.mean()), 4), "nll_grid": round(float(-grid.mean()), 4),
            "nll_grid_per_point": [round(float(v), 4) for v in -grid],
            # The standard error of the mean over the 4 points, from each one's.
            "nll_ais_se": round(float(np.sqrt(np.sum(diag["standard_error"] ** 2)) / 4), 4),
            "ais_acceptance": round(float(diag["acceptance_rate"].mean()), 3),
            "ais_seconds": round(time.monotonic() - t0, 1),
        }
        samples[kind] = posterior_samples(model, kind, 3000, seed=2)
        print(json.dumps(rows[kind]), flush=True)
    lines = [
        (f"AVB toy problem: 4 one-hot points, 2-d latent, Bernoulli decoder; MLPs {hidden}, AVB noise "
         f"{args.noise_dim}-d, adversary theta(x).s(z) + T_x + T_z + |z|^2/2 with {args.t_activation} units; {args.batch_size} (x, z) pairs "
         f"per step (AVB+AC: {args.batch_size // args.contrast_samples} x, {args.contrast_samples} z each); "
         f"Adam(lr {args.lr}, beta_1 0.5, cosine decay to 0.1x over the budget), "
         f"{args.minutes} min each on {keras.backend.backend()}, seed {args.seed}."),
        (f"NLL in nats per point (optimum log 4 = {LOG4:.3f}). Grid: midpoint rule, 401^2 points on [-6, 6]^2 "
         f"(exact reference). AIS: {AIS['num_steps']} sigmoid-scheduled intermediate distributions, "
         f"{AIS['num_chains']} chains, {AIS['leapfrog_steps']} leapfrog steps, step size adapted to 65% acceptance."),
        "-ELBO: the training loss at the end (AVB: reconstruction + E_q[T], an estimate).",
        "",
        f"{'model':<8} {'steps':>7} {'-ELBO':>8} {'NLL AIS':>14} {'NLL grid':>9} {'- log 4':>8}  per point (grid)",
    ]
    for r in rows.values():
        lines.append(f"{r['model']:<8} {r['steps']:>7} {r['neg_elbo_train']:>8.3f} {r['nll_ais']:>7.3f}+-{r['nll_ais_se']:.3f} "
                     f"{r['nll_grid']:>9.3f} {r['nll_grid'] - LOG4:>+8.3f}  "
                     + " ".join(f"{v:.3f}" for v in r["nll_grid_per_point"]))
    text = "\n".join(lines)
    print("\n" + text)
    out.mkdir(parents=True, exist_ok=True)
    (out / "avb_toy.txt").write_text(text + "\n")
    (out / "avb_toy.json").write_text(json.dumps(list(rows.values()), indent=2))
    plot(samples, rows, out / "avb_toy_posteriors.png")


if __name__ == "__main__":
    main()
