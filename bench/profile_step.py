"""Where a training step's time goes, per op, in float32 and in mixed bfloat16.

    python bench/profile_step.py --image 32 --steps 20
    python bench/profile_step.py --model vaegan --image 32 --steps 20

For each runner (bench/throughput.py's: the zoo's `fit` on TensorFlow and PyTorch,
and the plain loops of the same nets) and each precision, a process of its own
trains `--warmup` steps, then `--steps` steps under the framework's profiler:
TensorFlow's (`tf.profiler.experimental`, the host plane of its XSpace: the time
of each executed kernel, by op type) and PyTorch's (`torch.profiler`, self CPU time
by aten op). The table gives milliseconds per step for each op, float32 beside
bfloat16 and their ratio, and each op's group: convolutions (forward, and the
two backward kernels: input and filter; a transposed convolution's forward pass
is a backward-input kernel), matmuls, casts and copies, elementwise ops, the
optimizer's variable updates, batch norm's reductions. Profiling slows every op
alike, roughly; the step times it prints are the profiled ones, not speeds to
quote (bench/throughput.py measures those).

With one thread per framework the per-op times add up to the step (TensorFlow's
inter-op pool runs independent kernels side by side otherwise).
"""

import argparse
import collections
import glob
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import throughput as T  # noqa: E402  (bench/throughput.py: the same nets and loops)
from provenance import cpu_description, git_commit, write_results  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "profile_step"
RUNNERS = {"dcgan": ["zoo/tensorflow", "plain/tensorflow", "zoo/torch", "plain/torch"],
           "vaegan": ["zoo/tensorflow", "plain/tensorflow", "zoo/torch"]}

GROUPS = [  # (group, substrings of op names), first match wins
    ("conv backward-input", ("BackpropInput", "slow_conv_transpose")),
    ("conv backward-filter", ("BackpropFilter",)),
    ("conv backward (torch: both)", ("convolution_backward",)),
    ("conv forward", ("Conv2D", "convolution", "conv2d", "conv_transpose")),
    ("matmul", ("MatMul", "aten::mm", "aten::addmm", "aten::bmm", "aten::linear")),
    ("cast / copy / layout", ("Cast", "copy_", "_to_copy", "Transpose", "contiguous", "clone", "permute",
                              "Pad", "aten::pad", "constant_pad")),
    ("optimizer updates", ("Assign", "ResourceApply", "_foreach", "addcdiv", "addcmul", "lerp")),
    ("reductions (batch norm, losses)", ("Mean", "Sum", "aten::sum", "aten::mean", "batch_norm", "var",
                                         "FusedBatchNorm", "SquaredDifference", "Moments")),
    ("elementwise", ("Mul", "Add", "Sub", "Div", "Relu", "Tanh", "Sigmoid", "Sqrt", "Square", "Exp", "Log",
                     "Neg", "Pow", "Maximum", "Minimum", "Select", "aten::")),
]


def group_of(op):
    return next((g for g, keys in GROUPS if any(k in op for k in keys)), "other")


def _run(runner, model, shape, bf16, steps, warmup):
    """A function that runs `warmup` steps and then, inside `window` (start, stop),
    `steps` steps of the runner."""
    import numpy as np

    kind, backend = runner.split("/")
    if kind == "zoo":
        m = T.zoo_model(model, shape, bf16, jit_compile=False)

        def run(window):
            x = np.random.default_rng(0).uniform(-1, 1, (T.BATCH * max(steps, warmup), *shape)).astype("float32")
            m.fit(x[: T.BATCH * warmup], batch_size=T.BATCH, epochs=1, verbose=0, shuffle=False)
            window[0]()
            m.fit(x[: T.BATCH * steps], batch_size=T.BATCH, epochs=1, verbose=0, shuffle=False)
            window[1]()

        return run

    def run(window):  # the plain loops call the window around their timed steps
        T.TIMED_WINDOW = window
        if backend == "torch":
            T.run_plain_torch(steps, warmup, shape=shape, bf16=bf16)
        elif model == "vaegan":
            T.run_plain_tf_vaegan(steps, warmup, shape=shape, bf16=bf16)
        else:
            T.run_plain_tf(steps, warmup, shape=shape, bf16=bf16)

    return run


def profile_tf(run):
    import tensorflow as tf
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    clock = []
    with tempfile.TemporaryDirectory() as logdir:
        run((lambda: (tf.profiler.experimental.start(logdir), clock.append(time.perf_counter())),
             lambda: (clock.append(time.perf_counter()), tf.profiler.experimental.stop())))
        space = xplane_pb2.XSpace()
        space.ParseFromString(Path(glob.glob(f"{logdir}/**/*.xplane.pb", recursive=True)[-1]).read_bytes())
    ms, calls = collections.Counter(), collections.Counter()
    for plane in space.planes:
        if plane.name != "/host:CPU":
            continue
        for line in plane.lines:
            if not line.name.startswith("tf_"):  # kernels run on the tf_Compute / Eigen threads
                continue
            for e in line.events:
                name = plane.event_metadata[e.metadata_id].name
                op = name.rsplit(":", 1)[-1]
                # "layer/op:OpType" is a kernel; bare names and "...:Process" are the
                # executor's spans around kernels (counting them would count twice).
                if ":" in name and op != "Process":
                    ms[op] += e.duration_ps / 1e9
                    calls[op] += 1
    return ms, calls, clock[1] - clock[0]


def profile_torch(run):
    from torch.profiler import ProfilerActivity, profile

    prof, clock = profile(activities=[ProfilerActivity.CPU]), []
    run((lambda: (prof.start(), clock.append(time.perf_counter())),
         lambda: (clock.append(time.perf_counter()), prof.stop())))
    ms, calls = collections.Counter(), collections.Counter()
    for ev in prof.key_averages():
        if ev.key.startswith("aten::") or ev.key.startswith("mkldnn"):
            ms[ev.key] += ev.self_cpu_time_total / 1e3
            calls[ev.key] += ev.count
    return ms, calls, clock[1] - clock[0]


def worker(runner, model, image, bf16, steps, warmup):
    run = _run(runner, model, T.SHAPES[image], bf16, steps, warmup)
    ms, calls, wall = (profile_torch if runner.endswith("torch") else profile_tf)(run)
    return {"ms_per_step": {k: v / steps for k, v in ms.items()}, "calls_per_step": {k: c / steps for k, c in calls.items()},
            "profiled_seconds_per_step": wall / steps}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="dcgan", choices=sorted(RUNNERS))
    p.add_argument("--image", type=int, default=32, choices=sorted(T.SHAPES))
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--threads", type=int, default=1, help="intra- and inter-op threads per framework")
    p.add_argument("--runners", default=None)
    p.add_argument("--top", type=int, default=12, help="ops listed per runner")
    p.add_argument("--out", default=None)
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--bf16", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        if args.threads:
            T.limit_threads(args.threads)
            if args.worker.endswith("torch"):
                import torch

                torch.set_num_threads(args.threads)
            else:
                import tensorflow as tf

                tf.config.threading.set_intra_op_parallelism_threads(args.threads)
                tf.config.threading.set_inter_op_parallelism_threads(args.threads)
        print(json.dumps(worker(args.worker, args.model, args.image, args.bf16, args.steps, args.warmup)))
        return

    shape = "x".join(map(str, T.SHAPES[args.image]))
    out = Path(args.out) if args.out else RESULTS / f"{args.model}_{shape}.txt"
    lines = [f"command: python {' '.join(shlex.quote(a) for a in sys.argv)}", f"commit: {git_commit(__file__)}",
             f"cpu: {cpu_description()}",
             f"{T.TITLES[args.model].format(shape)}, batch {T.BATCH}: {args.steps} profiled steps after "
             f"{args.warmup}, {args.threads} thread(s) per framework; ms per step of each op's own time "
             "(profiled: slower than unprofiled steps)", ""]
    print("\n".join(lines), flush=True)
    results = {}
    for runner in (args.runners.split(",") if args.runners else RUNNERS[args.model]):
        for bf16 in (False, True):
            env = dict(os.environ, KERAS_BACKEND=runner.split("/")[1], TF_CPP_MIN_LOG_LEVEL="3")
            cmd = [sys.executable, __file__, "--worker", runner, "--model", args.model, "--image", str(args.image),
                   "--steps", str(args.steps), "--warmup", str(args.warmup), "--threads", str(args.threads)]
            res = subprocess.run(cmd + (["--bf16"] if bf16 else []), env=env, capture_output=True, text=True)
            if res.returncode:
                sys.exit(f"{runner} ({'bf16' if bf16 else 'f32'}) failed:\n{res.stderr[-3000:]}")
            results[runner, bf16] = json.loads(res.stdout.strip().splitlines()[-1])
        block = table(runner, results[runner, False], results[runner, True], args.top)
        print("\n".join(block), flush=True)
        lines += block
    out.parent.mkdir(parents=True, exist_ok=True)
    write_results(out, "\n".join(lines) + "\n")
    raw = {f"{r} {'bf16' if b else 'f32'}": v for (r, b), v in results.items()}
    write_results(out.with_suffix(".json"),
                  json.dumps({"command": lines[0][9:], "commit": lines[1][8:], "runs": raw}, indent=1))
    print(f"wrote {out}")


def table(runner, f32, bf16, top):
    a, b = f32["ms_per_step"], bf16["ms_per_step"]
    total_a, total_b = sum(a.values()), sum(b.values())
    rows = [f"{runner}: profiled step {1e3 * f32['profiled_seconds_per_step']:.0f} ms (float32) vs "
            f"{1e3 * bf16['profiled_seconds_per_step']:.0f} ms (bfloat16), "
            f"{f32['profiled_seconds_per_step'] / bf16['profiled_seconds_per_step']:.2f}x; ops' own time "
            f"{total_a:.0f} vs {total_b:.0f} ms",
            f"  {'group':<34} {'f32 ms':>8} {'bf16 ms':>8} {'f32/bf16':>8}"]
    groups = collections.defaultdict(lambda: [0.0, 0.0])
    for k, v in a.items():
        groups[group_of(k)][0] += v
    for k, v in b.items():
        groups[group_of(k)][1] += v
    for g, (x, y) in sorted(groups.items(), key=lambda kv: -kv[1][1]):
        rows.append(f"  {g:<34} {x:8.1f} {y:8.1f} {x / y if y else float('inf'):8.2f}")
    rows.append(f"  {'op (top by bf16 time)':<34} {'f32 ms':>8} {'bf16 ms':>8} {'f32/bf16':>8} {'calls f32/bf16':>15}")
    ca, cb = f32["calls_per_step"], bf16["calls_per_step"]
    for k in sorted(set(a) | set(b), key=lambda k: -b.get(k, 0.0))[:top]:
        x, y = a.get(k, 0.0), b.get(k, 0.0)
        rows.append(f"  {k[:34]:<34} {x:8.1f} {y:8.1f} {x / y if y else float('inf'):8.2f} "
                    f"{ca.get(k, 0):7.0f}/{cb.get(k, 0):<7.0f}")
    return rows + [""]


if __name__ == "__main__":
    main()
