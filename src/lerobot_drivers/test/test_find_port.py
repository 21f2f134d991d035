"""lerobot-find-port: LeRobot's procedure (list, unplug, list again) on a device folder the test controls."""
from __future__ import annotations

import subprocess
import sys
import time


def _devices(tmp_path, *names):
    dev = tmp_path / "dev"
    (dev / "serial" / "by-id").mkdir(parents=True)
    for name in names:
        (dev / name).touch()
    return dev


def _run(dev, stdin_action=None):
    proc = subprocess.Popen([sys.executable, "-m", "lerobot_drivers.find_port_cli", "--dev", str(dev)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return proc


def test_the_port_that_goes_away_is_the_arms(tmp_path):
    dev = _devices(tmp_path, "ttyACM0", "ttyACM1", "ttyUSB0", "ttyS0")
    (dev / "serial" / "by-id" / "usb-1a86_USB_Single_Serial_5A46-if00").symlink_to("../../ttyACM1")
    proc = _run(dev)
    time.sleep(0.5)
    (dev / "ttyACM1").unlink()  # the operator unplugs the adapter...
    (dev / "serial" / "by-id" / "usb-1a86_USB_Single_Serial_5A46-if00").unlink()
    out, err = proc.communicate("\n", timeout=30)  # ...and presses Enter
    assert proc.returncode == 0, out + err
    assert f"  {dev}/ttyACM1  ({dev}/serial/by-id/usb-1a86_USB_Single_Serial_5A46-if00)" in out
    assert f"{dev}/ttyS0" not in out  # built-in UARTs are not arm adapters
    assert f"The port of this arm's bus is '{dev}/ttyACM1'" in out
    assert f"Its stable name (survives replugging): '{dev}/serial/by-id/usb-1a86_USB_Single_Serial_5A46-if00'" in out


def test_nothing_or_several_unplugged_and_list(tmp_path):
    dev = _devices(tmp_path, "ttyACM0", "ttyUSB0")
    proc = _run(dev)
    out, err = proc.communicate("\n", timeout=30)
    assert proc.returncode == 1 and "no port went away" in err
    proc = _run(dev)
    time.sleep(0.5)
    (dev / "ttyACM0").unlink()
    (dev / "ttyUSB0").unlink()
    out, err = proc.communicate("\n", timeout=30)
    assert proc.returncode == 1 and "several ports went away" in err
    listed = subprocess.run([sys.executable, "-m", "lerobot_drivers.find_port_cli", "--dev", str(dev), "--list"],
                            capture_output=True, text=True, timeout=30)
    assert listed.returncode == 1 and "no serial port" in listed.stderr
