"""Errors of the policy runtime."""
from __future__ import annotations


class PolicyRuntimeError(Exception):
    """Base class of the runtime's own errors."""


class ConfigurationError(PolicyRuntimeError, ValueError):
    """A parameter, checkpoint or interface that cannot be served; raised at configure, never while acting."""


class IncompatibleCheckpointError(ConfigurationError):
    """The checkpoint's features do not match the robot interface. `differences` lists every one of them."""

    def __init__(self, checkpoint: str, interface: str, differences: list[str]) -> None:
        self.checkpoint, self.interface, self.differences = checkpoint, interface, list(differences)
        lines = "\n".join(f"  - {d}" for d in differences)
        super().__init__(
            f"checkpoint {checkpoint} does not match robot interface {interface} ({len(differences)} "
            f"difference{'s' if len(differences) != 1 else ''}):\n{lines}")
