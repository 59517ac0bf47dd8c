#!/bin/sh
# What the test suite needs beyond Python packages, from Debian: a PostgreSQL server (the suite starts its own
# throw-away instance) and chromium (browser tests). Installs what is missing when run as root or with sudo.
set -eu
need=""
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || need="$need postgresql"
[ -x /usr/bin/chromium ] || need="$need chromium"
[ -z "$need" ] && exit 0
if [ "$(id -u)" = 0 ]; then sudo=""; elif command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
  echo "the tests need:$need (apt-get install$need), and this user cannot install packages" >&2; exit 1
fi
echo "installing test dependencies:$need"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# shellcheck disable=SC2086
$sudo apt-get install -y -qq --no-install-recommends $need
