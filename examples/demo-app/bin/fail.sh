#!/bin/sh
# Test job: a script that fails with exit status 3.
echo "failing on purpose in shard ${CLOUDJOB_SHARDING_ITEM}" >&2
exit 3
