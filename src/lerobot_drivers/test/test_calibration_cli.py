"""`lerobot-calibrate` end to end: a real process on the simulated bus, "Enter" through stdin, the simulator's
joints moved by the test as the operator's hands."""
import subprocess
import sys
import threading
import time

from lerobot_drivers.calibration import load_calibration
from lerobot_drivers.sim.servo_bus_simulator import ServoBusSimulator


class CliSession:
    def __init__(self, args):
        self.proc = subprocess.Popen([sys.executable, "-m", "lerobot_drivers.calibrate_cli", *args],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, bufsize=1)
        self.output = ""
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for chunk in iter(lambda: self.proc.stdout.read(1), ""):
            self.output += chunk

    def wait_for(self, text, timeout=30.0):
        deadline = time.monotonic() + timeout
        while text not in self.output:
            assert self.proc.poll() is None or text in self.output, f"exited early:\n{self.output}"
            assert time.monotonic() < deadline, f"no {text!r} in:\n{self.output}"
            time.sleep(0.02)

    def enter(self):
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()

    def finish(self, timeout=30.0):
        rc = self.proc.wait(timeout)
        time.sleep(0.05)
        return rc


def _settle(sim, name, target, timeout=10.0):
    deadline = time.monotonic() + timeout
    while abs(sim.state()[name]["present"] - target) > 0.5:
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_cli_calibrates_and_reuses_file(tmp_path):
    with ServoBusSimulator("so101_follower") as sim:
        args = ["--arm", "so101_follower", "--port", sim.port, "--id", "cli_arm", "--calibration-dir", str(tmp_path),
                "--min-packet-timeout-ms", "200"]
        cli = CliSession(args)
        cli.wait_for("middle of its range of motion")
        cli.enter()
        cli.wait_for("Recording ranges of motion")
        sweeps = {"shoulder_pan": (1500, 2600), "shoulder_lift": (1000, 3000), "elbow_flex": (1200, 2700),
                  "wrist_flex": (1300, 2800), "gripper": (2000, 3000)}
        for name, ends in sweeps.items():
            for target in ends:
                sim.move({name: target}, frame="present", speed=20000)
                _settle(sim, name, target)
                time.sleep(0.1)  # dwell for a few 20 ms recording polls
        cli.enter()
        assert cli.finish() == 0, cli.output
        path = tmp_path / "robots" / "so_follower" / "cli_arm.json"
        assert f"Calibration saved to {path}" in cli.output
        calibration = load_calibration(path)
        for name, (low, high) in sweeps.items():
            assert (calibration[name].range_min, calibration[name].range_max) == (low, high)
            assert sim.register(name, "Max_Position_Limit") == high
        assert (calibration["wrist_roll"].range_min, calibration["wrist_roll"].range_max) == (0, 4095)

        # Second run: the file exists; Enter writes it back to motors that lost their calibration.
        for name in sweeps:
            sim.set_register(name, "Max_Position_Limit", 4095)
        cli = CliSession(args)
        cli.wait_for("Press ENTER to write it to the motors")
        cli.enter()
        assert cli.finish() == 0, cli.output
        assert "Wrote" in cli.output
        assert all(sim.register(name, "Max_Position_Limit") == high for name, (_, high) in sweeps.items())


def test_cli_reports_bus_errors(tmp_path):
    cli = CliSession(["--arm", "koch_leader", "--port", "/dev/does-not-exist", "--id", "x",
                      "--calibration-dir", str(tmp_path)])
    assert cli.finish() == 1
    assert "lerobot-calibrate: port /dev/does-not-exist" in cli.output
