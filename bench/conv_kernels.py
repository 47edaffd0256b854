"""One convolution, forward and backward, in TensorFlow, PyTorch and JAX, float32 and bfloat16.

    python bench/conv_kernels.py --rounds 3 --out bench/results/conv_kernels.txt

The kernel under every training step here: a 5x5 convolution, batch 64, 16x16,
128 -> 256 channels, "same" padding, its forward pass and both gradients (input
and filter) in one call: 3 x 2 x 64 x 16 x 16 x 128 x 256 x 25 = 80.5 GFLOP (a
multiply-add counted as 2). Each framework in its own process, interleaved
over --rounds; GFLOP/s from the median call time of --calls calls after a warm-up.

JAX runs once per XLA_FLAGS setting in `JAX_FLAGS` (XLA's CPU backend: Eigen
convolutions by default; oneDNN and XNNPACK are opt-in flags in some builds): if no
setting comes near TensorFlow's and PyTorch's oneDNN kernels, no user code that
calls `jax.lax.conv` can (#22.3).
"""

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import time

sys.path.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from provenance import cpu_description, git_commit, write_results  # noqa: E402

N, H, CIN, COUT, K = 64, 16, 128, 256, 5
FLOP = 3 * 2 * N * H * H * CIN * COUT * K * K  # forward + input grad + filter grad
JAX_FLAGS = {"jax": "", "jax+onednn": "--xla_cpu_use_onednn=true --xla_cpu_experimental_onednn_custom_call=true",
             "jax+xnnpack": "--xla_cpu_use_xnnpack=true"}


def time_calls(call, calls):
    call()
    call()
    secs = []
    for _ in range(calls):
        t0 = time.perf_counter()
        call()
        secs.append(time.perf_counter() - t0)
    return statistics.median(secs)


def worker(framework, dtype, calls):
    if framework == "tensorflow":
        import tensorflow as tf

        x = tf.Variable(tf.random.normal((N, H, H, CIN)), dtype=tf.float32)
        k = tf.Variable(tf.random.normal((K, K, CIN, COUT)) * 0.01)
        dt = tf.bfloat16 if dtype == "bfloat16" else tf.float32
        xs, ks = tf.cast(x, dt), tf.cast(k, dt)

        @tf.function
        def step(a, b):
            with tf.GradientTape() as tape:
                tape.watch([a, b])
                y = tf.nn.conv2d(a, b, 1, "SAME")
                loss = tf.reduce_sum(y)
            return tape.gradient(loss, [a, b])

        return time_calls(lambda: [g.numpy() for g in step(xs, ks)], calls)
    if framework == "torch":
        import torch

        dt = torch.bfloat16 if dtype == "bfloat16" else torch.float32
        x = torch.randn(N, CIN, H, H, dtype=dt, requires_grad=True)
        k = (torch.randn(COUT, CIN, K, K) * 0.01).to(dt).requires_grad_()

        def step():
            y = torch.nn.functional.conv2d(x, k, padding="same")
            return torch.autograd.grad(y.sum(), [x, k])

        return time_calls(step, calls)
    import jax
    import jax.numpy as jnp

    dt = jnp.bfloat16 if dtype == "bfloat16" else jnp.float32
    x = jax.random.normal(jax.random.key(0), (N, H, H, CIN)).astype(dt)
    k = (jax.random.normal(jax.random.key(1), (K, K, CIN, COUT)) * 0.01).astype(dt)

    def loss(a, b):
        y = jax.lax.conv_general_dilated(a, b, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
        return jnp.sum(y.astype(jnp.float32))

    grad = jax.jit(jax.grad(loss, argnums=(0, 1)))
    return time_calls(lambda: jax.block_until_ready(grad(x, k)), calls)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--calls", type=int, default=10)
    p.add_argument("--out", default=None)
    p.add_argument("--worker", nargs=2, default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        print(json.dumps({"seconds": worker(args.worker[0].split("+")[0], args.worker[1], args.calls)}))
        return
    runners = [(f, d) for f in ["tensorflow", "torch", *JAX_FLAGS] for d in ("float32", "bfloat16")]
    lines = [f"command: python {' '.join(shlex.quote(a) for a in sys.argv)}", f"commit: {git_commit(__file__)}",
             f"cpu: {cpu_description()}",
             f"5x5 conv, batch {N}, {H}x{H}, {CIN} -> {COUT} channels, forward + both gradients "
             f"({FLOP / 1e9:.1f} GFLOP a call); GFLOP/s from the median of {args.calls} calls, "
             f"{args.rounds} interleaved rounds; default threads"]
    print("\n".join(lines), flush=True)
    rates = {r: [] for r in runners}
    for rnd in range(args.rounds):
        for f, d in runners:
            env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", XLA_FLAGS=JAX_FLAGS.get(f, os.environ.get("XLA_FLAGS", "")))
            out = subprocess.run([sys.executable, __file__, "--worker", f, d, "--calls", str(args.calls)],
                                 env=env, capture_output=True, text=True)
            if out.returncode:
                sys.exit(f"{f} {d} failed:\n{out.stderr[-2000:]}")
            rates[f, d].append(FLOP / json.loads(out.stdout.strip().splitlines()[-1])["seconds"] / 1e9)
            line = f"round {rnd + 1} {f:<12} {d:<9} {rates[f, d][-1]:7.0f} GFLOP/s"
            print(line, flush=True)
            lines.append(line)
    lines.append("")
    lines.append(f"{'framework':<12} {'float32':>8} {'bfloat16':>9} {'bf16/f32':>9} {'f32 / TF f32':>13}   (medians of rounds; ratios per round, median)")
    tf32 = rates["tensorflow", "float32"]
    for f in ["tensorflow", "torch", *JAX_FLAGS]:
        a, b = rates[f, "float32"], rates[f, "bfloat16"]
        lines.append(f"{f:<12} {statistics.median(a):8.0f} {statistics.median(b):9.0f} "
                     f"{statistics.median([y / x for x, y in zip(a, b)]):9.2f} "
                     f"{statistics.median([x / t for x, t in zip(a, tf32)]):13.2f}")
    print("\n".join(lines[-(len(JAX_FLAGS) + 4):]))
    if args.out:
        text = "\n".join(lines) + "\n"
        print(f"wrote {write_results(args.out, text)}")


if __name__ == "__main__":
    main()
