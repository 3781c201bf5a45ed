"""The Mesos framework of the controller.

Pure decisions (`tasks`, `work`, `placement`, `statuses`, `offers`, `reconciliation`) sit
beside the imperative shell that talks to the master through pymesos (`driver`) and
orchestrates them (`launcher`, `service`). `service.SchedulingService` is the one object
the rest of the controller constructs; docs/framework.md describes the design.
"""
