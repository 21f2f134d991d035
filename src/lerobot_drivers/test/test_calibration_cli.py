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


def test_lerobot_flags_and_simulated_sweep(tmp_path):
    """A LeRobot user's command works unchanged (--robot.type/--robot.port/--robot.id, --teleop.*); --sim-sweep
    plays the operator on the simulator's control socket."""
    for arm, role, folder in (("so101_follower", "robot", "robots/so_follower"),
                              ("so101_leader", "teleop", "teleoperators/so_leader")):
        socket_path = str(tmp_path / f"{arm}.sock")
        with ServoBusSimulator(arm, control_socket=socket_path) as sim:
            cli = CliSession([f"--{role}.type={arm}", f"--{role}.port={sim.port}", f"--{role}.id=lerobot_flags",
                              f"--{role}.calibration_dir={tmp_path}", "--min-packet-timeout-ms", "200",
                              "--sim-sweep", socket_path])
            assert cli.finish(timeout=120) == 0, cli.output
            path = tmp_path / folder / "lerobot_flags.json"
            assert f"Calibration saved to {path}" in cli.output
            calibration = load_calibration(path)
            assert calibration["elbow_flex"].range_min < 1200 and calibration["elbow_flex"].range_max > 2900
    # A follower type given as --teleop.type is refused, as LeRobot would.
    cli = CliSession(["--teleop.type=so101_follower", "--teleop.port=/dev/null", "--teleop.id=x"])
    assert cli.finish() == 2 and "invalid choice" in cli.output


def test_a_calibration_the_motors_cannot_store_is_explained_and_undone(tmp_path):
    """The arm is not centred at the first Enter (a joint at the end of its encoder turn): the homing offset cannot
    be encoded. One clear message, no traceback, and the motors keep the calibration they had."""
    socket_path = str(tmp_path / "arm.sock")
    with ServoBusSimulator("so101_follower", control_socket=socket_path) as sim:
        sim.set_register("elbow_flex", "Homing_Offset", 100)
        sim.set_register("elbow_flex", "Max_Position_Limit", 3000)
        sim.move({"wrist_roll": 4095}, frame="present", speed=100000)
        _settle(sim, "wrist_roll", 4095)
        cli = CliSession(["--arm", "so101_follower", "--port", sim.port, "--id", "uncentred", "--calibration-dir",
                          str(tmp_path), "--min-packet-timeout-ms", "200", "--sim-sweep", socket_path])
        assert cli.finish(timeout=120) == 1, cli.output
        assert "Traceback" not in cli.output
        assert "cannot be stored in the motors" in cli.output and "middle of its range" in cli.output
        assert "previous calibration back" in cli.output
        assert sim.register("elbow_flex", "Homing_Offset") == 100
        assert sim.register("elbow_flex", "Max_Position_Limit") == 3000
        assert not (tmp_path / "robots" / "so_follower" / "uncentred.json").exists()
