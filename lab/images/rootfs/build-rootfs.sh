#!/usr/bin/env bash
# Build a minimal Debian root file system with debootstrap and pack it as a
# tarball for `docker import`.  Called by lab/images/factory.py; needs root.
#
# usage: build-rootfs.sh SUITE MIRROR PACKAGES(comma-separated) OUTPUT.tar
set -euo pipefail

suite=$1 mirror=$2 packages=$3 output=$4
workdir=$(mktemp -d "${output%.tar}.XXXXXX")

# Unmount whatever is still mounted under a directory, deepest first.
# debootstrap can leave the target's /proc mounted (seen with Debian 12's
# debootstrap building trixie); packing or removing the tree would then walk
# the host's /proc.
unmount_under() {
  local target
  awk -v r="$1" '$2 == r || index($2, r "/") == 1 { print $2 }' /proc/mounts | sort -r |
    while read -r target; do
      umount "$target" 2>/dev/null || umount -l "$target"
    done
}
trap 'unmount_under "$workdir"; rm -rf --one-file-system "$workdir"' EXIT

debootstrap --variant=minbase --include="$packages" "$suite" "$workdir/root" "$mirror" >"$workdir/debootstrap.log" 2>&1 || {
  tail -n 40 "$workdir/debootstrap.log" >&2
  echo "build-rootfs: debootstrap of $suite from $mirror failed (log above)" >&2
  exit 1
}

root=$workdir/root
unmount_under "$root"
# Make the tree an image rather than a machine: no package caches, no
# machine identity and no SSH host keys (each container makes its own).
rm -rf "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
  "$root"/var/lib/apt/lists/* "$root"/var/log/*.log "$root"/etc/ssh/ssh_host_*
: >"$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"

tar -C "$root" --numeric-owner --one-file-system -cf "$output.partial" .
mv "$output.partial" "$output"
