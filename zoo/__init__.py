"""A Keras 3 zoo of adversarial generative models that train on TensorFlow, JAX and PyTorch."""

__version__ = "0.1.0"

from zoo import data, hub, metrics, retrieval  # noqa: E402
from zoo.models import AVB, DSHGAN, GAN, VAE, VAEGAN  # noqa: E402
from zoo.hub import upload_preset  # noqa: E402
from zoo.presets import list_presets, load, save_preset  # noqa: E402

__all__ = ["AVB", "DSHGAN", "GAN", "VAE", "VAEGAN", "data", "hub", "metrics", "retrieval", "list_presets", "load",
           "save_preset", "upload_preset"]
