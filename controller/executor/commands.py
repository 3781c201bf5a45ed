"""Pure builder of what a job process finds in its environment: the sharding facts
every run gets (`controller.taskdata.sharding_environment`) plus what only the
executor knows. Used by the task supervisor (`controller.executor.supervising`).
"""

from __future__ import annotations

from controller.executor.context import JobContext
from controller.taskdata import sharding_environment


def job_environment(context: JobContext) -> dict[str, str]:
    """The sharding facts every job process finds in its environment."""
    return {
        **sharding_environment(
            job_name=context.job_name,
            task_id=context.task_id,
            sharding_item=context.sharding_item,
            sharding_total_count=context.sharding_total_count,
            sharding_parameter=context.sharding_parameter,
            job_parameter=context.job_parameter,
            fire_time=context.fire_time,
        ),
        "CLOUDJOB_TRIGGERED": "1" if context.triggered else "0",
        "CLOUDJOB_TASK_SANDBOX": context.sandbox,
        "CLOUDJOB_APP_ROOT": context.app_root,
    }
