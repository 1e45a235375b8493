"""``examples/kubernetes``: the fil-rouge service's manifests and the code around.

- :mod:`resilia_kubernetes.cluster` finds a reachable cluster (the Spark job uses it);
- :mod:`resilia_kubernetes.manifests` renders the overlays, validates every object
  against pinned Kubernetes schemas and runs the policy scanner;
- :mod:`resilia_kubernetes.live` builds the kubectl commands of a live deployment and
  cleans up after it.
"""
