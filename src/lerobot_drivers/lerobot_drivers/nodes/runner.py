"""The `main()` of a plain (non-lifecycle) node: init, build, spin until Ctrl-C or shutdown, clean up.

A configuration error raised while building the node (a bad parameter) ends the program with exit code 2 and a
one-line message instead of a traceback.
"""
from __future__ import annotations

import sys
from typing import Callable

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node


def run_node(make_node: Callable[[], Node], program: str, args=None,
             config_errors: tuple[type[Exception], ...] = (ValueError,),
             on_exit: Callable[[Node], None] | None = None) -> int:
    rclpy.init(args=args)
    try:
        node = make_node()
    except config_errors as error:
        print(f"{program}: {error}", file=sys.stderr)
        rclpy.try_shutdown()
        return 2
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if on_exit is not None:
            on_exit(node)
        node.destroy_node()
        rclpy.try_shutdown()
    return 0
