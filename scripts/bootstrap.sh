# Sourced by scripts/demo and scripts/test: make a virtualenv with parkwatch[all]
# and the system services the tests need. Idempotent; reinstalls when pyproject changes.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${PARKWATCH_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"

"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
  echo "parkwatch needs Python >= 3.11 (found $("$PY" --version 2>&1)); set PYTHON=..." >&2; exit 2; }

if [ ! -x "$VENV/bin/python" ]; then
  echo "==> creating virtualenv $VENV"
  "$PY" -m venv "$VENV"
fi
stamp="$VENV/.parkwatch-installed"
want="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "==> installing parkwatch[all] into $VENV (first run takes a few minutes)"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  # torch==2.13.0 is pinned in the trainer extra: pip takes the CPU build.
  "$VENV/bin/python" -m pip install -q -e "$ROOT[all]"
  echo "$want" > "$stamp"
fi

# System tools the tests use: a broker they start on free ports, ffmpeg and an RTSP
# relay for camera-fault tests.
need=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
command -v ffmpeg >/dev/null 2>&1 || need+=(ffmpeg)
command -v rtsp-server-perl >/dev/null 2>&1 || need+=(rtsp-server-perl)
# headless browser for tests/integration/test_dashboard_browser.py
command -v chromium >/dev/null 2>&1 || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  echo "==> installing ${need[*]} with apt-get"
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}"
fi
export PATH="$VENV/bin:$PATH:/usr/sbin"
