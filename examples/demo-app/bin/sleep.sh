#!/bin/sh
# Test job: a script that runs until it is killed (or for the seconds given as
# the job parameter); prints its pid first and says so when it receives SIGTERM.
trap 'echo "got SIGTERM"; exit 143' TERM
echo "sleeping in shard ${CLOUDJOB_SHARDING_ITEM} (pid $$)"
sleep "${CLOUDJOB_JOB_PARAMETER:-300}" &
wait $!
echo "woke up"
