"""Training throughput: DCGAN (or, with --model vaegan, VAE-GAN) on 28x28x1 (or, with --image 32, 32x32x3),
batch 64, steps per second, in float32 and mixed bfloat16.

Side by side in one run, each in its own process (the backend is fixed per
process), alternating over --rounds so that machine noise hits all alike:

- zoo/<backend>: `GAN.dcgan((28, 28, 1))` trained with `fit` on tensorflow, jax, torch;
  `+xla`: with `jit_compile=True`; `+speN`: with `steps_per_execution=N` (fit runs
  N steps per call; TensorFlow and JAX only, Keras refuses it on PyTorch);
- plain/tensorflow: the same Keras networks in a `tf.function` + `GradientTape`
  loop, as keras-io's DCGAN example does; `+loopN`: a `tf.function` that runs N
  such steps in a loop per call (the plain counterpart of `steps_per_execution=N`,
  to which alone `zoo/tensorflow+speN` is compared);
- plain/torch: the same architecture as `torch.nn` modules and `torch.optim.Adam`,
  as PyTorch-GAN does (NCHW, the layout torch prefers), with Keras's batch-norm
  settings (momentum 0.99, i.e. torch's 0.01, and epsilon 1e-3) and Adam epsilon.

Every loop does the same work per step: sample z, one D step on real and fake
(one D call on both), fresh z, one G step (non-saturating loss). Data is one
fixed batch, so only training is timed. Each step is timed on its own (ended
by reading its loss, which waits for it on every backend) and the figure is
1 / median step time: the machines here are shared, and a median ignores the
steps another tenant slowed down, where a total time does not. With
steps_per_execution N (or a plain loop of N), one time is taken per N steps and
counts N times.

Ratios. Each round runs every runner once, one after another, so the machine's
load at that moment hits the runners of one round alike. The zoo/plain ratios
are taken within each round (zoo/tensorflow : plain/tensorflow,
zoo/tensorflow+speN : plain/tensorflow+loopN, zoo/torch : plain/torch, and the
fastest zoo runner : the fastest plain one) and the figure is the median of the
per-round ratios, printed with each round's; a steps/s figure is the median of
its rounds'. A pooled ratio (all rounds' steps in one median) would be carried by
whichever round was disturbed most. Each worker also reports the steps it ran:
the model's own `optimizer.iterations` for the zoo, the loop's count for the
plain loops, beside the steps asked.
The machine's load average is printed with each result: on a shared 2-core
machine a busy neighbour slows the multi-threaded kernels of every runner, and
PyTorch's most of all.

`--threads N` caps every framework's intra-op threads at N (PyTorch's OpenMP
pool, TensorFlow's thread pools, XLA's multi-threaded Eigen off when N is 1); the
default leaves each framework its own setting. When more threads are runnable
than there are cores, every parallel kernel waits for its threads to be
scheduled, so a run with N = 1 measures the loops rather than the neighbours.

`--model vaegan`: VAE-GAN with the MNIST recipe's nets (Larsen et al.'s at width
0.25, 64-d latent; no equilibrium gates on either side): zoo/<backend> takes the
three players' gradients from one forward pass (`update_many`), `+3pass` makes one
pass per player (`one_forward=False`), and plain/tensorflow is a `tf.function` with
one persistent `GradientTape` over the same networks and losses (the authors'
and keras-io's way of taking several gradients from one pass), compared with
zoo/tensorflow.

`+bf16` on any runner trains in mixed bfloat16 (bfloat16 compute, float32
weights and losses): the zoo and plain/tensorflow under Keras's "mixed_bfloat16"
policy, plain/torch under `torch.autocast("cpu", torch.bfloat16)`; `+cl` on
plain/torch keeps activations and weights channels-last (NHWC, oneDNN's preferred
layout for bfloat16 on x86). Every `+bf16` runner is also compared, per round,
with the same runner in float32: #22's target is 2x on CPUs with bfloat16 units
(avx512_bf16 / amx_bf16, printed in the `cpu:` line).

`--compare-with DIR` also runs every zoo runner with the `zoo` package imported
from DIR (e.g. a `git worktree` of an earlier commit), labelled `DIR-name:zoo/...`:
before and after a change, side by side in one run.

    python bench/throughput.py --steps 100 --rounds 3
"""

import argparse
import io
import json
import os
import shlex
import statistics
import subprocess
import sys
import time

# The checkout's zoo when it is not installed; appended, so that --compare-with's
# PYTHONPATH (another tree's zoo) still comes first.
sys.path.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from provenance import cpu_description, git_commit, write_results  # noqa: E402  (bench/provenance.py)

BATCH, LATENT = 64, 100
SHAPES = {28: (28, 28, 1), 32: (32, 32, 3)}
TIMED_WINDOW = None  # (start, stop) called around _time_steps's timed steps
RUNNERS = {
    "dcgan": ["zoo/tensorflow", "zoo/tensorflow+spe10", "zoo/tensorflow+xla", "zoo/jax", "zoo/torch",
              "plain/tensorflow", "plain/tensorflow+loop10", "plain/torch"],
    "vaegan": ["zoo/tensorflow", "zoo/tensorflow+3pass", "zoo/jax", "zoo/torch", "plain/tensorflow"],
}
TITLES = {"dcgan": "DCGAN {}", "vaegan": "VAE-GAN {} (width 0.25, 64-d latent)"}
VAEGAN_LATENT, VAEGAN_WIDTH, VAEGAN_GAMMA = 64, 0.25, 1e-3


def _policy(bf16):
    import keras

    keras.mixed_precision.set_global_policy("mixed_bfloat16" if bf16 else "float32")


def zoo_model(model, shape, bf16=False, one_forward=True, **compile_kwargs):
    """The zoo's DCGAN or VAE-GAN, seeded and compiled with the benches' Adam."""
    import keras

    from zoo.models import GAN, VAEGAN

    keras.utils.set_random_seed(0)
    _policy(bf16)
    adam = lambda: keras.optimizers.Adam(2e-4, beta_1=0.5)  # noqa: E731
    if model == "vaegan":
        gan = VAEGAN.larsen(shape, latent_dim=VAEGAN_LATENT, width=VAEGAN_WIDTH, gamma=VAEGAN_GAMMA,
                            one_forward=one_forward, seed=0)
        opts = dict(enc_optimizer=adam(), dec_optimizer=adam(), dis_optimizer=adam())
    else:
        gan = GAN.dcgan(shape, latent_dim=LATENT, seed=0)
        opts = dict(d_optimizer=adam(), g_optimizer=adam())
    gan.compile(**opts, **compile_kwargs)
    return gan


def run_zoo(steps, warmup, jit_compile, steps_per_execution=1, model="dcgan", one_forward=True,
            shape=SHAPES[28], bf16=False):
    import keras
    import numpy as np
    import tensorflow as tf

    gan = zoo_model(model, shape, bf16, one_forward, jit_compile=jit_compile,
                    steps_per_execution=steps_per_execution)
    x = np.random.default_rng(0).uniform(-1, 1, (BATCH, *shape)).astype("float32")
    ds = tf.data.Dataset.from_tensors(x).repeat()
    stamps = []

    class Stamp(keras.callbacks.Callback):
        # Called once per execution (steps_per_execution steps).
        def on_train_batch_end(self, batch, logs=None):
            float(logs["loss"])  # waits for this execution's result
            stamps.append(time.perf_counter())

    k = steps_per_execution
    warm, timed = -(-warmup // k), -(-steps // k)
    asked = (warm + timed + 1) * k
    gan.fit(ds, steps_per_epoch=asked, epochs=1, verbose=0, callbacks=[Stamp()])
    ran = int(keras.ops.convert_to_numpy(gan.optimizer.iterations))
    return [dt / k for dt in np.diff(stamps[warm:]) for _ in range(k)], asked, ran


def run_plain_tf(steps, warmup, loop=1, shape=SHAPES[28], bf16=False):
    import keras
    import tensorflow as tf

    from zoo.models import blocks

    keras.utils.set_random_seed(0)
    _policy(bf16)
    G = blocks.dcgan_generator(shape, LATENT)
    D = blocks.dcgan_discriminator(shape)
    g_opt, d_opt = keras.optimizers.Adam(2e-4, beta_1=0.5), keras.optimizers.Adam(2e-4, beta_1=0.5)
    bce = keras.losses.BinaryCrossentropy(from_logits=True)

    @tf.function
    def train_step(real):
        z = tf.random.normal((BATCH, LATENT))
        fake = tf.cast(G(z, training=True), real.dtype)  # G gives bfloat16 under mixed_bfloat16; D casts back
        with tf.GradientTape() as tape:
            logits = D(tf.concat([real, fake], 0), training=True)
            labels = tf.concat([tf.ones((BATCH, 1)), tf.zeros((BATCH, 1))], 0)
            d_loss = bce(labels, tf.cast(logits, tf.float32))
        d_opt.apply_gradients(zip(tape.gradient(d_loss, D.trainable_weights), D.trainable_weights))
        z = tf.random.normal((BATCH, LATENT))
        with tf.GradientTape() as tape:
            g_loss = bce(tf.ones((BATCH, 1)), tf.cast(D(G(z, training=True), training=True), tf.float32))
        g_opt.apply_gradients(zip(tape.gradient(g_loss, G.trainable_weights), G.trainable_weights))
        return d_loss, g_loss

    real = tf.random.uniform((BATCH, *shape), -1, 1)
    if loop == 1:
        return _time_steps(lambda: float(train_step(real)[0]), steps, warmup)

    @tf.function
    def train_steps(real):  # `loop` steps per call, as steps_per_execution does
        d_loss = tf.constant(0.0)
        for _ in tf.range(loop):
            d_loss, _ = train_step(real)
        return d_loss

    k = loop
    secs, asked, ran = _time_steps(lambda: float(train_steps(real)), -(-steps // k), -(-warmup // k))
    return [dt / k for dt in secs for _ in range(k)], asked * k, ran * k


def run_plain_tf_vaegan(steps, warmup, shape=SHAPES[28], bf16=False):
    """VAE-GAN's three players in one tf.function: one forward pass, one persistent tape."""
    import keras
    import tensorflow as tf

    from zoo.models import blocks

    keras.utils.set_random_seed(0)
    _policy(bf16)
    E = blocks.gaussian_encoder(shape, VAEGAN_LATENT, VAEGAN_WIDTH)
    Dec = blocks.larsen_decoder(shape, VAEGAN_LATENT, width=VAEGAN_WIDTH)
    Dis = blocks.larsen_discriminator(shape, VAEGAN_WIDTH)
    opts = [keras.optimizers.Adam(2e-4, beta_1=0.5) for _ in range(3)]
    log_sigmoid = tf.math.log_sigmoid

    @tf.function
    def train_step(x):
        eps = tf.random.normal((BATCH, VAEGAN_LATENT))
        z_p = tf.random.normal((BATCH, VAEGAN_LATENT))
        with tf.GradientTape(persistent=True) as tape:
            mu, log_var = (tf.cast(t, tf.float32) for t in E(x, training=True))
            # Losses in float32, as the zoo's (Keras casts each net's input to its compute dtype).
            x_rec = tf.cast(Dec(mu + tf.exp(0.5 * log_var) * eps, training=True), tf.float32)
            x_p = tf.cast(Dec(z_p, training=True), tf.float32)
            logits, feats = (tf.cast(t, tf.float32) for t in Dis(tf.concat([x, x_rec, x_p], 0), training=True))
            l_x, l_rec, l_p = tf.split(logits, 3)
            f_x, f_rec, _ = tf.split(feats, 3)
            prior = tf.reduce_mean(0.5 * tf.reduce_sum(tf.square(mu) + tf.exp(log_var) - 1.0 - log_var, -1))
            llike = tf.reduce_mean(0.5 * tf.reduce_sum(tf.square(f_x - f_rec), -1))
            gan = tf.reduce_mean(log_sigmoid(l_x)) + tf.reduce_mean(log_sigmoid(-l_rec)) + tf.reduce_mean(
                log_sigmoid(-l_p))
            losses = [prior + llike,  # Enc
                      VAEGAN_GAMMA * llike - tf.reduce_mean(log_sigmoid(l_rec)) - tf.reduce_mean(log_sigmoid(l_p)),
                      -gan]  # Dis
        for loss, net, opt in zip(losses, (E, Dec, Dis), opts):
            opt.apply_gradients(zip(tape.gradient(loss, net.trainable_weights), net.trainable_weights))
        return losses[0]

    real = tf.random.uniform((BATCH, *shape), -1, 1)
    return _time_steps(lambda: float(train_step(real)), steps, warmup)


def _time_steps(step, steps, warmup):
    """(per-call seconds, calls asked, calls made) of `step`, after `warmup` calls."""
    ran = 0
    for _ in range(warmup):
        step()
        ran += 1
    if TIMED_WINDOW:  # bench/profile_step.py's profiler, around the timed steps only
        TIMED_WINDOW[0]()
    stamps = [time.perf_counter()]
    for _ in range(steps):
        step()
        ran += 1
        stamps.append(time.perf_counter())
    if TIMED_WINDOW:
        TIMED_WINDOW[1]()
    return [b - a for a, b in zip(stamps, stamps[1:])], warmup + steps, ran


def run_plain_torch(steps, warmup, shape=SHAPES[28], bf16=False, channels_last=False):
    import contextlib

    import torch
    from torch import nn

    from zoo.models.blocks import upsampling_plan

    torch.manual_seed(0)
    h0, w0, n = upsampling_plan(shape)
    channels, width = shape[-1], 64

    def bn(cls, c):  # Keras's BatchNormalization defaults
        return cls(c, eps=1e-3, momentum=0.01)

    class Generator(nn.Module):  # blocks.dcgan_generator's layers, NCHW
        def __init__(self):
            super().__init__()
            self.f = width * 2 ** (n - 1)
            self.fc = nn.Sequential(nn.Linear(LATENT, h0 * w0 * self.f, bias=False), bn(nn.BatchNorm1d, h0 * w0 * self.f),
                                    nn.ReLU())
            convs, f = [], self.f
            for _ in range(n - 1):
                convs += [nn.ConvTranspose2d(f, f // 2, 4, 2, 1, bias=False), bn(nn.BatchNorm2d, f // 2), nn.ReLU()]
                f //= 2
            self.conv = nn.Sequential(*convs, nn.ConvTranspose2d(f, channels, 4, 2, 1), nn.Tanh())

        def forward(self, z):
            h = self.fc(z).view(-1, self.f, h0, w0)
            return self.conv(h.contiguous(memory_format=torch.channels_last) if channels_last else h)

    d_layers, c = [], channels
    for i in range(n):  # blocks.dcgan_discriminator's
        d_layers += [nn.Conv2d(c, width * 2**i, 4, 2, 1), nn.LeakyReLU(0.2)]
        c = width * 2**i
    D = nn.Sequential(*d_layers, nn.Flatten(), nn.Linear(c * h0 * w0, 1))
    G = Generator()
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    G, D = G.to(memory_format=fmt), D.to(memory_format=fmt)
    g_opt = torch.optim.Adam(G.parameters(), 2e-4, betas=(0.5, 0.999), eps=1e-7)
    d_opt = torch.optim.Adam(D.parameters(), 2e-4, betas=(0.5, 0.999), eps=1e-7)
    bce = nn.BCEWithLogitsLoss()
    ones, zeros = torch.ones(BATCH, 1), torch.zeros(BATCH, 1)
    real = (torch.rand(BATCH, channels, *shape[:2]) * 2 - 1).contiguous(memory_format=fmt)
    # Mixed bfloat16 as torch's AMP does it: weights, optimizer and losses in float32.
    amp = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext

    def train_step():
        with amp():
            fake = G(torch.randn(BATCH, LATENT))
            logits = D(torch.cat([real, fake.detach().to(real.dtype)]))
        d_opt.zero_grad()
        d_loss = bce(logits.float(), torch.cat([ones, zeros]))
        d_loss.backward()
        d_opt.step()
        g_opt.zero_grad()
        with amp():
            g_logits = D(G(torch.randn(BATCH, LATENT)))
        g_loss = bce(g_logits.float(), ones)
        g_loss.backward()
        g_opt.step()
        return d_loss, g_loss

    return _time_steps(lambda: float(train_step()[0]), steps, warmup)


def backend_of(runner):
    return runner.split(":")[-1].split("/")[1].split("+")[0]


def limit_threads(n):
    """Cap intra-op threads at n; called before any framework is imported."""
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(n)
    os.environ["TF_NUM_INTRAOP_THREADS"] = os.environ["TF_NUM_INTEROP_THREADS"] = str(n)
    if n == 1:
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false").strip()


def worker(runner, steps, warmup, threads=None, model="dcgan", image=28):
    runner = runner.split(":")[-1]
    if threads:
        limit_threads(threads)
        if backend_of(runner) == "torch":
            import torch

            torch.set_num_threads(threads)
        if runner != "plain/torch":  # every other runner imports TensorFlow
            import tensorflow as tf

            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
    kind, spec = runner.split("/")
    backend, *flags = spec.split("+")
    shape, bf16 = SHAPES[image], "bf16" in flags
    if kind == "zoo":
        # "auto" is Keras's default: XLA on JAX (always) and on TensorFlow
        # (+xla); the plain TF loop is a tf.function without XLA, so
        # zoo/tensorflow runs without it too, like for like.
        spe = next((int(f[3:]) for f in flags if f.startswith("spe")), 1)
        jit = ("xla" in flags) if backend == "tensorflow" else "auto"
        return run_zoo(steps, warmup, jit_compile=jit, steps_per_execution=spe, model=model,
                       one_forward="3pass" not in flags, shape=shape, bf16=bf16)
    if model == "vaegan":
        return run_plain_tf_vaegan(steps, warmup, shape=shape, bf16=bf16)
    if backend == "tensorflow":
        loop = next((int(f[4:]) for f in flags if f.startswith("loop")), 1)
        return run_plain_tf(steps, warmup, loop, shape=shape, bf16=bf16)
    return run_plain_torch(steps, warmup, shape=shape, bf16=bf16, channels_last="cl" in flags)


def load_average():
    try:
        return float(open("/proc/loadavg").read().split()[0])
    except OSError:
        return float("nan")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--model", default="dcgan", choices=sorted(RUNNERS))
    p.add_argument("--image", type=int, default=28, choices=sorted(SHAPES),
                   help="28: 28x28x1 (MNIST's); 32: 32x32x3 (CIFAR-10's)")
    p.add_argument("--runners", default=None, help="comma-separated (default: every runner of --model)")
    p.add_argument("--threads", type=int, default=None,
                   help="cap every framework's intra-op threads (default: its own)")
    p.add_argument("--compare-with", default=None, metavar="DIR",
                   help="also run the zoo runners with the zoo package from DIR")
    p.add_argument("--out", default=None, metavar="FILE",
                   help="also write what it prints to FILE (atomically, when the run ends)")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.out and not args.worker:
        return _written_to(args.out, lambda: run(args))
    run(args)


class _Tee:
    def __init__(self, *streams):
        self.streams = streams

    def write(self, text):
        for s in self.streams:
            s.write(text)

    def flush(self):
        for s in self.streams:
            s.flush()


def _written_to(path, fn):
    """Run fn with stdout also kept, and write what it printed to path once fn
    returns (atomically): a cut-off run leaves no half a results file."""
    kept = io.StringIO()
    stdout, sys.stdout = sys.stdout, _Tee(sys.stdout, kept)
    try:
        fn()
    finally:
        sys.stdout = stdout
    print(f"wrote {write_results(path, kept.getvalue())}")


def run(args):
    if args.worker:
        secs, asked, ran = worker(args.worker, args.steps, args.warmup, args.threads, args.model, args.image)
        print(json.dumps({"step_seconds": secs, "steps_asked": asked, "steps_run": ran}))
        return

    runners = args.runners.split(",") if args.runners else RUNNERS[args.model]
    trees = {}
    if args.compare_with:
        label = os.path.basename(os.path.normpath(args.compare_with))
        trees = {f"{label}:{r}": os.path.abspath(args.compare_with) for r in runners if r.startswith("zoo/")}
        runners = [x for r in runners for x in ([f"{label}:{r}"] if r.startswith("zoo/") else []) + [r]]
    width = max(len(r) for r in runners)
    print("command: python " + " ".join(shlex.quote(a) for a in sys.argv), flush=True)
    print(f"commit: {git_commit(__file__)}", flush=True)
    print(f"cpu: {cpu_description()}", flush=True)  # bf16 speed-ups need avx512_bf16 / amx_bf16
    per_round = []  # per round: runner -> steps/s
    loads = []
    for rnd in range(args.rounds):
        speeds = {}
        for r in runners:
            env = dict(os.environ, KERAS_BACKEND=backend_of(r), TF_CPP_MIN_LOG_LEVEL="3")
            if r in trees:
                env["PYTHONPATH"] = os.pathsep.join([trees[r], env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
            before = load_average()
            cmd = [sys.executable, __file__, "--worker", r, "--steps", str(args.steps), "--warmup", str(args.warmup),
                   "--model", args.model, "--image", str(args.image)]
            out = subprocess.run(
                cmd + (["--threads", str(args.threads)] if args.threads else []),
                env=env, capture_output=True, text=True,
            )
            if out.returncode:
                sys.exit(f"runner {r} failed (exit {out.returncode}):\n{out.stderr[-3000:]}")
            loads += [before, load_average()]
            res = json.loads(out.stdout.strip().splitlines()[-1])
            secs = res["step_seconds"]
            speeds[r] = 1 / statistics.median(secs)
            print(f"round {rnd + 1} {r:<{width}} {speeds[r]:6.2f} steps/s "
                  f"(mean {len(secs) / sum(secs):6.2f}; steps asked {res['steps_asked']}, "
                  f"run {res['steps_run']} by the {'model' if 'zoo/' in r else 'loop'}'s count)  "
                  f"load {loads[-2]:.1f}-{loads[-1]:.1f}", flush=True)
        per_round.append(speeds)

    shape = "x".join(map(str, SHAPES[args.image]))
    print(f"\n{TITLES[args.model].format(shape)}, batch {BATCH}: steps/s = 1 / median step time in a round, median over "
          f"{args.rounds} interleaved rounds x {args.steps} timed steps, "
          f"{f'{args.threads} thread(s) per framework' if args.threads else 'default threads'}; "
          f"load average {min(loads):.1f}-{max(loads):.1f} (median {statistics.median(loads):.1f}) on {os.cpu_count()} CPUs")
    for r in runners:
        rounds = [s[r] for s in per_round]
        print(f"  {r:<{width}} {statistics.median(rounds):6.2f}   rounds: " + ", ".join(f"{v:.2f}" for v in rounds))
    for prefix in sorted({r.rsplit("zoo/", 1)[0] for r in runners if "zoo/" in r}, key=len):
        _ratios(prefix, per_round)
    _precision_ratios(per_round)


def counterpart(zoo_runner):
    """The plain loop a zoo runner is compared with, or None: the same framework
    and the same steps per call (speN <-> loopN); XLA and JAX have none."""
    backend, *flags = zoo_runner.split("zoo/", 1)[1].split("+")
    bf16 = "+bf16" if "bf16" in flags else ""
    flags = [f for f in flags if f != "bf16"]
    spe = [f for f in flags if f.startswith("spe")]
    if backend == "tensorflow" and not [f for f in flags if not f.startswith("spe")]:
        return "plain/tensorflow" + (f"+loop{spe[0][3:]}" if spe else "") + bf16
    if backend == "torch" and not flags:
        return "plain/torch" + bf16
    return None


def float32_of(runner):
    """The float32 runner a +bf16 one is compared with."""
    head, _, spec = runner.rpartition("/")
    return head + "/" + "+".join(f for f in spec.split("+") if f != "bf16")


def _ratios(prefix, per_round):
    def line(label, ratios, target):
        print(f"  {label}: median {statistics.median(ratios):.3f}x   rounds: "
              + ", ".join(f"{v:.3f}" for v in ratios) + f"   (target >= {target})")

    zoo = [r for r in per_round[0] if r.startswith(prefix + "zoo/")]
    plain = [r for r in per_round[0] if r.startswith("plain/")]
    if not zoo or not plain:
        return
    print()
    line(f"fastest {prefix}zoo runner / fastest plain loop, per round",
         [max(s[r] for r in zoo) / max(s[r] for r in plain) for s in per_round], 1.0)
    for r in zoo:
        own = counterpart(r)
        if own in per_round[0]:
            line(f"{r} / {own}", [s[r] / s[own] for s in per_round], 0.85)


def _baseline_of(runner, ran):
    """The float32 runner a +bf16 one is compared with: the same runner, or, when
    only the default layout ran in float32, that one (plain/torch+bf16+cl against
    plain/torch: what the layout and the precision gain together)."""
    for f32 in (float32_of(runner), float32_of(runner.replace("+cl", ""))):
        if f32 in ran:
            return f32
    return None


def _precision_ratios(per_round):
    pairs = [(r, _baseline_of(r, per_round[0])) for r in per_round[0] if "+bf16" in r]
    pairs = [(r, f32) for r, f32 in pairs if f32]
    if pairs:
        print()
    for r, f32 in pairs:
        ratios = [s[r] / s[f32] for s in per_round]
        print(f"  {r} / {f32}: median {statistics.median(ratios):.3f}x   rounds: "
              + ", ".join(f"{v:.3f}" for v in ratios) + "   (target >= 2.0 on CPUs with bfloat16 units)")




if __name__ == "__main__":
    main()
