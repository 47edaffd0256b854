"""Turn a DSH-GAN trained by bench/dshgan_cifar10.py into a bundled preset (weights only).

    python bench/make_dsh_preset.py MODEL.keras BITS NAME RESULTS.json
"""
import json, sys
import keras
import zoo

src, bits, name, table = sys.argv[1], int(sys.argv[2]), sys.argv[3], json.load(open(sys.argv[4]))
row = next(r for r in table["rows"] if r["bits"] == bits and r["method"].startswith("DSH-GAN"))
args = table["args"]
model = keras.models.load_model(src)
if args.get("pretrained"):
    cmd = ("python -m bench.dshgan_cifar10 --bits {b} --methods dsh --pretrained {p} --hash-steps {h} "
           "--batch-size {bs} --hash-labelled-fraction {f}  (generator pre-trained by: python -m "
           "bench.dshgan_cifar10 --bits 12 48 --pretrain-steps 2000 --hash-steps 1500 --batch-size 32)"
           ).format(b=bits, p=args["pretrained"], h=args["hash_steps"], bs=args["batch_size"],
                    f=args.get("hash_labelled_fraction") or args["labelled_fraction"])
else:
    cmd = "python -m bench.dshgan_cifar10 --bits {b} --pretrain-steps {p} --hash-steps {h} --batch-size {bs}".format(
        b=" ".join(map(str, args["bits"])), p=args["pretrain_steps"], h=args["hash_steps"], bs=args["batch_size"])
how = ("seeded CIFAR-10 hashing protocol (zoo.data.cifar10_hashing_split, seed 0; JPEG export "
       "shared/datasets/cifar10.zip): 1,000 queries against the 59,000-image database")
meta = {
    "description": f"DSH-GAN, {bits}-bit codes, CIFAR-10 (5,000 labels), hashing net width 32",
    "dataset": "cifar10",
    "data": "../shared/datasets/cifar10.zip",
    "split": "zoo.data.cifar10_hashing_split(seed=0): 5,000 labelled + 54,000 unlabelled train, 1,000 queries, 59,000 database",
    "recipe": "bench.dshgan_cifar10 (the benchmark's run, not recipes.train)",
    "command": cmd,
    "class_names": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"],
    "figures": {
        "map": {"value": round(row["map"], 4), "how": "MAP over the whole database, Hamming ranking, ties by database position; " + how},
        "precision_radius_2": {"value": round(row["p_r2"], 4), "how": "precision within Hamming radius 2, empty retrievals count 0; " + how},
    },
    "training": {"hash_steps": args["hash_steps"], "batch_size": args["batch_size"], "minutes": round(row["minutes"], 1),
                 "pretrain_steps": 2000, "note": "2-core CPU shared with other jobs"},
}
zoo.save_preset(model, f"saved_models/{name}", meta)
print("wrote", name)
