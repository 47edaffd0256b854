#!/usr/bin/env bash
# #24's table on one lent GPU: DSH-GAN (synthetic triplets) beside the real-only
# ablation, the classification stream alone, and LSH / ITQ on pixels, at 12, 24,
# 32 and 48 bits, with 5,000 and with 1,000 labels, two seeds each: all with the
# presets' hashing network and schedule (residual net, batch norm, shift + flip,
# AdamW cosine), each run scored on validation queries carved from its labels
# (the figures for choices) and on the protocol's 1,000 queries (reported once).
# Every row is bench/dshgan_cifar10.py (see it for the protocol); this runs them
# side by side, one process per (labels, seed, method), and merges the tables.
#
#   bash bench/dshgan_table_gpu.sh DEST [PRETRAIN_STEPS HASH_STEPS MAX_MINUTES]
#
# Sized for an H200 within 10 minutes: 14 processes, then 8, share the GPU; a
# phase stops at MAX_MINUTES (the table then shows the steps run, next to the
# model's own step counter in log.txt). JAX by default.
# (bench/dshgan_gpu.sh is the earlier two-length table of bench/results/dshgan_cifar10_gpu/.)
# Needs keras beside jax: on a machine without it, carry its wheels (made here with
# `pip download keras namex optree rich h5py absl-py --no-deps -d wheels`) and set
# WHEELS=wheels; under JAX, `import zoo` needs no TensorFlow (zoo.data streams NumPy).
set -u
DEST=${1:-bench/results/dshgan_table_gpu}
PRE=${2:-3000} HASH=${3:-3000} MAXMIN=${4:-1.5}
BITS=${BITS:-12 24 32 48} SEEDS=${SEEDS:-0 1} LABELS=${LABELS:-500 100}
RUN=$(mktemp -d)
mkdir -p "$DEST"
export KERAS_BACKEND=${KERAS_BACKEND:-jax} PYTHONUNBUFFERED=1
export XLA_PYTHON_CLIENT_PREALLOCATE=false  # several processes share the GPU
PY=${PYTHON:-python3}
# G keeps the zoo's DSH-GAN recipe's mode-seeking term (weight 1): without it G's
# pre-training collapses (intra-class diversity 0.185 of real images' after 1,000 steps
# at 12 bits), and the synthetic rows would test a collapsed G. Rows without G ignore it.
net=(--hasher resnet --hasher-norm batch --hash-augment translation,flip --optimizer adamw_cosine
     --pretrain-steps "$PRE" --hash-steps "$HASH" --max-minutes "$MAXMIN" --hash-labelled-fraction 1 --diversity-weight 1 --no-save)

if [ -n "${WHEELS:-}" ]; then
    $PY -m pip install -q --no-index --find-links "$WHEELS" keras || exit 1
fi
# Decode the JPEG zip once into the cache every process then reads.
$PY -c "from zoo.data import cifar10_hashing_split as s; print(s())" || exit 1

val_of() { [ "$1" -ge 500 ] && echo 50 || echo $(( $1 / 10 )); }  # a tenth of the labels

for L in $LABELS; do
    V=$(val_of "$L")
    lab=(--labels-per-class "$L" --validation-per-class "$V")
    $PY -m bench.dshgan_cifar10 "${net[@]}" "${lab[@]}" --methods lsh itq --bits $BITS \
        --out "$RUN/L$L/pixels" > "$RUN/L$L.pixels.log" 2>&1 &
    for S in $SEEDS; do
        for m in real cls; do
            $PY -m bench.dshgan_cifar10 "${net[@]}" "${lab[@]}" --seed "$S" --methods $m --bits $BITS \
                --out "$RUN/L$L/${m}_s$S" > "$RUN/L$L.${m}_s$S.log" 2>&1 &
        done
        # G and D pre-trained once per (labels, seed), then DSH-GAN's hash phase per code length.
        ( $PY -m bench.dshgan_cifar10 "${net[@]}" "${lab[@]}" --seed "$S" --methods dsh --bits 12 \
              --pretrain-only --out "$RUN/L$L/pre_s$S" > "$RUN/L$L.pre_s$S.log" 2>&1
          set -- $BITS
          half=$(( ($# + 1) / 2 ))
          for group in "${*:1:$half}" "${*:$((half + 1))}"; do
              [ -n "$group" ] || continue
              $PY -m bench.dshgan_cifar10 "${net[@]}" "${lab[@]}" --seed "$S" --methods dsh \
                  --bits $group --pretrained "$RUN/L$L/pre_s$S/pretrained.keras" \
                  --out "$RUN/L$L/dsh_s${S}_${group// /_}" > "$RUN/L$L.dsh_s${S}_${group// /_}.log" 2>&1 &
          done
          wait ) &
    done
done
wait

for L in $LABELS; do
    parts=()
    for p in "$RUN/L$L"/*/; do
        case "$p" in */pre_s*/) continue ;; esac
        [ -f "$p/results.json" ] && parts+=("${p%/}")
    done
    mkdir -p "$DEST/labels$((L * 10))"
    $PY -m bench.dshgan_cifar10 --merge "${parts[@]}" --out "$DEST/labels$((L * 10))"
    for log in "$RUN"/L$L.*.log; do
        echo "===== $(basename "$log" .log)"; grep -v "^\s*$" "$log" | grep -v "^Epoch\|ms/step" | tail -n 40
    done > "$DEST/labels$((L * 10))/log.txt"
    cp "$RUN/L$L/pre_s0/pretrained_samples.png" "$DEST/labels$((L * 10))/" 2>/dev/null
done
cat "$DEST"/labels*/table.txt
