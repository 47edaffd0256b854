"""A Keras 3 zoo of adversarial generative models that train on TensorFlow, JAX and PyTorch."""

__version__ = "0.1.0"

from zoo import data, metrics  # noqa: E402
from zoo.models import AVB, GAN, VAE, VAEGAN  # noqa: E402

__all__ = ["AVB", "GAN", "VAE", "VAEGAN", "data", "metrics"]
