"""One module per paper, with shared building blocks in `blocks`."""

from zoo.models import blocks
from zoo.models.gan import GAN

__all__ = ["GAN", "blocks"]
