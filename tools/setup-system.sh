#!/usr/bin/env bash
# Install the Debian packages gridmgr needs, only those missing; apt-get update only when something is.
set -euo pipefail

want=(postgresql postgresql-contrib)
want+=(slapd)  # the LDAP tests start a private slapd (tests/ldap_directory.py)
# Node.js and npm install the map assets; a machine that has them (e.g. from nodesource) keeps its own
command -v npm >/dev/null 2>&1 || want+=(nodejs npm)
if [ "${GRIDMGR_BROWSER:-1}" = 1 ]; then
  # headless browser tests: Debian's chromium, its driver and a CJK font (PITFALLS.md)
  want+=(chromium chromium-driver fonts-noto-cjk)
fi

sudo_() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
missing() { for p in "$@"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"; done; }

if ! command -v apt-get >/dev/null; then
  echo "gridmgr setup: no apt-get here; install PostgreSQL >= 14 with PostGIS 3 by hand (macOS: brew install postgis)" >&2
  echo "or set GRIDMGR_DATABASE_URL to an existing PostGIS server (see README)." >&2
  exit 0
fi

apt_install() {
  local todo=("$@")
  [ ${#todo[@]} -gt 0 ] || return 0
  echo "gridmgr setup: installing Debian packages: ${todo[*]}"
  if [ ! -f /var/lib/apt/periodic/gridmgr-updated ] || ! apt-cache show "${todo[0]}" >/dev/null 2>&1; then
    sudo_ apt-get update -qq
    sudo_ mkdir -p /var/lib/apt/periodic && sudo_ touch /var/lib/apt/periodic/gridmgr-updated
  fi
  sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${todo[@]}" >/dev/null
}

apt_install $(missing "${want[@]}")
# PostGIS must match the server's major version (PITFALLS.md)
ver=$(ls /usr/lib/postgresql | sort -n | tail -1)
apt_install $(missing "postgresql-$ver-postgis-3")
# the Debian postgresql package starts a system cluster we do not use; leave it as the admin set it
