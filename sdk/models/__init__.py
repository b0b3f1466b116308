"""Models ajpq ships: Skynet (the flagship detector) and small nets for tests."""

from ajpq.models.layers import Normalize, Reorg
from ajpq.models.skynet import Skynet, skynet
from ajpq.models.tiny import tiny_cnn, tiny_skynet

__all__ = ["Normalize", "Reorg", "Skynet", "skynet", "tiny_cnn", "tiny_skynet"]
