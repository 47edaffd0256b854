"""Launch the zoo's Gradio app: `python -m demos [--host 127.0.0.1] [--port 7860] [--share]`.

Options:
  --database PATH|NAME   retrieval database: "auto" (default: each hashing preset searches the
                         shipped test sample of its own data set, CIFAR-10 or MNIST, offline),
                         "cifar10", "mnist", "digits" (scikit-learn's load_digits), a keras-style
                         .npz, an image folder or zip (<split>/<class>/*.png), or a tfds name
  --database-split S     split of that database (default test)
  --database-limit N     keep N images of it, drawn with seed 0 (default 10000; 0 keeps all)
  --presets DIR          extra preset folders (a preset, or a folder of presets); repeatable
  --only NAME            keep only these presets; repeatable
  --warm                 load every model before serving
"""

import argparse
import logging
import os


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m demos", description="The Keras GAN zoo's Gradio app.")
    p.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                   help="address to bind (default 127.0.0.1: this machine only; 0.0.0.0 serves the network)")
    p.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)))
    p.add_argument("--share", action="store_true", help="also open a public gradio.live link (needs internet)")
    p.add_argument("--database", default=os.environ.get("ZOO_DEMO_DATABASE", "auto"))
    p.add_argument("--database-split", default="test")
    p.add_argument("--database-limit", type=int, default=10_000)
    p.add_argument("--presets", action="append", default=[], metavar="DIR")
    p.add_argument("--only", action="append", default=None, metavar="NAME")
    p.add_argument("--warm", action="store_true")
    args = p.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    from demos.app import create_app, launch

    demo = create_app(preset_names=args.only, preset_dirs=args.presets, database=args.database,
                      database_split=args.database_split, database_limit=args.database_limit or None,
                      warm=args.warm)
    launch(demo, host=args.host, port=args.port, share=args.share)


if __name__ == "__main__":
    main()
