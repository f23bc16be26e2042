#!/usr/bin/env bash
# Installs, from Debian 12 packages only, what it takes to build and run mta
# (`build`), and additionally the real peers the test suite talks to (`test`).
# Idempotent: a second run installs nothing. Must run as root.
set -euo pipefail

what=${1:-build}

build_pkgs=(
  build-essential cmake ninja-build pkg-config ccache git
  libasio-dev libssl-dev openssl libc-ares-dev libyaml-cpp-dev librocksdb-dev
  prometheus-cpp-dev doctest-dev librestinio-dev libhttp-parser-dev libfmt-dev
  libcurl4-openssl-dev nlohmann-json3-dev libspdlog-dev libcli11-dev libsystemd-dev
  libre2-dev libopendkim-dev
  ca-certificates
)
# Test peers: Postfix's smtp-sink/smtp-source, swaks, dnsmasq (the binary only,
# no system service), the AWS SDK and systemd-analyze for the unit file check.
test_pkgs=(
  postfix swaks libnet-ssleay-perl libio-socket-ssl-perl dnsmasq-base python3
  python3-boto3 curl systemd time procps iproute2
  wrk  # bench/http_vs_smtp.sh: HTTP load generator
  python3-dkim  # verifies our DKIM signatures (dkimpy) in the e2e tests
)

case "$what" in
  build) pkgs=("${build_pkgs[@]}") ;;
  test) pkgs=("${build_pkgs[@]}" "${test_pkgs[@]}") ;;
  *) echo "usage: $0 [build|test]" >&2; exit 2 ;;
esac

if [[ $(id -u) -ne 0 ]]; then
  echo "install-deps.sh: run as root (apt-get install)" >&2
  exit 2
fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
# Postfix is installed only for its smtp-sink/smtp-source tools: no system
# mail service is configured or started.
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
