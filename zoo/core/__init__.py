"""The training core: players, their optimizers, and the one per-backend module."""

from zoo.core.model import AdversarialModel
from zoo.core.optimizers import PlayerOptimizers
from zoo.core.backend import data_parallel, player_update

__all__ = ["AdversarialModel", "PlayerOptimizers", "data_parallel", "player_update"]
