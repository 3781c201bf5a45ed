#!/bin/sh
# Builds the demo app package: the tarball a CloudApp's appURL points at.
# Usage: build.sh [output file]   (default: dist/demo-app.tar.gz next to this script)
# The package holds bin/, demo_jobs/ and lib/ at its top level, so the Mesos
# fetcher extracts bin/start-executor.sh right into the executor's sandbox.
# The archive is reproducible: same sources, same bytes (sorted, fixed times
# and owners, gzip without a timestamp).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
output=${1:-"$here/dist/demo-app.tar.gz"}
mkdir -p "$(dirname "$output")"
cd "$here"
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner \
    --exclude=__pycache__ --exclude='*.pyc' \
    -cf - bin demo_jobs lib | gzip -n -9 > "$output.partial"
mv "$output.partial" "$output"
echo "$output"
