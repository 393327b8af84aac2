"""Functions the benchmarks run as native-function nodes."""


def work(n: int, label: str = "") -> None:
    """A trivial node: does nothing, so the benchmark measures k8sco, not the work."""
