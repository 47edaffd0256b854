"""Class coverage of the bundled generators (#23): class shares, largest share,
class entropy in bits and, for conditional generators, the label agreement, from
--n samples (seed --seed) read by the bundled classifier of each data set.

    python bench/class_coverage.py --n 10000 --out bench/results/class_coverage.json
"""

import argparse
import json
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout's zoo, when not installed

from provenance import git_commit  # noqa: E402  (bench/provenance.py)
from zoo import presets  # noqa: E402
from zoo.metrics.coverage import generator_coverage  # noqa: E402

GENERATORS = {"mnist": ["gan_mlp_mnist", "dcgan_mnist", "cdcgan_mnist", "vae_mnist", "vaegan_mnist",
                        "avb_ac_mnist"],
              "cifar10": ["dcgan_cifar10", "cdcgan_cifar10", "vae_cifar10", "vaegan_cifar10",
                          "dshgan_cifar10_12bit", "dshgan_cifar10_48bit"]}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--n", type=int, default=10000)
    p.add_argument("--seed", type=int, default=12345)
    p.add_argument("--presets", nargs="*", default=None, help="names or folders (default: every bundled generator)")
    p.add_argument("--out", default=None, help="JSON results file")
    args = p.parse_args(argv)
    names = args.presets or [n for names in GENERATORS.values() for n in names if n in presets.list_presets()]
    rows = []
    from zoo.models.capabilities import capabilities_of

    for name in names:
        model = presets.load(name)
        if "generator" not in capabilities_of(model, model.preset_metadata):
            print(f"{str(name):24s} skipped: its generator was never trained (metadata untrained_networks)")
            continue
        dataset = model.preset_metadata.get("dataset")
        stats = generator_coverage(model, dataset, n=args.n, seed=args.seed)
        rows.append({"preset": str(name), "dataset": dataset, **stats})
        agree = f"  label agreement {stats['label_agreement']:.3f}" if "label_agreement" in stats else ""
        print(f"{str(name):24s} entropy {stats['entropy_bits']:.3f} bits  max share {stats['max_share']:.3f} "
              f"(class {stats['max_class']}){agree}", flush=True)
    if args.out:
        record = {"command": "python bench/class_coverage.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:])),
                  "commit": git_commit(__file__), "n": args.n, "seed": args.seed, "rows": rows}
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
