#!/bin/sh
# Test job: a script that ignores SIGTERM, so only SIGKILL ends it; runs for the
# seconds given as the job parameter (default 300) and prints its pid first.
trap '' TERM
echo "stubborn in shard ${CLOUDJOB_SHARDING_ITEM} (pid $$)"
exec sleep "${CLOUDJOB_JOB_PARAMETER:-300}"
