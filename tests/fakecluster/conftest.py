from .fixtures import fake_cluster, k8s_client, kubeconfig, kubectl

__all__ = ["fake_cluster", "k8s_client", "kubeconfig", "kubectl"]
