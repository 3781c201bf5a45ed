"""The Mesos framework of the controller.

Pure decisions (`states`, `tasks`, `work`, `placement`, `launcher`, `statuses`, `offers`,
`reconciliation`, `unplaceable`) sit beside the imperative shell: one leadership term's
`engine` and its parts (`inbox`, `status_updates`, `launch_cycle`, `reconciler`,
`tracking`, `kills`, `executors`, `unreachable`, `watchdog`), which talk to the master
through the `calls` seam (pymesos behind it in `driver`). `service.SchedulingService`
is the one object the rest of the controller constructs; docs/framework.md describes
the design.
"""
