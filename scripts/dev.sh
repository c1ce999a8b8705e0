#!/usr/bin/env bash
# Set up a virtual environment in .venv (idempotent) and run one task in it.
#   bash scripts/dev.sh demo    -> install, then `mirsim demo`
#   bash scripts/dev.sh test    -> install, then the whole test suite (slow tests included)
#   bash scripts/dev.sh setup   -> install only
set -euo pipefail
cd "$(dirname "$0")/.."
task="${1:-setup}"
shift || true
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
. .venv/bin/activate
stamp=.venv/.mirsim-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ scripts/dev.sh -nt "$stamp" ]; then
  python -m pip install --quiet --upgrade pip
  # The CPU build of PyTorch first: an unpinned torch would pull a multi-GB CUDA build.
  python -m pip install --quiet "torch==2.13.0"
  # tinysoundfont renders the offline `synth` library; its pyaudio dependency is only for
  # real-time playback, which mirsim never uses (and it needs PortAudio headers to build).
  python -m pip install --quiet --no-deps "tinysoundfont==0.3.7"
  # musicnn ships the TensorFlow checkpoints that mirsim's PyTorch port reads; its own
  # dependencies (TensorFlow, an old NumPy) are never needed, so they are not installed.
  python -m pip install --quiet --no-deps "musicnn==0.1.0"
  # demucs runs the htdemucs separator (mirsim.separation.pretrained); mirsim uses its network
  # modules only, which need einops and julius, not its hub, audio-file or training extras.
  python -m pip install --quiet --no-deps "demucs==4.1.0" "einops>=0.8" "julius>=0.2.7"
  python -m pip install --quiet -e ".[test,distributed]"
  # Compile librosa's numba functions once, in one process: numba's cache written by several
  # processes at once can be left corrupt (a segmentation fault on the next import).
  python -c "from mirsim.parallel import warm_numba_caches; warm_numba_caches()"
  touch "$stamp"
fi
# Headless Chromium + driver for the web page tests (Debian); the tests skip without them.
if [ "$task" = test ] && ! { command -v chromium >/dev/null && [ -x /usr/bin/chromedriver ]; }; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver
  else
    echo "note: the web page tests need: sudo apt-get install chromium chromium-driver" >&2
  fi
fi
# mma and the General MIDI soundfonts for the `grooves` data set (Debian); its tests skip without.
if [ "$task" = test ]; then
  bash scripts/install_debian_data.sh
fi
case "$task" in
  setup) ;;
  demo) mirsim demo "$@" ;;
  test) python -m pytest "$@" ;;
  *) echo "unknown task '$task' (valid: setup, demo, test)" >&2; exit 2 ;;
esac
