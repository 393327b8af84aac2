"""Building, reading and rendering trees of up to 100,000 nodes without the cyclic garbage
collector walking them again and again.

Pure and light (stdlib only): the dispatcher imports it, through the tree.

Such work makes millions of containers and keeps them (a tree's nodes, their JSON, the
Jobs). CPython's collector examines the objects made since its last pass every few hundred
allocations, and all of them whenever the old ones have grown by a quarter, so at 100,000
nodes it takes 40-50% of the time to find nothing. Reference counting frees what the work
drops either way; cyclic garbage made meanwhile waits for the next full collection.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic collector off within the block (as it was after it), and what the block
    made handed to the oldest generation unexamined: else the first collection after the
    block would walk every object it made, once more. Nests."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if gc.get_freeze_count() == 0:  # nobody's frozen objects to thaw by mistake
            # freeze() moves every tracked object to the permanent generation and zeroes
            # the young generation's count; unfreeze() moves them to the oldest one, which
            # full collections still examine. Neither walks the objects.
            gc.freeze()
            gc.unfreeze()
        if enabled:
            gc.enable()


__all__ = ["collector_paused"]
