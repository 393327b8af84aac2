"""Pure decisions of the Kubernetes controller: Jobs observed in, actions out (no I/O)."""

from k8sco.reconcile.decide import Event, Reconciliation, reconcile

__all__ = ["Event", "Reconciliation", "reconcile"]
