"""A real Kubernetes control plane for the tests and the `dev` stack.

`ControlPlane` runs etcd, kube-apiserver and kube-controller-manager (built by
`scripts/build-kube` from the published Kubernetes Go modules) on loopback, with TLS,
token authentication and RBAC; `KubeClient` is a small client of it. See
docs/kube-test-world.md.

Modules: `binaries` (finding the built binaries), `pki` (the throw-away CA and keys),
`controlplane` (starting, stopping, kubeconfigs, kubectl, the audit log), `clients`,
`errors`.
"""

from devcluster.kube.binaries import KubeBinaries, find_binaries
from devcluster.kube.clients import KubeClient
from devcluster.kube.controlplane import PROJECT_CRDS, ControlPlane, kubeconfig, read_manifests
from devcluster.kube.errors import ApiError, KubeUnavailable

__all__ = [
    "PROJECT_CRDS",
    "ApiError",
    "ControlPlane",
    "KubeBinaries",
    "KubeClient",
    "KubeUnavailable",
    "find_binaries",
    "kubeconfig",
    "read_manifests",
]
