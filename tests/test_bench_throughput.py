"""bench/throughput.py's and bench/profile_step.py's bookkeeping: which runner is
compared with which, and which op counts in which group (#22's ratios rest on it)."""

import os
import sys

import pytest

sys.path.append(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench"))

import profile_step  # noqa: E402
import throughput  # noqa: E402


@pytest.mark.parametrize("zoo, plain", [
    ("zoo/tensorflow", "plain/tensorflow"),
    ("zoo/tensorflow+bf16", "plain/tensorflow+bf16"),
    ("zoo/tensorflow+spe10+bf16", "plain/tensorflow+loop10+bf16"),
    ("zoo/torch+bf16", "plain/torch+bf16"),
    ("wt:zoo/torch", "plain/torch"),
    # No plain counterpart: XLA, JAX, VAE-GAN's three passes.
    ("zoo/tensorflow+xla", None), ("zoo/jax+bf16", None), ("zoo/tensorflow+3pass", None),
])
def test_each_zoo_runner_is_compared_with_the_plain_loop_of_its_framework_and_precision(zoo, plain):
    assert throughput.counterpart(zoo) == plain


def test_a_bfloat16_runner_is_compared_with_the_same_runner_in_float32(capsys):
    assert throughput.float32_of("plain/torch+bf16+cl") == "plain/torch+cl"
    assert throughput.float32_of("wt:zoo/torch+bf16") == "wt:zoo/torch"
    rounds = [{"zoo/torch": 2.0, "zoo/torch+bf16": 3.0, "plain/torch+bf16": 9.0},
              {"zoo/torch": 2.0, "zoo/torch+bf16": 5.0, "plain/torch+bf16": 9.0},
              {"zoo/torch": 4.0, "zoo/torch+bf16": 4.0, "plain/torch+bf16": 9.0}]
    throughput._precision_ratios(rounds)
    out = capsys.readouterr().out
    assert "zoo/torch+bf16 / zoo/torch: median 1.500x   rounds: 1.500, 2.500, 1.000" in out
    # Negative control: a bf16 runner whose float32 twin did not run gets no ratio.
    assert "plain/torch+bf16 /" not in out
    # Channels-last bf16 falls back to the default layout's float32 when only that ran.
    assert throughput._baseline_of("plain/torch+bf16+cl", {"plain/torch": 1.0}) == "plain/torch"
    assert throughput._baseline_of("plain/torch+bf16+cl", {"plain/torch+cl": 1.0, "plain/torch": 1.0}) == "plain/torch+cl"
    assert throughput._baseline_of("plain/torch+bf16", {"zoo/torch": 1.0}) is None


def test_a_results_file_appears_only_when_the_run_completes(tmp_path, capsys):
    path = tmp_path / "out.txt"
    throughput._written_to(str(path), lambda: print("figure 1.0"))
    assert path.read_text() == "figure 1.0\n"

    def broken():
        print("half a table")
        raise RuntimeError("cut off")

    with pytest.raises(RuntimeError):
        throughput._written_to(str(tmp_path / "cut.txt"), broken)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]  # neither cut.txt nor its .tmp


@pytest.mark.parametrize("op, group", [
    ("_MklNativeConv2DBackpropInput", "conv backward-input"),
    ("_MklNativeConv2DBackpropFilterWithBias", "conv backward-filter"),
    ("_MklNativeFusedConv2D", "conv forward"),
    ("aten::mkldnn_convolution", "conv forward"),
    ("aten::convolution_backward", "conv backward (torch: both)"),
    ("Cast", "cast / copy / layout"), ("aten::copy_", "cast / copy / layout"),
    ("AssignAddVariableOp", "optimizer updates"), ("aten::_foreach_mul_", "optimizer updates"),
    ("Mean", "reductions (batch norm, losses)"), ("aten::native_batch_norm", "reductions (batch norm, losses)"),
    ("LeakyReluGrad", "elementwise"), ("aten::mul", "elementwise"), ("_MklMatMul", "matmul"),
    ("NoOp", "other"),
])
def test_profiled_ops_fall_in_their_groups(op, group):
    assert profile_step.group_of(op) == group
