#!/usr/bin/env bash
# `make demo`: the whole loop on the built-in simulated SO-101: record demonstrations, train a policy, deploy it with
# the policy node, evaluate it (success table). Extra arguments go to lerobot_bringup.demo, e.g.
#   scripts/demo.sh --episodes 80 --steps 12000 --eval-episodes 20      (see scripts/demo.sh --help)
set -eo pipefail
WS="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$WS/env.bash" 2>/dev/null
# A DDS domain of the demo's own, so it cannot talk to another robot graph on this network.
export ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-$(( (RANDOM % 200) + 1 ))}"
export ROS_AUTOMATIC_DISCOVERY_RANGE="${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}"
cd "$WS"
exec python -m lerobot_bringup.demo "$@"
