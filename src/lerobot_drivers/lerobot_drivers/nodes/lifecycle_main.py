"""The one `main()` of every lifecycle node of the suite (arm driver, cameras, recorder, policy node).

    def main(args=None) -> int:
        return run_lifecycle_node(MyNode, "my_node", args, description=__doc__, parameters=MY_PARAMETERS,
                                  on_exit=MyNode.release)

What every lifecycle node does the same way:
- `--help` / `-h` (before any `--ros-args`) prints the node's description and its parameter table, exits 0, and
  starts nothing.
- A bad start-up parameter (out of range, wrong type, a ValueError raised while building the node) prints one line
  `<program>: <error>` on stderr and exits with code 2.
- `autostart` (parameters.AUTOSTART, default true; the pip environment has no `ros2 lifecycle`): configure, then
  activate. A configure or activate that fails logs why (the node's callbacks say what is wrong) and ends the
  process with exit code 1, so `lerobot-bringup`/`ros2 launch` see a required process fail instead of a node that
  sits unconfigured. With `autostart:=false` the node waits for a lifecycle manager and says so.
- `<program> ready` is printed on stdout once the node is configured and active (or, without autostart, once it
  waits for its transitions): scripts and tests wait for that line.
- A `~/change_state` request for a transition the current state does not have (a second `activate`, say) is
  answered success=false with a warning, as rclcpp does; rclpy raises instead, and the exception would end the
  node's spin (an arm driver would switch torque off and exit).
- SIGINT and SIGTERM end the spin; `on_exit(node)` then runs whatever happened (drivers switch torque off, the
  recorder saves the episode in progress), then the node and the context are destroyed. Exit code 0.

The executor is single-threaded unless `threads` > 1 (the recorder serves goals and services while it saves).
"""
from __future__ import annotations

import sys
from typing import Callable, Sequence

from lerobot_drivers.nodes.parameters import AUTOSTART, ParameterSpec, help_text, wants_help

EXIT_OK, EXIT_TRANSITION_FAILED, EXIT_BAD_PARAMETER = 0, 1, 2


def config_error_types() -> tuple[type[Exception], ...]:
    """Exceptions that mean "bad configuration" when raised while a node is built."""
    from rclpy.exceptions import ParameterException

    return (ValueError, TypeError, ParameterException)


def refuse_invalid_transitions(node) -> None:
    """Answer a `~/change_state` request the current state has no transition for with success=false.

    rclpy's LifecycleNode lets the state machine's RCLError escape its service callback, which ends
    `executor.spin()`; the service object is rclpy's own (`_service_change_state`), so its callback is wrapped.
    """
    from lifecycle_msgs.msg import Transition
    from rclpy.impl.implementation_singleton import rclpy_implementation

    service = node._service_change_state
    change_state = service.callback
    labels = {value: name.removeprefix("TRANSITION_").lower() for name, value in vars(Transition).items()
              if name.startswith("TRANSITION_") and isinstance(value, int)}

    def checked_change_state(request, response):
        try:
            return change_state(request, response)
        except rclpy_implementation.RCLError:
            requested = request.transition.label or labels.get(request.transition.id, str(request.transition.id))
            state = node._state_machine.current_state[1]
            node.get_logger().warn(f"change_state: '{requested}' refused: the node is {state}, which has no such "
                                   "transition")
            response.success = False
            return response

    service.callback = checked_change_state


def run_lifecycle_node(
    make_node: Callable[[], object],
    program: str,
    args: Sequence[str] | None = None,
    *,
    description: str = "",
    parameters: Sequence[ParameterSpec] = (),
    on_exit: Callable[[object], None] | None = None,
    threads: int = 1,
) -> int:
    """Run one lifecycle node until SIGINT/SIGTERM; returns the process exit code (see the module docstring)."""
    argv = list(sys.argv[1:] if args is None else args)
    if wants_help(argv):
        print(help_text(program, description, parameters, lifecycle=True))
        return EXIT_OK
    if AUTOSTART.name not in {spec.name for spec in parameters}:
        raise TypeError(f"{program}: a lifecycle node's parameter table must include parameters.AUTOSTART")

    import rclpy
    from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor, SingleThreadedExecutor
    from rclpy.lifecycle import TransitionCallbackReturn
    from rclpy.signals import SignalHandlerOptions

    # SIGTERM (what process managers send) must run the same shutdown path as Ctrl-C.
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.ALL)
    try:
        node = make_node()
    except config_error_types() as error:
        print(f"{program}: {error}", file=sys.stderr, flush=True)
        rclpy.try_shutdown()
        return EXIT_BAD_PARAMETER
    refuse_invalid_transitions(node)
    executor = MultiThreadedExecutor(num_threads=threads) if threads > 1 else SingleThreadedExecutor()
    executor.add_node(node)
    exit_code = EXIT_OK
    try:
        if node.get_parameter(AUTOSTART.name).value:
            if node.trigger_configure() != TransitionCallbackReturn.SUCCESS:
                node.get_logger().error("autostart: configure failed (the reason is logged above); exiting")
                exit_code = EXIT_TRANSITION_FAILED
            elif node.trigger_activate() != TransitionCallbackReturn.SUCCESS:
                node.get_logger().error("autostart: activate failed (the reason is logged above); exiting")
                exit_code = EXIT_TRANSITION_FAILED
        else:
            node.get_logger().info("autostart is false: unconfigured, waiting for a lifecycle manager "
                                   "(~/change_state)")
        if exit_code == EXIT_OK:
            print(f"{program} ready", flush=True)
            executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception as exc:
        # A signal can shut the context down while spin() is between two waits; spin then fails on the dead
        # context instead of raising ExternalShutdownException: that is still a normal shutdown.
        if rclpy.ok():
            raise
        print(f"{program}: spin ended by {type(exc).__name__} ({exc}) during shutdown", file=sys.stderr, flush=True)
    finally:
        if on_exit is not None:
            on_exit(node)
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    return exit_code
