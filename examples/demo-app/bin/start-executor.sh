#!/bin/sh
# Bootstrap script of the demo app (the CloudApp's bootstrapScript): starts the
# cloudjob executor, which serves every task of this app on this agent.
# The Mesos agent runs it in the sandbox the app package was extracted into.
# CLOUDJOB_PYTHON names a Python that has cloudjob-controller installed
# (default: python3 on PATH).
set -eu
CLOUDJOB_APP_ROOT=$(cd "$(dirname "$0")/.." && pwd)
export CLOUDJOB_APP_ROOT
exec "${CLOUDJOB_PYTHON:-python3}" -m controller.executor
