"""bench/dshgan_cifar10.py's protocol helpers: fewer labels, validation beside
test figures, and the merged table's spread over seeds (no training here)."""

import dataclasses
import json

import numpy as np
import pytest

from bench import dshgan_cifar10 as bench
from zoo.data import HashingSplit, validation_split


def toy_split(n_classes=4, per_class_train=20, seed=0):
    """x holds each image's own index, so an encoder can read the label off it."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(n_classes), 60)
    idx = rng.permutation(len(y))
    query, train = np.sort(idx[:40]), np.sort(idx[40:40 + n_classes * per_class_train])
    unlabelled = np.sort(idx[40 + n_classes * per_class_train:])
    database = rng.permutation(np.concatenate([train, unlabelled]))
    return HashingSplit(np.arange(len(y)), y, query, train, database, unlabelled, seed)


def label_codes(split, noise=0.0, seed=0):
    """Packed 8-bit codes: the label's one-hot bits, each flipped with prob. `noise`."""
    rng = np.random.default_rng(seed)

    def encode(ix):
        bits = np.eye(8, dtype=bool)[split.y[ix]]
        bits ^= rng.random(bits.shape) < noise
        return np.packbits(bits, axis=1)
    return encode


def test_fewer_labels_moves_the_rest_to_the_unlabelled_pool():
    split = toy_split()
    fewer = bench.fewer_labels(split, 5, seed=0)
    assert np.bincount(fewer.y[fewer.train]).tolist() == [5, 5, 5, 5]
    np.testing.assert_array_equal(fewer.query, split.query)
    np.testing.assert_array_equal(fewer.database, split.database)
    assert sorted(np.concatenate([fewer.train, fewer.unlabelled])) == sorted(
        np.concatenate([split.train, split.unlabelled]))
    with pytest.raises(ValueError, match="--labels-per-class 21"):
        bench.fewer_labels(split, 21)


def test_validation_figures_come_from_held_out_labels_and_score_the_codes():
    split = bench.fewer_labels(toy_split(), 10, seed=1)
    validation = validation_split(split, 2, seed=0)
    # The validation queries are labelled images the run does not train on, never test queries.
    assert not np.isin(validation.query, validation.train).any()
    assert not np.isin(validation.query, split.query).any()
    protocols = bench.Protocols(split, validation)
    perfect = protocols.figures(label_codes(split))
    assert perfect["val_map"] == pytest.approx(1.0) and perfect["map"] == pytest.approx(1.0)
    noisy = protocols.figures(label_codes(split, noise=0.4))  # control: worse codes score lower
    assert noisy["val_map"] < 0.8 and noisy["map"] < 0.8
    assert "val_map" not in bench.Protocols(split).figures(label_codes(split))


def test_merged_table_gives_the_spread_over_seeds_and_no_machine_paths(tmp_path):
    parts = []
    for seed, value in ((0, 0.50), (1, 0.56)):
        part = tmp_path / f"real_s{seed}"
        part.mkdir()
        args = {"seed": seed, "command": f"python -m bench.dshgan_cifar10 --seed {seed}", "commit": "abc",
                "out": str(part)}
        rows = [{"bits": 12, "method": "real triplets (no G)", "steps": 10, "minutes": 0.1,
                 "val_map": value + 0.02, "val_p_r2": 0.3, "map": value, "p_r2": 0.2, "seed": seed}]
        bench.write_table(part, ["header"], rows, {"args": args}, labelled=1000)
        parts.append(part)
    out = tmp_path / "merged"
    out.mkdir()
    bench.merge(out, parts)
    table = (out / "table.txt").read_text()
    assert "0.5300 +- 0.0300" in table and "0.5500 +- 0.0300" in table  # MAP, val MAP over 2 seeds
    assert "command: python -m bench.dshgan_cifar10 --merge" in table and "git commit: " in table
    merged = json.loads((out / "results.json").read_text())
    assert merged["command"].startswith("python -m bench.dshgan_cifar10 --merge")
    assert merged["runs"]["real_s1"]["command"].endswith("--seed 1")
    assert str(tmp_path) not in (parts[0] / "results.json").read_text()
    with pytest.raises(ValueError, match="different numbers of labels"):
        bench.write_table(parts[1], ["h"], [], {"args": {}}, labelled=5000)
        bench.merge(out, parts)


def test_both_protocols_come_from_one_encoding_of_the_shared_images():
    split = bench.fewer_labels(toy_split(), 10, seed=1)
    validation = validation_split(split, 2, seed=0)
    calls = []

    def encode(ix):  # deterministic, so one pass over every image must give the same figures
        calls.append(len(ix))
        return label_codes(split, noise=0.3)(np.arange(len(split.y)))[ix]

    once = bench.Protocols(split, validation).figures(encode)
    assert calls == [len(split.y)]
    # Control: a validation split holding its own copy of the images is encoded part by part.
    calls.clear()
    apart = bench.Protocols(split, dataclasses.replace(validation, x=validation.x.copy())).figures(encode)
    assert len(calls) == 4 and apart == pytest.approx(once)
    assert once["map"] < 0.9  # the noisy codes are not trivially perfect


STUB_PYTHON = r"""#!/usr/bin/env bash
# Stands in for python in bench/dshgan_table_cpu.sh: a row writes results.json, --merge a table.
[ "$1" = -c ] && exit 0
shift 2  # -m bench.dshgan_cifar10
args="$*"; out=${args##*--out }
if [[ " $* " == *" --merge "* ]]; then mkdir -p "$out" && echo "$*" > "$out/table.txt"; exit 0; fi
echo "$out" >> "$STUB_LOG"
sleep 0.5
[[ -n "${STUB_FAIL:-}" && "$*" == *"$STUB_FAIL"* ]] && exit 1
mkdir -p "$out" && echo {} > "$out/results.json"
"""


def run_table(tmp_path, **env):
    import os
    import subprocess
    stub = tmp_path / "python"
    stub.write_text(STUB_PYTHON)
    stub.chmod(0o755)
    env = {**os.environ, "PYTHON": str(stub), "RUN": str(tmp_path / "run"), "SEEDS": "0", "LABELS": "100",
           "JOBS": "1", "STUB_LOG": str(tmp_path / "rows.txt"), **env}
    return subprocess.Popen(["bash", "bench/dshgan_table_cpu.sh", str(tmp_path / "dest"), "1", "1"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_table_script_shares_rows_between_two_runs_and_redoes_only_missing_ones(tmp_path):
    first, second = run_table(tmp_path), run_table(tmp_path)
    outs = [p.communicate(timeout=60)[0] for p in (first, second)]
    assert [p.returncode for p in (first, second)] == [0, 0], outs
    rows = (tmp_path / "rows.txt").read_text().split()
    assert len(rows) == 4 and len(set(rows)) == 4  # dsh, real, cls, pixels: each trained once
    assert (tmp_path / "dest/labels1000/table.txt").exists()
    log = (tmp_path / "dest/labels1000/log.txt").read_text()
    assert "bash bench/dshgan_table_cpu.sh" in log and "git commit: " in log
    # A rerun after an interruption trains only the row whose results are missing.
    (tmp_path / "run/L100/cls_s0/results.json").unlink()
    (tmp_path / "rows.txt").unlink()
    rerun = run_table(tmp_path)
    assert rerun.wait(timeout=60) == 0
    assert [r.rsplit("/", 1)[-1] for r in (tmp_path / "rows.txt").read_text().split()] == ["cls_s0"]


def test_table_script_fails_on_a_row_without_results(tmp_path):
    proc = run_table(tmp_path, STUB_FAIL="--methods real")  # control: one row fails
    out = proc.communicate(timeout=60)[0]
    assert proc.returncode == 1 and "FAILED: L100.real_s0" in out
    assert not (tmp_path / "dest/labels1000/table.txt").exists()
