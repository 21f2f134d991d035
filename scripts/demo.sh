#!/usr/bin/env bash
# `make demo`: record a few episodes on the built-in simulated SO-101 and validate the dataset.
# Extra arguments go to lerobot_bringup.demo (e.g. scripts/demo.sh --episodes 5 --episode-time 10).
set -eo pipefail
WS="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$WS/env.bash" 2>/dev/null
# A DDS domain of the demo's own, so it cannot talk to another robot graph on this network.
export ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-$(( (RANDOM % 200) + 1 ))}"
export ROS_AUTOMATIC_DISCOVERY_RANGE="${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}"
cd "$WS"
exec python -m lerobot_bringup.demo "$@"
