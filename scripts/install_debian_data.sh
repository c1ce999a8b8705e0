#!/usr/bin/env bash
# Debian packages the data sets need (idempotent): mma makes the `grooves` songs, the two
# General MIDI soundfonts render them; the `soundtracks` set reads the music of Wesnoth and
# SuperTux; the `multitrack` set renders the MIDI music of Freedoom, FreeDM, Simutrans and
# OpenTTD (OpenMSX). Without them those tests skip, saying so.
set -euo pipefail
packages=(mma fluid-soundfont-gm musescore-general-soundfont wesnoth-1.16-music supertux-data
          freedoom freedm simutrans-data openttd-openmsx)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "note: the grooves, soundtracks and multitrack data sets need: sudo apt-get install ${packages[*]}" >&2
  exit 0
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
