"""Data-parallel training: a step on two devices equals a step on one device
with the same global batch (TensorFlow: MirroredStrategy over two logical CPU
devices; JAX: keras.distribution.DataParallel over two host devices), and every
zoo model trains that way. Each backend runs tests/distributed_step.py in a
fresh process, since the devices are fixed when a backend starts."""

import json
import os
import socket
import subprocess
import sys

import keras
import numpy as np
import pytest

from tests.conftest import ROOT
from zoo.core import data_parallel

BACKEND = keras.backend.backend()

# Every model trains with SGD (tests/distributed_step.py says why not Adam).
# Equal up to float32 rounding: the two-device step sums the replicas' halves
# of the batch in another order. Seen after two SGD steps on weights of size
# ~1: VAE-GAN 6.9e-7 (TensorFlow) and 3.4e-7 (JAX), its gated GAN steps amplifying the first step's rounding;
# every other model <= 1.2e-7, one float32 ulp at 1. TOL = 1e-5 is 14x the
# largest. The negative control is measured in the same run: a two-device step
# that missed the 1/replicas loss scaling takes a step twice as long, so it
# differs from the one-device weights by about the one-device update (exactly,
# with SGD, after one step; checked: one device at twice the learning rate is
# 0.0228 away where the update is 0.0228). Every model's update here is
# >= 5.4e-3, over 500x TOL, and the test asks for >= 100x.
TOL = 1e-5
CONTROL = 100 * TOL  # a missing scaling must miss TOL by 100x at least
HOSTS_TOL = 1e-6  # two processes as two hosts, a GAN: seen 1.5e-8
EQUAL = ["gan", "dshgan_pretrain", "dshgan_hash", "avb", "vaegan", "vae"]
# VAE-GAN's and the VAE's nets have batch norm: tests/distributed_step.py
# runs them with Keras's synchronized batch norm on TensorFlow (statistics of
# the global batch; tf.distribute's default normalises over each replica's
# share, which moved the weights as far from the one-device step as the step
# itself, so no tolerance could tell it from a missing scaling); JAX's
# DataParallel compiles one program for the global batch, so there the
# default is the global batch's statistics already.
PER_REPLICA_BN = ["vaegan_per_replica_bn"]


# The per-replica code (loss scaling, rows of one noise draw, densified sparse
# gradients, the all-reduced gate) is TensorFlow's: every model runs there. JAX's
# DataParallel compiles one global program, so three models cover it (GAN,
# DSH-GAN's hash phase with its triplets, VAE-GAN's gate and batch norm) at half
# the compile time.
ON_BACKEND = {"tensorflow": EQUAL + PER_REPLICA_BN, "jax": ["gan", "dshgan_hash", "vaegan"]}


@pytest.fixture(scope="module")
def results():
    if BACKEND == "torch":
        pytest.skip("Keras's fit has no data parallelism on PyTorch (see the next test)")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT))
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2").strip()
    names = ON_BACKEND[BACKEND]
    # Two processes side by side (the machine has two cores; each mostly compiles).
    procs = [subprocess.Popen([sys.executable, "-m", "tests.distributed_step", *half], env=env,
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for half in (names[0::2], names[1::2])]
    results = {}
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=900)
        assert proc.returncode == 0, stderr[-3000:]
        results.update(json.loads(stdout.strip().splitlines()[-1]))
    return results


def _result(results, name):
    if name not in results:
        pytest.skip(f"{name}: run on TensorFlow only (see ON_BACKEND)")
    return results[name]


@pytest.mark.parametrize("name", EQUAL)
def test_two_devices_step_like_one(results, name):
    r = _result(results, name)
    assert r["finite"], r
    assert r["max_abs_diff"] <= TOL, r
    # The negative control: the step is long enough that a missing 1/replicas
    # scaling (a step twice as long) would fail the check above.
    assert r["max_abs_update"] >= CONTROL, r


@pytest.mark.parametrize("name", PER_REPLICA_BN)
def test_per_replica_batch_norm_trains_on_two_devices(results, name):
    # tf.distribute's default: each replica normalises over its own rows. Its
    # step is not the one-device step (see PER_REPLICA_BN), so only: it trains.
    r = _result(results, name)
    assert r["finite"], r
    assert r["max_abs_update"] >= CONTROL, r


def test_pytorch_says_it_has_no_data_parallel_fit():
    if BACKEND != "torch":
        with data_parallel() as engine:
            assert engine is not None
        return
    with pytest.raises(NotImplementedError, match="no data parallelism on the torch backend"):
        with data_parallel():
            pass


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for sock in socks:
        sock.bind(("127.0.0.1", 0))
    ports = [str(sock.getsockname()[1]) for sock in socks]
    for sock in socks:
        sock.close()
    return ports


def test_two_hosts_step_like_one_process(tmp_path):
    # JAX: two processes joined by keras.distribution.initialize; TensorFlow:
    # two workers of MultiWorkerMirroredStrategy (TF_CONFIG).
    if BACKEND == "torch":
        pytest.skip("Keras's fit has no data parallelism on PyTorch")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT))
    env.pop("XLA_FLAGS", None)
    env.pop("TF_CONFIG", None)
    ports = _free_ports(2)
    cmd = [sys.executable, "-m", "tests.multihost_step"]
    hosts = [subprocess.Popen(cmd + [str(i), *ports, str(tmp_path / f"h{i}.npz")], env=env, cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in (0, 1)]
    alone = subprocess.Popen(cmd + ["-1", *ports, str(tmp_path / "one.npz")], env=env, cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for h in [*hosts, alone]:
        _, err = h.communicate(timeout=600)
        assert h.returncode == 0, err[-3000:]
    h0, h1, one = (np.load(tmp_path / f) for f in ("h0.npz", "h1.npz", "one.npz"))
    assert int(h0["replicas"]) == 2 and int(one["replicas"]) == 1
    for k in [k for k in one.files if k.startswith("arr_")]:
        np.testing.assert_array_equal(h0[k], h1[k])  # the hosts agree exactly
        np.testing.assert_allclose(h0[k], one[k], atol=HOSTS_TOL, rtol=0)  # and with one process


