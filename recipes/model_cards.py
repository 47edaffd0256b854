"""Write each preset folder's sample grid (samples.png) and model card (README.md).

    python -m recipes.model_cards saved_models/*

Run after a preset is trained or its metadata changes: the card is read from
metadata.json (zoo.hub.model_card).
"""

import argparse
from pathlib import Path

from zoo import hub, presets


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folders", nargs="+", help="preset folders (others are skipped)")
    p.add_argument("--no-samples", action="store_true", help="only the model cards")
    args = p.parse_args(argv)
    for folder in map(Path, args.folders):
        if not (folder / presets.CONFIG_FILE).exists():
            continue
        grid = None if args.no_samples else hub.write_sample_grid(folder)
        print(f"{folder}: {hub.write_model_card(folder).name}" + (f", {grid.name}" if grid else ""), flush=True)


if __name__ == "__main__":
    main()
