#!/usr/bin/env bash
# Debian's redis-server, unpacked into a folder: no root, no system service, nothing outside DEST.
# `make test` runs it once; the test fixtures start the server from DEST on a free port.
#   infra/redis/install-local.sh .venv/redis
set -euo pipefail
DEST=$(realpath -m "${1:?usage: install-local.sh DEST}")
PACKAGES=(redis-server redis-tools libjemalloc2 liblzf1)

if [[ -x "$DEST/usr/bin/redis-server" ]]; then
    exit 0
fi
mkdir -p "$DEST/debs"
cd "$DEST/debs"
if ! apt-get download "${PACKAGES[@]}" 2>/dev/null; then
    # A fresh container may have no package lists yet.
    if [[ $(id -u) -eq 0 ]]; then
        apt-get update -qq
        apt-get download "${PACKAGES[@]}"
    else
        echo "could not download ${PACKAGES[*]} with apt-get; install redis-server and rerun" >&2
        exit 1
    fi
fi
for deb in ./*.deb; do
    dpkg -x "$deb" "$DEST"
done
rm -rf "$DEST/debs"
LD_LIBRARY_PATH="$DEST/usr/lib/x86_64-linux-gnu" "$DEST/usr/bin/redis-server" --version
