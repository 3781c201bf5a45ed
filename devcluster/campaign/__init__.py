"""The seeded fault campaign: the whole local stack (two controller replicas, a
three-server ZooKeeper ensemble, the Mesos emulator with several agents, the real
Kubernetes API server) run under faults drawn from one seed, and a run ledger the jobs
write themselves, checked against the documented semantics (docs/campaign.md).

`python -m devcluster.campaign --trials N --seed S` runs it; the short campaign test in
tests/campaign runs a few trials. A development and test tool, never imported by the
controller.
"""
