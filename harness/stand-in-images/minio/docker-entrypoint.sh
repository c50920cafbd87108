#!/bin/sh
# Upstream's entrypoint, reduced to what our compose file and chart use: `server ...` means `minio server ...`.
set -eu
case "${1:-}" in
minio | mc | sh | bash | /*) ;;
*) set -- minio "$@" ;;
esac
exec "$@"
