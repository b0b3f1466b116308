"""A search spread over a board farm on Ray: one actor per board, K candidates per round.

    ajpq.search(model, train, val, workers=2)              # 2 QEMU boards on this machine
    ajpq.search(model, train, val, workers="head:6379")    # a cluster started from a farm file

See docs/farm.md for the farm file and starting a node on each host.
"""

from ajpq.search.farm.farm import Farm
from ajpq.search.farm.farm_file import FarmFile

__all__ = ["Farm", "FarmFile"]
