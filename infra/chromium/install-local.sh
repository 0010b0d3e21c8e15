#!/usr/bin/env bash
# Debian's chromium for the UI test (headless): prints one path to run, as the last line of stdout.
# As root (CI on a fresh Debian machine) apt-get installs it with its dependencies; otherwise the
# packages this machine lacks are unpacked into DEST, with a wrapper that points the loader there.
# Quick when it is already there: a chromium on PATH or in DEST is printed as it is.
#   infra/chromium/install-local.sh .venv/chromium
set -euo pipefail
DEST=$(realpath -m "${1:?usage: install-local.sh DEST}")
WRAPPER="$DEST/chromium"

if [[ -x "$WRAPPER" ]]; then
    echo "$WRAPPER"
    exit 0
fi
if command -v chromium >/dev/null; then
    command -v chromium
    exit 0
fi
if [[ $(id -u) -eq 0 ]]; then
    export DEBIAN_FRONTEND=noninteractive
    # A fresh container may have no package lists yet.
    if ! apt-get install -y -qq --no-install-recommends chromium >&2; then
        apt-get update -qq >&2
        apt-get install -y -qq --no-install-recommends chromium >&2
    fi
    command -v chromium
    exit 0
fi
# What apt would install here, i.e. chromium and the dependencies this machine does not have.
mapfile -t PACKAGES < <(apt-get install -s --no-install-recommends chromium 2>/dev/null |
    awk '/^Inst /{print $2}')
if [[ ${#PACKAGES[@]} -eq 0 ]]; then
    echo "apt-get cannot resolve chromium (no package lists?); install chromium and rerun" >&2
    exit 1
fi
mkdir -p "$DEST/debs"
cd "$DEST/debs"
apt-get download "${PACKAGES[@]}" >&2
for deb in ./*.deb; do
    dpkg -x "$deb" "$DEST"
done
cd "$DEST"
rm -rf "$DEST/debs"
# Every folder the unpacked libraries landed in (pulseaudio's are in a folder of their own).
LIBS=$(find "$DEST/usr/lib" -name 'lib*.so*' -printf '%h\n' | sort -u | paste -sd:)
# The wrapper is written last: an unpack cut short is redone on the next call.
cat >"$WRAPPER.tmp" <<WRAP
#!/bin/sh
LD_LIBRARY_PATH="$LIBS\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" \\
    exec "$DEST/usr/lib/chromium/chromium" "\$@"
WRAP
chmod +x "$WRAPPER.tmp"
"$WRAPPER.tmp" --version >&2
mv "$WRAPPER.tmp" "$WRAPPER"
echo "$WRAPPER"
