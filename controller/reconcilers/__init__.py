"""The reconcilers of the Kubernetes layer: idempotent, level-triggered decisions and effects.

`specs` parses object specs into definitions, `status` and `conditions` build status
(pure); `apps` and `jobs` bring the scheduling core in line with desired state through
`controller.operations.SchedulingOperations`. The kopf handlers in `controller.handlers`
are the only callers.
"""
