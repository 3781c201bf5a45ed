"""`kubectl cloudjob`: a kubectl plugin that reads the controller's history API (runs,
queues, statistics) and triggers runs through the Kubernetes API. Installed as the
`kubectl-cloudjob` executable (`controller.plugin.cli:main`); docs/kubectl-plugin.md
describes it. It imports nothing of the controller's runtime: only its own modules.
"""
