#!/usr/bin/env bash
# Make a local Python base image when no public registry is reachable:
#   scripts/make_base_image.sh [tag]        (default tag: gateway-base:bookworm)
#   SUITE=trixie scripts/make_base_image.sh gateway-base:trixie   (Debian 13: Python 3.13)
# Debian bookworm (minbase) from the apt mirror this machine already uses, with python3,
# python3-venv and the host's CA bundle (so pip inside `docker build --network host`
# trusts the same certificates as pip here). Its Python is Debian's 3.11.2; the lock
# covers it (scripts/lock_requirements.py evaluates markers for every supported Python).
# Then: make image BASE=gateway-base:bookworm
set -euo pipefail
tag="${1:-gateway-base:bookworm}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
suite="${SUITE:-bookworm}"
if docker image inspect "$tag" >/dev/null 2>&1; then
  echo "$tag already exists"
  exit 0
fi
command -v debootstrap >/dev/null || {
  echo "debootstrap is missing: apt-get install -y debootstrap" >&2
  exit 1
}
root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
  "$suite" "$root" "$mirror" >/dev/null
cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
ln -sf python3 "$root/usr/bin/python"
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/*
tar -C "$root" -c . | docker import \
  --change 'ENV LANG=C.UTF-8 PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
  --change 'CMD ["python3"]' - "$tag" >/dev/null
echo "built $tag ($(docker run --rm "$tag" python3 --version))"
