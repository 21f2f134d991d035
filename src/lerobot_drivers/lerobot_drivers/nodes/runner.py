"""The `main()` of a plain (non-lifecycle) node: help, init, build, spin until Ctrl-C or shutdown, clean up.

`--help` / `-h` (before any `--ros-args`) prints the node's description and parameter table and exits 0 without
starting anything. A configuration error raised while building the node (a bad parameter) ends the program with
exit code 2 and a one-line message instead of a traceback. Lifecycle nodes use `lifecycle_main` instead.
"""
from __future__ import annotations

import sys
from typing import Callable, Sequence

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node

from lerobot_drivers.nodes.lifecycle_main import EXIT_BAD_PARAMETER, EXIT_OK, config_error_types
from lerobot_drivers.nodes.parameters import ParameterSpec, help_text, wants_help


def run_node(make_node: Callable[[], Node], program: str, args=None,
             config_errors: tuple[type[Exception], ...] = (),
             on_exit: Callable[[Node], None] | None = None, *,
             description: str = "", parameters: Sequence[ParameterSpec] = (),
             until: Callable[[Node], bool] | None = None) -> int:
    """Run one plain node until Ctrl-C/shutdown, or until `until(node)` is true (e.g. the operator pressed Esc)."""
    argv = list(sys.argv[1:] if args is None else args)
    if wants_help(argv):
        print(help_text(program, description, parameters))
        return EXIT_OK
    rclpy.init(args=args)
    try:
        node = make_node()
    except tuple(config_errors) + config_error_types() as error:
        print(f"{program}: {error}", file=sys.stderr)
        rclpy.try_shutdown()
        return EXIT_BAD_PARAMETER
    try:
        if until is None:
            rclpy.spin(node)
        else:
            while rclpy.ok() and not until(node):
                rclpy.spin_once(node, timeout_sec=0.1)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if on_exit is not None:
            on_exit(node)
        node.destroy_node()
        rclpy.try_shutdown()
    return EXIT_OK
