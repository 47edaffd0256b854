"""One module per paper, with shared building blocks in `blocks`."""

from zoo.models import blocks
from zoo.models.avb import AVB
from zoo.models.dshgan import DSHGAN
from zoo.models.gan import GAN
from zoo.models.vae import VAE
from zoo.models.vaegan import VAEGAN

__all__ = ["AVB", "DSHGAN", "GAN", "VAE", "VAEGAN", "blocks"]
