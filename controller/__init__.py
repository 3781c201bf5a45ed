"""cloudjob-controller: Elastic-Job-Cloud-style jobs on Mesos, driven by Kubernetes resources."""
