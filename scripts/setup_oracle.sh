#!/usr/bin/env bash
# Create .venv-oracle: upstream lerobot 0.4.4 (the newest release that runs on Python 3.11) installed next to the
# CPU torch, used by the tests as a compatibility ORACLE for the LeRobotDataset v3.0 format.
#
# lerobot 0.4.4 pins torch<2.11 / torchvision<0.26 / torchcodec, which on this Python would pull the CUDA builds,
# so it is installed with --no-deps on top of a hand-picked set: torch 2.13.0 (the CPU wheel), torchvision 0.28.0
# (a CUDA build whose C++ ops do not load; tests/oracle/oracle_shims.py defines the op schemas it needs) and what
# `lerobot.datasets.lerobot_dataset` imports. Video decoding goes through the PyAV torchvision.io.VideoReader
# stand-in in tests/oracle/oracle_shims.py (video_backend="pyav"), so no system FFmpeg is needed.
# Scripts using the oracle must `import oracle_shims` before anything imports torchvision or lerobot.
#
# Idempotent and fast when done: the venv stores the sha256 of this script and is rebuilt only when it changes.
set -euo pipefail

WS="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${ORACLE_VENV:-$WS/.venv-oracle}"
PYTHON_BIN="${PYTHON:-python3}"
STAMP="$VENV/.setup_oracle.sha256"
HASH="$(sha256sum "${BASH_SOURCE[0]}" | cut -d' ' -f1)"

if [ -x "$VENV/bin/python" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$HASH" ]; then
    exit 0
fi

# Serialise concurrent runs (several shells running `make test`).
mkdir -p "$WS/log"
exec 8>"$WS/log/.setup_oracle.lock"
flock 8
if [ -x "$VENV/bin/python" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$HASH" ]; then
    exit 0
fi

"$PYTHON_BIN" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' || {
    echo "setup_oracle: Python 3.11 is required (torch 2.13.0 CPU wheel, lerobot 0.4.4); $PYTHON_BIN is $("$PYTHON_BIN" -V 2>&1). Set PYTHON=/path/to/python3.11" >&2
    exit 1
}
echo "--- setup_oracle: building $VENV (upstream lerobot 0.4.4 for compatibility tests, about 1-2 min)"
# Build next to the target and swap it in at the end, so a process still using the old venv is not left with a
# half-installed one (a venv invoked as <dir>/bin/python works from any directory name).
BUILD="$VENV.build"
rm -rf "$BUILD"
"$PYTHON_BIN" -m venv "$BUILD"
# pip warns once per package about the configured file:// mirror folders that lack it; hide only that noise.
pip_install() {
    "$BUILD/bin/python" -m pip install --quiet --disable-pip-version-check "$@" \
        2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
}
pip_install "setuptools<80" wheel
# av is pinned to the version of .venv (requirements/constraints.txt) so both sides decode with the same FFmpeg.
# torch==2.13.0 is the only torch spec that resolves to the CPU wheel here; torchvision 0.28.0 requires exactly it.
pip_install "torch==2.13.0" "torchvision==0.28.0" "datasets>=4,<5" "huggingface-hub>=0.34.2,<0.36" \
    accelerate "av==18.1.0" "pandas<3" "numpy<3" pyarrow pillow jsonlines packaging  # jsonlines: the v2.1->v3.0 converter
# What upstream's policies (ACT, Diffusion, RTC) and its lerobot-train script import, for the checkpoint and
# training oracles: draccus configs, diffusers' schedulers, and the small libraries their modules import.
pip_install "draccus==0.10.0" "diffusers>=0.27.2,<0.36" einops deepdiff pyserial "imageio[ffmpeg]" termcolor \
    "safetensors>=0.4.3" "transformers>=4.57,<5" tqdm "gymnasium>=0.29" wandb
# lerobot itself without its declared deps (they would replace torch with a CUDA build).
pip_install --no-deps "lerobot==0.4.4"

# Prove the import chain works before stamping the venv as ready.
PYTHONPATH="$WS/tests/oracle" HF_HUB_OFFLINE=1 "$BUILD/bin/python" -c '
import oracle_shims  # noqa: F401  (torchvision op schemas + VideoReader, before lerobot)
from lerobot.datasets.lerobot_dataset import LeRobotDataset  # noqa: F401
from lerobot.policies.act.modeling_act import ACTPolicy  # noqa: F401
from lerobot.policies.diffusion.modeling_diffusion import DiffusionPolicy  # noqa: F401
from lerobot.policies.rtc.modeling_rtc import RTCProcessor  # noqa: F401
import lerobot.scripts.lerobot_train  # noqa: F401
import torch
assert torch.__version__.startswith("2.13.0"), torch.__version__
assert not torch.cuda.is_available()
print("oracle ready: lerobot 0.4.4, torch", torch.__version__)
'
echo "$HASH" > "$BUILD/.setup_oracle.sha256"
OLD="$VENV.old.$$"
if [ -e "$VENV" ]; then mv "$VENV" "$OLD"; fi
mv "$BUILD" "$VENV"
rm -rf "$OLD"
