"""Parameters declared once per node, from a table of `ParameterSpec` rows.

Every node of the suite lists its parameters in one table (name, default, description, bounds, read-only), and
`declare_parameters` turns each row into a `declare_parameter` call with a `ParameterDescriptor`, so
`ros2 param describe`, rqt_reconfigure and `<executable> --help` all show the same text and bounds. rclpy
enforces the bounds and the read-only flag itself: an out-of-range value given at start-up fails the declaration
(the node's `main()` turns that into a one-line error and exit code 2), a `set_parameters` call with one is
refused.

Read-only marks what is only read at configure or construction time (a port, a file, a topic name): changing it
on a running node would do nothing, so rclpy refuses it instead of pretending.
"""
from __future__ import annotations

import textwrap
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.parameter import Parameter


@dataclass(frozen=True)
class ParameterSpec:
    """One row of a node's parameter table.

    `default` is the value (its type is the parameter's type), or a `Parameter.Type` for a parameter without a
    default (e.g. an empty string array). `bounds` (inclusive) apply to int and float parameters; `choices` are
    checked by the node and listed in the descriptor's additional_constraints.
    """

    name: str
    default: Any
    description: str
    bounds: tuple[float, float] | None = None
    read_only: bool = False
    dynamic_typing: bool = False  # e.g. a camera device that is 0 or "/dev/video0"
    choices: tuple[str, ...] = ()

    def descriptor(self) -> ParameterDescriptor:
        descriptor = ParameterDescriptor(name=self.name, description=self.description, read_only=self.read_only,
                                         dynamic_typing=self.dynamic_typing)
        if self.choices:
            descriptor.additional_constraints = "one of: " + ", ".join(self.choices)
        if self.bounds is not None:
            low, high = self.bounds
            if isinstance(self.default, bool) or not isinstance(self.default, (int, float)):
                raise TypeError(f"parameter {self.name!r}: bounds need an int or float default, got {self.default!r}")
            if isinstance(self.default, int):
                descriptor.integer_range = [IntegerRange(from_value=int(low), to_value=int(high), step=0)]
            else:
                descriptor.floating_point_range = [FloatingPointRange(from_value=float(low), to_value=float(high),
                                                                      step=0.0)]
        return descriptor

    def default_text(self) -> str:
        if isinstance(self.default, Parameter.Type):
            return "(none)"
        if isinstance(self.default, str):
            return repr(self.default) if self.default == "" else self.default
        if isinstance(self.default, bool):
            return str(self.default).lower()
        return str(self.default)


# Every lifecycle node of the suite takes this parameter, with this meaning (see lifecycle_main.py).
AUTOSTART = ParameterSpec(
    "autostart", True,
    "configure and activate at start-up (the pip environment has no `ros2 lifecycle`); false: stay unconfigured "
    "until a lifecycle manager or ~/change_state drives the node. A failed configure or activate then ends the "
    "process with exit code 1.",
    read_only=True)


def declare_parameters(node, table: Sequence[ParameterSpec]) -> None:
    """Declare every row of `table` on `node` (raises rclpy's exceptions for a bad start-up value)."""
    names = [spec.name for spec in table]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"parameter table declares {duplicates} twice")
    for spec in table:
        node.declare_parameter(spec.name, spec.default, spec.descriptor())


def parameter_values(node, table: Sequence[ParameterSpec]) -> dict[str, Any]:
    """name -> current value of every row of `table` (None for a parameter declared without a value and not set)."""
    from rclpy.exceptions import ParameterUninitializedException

    values = {}
    for spec in table:
        try:
            values[spec.name] = node.get_parameter(spec.name).value
        except ParameterUninitializedException:
            values[spec.name] = None
    return values


def check_choice(spec: ParameterSpec, value: Any) -> Any:
    """`value` if it is one of `spec.choices`, else a ValueError naming the parameter and the choices."""
    if spec.choices and value not in spec.choices:
        raise ValueError(f"parameter {spec.name!r} = {value!r}: expected one of {', '.join(spec.choices)}")
    return value


def table_by_name(table: Sequence[ParameterSpec]) -> Mapping[str, ParameterSpec]:
    return {spec.name: spec for spec in table}


def wants_help(argv: Sequence[str]) -> bool:
    """True when the command line asks for help (-h/--help before any --ros-args)."""
    for arg in argv:
        if arg == "--ros-args":
            return False
        if arg in ("-h", "--help"):
            return True
    return False


def help_text(program: str, description: str, table: Sequence[ParameterSpec], lifecycle: bool = False) -> str:
    """What `<program> --help` prints: the node's description and its parameter table."""
    lines = [f"usage: {program} [--ros-args -p NAME:=VALUE ... | --params-file FILE ...]", ""]
    summary = textwrap.dedent(description or "").strip()
    if summary:
        lines += [summary, ""]
    if lifecycle:
        lines += ["A lifecycle node: configure opens its resources, activate starts it (autostart:=true does both at "
                  "start-up).", ""]
    if table:
        lines.append("parameters:")
        for spec in table:
            extra = []
            if spec.bounds is not None:
                extra.append(f"range {spec.bounds[0]:g}..{spec.bounds[1]:g}")
            if spec.choices:
                extra.append("one of " + ", ".join(spec.choices))
            if spec.read_only:
                extra.append("read-only")
            tail = f" [{'; '.join(extra)}]" if extra else ""
            lines.append(f"  {spec.name} (default {spec.default_text()}){tail}")
            lines += textwrap.wrap(spec.description, width=100, initial_indent="      ", subsequent_indent="      ")
    else:
        lines.append("parameters: none")
    return "\n".join(lines)
