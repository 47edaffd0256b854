"""AVB against the Gaussian VAE on binarised MNIST (Mescheder et al. 2017, Sec. 6.2).

AVB, AVB with adaptive contrast and a VAE with the same decoder are each trained
for the same wall-clock budget (or, with --steps, the same number of steps), with
8- and 32-d latents, and compared by the
AIS estimate of the test log-likelihood (Wu et al. 2017's AIS with HMC), which
needs only p(z) and p(x|z) and so treats the three models alike. The paper's
claim: AVB with adaptive contrast is at least as good as the VAE.

AVB's encoder: the MLP on [features of x, eps] (adaptive contrast then takes the
moments of `--contrast-samples` draws per x), or with `--num-basis m` the
authors' basis encoder z = z0(x) + sum_i a_i(x) v_i(eps_i), whose moments come
with z, so adaptive contrast needs one draw per x (the figures in the README use
m = 8 noise networks of widths (64, 64) and T's learning rate at twice the
encoder's, as in the authors' code).

Binarisation: dynamic for training (each epoch draws x ~ Bernoulli(pixel
intensity) afresh), one fixed draw (seed 1) for the test images. Nets are MLPs
on the flattened 784-d images; the decoder gives Bernoulli logits.

    KERAS_BACKEND=tensorflow python bench/avb_mnist.py --data ../shared/datasets/mnist.npz --minutes 4
"""

import argparse
import json
import math
import time
from pathlib import Path

import keras
import numpy as np
from keras import ops

from zoo import data as zdata
from zoo.metrics import ais_log_likelihood, iwae_log_likelihood
from zoo.models import AVB, VAE, blocks
from zoo.models.common import gaussian_kl

MODELS = ("avb", "avb_ac", "vae")
DIAGNOSTICS = ("basis_vae",)  # not in the default --models: see BasisVAE
D = 784


@keras.saving.register_keras_serializable(package="bench")
class BasisVAE(AVB):
    """A diagnostic, not a model of the paper: AVB+AC's basis encoder trained as a VAE
    on its moments alone, reconstruction + KL(r || p), with no T (KL(q || r) >= 0 is
    dropped, so its -ELBO column is no bound; AIS, which needs only the decoder, is).
    Beside AVB+AC it splits a gap to the VAE into the part of the encoder's form and
    the part of T's estimate."""

    def vae_loss(self, x, training=True):
        xk, z, (mu, var) = self.posterior_samples(x, 1, training=training)
        rec = ops.mean(self.reconstruction_nll(xk, self.decoder(z, training=training)))
        kl = ops.mean(gaussian_kl(mu, ops.log(var)))
        return rec + kl, (rec, kl)

    def train_step(self, data):
        x, _ = self._unpack(data)
        loss, (rec, kl) = self.update("vae", lambda: self.vae_loss(x))
        return self.track(loss=loss, reconstruction=rec, kl=kl, t_loss=0.0)


class Budget(keras.callbacks.Callback):
    """Stops at an absolute deadline, or after `max_steps` steps when given
    (training spans several `fit` calls, one per fresh binarisation), decays the
    learning rates by a cosine of the spent share of the budget (steps when
    counted in steps, else time) to 0.1x, and counts steps."""

    def __init__(self, optimizers, lrs, seconds, max_steps=0, alpha=0.1, every=50):
        super().__init__()
        self.optimizers, self.lrs, self.alpha, self.every = optimizers, lrs, alpha, every
        self.start = time.monotonic()
        self.seconds, self.max_steps = seconds, max_steps
        self.steps = 0

    def expired(self):
        return time.monotonic() - self.start > self.seconds or 0 < self.max_steps <= self.steps

    def spent(self):
        if self.max_steps:
            return self.steps / self.max_steps
        return (time.monotonic() - self.start) / self.seconds

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        if self.expired():
            self.model.stop_training = True
        if self.steps % self.every == 0:
            frac = min(1.0, self.spent())
            decay = self.alpha + (1 - self.alpha) * 0.5 * (1 + math.cos(math.pi * frac))
            for opt, lr in zip(self.optimizers, self.lrs):
                opt.learning_rate.assign(lr * decay)


def gaussian_encoder(latent, hidden):
    """x -> (mu, log_var), an MLP of the widths of AVB's encoder."""
    x = keras.Input((D,), name="x")
    h = x
    for u in hidden:
        h = keras.layers.Dense(u, activation="relu")(h)
    return keras.Model(x, [keras.layers.Dense(latent, name="mu")(h), keras.layers.Dense(latent, name="log_var")(h)],
                       name="encoder")


def vae_x_hidden(hidden, args):
    """The VAE encoder's hidden widths: the first --vae-x-layers of --hidden (0: all)."""
    return hidden[:args.vae_x_layers or None]


def basis_x_hidden(hidden, args):
    """The basis encoder's hidden widths on x: --x-hidden, else the first --x-layers of --hidden."""
    if args.x_hidden:
        return tuple(int(u) for u in args.x_hidden.split(","))
    return hidden[:args.x_layers or None]


def build(kind, latent, hidden, args):
    keras.utils.set_random_seed(args.seed)
    decoder = blocks.avb_decoder((D,), latent, hidden)
    if kind == "vae":
        return VAE(gaussian_encoder(latent, vae_x_hidden(hidden, args)), decoder, likelihood="bernoulli",
                   data_range=(0.0, 1.0), seed=args.seed)
    if args.num_basis:  # the authors' encoder: z = z0(x) + sum_i a_i(x) v_i(eps_i), moments given
        # By default one hidden layer on x before the z0 and a heads (the VAE's encoder has all of
        # --hidden): with both, AVB+AC's encoder outran T (results/avb_mnist_30min_basis/x_depth).
        encoder = blocks.avb_basis_encoder((D,), latent, args.noise_dim or latent, args.num_basis,
                                           basis_x_hidden(hidden, args),
                                           tuple(int(u) for u in args.noise_hidden.split(",")))
    else:
        encoder = blocks.avb_encoder((D,), latent, args.noise_dim or latent, hidden)
    if kind == "basis_vae" and not args.num_basis:
        raise SystemExit("basis_vae is the basis encoder trained as a VAE: give --num-basis.")
    cls = BasisVAE if kind == "basis_vae" else AVB
    return cls(encoder, decoder, blocks.avb_adversary((D,), latent, hidden), adaptive_contrast=kind != "avb",
               contrast_samples=args.contrast_samples, stop_moments=not args.moment_gradient,
               t_steps=args.t_steps, seed=args.seed)


def train(model, kind, x_train, args):
    opts = [keras.optimizers.Adam(args.lr, beta_1=0.5) for _ in range(1 if kind == "vae" else 2)]
    lrs = [args.lr]
    if kind == "vae":
        model.compile(optimizer=opts[0])
    else:
        lrs = [args.lr * args.t_lr_ratio, args.lr]
        opts[0].learning_rate.assign(lrs[0])
        model.compile(T_optimizer=opts[0], vae_optimizer=opts[1])
    budget = Budget(opts, lrs, 60 * args.minutes, args.steps, alpha=args.lr_floor)
    rng = np.random.default_rng(args.seed)
    epochs = 0
    while not budget.expired():
        xb = (rng.uniform(size=x_train.shape) < x_train).astype("float32")  # dynamic binarisation
        model.fit(xb, batch_size=args.batch_size, epochs=1, verbose=0, callbacks=[budget])
        epochs += 1
    return budget.steps, epochs, time.monotonic() - budget.start


def load(path, split):
    x, _, _ = zdata.load_arrays(path, split)
    return x.reshape(len(x), D).astype("float32") / 255.0


def eval_subset(path, n_test):
    """The fixed evaluation images: n_test test images (seed 0), binarised once (seed 1)."""
    x_test = load(path, "test")
    idx = np.random.default_rng(0).permutation(len(x_test))[:n_test]
    return (np.random.default_rng(1).uniform(size=x_test.shape) < x_test).astype("float32")[idx]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", default="../shared/datasets/mnist.npz")
    p.add_argument("--minutes", type=float, default=4.0, help="training budget per model (the issue: <= 30)")
    p.add_argument("--steps", type=int, default=0,
                   help="a budget in steps instead (the learning rate decays over them); --minutes stays a cap")
    p.add_argument("--latents", default="8,32")
    p.add_argument("--models", default=",".join(MODELS), help=f"of {MODELS + DIAGNOSTICS}")
    p.add_argument("--vae-x-layers", type=int, default=0,
                   help="the VAE encoder's hidden layers (0: all of --hidden; 1: the basis encoder's depth)")
    p.add_argument("--hidden", default="300,300")
    p.add_argument("--noise-dim", type=int, default=0,
                   help="AVB encoder noise (per basis network with --num-basis); 0: the latent size")
    p.add_argument("--num-basis", type=int, default=0,
                   help="AVB: the authors' basis encoder with this many noise networks (AC then takes its "
                        "moments, one z per x); 0: the MLP on [features of x, eps]")
    p.add_argument("--noise-hidden", default="128,128,128", help="widths of each basis noise network")
    p.add_argument("--x-layers", type=int, default=1,
                   help="basis encoder: hidden layers on x before the z0 and a heads (0: all of --hidden, the "
                        "VAE encoder's depth; worse at this budget, T falls behind)")
    p.add_argument("--x-hidden", default="",
                   help="basis encoder: widths of its hidden layers on x, instead of --x-layers (the authors: 768)")
    p.add_argument("--moment-gradient", action="store_true",
                   help="AVB+AC: differentiate z_bar through q's moments (AVB(stop_moments=False)), so T's "
                        "error cannot move q's mean and variance")
    p.add_argument("--t-steps", type=int, default=1, help="AVB: T steps per (theta, phi) step")
    p.add_argument("--t-lr-ratio", type=float, default=1.0, help="T's learning rate over the encoder's "
                   "(the authors: 2e-4 / 1e-4 = 2)")
    p.add_argument("--batch-size", type=int, default=64, help="images per step (AVB+AC: each with k z's)")
    p.add_argument("--contrast-samples", type=int, default=4)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--lr-floor", type=float, default=0.1,
                   help="the cosine decay ends at this fraction of --lr (0: decay to zero)")
    p.add_argument("--n-test", type=int, default=500, help="size of the fixed, seeded test subset")
    p.add_argument("--ais-steps", type=int, default=300)
    p.add_argument("--ais-chains", type=int, default=4)
    p.add_argument("--ais-leapfrog", type=int, default=4)
    p.add_argument("--iwae-samples", type=int, default=1000, help="IWAE check for the VAE")
    p.add_argument("--eval-only", action="store_true", help="load the saved models instead of training")
    p.add_argument("--table-only", action="store_true", help="rewrite the table from the saved results (json)")
    p.add_argument("--cpu-note", default="2 shared CPU cores", help="how the runs shared the machine, for the table")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save", default="bench/out/avb_mnist")
    p.add_argument("--out", default="bench/results")
    args = p.parse_args()
    hidden = tuple(int(u) for u in args.hidden.split(","))
    save, out = Path(args.save), Path(args.out)
    save.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    x_train = load(args.data, "train")
    x_eval = eval_subset(args.data, args.n_test)
    ais_settings = {"num_steps": args.ais_steps, "num_chains": args.ais_chains,
                    "leapfrog_steps": args.ais_leapfrog, "schedule": "sigmoid"}
    runs = [(latent, kind) for latent in (int(v) for v in args.latents.split(","))
            for kind in args.models.split(",")]
    # Train everything first, then evaluate: the wall-clock budgets then share the
    # machine with nothing of ours.
    for latent, kind in [] if args.eval_only or args.table_only else runs:
        path = save / f"{kind}_z{latent}.keras"
        model = build(kind, latent, hidden, args)
        steps, epochs, seconds = train(model, kind, x_train, args)
        info = {"steps": steps, "model_steps": int(keras.ops.convert_to_numpy(model.optimizer.iterations)),
                "requested_steps": args.steps or None, "epochs": epochs, "train_minutes": round(seconds / 60, 2)}
        print(json.dumps({"model": kind, "latent": latent, **info}), flush=True)
        model.save(path)
        path.with_suffix(".json").write_text(json.dumps(info))
        keras.backend.clear_session()
    rows = json.loads((out / "avb_mnist.json").read_text()) if args.table_only else []
    for latent, kind in [] if args.table_only else runs:
        path = save / f"{kind}_z{latent}.keras"
        model = keras.saving.load_model(path)
        info = json.loads(path.with_suffix(".json").read_text())
        neg_elbo = float(model.evaluate(x_eval, batch_size=250, verbose=0, return_dict=True)["loss"])
        t0 = time.monotonic()
        ais, diag = ais_log_likelihood(model, x_eval, seed=2, batch_size=args.n_test,
                                       return_diagnostics=True, **ais_settings)
        row = {"model": kind, "latent": latent, **info, "neg_elbo": round(neg_elbo, 2),
               "ais_ll": round(float(ais.mean()), 2),
               "ais_se": round(float(ais.std() / math.sqrt(len(ais))), 2),
               "ais_acceptance": round(float(diag["acceptance_rate"].mean()), 3),
               "ais_minutes": round((time.monotonic() - t0) / 60, 2)}
        if kind == "vae" and args.iwae_samples:
            row["iwae_ll"] = round(float(iwae_log_likelihood(model, x_eval, num_samples=args.iwae_samples,
                                                             seed=3).mean()), 2)
        row["ais_per_image"] = [round(float(v), 3) for v in ais]
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if k != "ais_per_image"}), flush=True)
        (out / "avb_mnist.json").write_text(json.dumps(rows, indent=1))
    noise = args.noise_dim or "latent size"
    x_hidden = basis_x_hidden(hidden, args)
    encoder_text = (f"the authors' basis encoder, {args.num_basis} noise networks of {noise} noise units each, "
                    f"hidden layers {x_hidden} on x, AC with its moments (one z per x)" if args.num_basis else
                    f"MLP on [features of x, {noise} noise units], AC with {args.contrast_samples} z per x")
    budget_text = (f"a budget in steps, those of the steps column (at most {args.minutes:g} min)" if args.steps
                   else f"{args.minutes:g} min of training")
    lines = [
        ("Binarised MNIST (dynamic binarisation for training, one seeded draw for the test images); "
         f"MLPs {hidden}, Bernoulli decoder shared by design; AVB encoder: {encoder_text}; "
         f"VAE encoder: hidden layers {vae_x_hidden(hidden, args)}; "
         f"z_bar {'differentiated through' if args.moment_gradient else 'with stopped'} moments; "
         f"{args.t_steps} T step(s) per encoder-decoder step; "
         f"batch {args.batch_size}, Adam(lr {args.lr}, T's x{args.t_lr_ratio:g}, beta_1 0.5, "
         f"cosine decay to {args.lr_floor:g}x over the budget); {budget_text} each on "
         f"{keras.backend.backend()} ({args.cpu_note}), seed {args.seed}."),
        (f"Test log-likelihood in nats per image on a fixed subset of {args.n_test} test images (seed 0), by AIS: "
         f"{args.ais_steps} intermediate distributions (sigmoid schedule), {args.ais_chains} chains per image, "
         f"{args.ais_leapfrog} leapfrog steps per HMC transition, step size adapted to 65% acceptance. "
         "AIS is a stochastic lower bound: short anneals underestimate log p(x), the same for every model."),
        ("-ELBO: the model's test loss (AVB: reconstruction + E_q[T], an estimate). IWAE: the VAE's "
         f"{args.iwae_samples}-sample bound, a check on AIS (another lower bound). +-: standard error over images."),
        ("vs VAE: the paired difference of AIS log p(x) from the VAE's with the same latent size, over the "
         "same images (+- its standard error); positive is better than the VAE."),
        "",
        (f"{'latent':>6} {'model':<7} {'steps':>7} {'epochs':>6} {'-ELBO':>8} {'AIS log p(x)':>16} {'vs VAE':>14} "
         f"{'IWAE':>8} {'acc':>5}"),
    ]
    vae = {r["latent"]: np.array(r["ais_per_image"]) for r in rows if r["model"] == "vae"}
    for r in rows:
        iwae = f"{r['iwae_ll']:>8.2f}" if "iwae_ll" in r else f"{'':>8}"
        diff = f"{'':>14}"
        if r["model"] != "vae" and r["latent"] in vae:
            d = np.array(r["ais_per_image"]) - vae[r["latent"]]
            diff = f"{d.mean():>+8.2f} +-{d.std() / math.sqrt(len(d)):<4.2f}"
        lines.append(f"{r['latent']:>6} {r['model']:<7} {r.get('steps', 0):>7} {r.get('epochs', 0):>6} "
                     f"{r['neg_elbo']:>8.2f} {r['ais_ll']:>9.2f} +-{r['ais_se']:<4.2f} {diff} {iwae} "
                     f"{r['ais_acceptance']:>5.2f}")
    text = "\n".join(lines)
    print("\n" + text)
    (out / "avb_mnist.txt").write_text(text + "\n")


if __name__ == "__main__":
    main()
