"""Training speed and peak accelerator memory of every zoo model, per backend, XLA on and off.

Written to be run once, when a GPU machine is lent; it has NOT yet run on a GPU
(only a CPU smoke run, bench/results/gpu_cpu_smoke.txt) until someone records
its table in bench/results/gpu.txt.

What it measures. For each model below, on each Keras backend (tensorflow, jax,
torch), with `compile(jit_compile=True)` and `compile(jit_compile=False)`, one
worker process (the backend is fixed per process) trains with `model.fit` on one
fixed in-memory batch, repeated (`tf.data.Dataset.from_tensors(batch).repeat()`
and `steps_per_epoch`, as bench/throughput.py does), for --warmup steps and then
--steps timed steps. Each step is timed on its own in a callback that reads the
step's loss (which waits for the step on every backend); steps/s is
1 / median step time. Peak memory is the accelerator allocator's high-water mark
over the whole worker (compilation included): TensorFlow
`tf.config.experimental.get_memory_info('GPU:0')['peak']`, JAX
`jax.devices()[0].memory_stats()['peak_bytes_in_use']`, torch
`torch.cuda.max_memory_allocated()`; 'n/a' on CPU. The "dev" column says where
the worker's backend actually ran (gpu/cpu), so a backend that silently fell
back to the CPU shows. A worker that fails (out of memory, an XLA or
torch.compile error, a timeout) gives an error row; the run goes on.

Models, CIFAR-10-shaped (32, 32, 3) unless said, batch --batch (64):
  dcgan            GAN.dcgan((32,32,3)); data uniform in [-1, 1]
  cdcgan           GAN.dcgan((32,32,3), num_classes=10); (x, int labels 0..9)
  vae              VAE.larsen((32,32,3), latent_dim=128); data in [-1, 1]
  vaegan           VAEGAN.larsen((32,32,3), latent_dim=128); data in [-1, 1]
  avb              AVB.build_default((28,28,1), latent_dim=32, likelihood="bernoulli",
                   adaptive_contrast=True, contrast_samples=4); binary data in {0, 1}
  dshgan-pretrain  DSHGAN.build_default((32,32,3), num_classes=10, code_length=48),
  dshgan-hash      model.phase = "pretrain" / "hash"; (x, int labels, about half -1)
("dshgan" in --models means both phases.) Every model uses its default optimizers.

XLA. TensorFlow: jit_compile=False is a tf.function graph, True compiles the
step with XLA. torch: jit_compile=True is torch.compile (Inductor) of the step,
False is eager. JAX: "on" only. Keras's JAX trainer with jit_compile=False does
not wrap the step in jax.jit and dispatches every op on its own (each op still
an XLA computation), which is its debugging path, not an XLA-off mode; the
table says so in a note rather than timing it. On torch, Keras's step has
graph breaks, and dynamo hit its recompile limit (8) on some frames of both
models inspected on CPU (dcgan, vae), which then run eagerly: a torch "on" row measures
jit_compile=True as Keras gives it, not a whole-step graph. On CPU (torch
2.13), torch.compile failed for vae and vaegan (Inductor: "ValueRangeError:
Invalid ranges [0:-1]" lowering convolution_backward of the encoder's 5x5
stride-2 conv, after its spatial dims went dynamic): expect error rows there.

How to run it on a GPU (one command, a table at the end and in --out):

    python -m bench.gpu --steps 200            # all models, backends, xla on,off
    python -m bench.gpu --backends jax,torch --models dcgan,vaegan --out /tmp/part.txt

The result file is rewritten after every worker, so a run stopped early still
leaves the rows done so far. --worker-timeout (default 600 s) ends a stuck
worker with an error row.

Needs: keras, the zoo (whose `import zoo` imports TensorFlow, through zoo.data),
TensorFlow for tf.data (the workers fall back to a Python generator, and say so,
where TensorFlow is missing), and jax / torch with their CUDA builds. Non-TF
workers hide the GPU from TensorFlow so that it takes no GPU memory from them.
The H200 machines lent to this project have jax and torch (CUDA) but neither
keras nor TensorFlow, and a TensorFlow wheel is far over the 64 MiB that can be
carried there: as long as `import zoo` imports TensorFlow, this cannot run on
them (keras itself, with namex and optree, could be carried as wheels).

Run time, estimated (not measured on a GPU): 35 workers (7 model rows x
{tf on, tf off, jax on, torch on, torch off}). A worker spends ~10 s importing,
5-60 s compiling (XLA / jit; torch.compile up to a few minutes for the GAN
steps) and, at a few ms to ~20 ms a step for these sizes, 1-5 s on the 220
steps: roughly 15-25 minutes in all, torch.compile rows the most (the CPU
smoke run, 3 steps on 2 busy cores, took 17 min, 9.5 of them in
torch.compile). On a 15-minute lease with 10-minute commands, split it: e.g.
`--backends tensorflow` (14 workers, ~5-8 min), then `--backends jax,torch`
(21 workers, ~8-15 min), or leave torch.compile out (`--backends torch --xla
off`).

On a shared CPU machine, `--threads 1` (as in bench/throughput.py) keeps the
frameworks' thread pools from fighting the neighbours: here PyTorch's DCGAN step
took 2 s with 2 threads and 0.1 s with 1. Leave it unset on a GPU machine.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

BACKENDS = ["tensorflow", "jax", "torch"]
MODELS = ["dcgan", "cdcgan", "vae", "vaegan", "avb", "dshgan-pretrain", "dshgan-hash"]
OUT = Path(__file__).resolve().parent / "results" / "gpu.txt"
JAX_OFF_NOTE = ("jax off: not run; Keras on JAX with jit_compile=False skips jax.jit and "
                "runs every op on its own (its debugging path), not an XLA-off mode")


# -- the worker: one (backend, model, xla) per process -------------------------------------
def build(name, batch):
    """(model, data) for one model row; data is x or an (x, y) tuple of NumPy arrays."""
    import numpy as np

    from zoo.models import AVB, DSHGAN, GAN, VAE, VAEGAN

    rng = np.random.default_rng(0)
    cifar = rng.uniform(-1, 1, (batch, 32, 32, 3)).astype("float32")
    labels = rng.integers(0, 10, batch).astype("int32")
    if name == "dcgan":
        return GAN.dcgan((32, 32, 3), seed=0), cifar
    if name == "cdcgan":
        return GAN.dcgan((32, 32, 3), num_classes=10, seed=0), (cifar, labels)
    if name == "vae":
        return VAE.larsen((32, 32, 3), latent_dim=128, seed=0), cifar
    if name == "vaegan":
        return VAEGAN.larsen((32, 32, 3), latent_dim=128, seed=0), cifar
    if name == "avb":
        model = AVB.build_default((28, 28, 1), latent_dim=32, likelihood="bernoulli",
                                  adaptive_contrast=True, contrast_samples=4, seed=0)
        return model, (rng.uniform(0, 1, (batch, 28, 28, 1)) > 0.5).astype("float32")
    if name.startswith("dshgan-"):
        model = DSHGAN.build_default((32, 32, 3), num_classes=10, code_length=48, seed=0)
        model.phase = name.split("-", 1)[1]
        semi = np.where(rng.uniform(size=batch) < 0.5, -1, labels).astype("int32")
        semi[:2] = [0, 1]  # at least two labelled classes whatever the batch size
        return model, (cifar, semi)
    raise ValueError(f"unknown model {name!r}; one of {MODELS}")


def dataset(data):
    """One batch repeated: tf.data as bench/throughput.py, else a Python generator."""
    try:
        import tensorflow as tf
    except ImportError:
        def forever():
            while True:
                yield data
        return forever(), "generator"
    return tf.data.Dataset.from_tensors(data).repeat(), "tf.data"


def hide_gpu_from_tensorflow():
    """A jax/torch worker imports TF (tf.data, `import zoo`): keep it off the GPU."""
    try:
        import tensorflow as tf
    except ImportError:
        return
    try:
        tf.config.set_visible_devices([], "GPU")
    except RuntimeError:  # devices already initialised
        pass


def peak_memory(backend):
    """(device kind 'gpu'/'cpu', peak bytes or None)."""
    if backend == "tensorflow":
        import tensorflow as tf

        if not tf.config.list_logical_devices("GPU"):
            return "cpu", None
        return "gpu", tf.config.experimental.get_memory_info("GPU:0")["peak"]
    if backend == "jax":
        import jax

        dev = jax.devices()[0]
        stats = dev.memory_stats() if dev.platform != "cpu" else None
        return dev.platform, (stats or {}).get("peak_bytes_in_use")
    import torch

    if not torch.cuda.is_available():
        return "cpu", None
    return "gpu", torch.cuda.max_memory_allocated()


def limit_threads(n):
    """Cap every framework's intra-op threads at n (a CPU smoke run on a shared
    machine: more runnable threads than cores make every parallel kernel wait,
    PyTorch's 20x here). Called before any framework is imported."""
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(n)
    os.environ["TF_NUM_INTRAOP_THREADS"] = os.environ["TF_NUM_INTEROP_THREADS"] = str(n)
    if n == 1:
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false").strip()
    if os.environ["KERAS_BACKEND"] == "torch":
        import torch

        torch.set_num_threads(n)
    try:
        import tensorflow as tf
    except ImportError:
        return
    tf.config.threading.set_intra_op_parallelism_threads(n)
    tf.config.threading.set_inter_op_parallelism_threads(n)


def worker(name, xla, steps, warmup, batch, threads=None):
    backend = os.environ["KERAS_BACKEND"]
    if threads:
        limit_threads(threads)
    if backend != "tensorflow":
        hide_gpu_from_tensorflow()
    import keras

    keras.utils.set_random_seed(0)
    model, data = build(name, batch)
    model.compile(jit_compile=xla)
    ds, pipeline = dataset(data)
    stamps = []

    class Stamp(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            float(logs["loss"])  # waits for this step's result
            stamps.append(time.perf_counter())

    t0 = time.perf_counter()
    model.fit(ds, steps_per_epoch=warmup + steps + 1, epochs=1, verbose=0, callbacks=[Stamp()])
    fit_s = time.perf_counter() - t0
    secs = [b - a for a, b in zip(stamps[warmup:], stamps[warmup + 1:])]
    dev, peak = peak_memory(backend)
    return {"step_seconds": secs, "peak_bytes": peak, "device": dev, "pipeline": pipeline,
            "first_step_s": stamps[0] - t0, "fit_s": fit_s, "steps_asked": warmup + steps + 1,
            "model_steps": int(keras.ops.convert_to_numpy(model.optimizer.iterations))}


# -- the parent ------------------------------------------------------------------------------
def device_name():
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30, check=False)
        names = [n.strip() for n in out.stdout.splitlines() if n.strip()]
        if out.returncode == 0 and names:
            return ", ".join(names)
    except (OSError, subprocess.SubprocessError):
        pass
    return "cpu"


def last_error(text):
    """The most telling line of a failed worker's output: its exception, if any."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for ln in reversed(lines):
        if ln.split(":")[0].endswith(("Error", "Exception", "error")) or "Error:" in ln:
            return ln
    return lines[-1] if lines else "no output"


def run_one(backend, name, xla, args):
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    cmd = [sys.executable, "-m", "bench.gpu", "--worker", name, "--xla", xla,
           "--steps", str(args.steps), "--warmup", str(args.warmup), "--batch", str(args.batch)]
    cmd += ["--threads", str(args.threads)] if args.threads else []
    root = Path(__file__).resolve().parent.parent
    start = time.perf_counter()
    try:
        out = subprocess.run(cmd, env=env, cwd=root, capture_output=True, text=True,
                             timeout=args.worker_timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {args.worker_timeout} s", "wall_s": time.perf_counter() - start}
    wall = time.perf_counter() - start
    for line in reversed(out.stdout.strip().splitlines()):
        if line.startswith("{"):
            res = json.loads(line)
            res["wall_s"] = wall
            return res
    tail = (out.stderr or "") + (out.stdout or "")
    return {"error": f"exit {out.returncode}: {last_error(tail)}", "wall_s": wall, "log": tail[-4000:]}


def row(backend, name, xla, res):
    if "error" in res:
        return [name, backend, xla, "error", "-", "-", "-", f"{res['wall_s']:.0f}"]
    secs = res["step_seconds"]
    peak = "n/a" if res["peak_bytes"] is None else f"{res['peak_bytes'] / 2**20:.0f}"
    ran = f"{res.get('model_steps', '?')}/{res.get('steps_asked', '?')}"
    return [name, backend, xla, f"{1 / statistics.median(secs):.2f}", peak, res["device"], ran,
            f"{res['wall_s']:.0f}"]


def render(rows, errors, notes, header):
    # "steps run": the model's own optimizer.iterations / the steps fit was asked for.
    cols = ["model", "backend", "xla", "steps/s", "peak MiB", "dev", "steps run", "wall s"]
    widths = [max(len(str(r[i])) for r in [cols] + rows) for i in range(len(cols))]

    def fmt(r):
        return "  ".join(str(v).ljust(w) if i < 3 or i == 5 else str(v).rjust(w)
                         for i, (v, w) in enumerate(zip(r, widths)))

    lines = header + ["", fmt(cols), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows]
    if errors:
        lines += ["", "errors:"] + [f"  {e}" for e in errors]
    if notes:
        lines += ["", "notes:"] + [f"  {n}" for n in notes]
    return "\n".join(lines) + "\n"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--backends", default=",".join(BACKENDS))
    p.add_argument("--models", default=",".join(MODELS), help=f"from {MODELS}; 'dshgan' = both phases")
    p.add_argument("--xla", default="on,off", help="on, off or on,off")
    p.add_argument("--out", default=str(OUT))
    p.add_argument("--worker-timeout", type=int, default=600, help="seconds before a worker is ended")
    p.add_argument("--threads", type=int, default=None,
                   help="cap every framework's CPU threads (CPU smoke runs; default: its own)")
    p.add_argument("--note", default="", help="a line for the result file's header")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()

    if args.worker:
        try:
            res = worker(args.worker, args.xla == "on", args.steps, args.warmup, args.batch, args.threads)
        except Exception as e:  # noqa: BLE001 - reported as an error row by the parent
            import traceback

            traceback.print_exc()
            res = {"error": f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"[:300]}
        print(json.dumps(res), flush=True)
        return

    models = [m for name in args.models.split(",")
              for m in (["dshgan-pretrain", "dshgan-hash"] if name == "dshgan" else [name])]
    unknown = [m for m in models if m not in MODELS] + [b for b in args.backends.split(",") if b not in BACKENDS]
    if unknown:
        p.error(f"unknown {unknown}; models {MODELS}, backends {BACKENDS}")
    xlas = args.xla.split(",")
    device = device_name()
    started = time.strftime("%Y-%m-%d %H:%M")
    header = [
        (f"bench/gpu.py on {device}, {started}: batch {args.batch}, {args.warmup} warm-up + "
         f"{args.steps} timed steps of model.fit on one repeated batch; steps/s = 1 / median "
         f"step time; peak MiB = the backend's accelerator allocator peak (n/a on CPU); "
         f"dev = where the worker ran; steps run = the model's optimizer.iterations / the "
         f"steps asked; wall s = the worker process's whole time."),
        "command: python -m bench.gpu " + " ".join(sys.argv[1:]),
    ]
    header += [f"CPU threads capped at {args.threads} per framework (--threads)"] if args.threads else []
    header += [args.note] if args.note else []
    rows, errors, notes = [], [], []
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for name in models:
        for backend in args.backends.split(","):
            for xla in xlas:
                if backend == "jax" and xla == "off":
                    if JAX_OFF_NOTE not in notes:
                        notes.append(JAX_OFF_NOTE)
                    continue
                res = run_one(backend, name, xla, args)
                rows.append(row(backend, name, xla, res))
                if "error" in res:
                    errors.append(f"{name}/{backend}/xla {xla}: {res['error']}")
                    print(f"{name:<16} {backend:<10} xla {xla:<3}  ERROR {res['error']}", flush=True)
                else:
                    if res["pipeline"] != "tf.data":
                        note = f"{backend}: no TensorFlow, data fed by a Python generator"
                        if note not in notes:
                            notes.append(note)
                    print(f"{name:<16} {backend:<10} xla {xla:<3}  {rows[-1][3]:>8} steps/s  "
                          f"peak {rows[-1][4]} MiB  on {res['device']}  first step "
                          f"{res['first_step_s']:.1f} s, worker {res['wall_s']:.0f} s", flush=True)
                out.write_text(render(rows, errors, notes, header))  # partial results survive
    table = render(rows, errors, notes, header)
    out.write_text(table)
    print("\n" + table, end="")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
