#!/bin/sh
# System packages the tests and benchmarks drive: SoftHSM2 and OpenSC (PKCS#11), the real
# protocol clients (certbot, lego, scep, pebble as the reference ACME server), PostgreSQL,
# openssl and curl, and wrk for load. Installed through apt when run as root (as CI is).
set -eu
PKGS="softhsm2 opensc openssl curl certbot lego scep pebble postgresql wrk"
missing=""
for p in $PKGS; do
  dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ]; then
  echo "installing:$missing"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
  # The postgresql package starts a cluster service; the tests run their own server.
  exit 0
fi
echo "missing system packages:$missing (run 'sudo make system-deps')" >&2
case "${CI:-}" in true|1|yes) exit 1 ;; esac
exit 0
