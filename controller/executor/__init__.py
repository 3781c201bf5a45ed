"""The executor program an app's bootstrap script starts on a Mesos agent.

One executor process per app per agent serves every task of that app there: it
reads each task's payload (`controller.taskdata`), runs script, Python callable and
dataflow jobs in subprocesses, times daemon jobs with their own cron, and reports
task states through pymesos's executor driver. Entry point: `python -m
controller.executor`. `controller.executor.messages` (framework messages) is the
only part the framework side imports; it does not pull in pymesos.
"""
