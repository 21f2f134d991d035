#!/usr/bin/env bash
# Run every package's tests in one pytest session, isolated from any other ROS graph on the machine.
# Extra arguments go to pytest (e.g. scripts/run_tests.sh -k recorder).
set -eo pipefail
WS="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$WS/env.bash" 2>/dev/null

# DDS isolation: a domain of our own for this run, discovery limited to this host, logs in a temp dir,
# and UDP buffers big enough for image topics.
export ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-$(( (RANDOM % 200) + 1 ))}"
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
export ROS_LOG_DIR="$(mktemp -d -t lerobot-ros-log-XXXXXX)"
export FASTDDS_BUILTIN_TRANSPORTS='DEFAULT?sockets_size=4MB'
echo "tests: ROS_DOMAIN_ID=$ROS_DOMAIN_ID ROS_LOG_DIR=$ROS_LOG_DIR"

cd "$WS"
exec python -m pytest "$@"
