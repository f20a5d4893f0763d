#!/usr/bin/env bash
# Idempotent set-up on Debian 12 with Python 3.11: Debian packages, the venv, pinned Python
# packages. `make run` and `make test` call it; a second call with nothing changed is quick.
set -euo pipefail
cd "$(dirname "$0")/.."

# Mesa EGL + llvmpipe: headless OpenGL for the renderer. espeak-ng: the corpus's speech.
# sox, ffmpeg: making and checking test media. libportaudio2: the microphone client.
DEB_PACKAGES=(libegl1 libegl-mesa0 libgl1-mesa-dri libgles2 espeak-ng libespeak-ng1 sox ffmpeg libportaudio2 chromium)
missing=()
for p in "${DEB_PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($PY --version)"
  $PY -m venv .venv
fi

stamp=.venv/.stylecast-setup
want=$(cat pyproject.toml requirements/constraints.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing Python packages (pinned by requirements/constraints.txt)"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -c requirements/constraints.txt -e ".[avatar,train,webrtc,mic,dev]"
  echo "$want" > "$stamp"
fi
