"""The UI's cluster fixture (tests/ui/cluster.py)."""

from ui.cluster import world

__all__ = ["world"]
