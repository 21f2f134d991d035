"""`lerobot-find-port`: which serial port is an arm's bus adapter? LeRobot's procedure.

    lerobot-find-port            list the ports, ask you to unplug the adapter, list again: the one that went away
    lerobot-find-port --list     only list the serial ports (and their stable /dev/serial/by-id names)

The stable name (/dev/serial/by-id/usb-...) survives reboots and replugging, unlike /dev/ttyACM0: prefer it for
the arm_driver's `port` parameter. Your user needs access to the ports (`sudo usermod -aG dialout $USER`, then log
in again).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

# Serial devices of USB adapters (CDC-ACM: Feetech/Waveshare boards; USB-serial: U2D2 and FTDI-based ones).
PORT_PATTERNS = ("ttyACM*", "ttyUSB*")
SETTLE_S = 0.5  # udev removes the device node shortly after the unplug


def list_ports(dev: Path = Path("/dev")) -> list[Path]:
    return sorted({p for pattern in PORT_PATTERNS for p in dev.glob(pattern)})


def stable_names(dev: Path = Path("/dev")) -> dict[Path, Path]:
    """port -> its /dev/serial/by-id link (udev's stable name), for the ports that have one."""
    by_id = dev / "serial" / "by-id"
    names = {}
    if by_id.is_dir():
        for link in sorted(by_id.iterdir()):
            try:
                names[(link.parent / link.readlink()).resolve()] = link
            except OSError:
                continue
    return names


def describe(port: Path, names: dict[Path, Path]) -> str:
    link = names.get(port.resolve())
    return f"{port}  ({link})" if link else str(port)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lerobot-find-port", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--list", action="store_true", help="list the serial ports and exit")
    parser.add_argument("--dev", type=Path, default=Path("/dev"), help="device folder to look in (default /dev)")
    args = parser.parse_args(argv)

    before = list_ports(args.dev)
    names = stable_names(args.dev)  # read now: the unplugged adapter's link disappears with it
    if args.list:
        for port in before:
            print(describe(port, names))
        if not before:
            print(f"no serial port ({', '.join(PORT_PATTERNS)}) in {args.dev}", file=sys.stderr)
            return 1
        return 0
    if not before:
        print(f"lerobot-find-port: no serial port ({', '.join(PORT_PATTERNS)}) in {args.dev}: plug the arm's USB "
              "adapter in (and power the arm), then run this again", file=sys.stderr)
        return 1
    print("Ports before disconnecting:")
    for port in before:
        print(f"  {describe(port, names)}")
    print("Remove the USB cable from your arm's bus adapter and press Enter when done.", flush=True)
    try:
        input()
    except EOFError:
        pass
    time.sleep(SETTLE_S)
    after = list_ports(args.dev)
    gone = sorted(set(before) - set(after))
    if len(gone) == 1:
        port = gone[0]
        print(f"The port of this arm's bus is '{port}'")
        link = names.get(port.resolve())
        if link:
            print(f"Its stable name (survives replugging): '{link}'")
        print("Reconnect the USB cable.")
        return 0
    if not gone:
        print("lerobot-find-port: no port went away: was the right cable unplugged? (ports now: "
              f"{[str(p) for p in after] or 'none'})", file=sys.stderr)
    else:
        print(f"lerobot-find-port: several ports went away ({[str(p) for p in gone]}): unplug only one adapter",
              file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
