#!/usr/bin/env bash
# #24's table (point 3) on this 2-core CPU: the rows of bench/dshgan_table_gpu.sh
# (DSH-GAN with synthetic triplets, the real-only ablation, the classification
# stream alone, LSH / ITQ on pixels; the presets' hashing network and schedule;
# 5,000 and 1,000 labels; two seeds), at 12 bits by default and with a budget that
# fits one session: JOBS processes at a time (one thread each, so that two jobs
# keep two cores busy without stealing from each other), each row its own process.
#
#   bash bench/dshgan_table_cpu.sh DEST [PRETRAIN_STEPS HASH_STEPS]
#
# RUN=DIR keeps the rows' folders there (a temporary folder otherwise). With the same
# RUN, a second invocation (say on a core that became free) takes the rows nobody has
# claimed, and a rerun after an interruption redoes only the rows without results;
# the run that finds every row done merges the table.
#
# Sizing on an AMX machine (TensorFlow, one core): the real-only and classification
# rows about 0.4 s a hash step, DSH-GAN's hash phase about 5x that (2.1 s; G makes every
# triplet's positive and negative), G's pre-training about 0.3 s a step, and each
# row's scoring (60,000 images encoded once) about 2 minutes; at the defaults (1,500
# and 1,000 steps) the 12 trained rows take about 3.5 core-hours, so under two hours
# with JOBS=2; at 1,000 and 500 about 2.3 core-hours. Every figure is
# bench/dshgan_cifar10.py's, with
# its command and commit; choices read the validation columns only.
set -u
DEST=${1:-bench/results/dshgan_table_cpu}
PRE=${2:-1500} HASH=${3:-1000}
BITS=${BITS:-12} SEEDS=${SEEDS:-0 1} LABELS=${LABELS:-500 100} JOBS=${JOBS:-2}
RUN=${RUN:-$(mktemp -d)}
mkdir -p "$RUN"
mkdir -p "$DEST"
export KERAS_BACKEND=${KERAS_BACKEND:-tensorflow} PYTHONUNBUFFERED=1
export TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 OMP_NUM_THREADS=1
PY=${PYTHON:-python3}
# G keeps the zoo's DSH-GAN recipe's mode-seeking term (weight 1): without it G's
# pre-training collapses (intra-class diversity 0.185 of real images' after 1,000 steps
# at 12 bits, in an aborted first run of this table whose log was not kept), and the
# synthetic rows would test a collapsed G. Rows without G ignore it.
net="--hasher resnet --hasher-norm batch --hash-augment translation,flip --optimizer adamw_cosine
     --pretrain-steps $PRE --hash-steps $HASH --hash-labelled-fraction 1 --diversity-weight 1 --no-save"
# The recipe's classification weight, q/12 (recipes/train.py _dshgan): one code length a run.
[ "$(echo $BITS | wc -w)" = 1 ] || { echo "BITS: one code length a run (the class weight follows it)"; exit 1; }
net="$(echo $net) --class-weight $(awk "BEGIN {print $BITS / 12}")"
$PY -c "from zoo.data import cifar10_hashing_split as s; print(s())" || exit 1  # decode the JPEGs once

val_of() { [ "$1" -ge 500 ] && echo 50 || echo $(( $1 / 10 )); }  # a tenth of the labels

# One row: skipped when done or claimed by a live process, else claimed (a folder is
# renamed into place atomically, so two runs sharing RUN never train the same row) and run.
row() {
    local dir=$1 log=$2; shift 2
    [ -f "$dir/results.json" ] && return 0
    # The claim appears with its pid inside (a folder renamed into place), so a
    # second run never sees a claim without its owner.
    local mine
    mine=$(mktemp -d "$dir.claiming.XXXXXX") && echo $$ > "$mine/pid"
    if ! mv -T "$mine" "$dir.claim" 2>/dev/null; then
        # Its owner still at it, or done meanwhile (looked at after the owner is seen
        # dead: an owner writes its results before it exits): not ours.
        if kill -0 "$(cat "$dir.claim/pid" 2>/dev/null)" 2>/dev/null || [ -f "$dir/results.json" ]; then
            rm -rf "$mine"; return 0
        fi
        rm -rf "$dir.claim" && mv -T "$mine" "$dir.claim" || { rm -rf "$mine"; return 0; }  # its owner died
    fi
    "$@" --out "$dir" > "$log" 2>&1
}
export -f row

jobs_file="$RUN/jobs.$$.txt"
for L in $LABELS; do
    lab="--labels-per-class $L --validation-per-class $(val_of "$L")"
    mkdir -p "$RUN/L$L"
    # The longest jobs first, so that the queue ends with short ones.
    for S in $SEEDS; do
        echo "row $RUN/L$L/dsh_s$S $RUN/L$L.dsh_s$S.log $PY -m bench.dshgan_cifar10 $net $lab --seed $S --methods dsh --bits $BITS"
    done
    for S in $SEEDS; do
        for m in real cls; do
            echo "row $RUN/L$L/${m}_s$S $RUN/L$L.${m}_s$S.log $PY -m bench.dshgan_cifar10 $net $lab --seed $S --methods $m --bits $BITS"
        done
    done
    echo "row $RUN/L$L/pixels $RUN/L$L.pixels.log $PY -m bench.dshgan_cifar10 $net $lab --methods lsh itq --bits $BITS"
done > "$jobs_file"
xargs -P "$JOBS" -I{} -d '\n' bash -c {} < "$jobs_file"
failed=0 elsewhere=0
for log in "$RUN"/L*.log; do  # a row that failed must not vanish from the table
    dir="$RUN/$(basename "$log" .log | tr . /)"
    # The owner first, then its results (it writes them before it exits).
    if kill -0 "$(cat "$dir.claim/pid" 2>/dev/null)" 2>/dev/null; then
        [ -f "$dir/results.json" ] || elsewhere=1
    elif [ ! -f "$dir/results.json" ]; then
        echo "FAILED: $(basename "$log" .log); its log ends:"; tail -n 5 "$log"; failed=1
    fi
done
[ "$failed" = 0 ] || exit 1
if [ "$elsewhere" = 1 ]; then
    echo "rows still run by another invocation sharing $RUN: the last one to end merges the table"; exit 0
fi

for L in $LABELS; do
    parts=()
    for p in "$RUN/L$L"/*/; do
        [ -f "$p/results.json" ] && parts+=("${p%/}")
    done
    out="$DEST/labels$((L * 10))"
    mkdir -p "$out"
    $PY -m bench.dshgan_cifar10 --merge "${parts[@]}" --out "$out"
    {
        echo "command: BITS=$BITS SEEDS=\"$SEEDS\" LABELS=\"$LABELS\" bash bench/dshgan_table_cpu.sh $DEST $PRE $HASH"
        echo "git commit: $(git -C "$(dirname "$0")" rev-parse HEAD 2>/dev/null || echo unknown) (each row's own: results.json)"
        for log in "$RUN"/L$L.*.log; do
            echo "===== $(basename "$log" .log)"; grep -v "^\s*$" "$log" | grep -v "^Epoch\|ms/step" | tail -n 40
        done
    } > "$out/log.txt.$$" && mv "$out/log.txt.$$" "$out/log.txt"  # two runs may merge at once
done
cat "$DEST"/labels*/table.txt
