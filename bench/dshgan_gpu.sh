#!/usr/bin/env bash
# DSH-GAN's CIFAR-10 table on one GPU, its rows as parallel processes:
#   LSH and ITQ | real-only triplets at 12 and 48 bits | G and D pre-trained once,
#   then DSH-GAN at 12 and 48 bits from that pre-training (half or all of a batch labelled).
# Every row is bench/dshgan_cifar10.py (see it for the protocol); this only runs
# them side by side and merges their tables. JAX by default: one jitted program
# per step keeps a small conv net busy on a GPU (several processes share it).
#
#   bash bench/dshgan_gpu.sh DEST [PRETRAIN_STEPS HASH_STEPS WIDTH BATCH MAX_MINUTES]
set -u
DEST=${1:-bench/results/dshgan_cifar10_gpu}
PRE=${2:-10000} HASH=${3:-10000} WIDTH=${4:-64} BATCH=${5:-64} MAXMIN=${6:-3}
RUN=$(mktemp -d)
mkdir -p "$DEST"
export KERAS_BACKEND=${KERAS_BACKEND:-jax} PYTHONUNBUFFERED=1
export XLA_PYTHON_CLIENT_PREALLOCATE=false  # several processes share the GPU
PY=${PYTHON:-python3}
common=(--batch-size "$BATCH" --g-width "$WIDTH" --d-width "$WIDTH" --h-width "$WIDTH"
        --pretrain-steps "$PRE" --hash-steps "$HASH" --max-minutes "$MAXMIN"
        --diversity-weight "${DIVERSITY:-0}")  # DIVERSITY=1: the mode-seeking term

# Decode the JPEG zip once into the cache every process then reads.
$PY -c "from zoo.data import cifar10_hashing_split as s; print(s())" || exit 1

if [ "${PIXELS:-1}" = 1 ]; then  # PIXELS=0 skips the (deterministic) LSH and ITQ rows
    $PY -m bench.dshgan_cifar10 "${common[@]}" --methods lsh itq --bits 12 48 --out "$RUN/pixels" \
        > "$RUN/pixels.log" 2>&1 &
fi
for bits in 12 48; do
    $PY -m bench.dshgan_cifar10 "${common[@]}" --methods real --bits $bits --out "$RUN/real$bits" \
        > "$RUN/real$bits.log" 2>&1 &
done
$PY -m bench.dshgan_cifar10 "${common[@]}" --methods dsh --bits 12 --pretrain-only --out "$RUN/pre" \
    > "$RUN/pre.log" 2>&1
# The hash phase with half of a batch labelled (as in pre-training) and with all of it.
for bits in 12 48; do
    for share in ${SHARES:-0.5 1}; do
        $PY -m bench.dshgan_cifar10 "${common[@]}" --methods dsh --bits $bits \
            --hash-labelled-fraction $share --pretrained "$RUN/pre/pretrained.keras" \
            --out "$RUN/dsh${bits}_$share" > "$RUN/dsh${bits}_$share.log" 2>&1 &
    done
done
wait

parts=()
for p in pre pixels real12 real48 dsh12_0.5 dsh12_1 dsh48_0.5 dsh48_1; do
    [ -f "$RUN/$p/results.json" ] && parts+=("$RUN/$p")
done
$PY -m bench.dshgan_cifar10 --merge "${parts[@]}" --out "$DEST"
for p in pixels real12 real48 pre dsh12_0.5 dsh12_1 dsh48_0.5 dsh48_1; do
    echo "===== $p"; grep -v "^\s*$" "$RUN/$p.log" | tail -n 30
done > "$DEST/log.txt"
cp "$RUN/pre/pretrained_samples.png" "$DEST/" 2>/dev/null
cp "$RUN/dsh12_1/dshgan_12.keras" "$RUN/dsh48_1/dshgan_48.keras" "$DEST/" 2>/dev/null
cat "$DEST/table.txt"
