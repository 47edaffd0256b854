"""Export a preset as a TensorFlow SavedModel with serving signatures.

    python -m recipes.export dcgan_mnist exports/dcgan_mnist
    python -c "import tensorflow as tf; m = tf.saved_model.load('exports/dcgan_mnist'); \\
               print(m.generate(z=tf.random.normal((4, 100)))['images'].shape)"

Signatures: `generate` (from noise, and labels for conditional models), `encode`,
`reconstruct` (VAE, VAE-GAN, AVB), `hash` (DSH-GAN); see `zoo.export`. Runs on the
TensorFlow and the JAX backend. Under PyTorch the preset (backend-independent) is
loaded and exported in a TensorFlow subprocess. OUT_DIR must not exist.
"""

import argparse
import os
import subprocess
import sys
from pathlib import Path


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("preset", help="a bundled preset name, a preset folder, or hf://owner/repo")
    p.add_argument("out_dir", help="the SavedModel directory to create (must not exist)")
    args = p.parse_args(argv)
    if Path(args.out_dir).exists():
        sys.exit(f"error: {args.out_dir} already exists; choose a new export directory (nothing was written).")

    import keras

    if keras.backend.backend() not in ("tensorflow", "jax"):
        print(f"The {keras.backend.backend()} backend cannot write a SavedModel; loading the preset "
              "under TensorFlow to export it.", file=sys.stderr, flush=True)
        env = dict(os.environ, KERAS_BACKEND="tensorflow")
        sys.exit(subprocess.call([sys.executable, "-m", "recipes.export", args.preset, args.out_dir], env=env))

    from zoo import presets
    from zoo.export import export_saved_model

    try:
        model = presets.load(args.preset)
        out = export_saved_model(model, args.out_dir, metadata=model.preset_metadata)
    except (FileNotFoundError, FileExistsError, ValueError, TypeError, ImportError) as e:
        sys.exit(f"error: {e}")
    from zoo.export import endpoints

    print(f"SavedModel ({keras.backend.backend()}) at {out}; signatures:")
    for name, (_, _, desc) in endpoints(model).items():
        print(f"  {name}: {desc}")


if __name__ == "__main__":
    main()
