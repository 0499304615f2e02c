#!/usr/bin/env bash
# Run by `npm test` before any test starts: the end-to-end tests need real
# components (Debian packages). As root with apt-get, missing ones are installed;
# otherwise this prints, in one line, exactly what to run, and fails.
# Then it builds the container image (`npm run image`; seconds when its layers
# are cached) so the image test runs it rather than waiting for it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

declare -A package_of=(
  [containerd]=containerd [ctr]=containerd [runc]=runc [docker-registry]=docker-registry
  [skopeo]=skopeo [htpasswd]=apache2-utils [ip]=iproute2 [tc]=iproute2 [mmdebstrap]=mmdebstrap
  [chromium]=chromium
)
missing=()
for tool in "${!package_of[@]}"; do
  PATH="$PATH:/usr/sbin:/sbin" command -v "$tool" >/dev/null 2>&1 || missing+=("${package_of[$tool]}")
done
[ -f /etc/ssl/certs/ca-certificates.crt ] || missing+=(ca-certificates)
if [ "${#missing[@]}" -gt 0 ]; then
  packages=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "npm test: installing ${packages}(apt-get)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $packages >/dev/null
  else
    echo "npm test needs Debian packages first: sudo apt-get install -y --no-install-recommends ${packages}" >&2
    exit 1
  fi
fi

node tools/dist/src/image/build.js
