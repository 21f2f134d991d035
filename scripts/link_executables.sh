#!/usr/bin/env bash
# Link every package executable of the colcon install (install/<pkg>/lib/<pkg>/*) into install/bin, so one PATH
# entry makes `lerobot-bringup`, `recorder`, `arm_driver`, ... commands: the pip environment has no `ros2 run`, and
# on a full ROS install the README's commands work the same way. Used by scripts/setup.sh and docker/Dockerfile.
set -euo pipefail
WS="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
rm -rf "$WS/install/bin"
mkdir -p "$WS/install/bin"
for exe in "$WS"/install/*/lib/*/*; do
    pkg_lib="$(basename "$(dirname "$exe")")"
    if [ -f "$exe" ] && [ -x "$exe" ] && [ -d "$WS/install/$pkg_lib" ]; then
        ln -sf "$exe" "$WS/install/bin/$(basename "$exe")"
    fi
done
