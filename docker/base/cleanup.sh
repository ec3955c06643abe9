#!/bin/sh
# Trims a fresh debootstrap tree (argument: its root) before `docker import` (scripts/images.py base).
set -eu
root="$1"
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/apt/*.bin "$root"/var/lib/apt/lists/* \
       "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
       "$root"/var/log/* "$root"/debootstrap "$root"/tmp/* "$root"/var/tmp/*
# Containers get their resolver and hostname from the engine at run time.
: > "$root"/etc/resolv.conf
: > "$root"/etc/hostname
