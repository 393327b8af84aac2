"""k8sco's version, in a module of its own so that the pure core can read it without
importing the package front (whose ``main`` reaches the CLI)."""

__version__ = "0.1.0"
