"""Every command the README names, and every executable the packages install, is on PATH after `source env.bash`
in a clean shell, and `--help` prints help and exits 0 without starting anything (nodes included)."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

WORKSPACE = Path(__file__).resolve().parents[3]


def installed_executables() -> list[str]:
    """Console scripts declared by the packages' setup.py files (what colcon installs under lib/<package>/)."""
    names = []
    for setup in sorted((WORKSPACE / "src").glob("*/setup.py")):
        names += re.findall(r'"([A-Za-z0-9_-]+) = [A-Za-z0-9_.]+:[A-Za-z0-9_]+"', setup.read_text())
    return sorted(set(names))


# First words of README command lines that are not this workspace's commands.
OTHER_TOOLS = {"make", "source", "python", "pip", "colcon", "ros2", "docker", "ls", "sudo", "cd", "export", "bash",
               "git", "echo", "#", "torchrun"}  # torchrun: torch's launcher (in the venv), for lerobot_train.train


def readme_commands() -> list[str]:
    """Commands the README tells the user to run: the first word of each line of its ```bash blocks and of each
    command in a table cell, except general tools (make, pip, ros2, ...)."""
    text = (WORKSPACE / "README.md").read_text()
    first_words = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.splitlines():
            line = line.strip()
            if line and not line.startswith("#") and not line.startswith(("-", "follower_")):
                first_words.append(line.split()[0])
    first_words += re.findall(r"^\| `([A-Za-z0-9_-]+) [^`]*`", text, re.M)  # `command --flag ...` table cells
    return sorted({w for w in first_words if w not in OTHER_TOOLS and re.fullmatch(r"[A-Za-z0-9_-]+", w)})


def run_in_clean_shell(script: str) -> subprocess.CompletedProcess:
    """bash without profile or rc files, with an environment holding nothing of this test run's venv."""
    env = {"HOME": str(Path.home()), "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
    return subprocess.run(["bash", "--noprofile", "--norc", "-c", f"source '{WORKSPACE}/env.bash' && cd / && {script}"],
                          env=env, capture_output=True, text=True, timeout=600)


def test_readme_commands_are_installed_executables():
    missing = [c for c in readme_commands() if c not in installed_executables()]
    assert not missing, f"the README names commands no package installs: {missing}"


def test_every_command_answers_help_from_a_clean_shell():
    commands = sorted(set(readme_commands()) | set(installed_executables()))
    assert "lerobot-bringup" in commands and "recorder" in commands
    # One shell for all of them: print a marker, the exit code, and the first line of the output of each.
    script = "; ".join(
        f"echo '@@ {name}'; out=$({name} --help 2>&1); echo \"rc=$?\"; echo \"$out\" | head -n 3"
        for name in commands)
    result = run_in_clean_shell(script)
    assert result.returncode == 0, result.stderr
    sections = dict(re.findall(r"@@ (\S+)\n(.*?)(?=\n@@ |\Z)", result.stdout, re.S))
    for name in commands:
        section = sections.get(name, "")
        assert section.startswith("rc=0\n"), f"`{name} --help` failed:\n{section}\n{result.stderr[-2000:]}"
        assert "usage" in section.lower(), f"`{name} --help` printed no usage:\n{section}"
