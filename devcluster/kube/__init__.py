"""An emulated Kubernetes API server for the tests and the `dev` stack, built on KMock.

It serves the project's CRDs and the built-ins kopf uses (namespaces, events, leases,
CRDs) over real HTTP on 127.0.0.1, with the server-side behaviour kopf and the controller
rely on: resourceVersion, uid, generation, finalizers and deletionTimestamp, the status
subresource, merge and JSON patches, watches that resume, CRD schema pruning, defaulting
and validation, and `kubectl get` tables. Not a production component. See
docs/kube-emulator.md.

    with KubeApiServer(crds=[PROJECT_CRDS]) as api:   # or: async with ...
        api.url, api.kubeconfig_path
        api.client().create({...})

Modules: `running` (start/stop, kubeconfig), `serving` (HTTP), `storage` (objects,
versions, watches), `lifecycle` (write rules), `schemas`, `patching`, `selectors`,
`tables`, `conversions`, `resources`, `errors`, `clients`.
"""

from devcluster.kube.clients import AsyncKubeClient, KubeClient
from devcluster.kube.errors import ApiError
from devcluster.kube.running import PROJECT_CRDS, KubeApiServer, KubeApiServerError, kubeconfig

__all__ = [
    "PROJECT_CRDS",
    "ApiError",
    "AsyncKubeClient",
    "KubeApiServer",
    "KubeApiServerError",
    "KubeClient",
    "kubeconfig",
]
