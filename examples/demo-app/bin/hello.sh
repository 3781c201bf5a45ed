#!/bin/sh
# Sample script job: prints its sharding facts (from the environment) and its
# arguments, one per line; the last argument is the sharding context JSON.
echo "hello from ${CLOUDJOB_JOB_NAME} shard ${CLOUDJOB_SHARDING_ITEM}/${CLOUDJOB_SHARDING_TOTAL_COUNT}" \
    "parameter '${CLOUDJOB_SHARDING_PARAMETER}' job parameter '${CLOUDJOB_JOB_PARAMETER}'"
echo "argument count: $#"
i=0
for argument in "$@"; do
    i=$((i + 1))
    printf 'argument %d: %s\n' "$i" "$argument"
done
