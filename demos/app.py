"""The zoo's Gradio app: generation, reconstruction, retrieval and model cards.

    python -m demos                      # http://127.0.0.1:7860, the bundled presets
    python -m demos --database ../shared/datasets/cifar10.zip --port 7861

One `gr.Blocks` app with four tabs:

- Generate: any generator preset (GAN family, VAE, VAE-GAN, AVB, DSH-GAN's G),
  a seed (or a random one), a number of images, a class for conditional models;
  beside the samples, the first few each with its nearest training images (L2
  in pixel space, among a shipped sample of the model's training split); and a
  latent interpolation between two seeds, as a grid (row r goes from seed A's
  r-th latent to seed B's r-th).
- Reconstruct: a sketch or an upload, reconstructed by every VAE / VAE-GAN /
  AVB preset, each after converting the image to that preset's shape
  (grayscale/RGB, alpha, inversion, crop and resize, all listed in the output).
- Retrieve: a DSH-GAN preset hashes a query (an example from the database or an
  upload); the top-k database images with their labels, Hamming distances and
  code bits, and the precision of the list when the query's label is known.
- Model cards: each preset's metadata (data, split, recipe command, figures).

Every measured figure shown says how it was measured (the preset metadata's
`how`); each tab has a copyable gradio_client snippet of its endpoints.

Presets are discovered when the app is built, and each tab lists the presets
whose model has its capability (generator, autoencoder, hasher); a tab with
none says what is missing and how to train it. Models load on first use and
run on whatever Keras backend is set (KERAS_BACKEND).

The app's parts, by module:

- `app` (this one): the page layout, its gradio_client snippets, `launch`.
- `handlers`: what each endpoint does.
- `catalog`: the presets, what each can do, their model cards and figures.
- `images`: uploads and sketches read safely, conversion to a model's shape, grids.
- `samples`: the data samples shipped in demos/data, the nearest training images.
- `retrieval`: the hashed, disk-cached retrieval database.
"""

import logging
import os
from collections import Counter

from PIL import Image

import gradio as gr

from demos.catalog import ModelStore, discover_presets, model_card
from demos.errors import readable
from demos.handlers import EACH_CLASS, MAX_IMAGES, MAX_K, MAX_STEPS, UNKNOWN, Handlers
from demos.images import ImageUpload, open_image, to_shape  # noqa: F401 - the last two: demos.app's before the split
from demos.retrieval import AUTO, Retrieval
from zoo.models.capabilities import CAPABILITIES

log = logging.getLogger("demos")

TRAIN_HINTS = {
    "generators": "python -m recipes.train dcgan_mnist --data ../shared/datasets/mnist.npz "
                  "--preset saved_models/dcgan_mnist",
    "autoencoders": "python -m recipes.train vae_mnist --data ../shared/datasets/mnist.npz "
                    "--preset saved_models/vae_mnist  (or vaegan_mnist, avb_ac_mnist)",
    "hashers": "python -m recipes.train dshgan_cifar10_48bit --data ../shared/datasets/cifar10.zip "
               "--preset saved_models/dshgan_cifar10_48bit",
}


def _missing(kind_text, hint):
    return gr.Markdown(
        f"**No {kind_text} preset is available in this app yet.** Presets are discovered at start in "
        f"`saved_models/` (and in `--presets` folders). Train one and restart the app, e.g.:\n\n"
        f"```bash\n{hint}\n```"
    )


# Queue limits for a CPU Space (free tier: 2 vCPUs): two model calls at a time, one per core,
# and up to 64 waiting; every visitor sees a queue position instead of a timeout.
QUEUE_CONCURRENCY = int(os.environ.get("ZOO_DEMO_CONCURRENCY", "2"))
QUEUE_MAX_SIZE = int(os.environ.get("ZOO_DEMO_MAX_QUEUE", "64"))


def client_target():
    """What `gradio_client.Client(...)` takes for this app: the Space's id on Hugging Face
    Spaces (SPACE_ID), else the local URL."""
    if os.environ.get("SPACE_ID"):
        return os.environ["SPACE_ID"]
    host = os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1")
    host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    return f"http://{host}:{os.environ.get('GRADIO_SERVER_PORT', '7860')}"


def api_snippets(generator=None, generator_class=None, autoencoders=(), hasher=None, card=None,
                 target=None):
    """{tab: Python code} calling each tab's endpoints with gradio_client, on this app's presets."""
    target = target or client_target()
    head = f"from gradio_client import Client{{}}\n\nclient = Client({target!r})\n"
    out = {}
    if generator:
        out["generate"] = head.format("") + (
            "seed = client.predict(api_name=\"/random_seed\")  # a fresh random seed\n"
            "# preset, number of images (1-64), seed, class (conditional presets: a class name or\n"
            f"# {EACH_CLASS!r}; None for the others)\n"
            f"grid, note, nearest, table, nearest_note = client.predict({generator!r}, 16, seed,"
            f" {generator_class!r},\n"
            "                                                          api_name=\"/generate\")\n"
            "print(grid, note)  # grid, nearest: paths of the PNGs, downloaded\n"
            "for sample, rank, training_image, label, l2 in table[\"data\"]:  # the nearest training images\n"
            "    print(sample, rank, training_image, label, \"L2\", l2)\n"
            "# preset, seed A, seed B, steps, rows, class, spherical\n"
            f"grid, note = client.predict({generator!r}, 0, 1, 8, 4, {generator_class!r}, True,"
            " api_name=\"/interpolate\")\n"
        )
    if autoencoders:
        out["reconstruct"] = head.format(", handle_file") + (
            "# an image file (PNG, JPEG, ...), the presets, invert grayscale: \"auto\", \"yes\" or \"no\"\n"
            f"gallery, note = client.predict(handle_file(\"digit.png\"), {list(autoencoders)!r}, \"auto\",\n"
            "                               api_name=\"/reconstruct_upload\")\n"
            "for item in gallery:  # per preset: the input as it sees it, then its reconstruction\n"
            "    print(item[\"image\"], item[\"caption\"])\n"
            "print(note)\n"
        )
    if hasher:
        out["retrieve"] = head.format(", handle_file") + (
            "# a query: database image 5 and its label (or handle_file(\"your_image.png\") and \"unknown\")\n"
            f"image, label, database = client.predict({hasher!r}, 5, api_name=\"/example\")\n"
            "# preset, query image, its label (for precision@k), k\n"
            f"gallery, table, note = client.predict({hasher!r}, handle_file(image), label, 10,"
            " api_name=\"/retrieve\")\n"
            "for rank, number, result_label, distance, bits in table[\"data\"]:\n"
            "    print(rank, number, result_label, distance, bits)  # Hamming distance, the result's code bits\n"
            "print(note)\n"
        )
    if card:
        out["cards"] = head.format("") + f"print(client.predict({card!r}, api_name=\"/card\"))  # Markdown\n"
    return out


def _snippet(code, elem_id):
    with gr.Accordion("Use this tab from Python (gradio_client)", open=False, elem_id=f"{elem_id}-acc"):
        gr.Code(code, language="python", interactive=False, elem_id=elem_id,
                label="pip install gradio_client; the endpoints are listed under 'Use via API' below")


def create_app(preset_names=None, preset_dirs=None, database=AUTO, database_split="test",
               database_limit=10_000, warm=False):
    """Build the app (a gr.Blocks, not launched). `preset_names`: keep only these presets;
    `preset_dirs`: extra preset folders; `database`: "auto" (the offline default: each
    hashing preset searches the shipped test sample of its own data set, CIFAR-10 or MNIST,
    else load_digits), "cifar10" or "mnist" (those samples), "digits", a path
    zoo.data.load_arrays reads or a tfds name. `warm`: load every model now."""
    import keras

    presets, problems = discover_presets(preset_names, preset_dirs)
    store = ModelStore(presets)
    retrieval = Retrieval(store, database, database_split, database_limit)
    h = Handlers(store, retrieval)
    generators = store.having("generator")
    autoencoders = store.having("autoencoder")
    hashers = store.having("hasher")
    if warm:
        for name in generators + autoencoders + hashers:
            store.get(name)
    first_choices, first_visible = h.class_choices(generators[0]) if generators else ([], False)
    snippets = api_snippets(generators[0] if generators else None, EACH_CLASS if first_visible else None,
                            autoencoders, hashers[0] if hashers else None, next(iter(presets), None))

    with gr.Blocks(title="Keras GAN zoo", analytics_enabled=False) as demo:
        gr.Markdown(
            "# Keras GAN zoo\nGenerative models trained with `model.fit` on TensorFlow, JAX and PyTorch. "
            f"Running on the **{keras.backend.backend()}** backend with {len(presets)} presets: "
            f"{len(generators)} generators, {len(autoencoders)} autoencoders, {len(hashers)} hashing models. "
            f"This server runs {QUEUE_CONCURRENCY} requests at a time; others wait in a queue (at most "
            f"{QUEUE_MAX_SIZE}) that shows your position."
        )
        with gr.Tab("Generate", id="generate"):
            if not generators:
                _missing("generator (GAN, VAE, VAE-GAN, AVB or DSH-GAN)", TRAIN_HINTS["generators"])
            else:
                with gr.Row():
                    with gr.Column(scale=1, min_width=240):
                        g_preset = gr.Dropdown(generators, value=generators[0], label="Generator preset",
                                               elem_id="gen-preset")
                        g_class = gr.Dropdown(first_choices, value=first_choices[0] if first_choices else None,
                                              visible=first_visible, allow_custom_value=True,
                                              label="Class (conditional models)",
                                              elem_id="gen-class")
                        g_n = gr.Slider(1, MAX_IMAGES, value=16, step=1, label="Number of images", elem_id="gen-n")
                        g_seed = gr.Number(0, precision=0, label="Seed", elem_id="gen-seed")
                        with gr.Row():
                            g_random = gr.Button("Random seed", elem_id="gen-random", min_width=100)
                            g_btn = gr.Button("Generate", variant="primary", elem_id="gen-btn", min_width=100)
                    with gr.Column(scale=2):
                        g_out = gr.Image(label="Samples", format="png", type="numpy", interactive=False,
                                         elem_id="gen-out")
                        g_note = gr.Markdown(elem_id="gen-note")
                    with gr.Column(scale=2):
                        g_nearest = gr.Image(label="Nearest training images: each sample | its nearest, L2",
                                             format="png", type="numpy", interactive=False, height=500,
                                             elem_id="gen-nearest")
                        g_nearest_note = gr.Markdown(elem_id="gen-nearest-note")
                        g_nearest_table = gr.Dataframe(
                            headers=["sample", "rank", "training image", "label", "L2"], interactive=False,
                            max_height=240, label="Nearest training images: the list", elem_id="gen-nearest-table")
                g_figures = gr.Markdown(h.figures(generators[0]), elem_id="gen-figures")
                gr.Markdown("### Latent interpolation")
                with gr.Row():
                    with gr.Column(scale=1):
                        i_a = gr.Number(0, precision=0, label="Seed A")
                        i_b = gr.Number(1, precision=0, label="Seed B")
                        i_steps = gr.Slider(2, MAX_STEPS, value=8, step=1, label="Steps")
                        i_rows = gr.Slider(1, 8, value=4, step=1, label="Rows")
                        i_sph = gr.Checkbox(True, label="Spherical (slerp)")
                        i_btn = gr.Button("Interpolate", elem_id="interp-btn")
                    with gr.Column(scale=2):
                        i_out = gr.Image(label="Interpolation", format="png", type="numpy", interactive=False,
                                         elem_id="interp-out")
                        i_note = gr.Markdown()
                _snippet(snippets["generate"], "gen-api")
                g_preset.change(readable(h.on_generator), g_preset, g_class, api_name="classes")
                g_preset.change(readable(h.figures), g_preset, g_figures, api_name=False, queue=False)
                generate_outputs = [g_out, g_note, g_nearest, g_nearest_table, g_nearest_note]
                g_btn.click(readable(h.generate), [g_preset, g_n, g_seed, g_class], generate_outputs,
                            api_name="generate")
                g_random.click(readable(h.random_seed), None, g_seed, api_name="random_seed", queue=False).then(
                    readable(h.generate), [g_preset, g_n, g_seed, g_class], generate_outputs, api_name=False)
                i_btn.click(readable(h.interpolate), [g_preset, i_a, i_b, i_steps, i_rows, g_class, i_sph],
                            [i_out, i_note], api_name="interpolate")

        with gr.Tab("Reconstruct", id="reconstruct"):
            if not autoencoders:
                _missing("VAE, VAE-GAN or AVB", TRAIN_HINTS["autoencoders"])
            else:
                with gr.Row():
                    with gr.Column(scale=1):
                        r_presets = gr.CheckboxGroup(autoencoders, value=autoencoders, label="Presets")
                        r_invert = gr.Radio(["auto", "yes", "no"], value="auto",
                                            label="Invert grayscale (auto: when the image is mostly light)")
                        with gr.Tab("Draw"):
                            canvas = Image.new("RGB", (280, 280), (0, 0, 0))
                            r_sketch = gr.Sketchpad(
                                value={"background": canvas, "layers": [], "composite": canvas},
                                type="pil", image_mode="RGB", canvas_size=(280, 280),
                                brush=gr.Brush(colors=["#FFFFFF"], color_mode="fixed", default_size=18),
                                label="Draw (white on black, like MNIST)", elem_id="rec-sketch")
                            r_sketch_btn = gr.Button("Reconstruct the drawing", variant="primary")
                        with gr.Tab("Upload"):
                            r_upload = ImageUpload(type="pil", image_mode=None, sources=["upload", "clipboard"],
                                                   label="Image", elem_id="rec-upload")
                            r_upload_btn = gr.Button("Reconstruct the upload", variant="primary",
                                                     elem_id="rec-upload-btn")
                    with gr.Column(scale=2):
                        r_out = gr.Gallery(label="Input as each preset sees it | its reconstruction", columns=2,
                                           format="png", elem_id="rec-out")
                        r_note = gr.Markdown(elem_id="rec-note")
                        gr.Markdown("MSE: the mean over the preset's H·W·C pixel values, scaled to [0, 1], of "
                                    "(reconstruction − input as the preset sees it)², for this one image.")
                with gr.Accordion("Measured figures of these presets", open=False):
                    gr.Markdown("\n\n".join(h.figures(n) for n in autoencoders), elem_id="rec-figures")
                _snippet(snippets["reconstruct"], "rec-api")
                r_sketch_btn.click(readable(h.reconstruct_sketch), [r_sketch, r_presets, r_invert], [r_out, r_note],
                                   api_name="reconstruct_sketch")
                r_upload_btn.click(readable(h.reconstruct_upload), [r_upload, r_presets, r_invert], [r_out, r_note],
                                   api_name="reconstruct_upload")

        with gr.Tab("Retrieve", id="retrieve"):
            if not hashers:
                _missing("DSH-GAN (hashing)", TRAIN_HINTS["hashers"])
            else:
                def label_choices(name):
                    try:
                        return [UNKNOWN] + list(retrieval.class_names(name))
                    except Exception as e:  # noqa: BLE001 - a database that fails to load says so on first use
                        log.warning("database of %s: %s", name, e)
                        return [UNKNOWN]

                with gr.Row():
                    with gr.Column(scale=1):
                        q_preset = gr.Dropdown(hashers, value=hashers[0], label="Hashing preset",
                                               elem_id="ret-preset")
                        q_number = gr.Number(0, precision=0, label="Example: database image number")
                        q_example_btn = gr.Button("Use this database image as the query", elem_id="ret-example")
                        q_image = ImageUpload(type="pil", image_mode=None, label="Query (or upload your own)",
                                              height=220, elem_id="ret-query")
                        q_label = gr.Dropdown(label_choices(hashers[0]), value=UNKNOWN, allow_custom_value=True,
                                              label="Query label (for precision)", elem_id="ret-label")
                        q_k = gr.Slider(1, MAX_K, value=10, step=1, label="k")
                        q_btn = gr.Button("Search", variant="primary", elem_id="ret-btn")
                    with gr.Column(scale=2):
                        q_gallery = gr.Gallery(label="Top k: database number · label · Hamming distance",
                                               columns=5, format="png", elem_id="ret-out")
                        q_note = gr.Markdown(elem_id="ret-note")
                        q_table = gr.Dataframe(headers=["rank", "database #", "label", "Hamming distance",
                                                        "code bits"],
                                               interactive=False, wrap=True, label="Results", elem_id="ret-table")
                        q_examples = gr.Gallery(label="One database image per class (their numbers)", columns=5,
                                                format="png")
                        q_db = gr.Markdown(elem_id="ret-db")
                q_figures = gr.Markdown(h.figures(hashers[0]), elem_id="ret-figures")
                _snippet(snippets["retrieve"], "ret-api")

                q_example_btn.click(readable(h.example), [q_preset, q_number], [q_image, q_label, q_db],
                                    api_name="example")
                q_btn.click(readable(h.retrieve), [q_preset, q_image, q_label, q_k], [q_gallery, q_table, q_note],
                            api_name="retrieve")

                def _examples(name, progress=gr.Progress()):
                    return h.examples(name, progress)[0], h.database_summary(name, progress)

                def _on_hasher(name):
                    return gr.update(choices=label_choices(name), value=UNKNOWN), h.figures(name)

                q_preset.change(readable(_examples), q_preset, [q_examples, q_db], api_name="database")
                q_preset.change(readable(_on_hasher), q_preset, [q_label, q_figures], api_name=False)
                demo.load(readable(_examples), q_preset, [q_examples, q_db], api_name=False)

        with gr.Tab("Model cards", id="cards"):
            names = list(presets)
            if not names:
                gr.Markdown("**No presets found** in `saved_models/`.")
            else:
                c_preset = gr.Dropdown(names, value=names[0], label="Preset", elem_id="card-preset")
                c_card = gr.Markdown(model_card(presets[names[0]]), elem_id="card")
                c_preset.change(readable(lambda n: model_card(store.info(n))), c_preset, c_card, api_name="card")
            kinds = Counter(p.kind for p in presets.values() if p.kind)
            can = {c: len(store.having(c)) for c in CAPABILITIES}
            absent = [c for c, v in can.items() if not v]
            gr.Markdown(
                "Presets by model: " + (", ".join(f"{k} {v}" for k, v in kinds.items()) or "none")
                + "; by capability: " + ", ".join(f"{c} {v}" for c, v in can.items())
                + (f". None yet with: {', '.join(absent)}." if absent else ".")
                + ("\n\nSkipped: " + "; ".join(problems) if problems else "")
            )
            if names:
                _snippet(snippets["cards"], "card-api")
    demo.zoo_store, demo.zoo_retrieval, demo.zoo_training, demo.zoo_snippets = store, retrieval, h.training, snippets
    demo.queue(default_concurrency_limit=QUEUE_CONCURRENCY, max_size=QUEUE_MAX_SIZE)
    return demo


def launch(demo, host="127.0.0.1", port=None, share=False, **kwargs):
    """Launch with the app's defaults: loopback, uploads up to 20 MB, no SSR, no analytics."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    return demo.launch(server_name=host, server_port=port, share=share, max_file_size="20mb", ssr_mode=False,
                       footer_links=["api", "settings"], **kwargs)
