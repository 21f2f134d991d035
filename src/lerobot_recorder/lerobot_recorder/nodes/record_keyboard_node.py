"""`record_keyboard`: keyboard control of the recorder, as in lerobot-record: right arrow = save the episode now (or
end the reset period), left arrow = re-record (discard and record the same task again), Esc = save and stop.

Keys come from the suite's terminal reader (`lerobot_drivers.teleop.terminal`): a terminal is put in cbreak mode;
a pipe is read as it is, so the node can be scripted. The decisions are `lerobot_recorder.keyboard_session`
(tested without a terminal); this node sends the goals and service calls they ask for.

When the recorder cannot be reached it says why, as far as the ROS graph tells: no recorder node at all (it exited,
or another ROS_DOMAIN_ID), or a recorder node whose lifecycle state is not active (its configure failed: its log
says why). An episode that ends in an error (e.g. no frame at all because a camera never published) ends the
session with that error and exit code 1, instead of starting the same failing episode again.

Parameters: the PARAMETERS table below (`record_keyboard --help`).
"""
from __future__ import annotations

import queue
import sys
import threading

from rclpy.action import ActionClient
from rclpy.node import Node

from lerobot_drivers.nodes.parameters import ParameterSpec, declare_parameters, parameter_values
from lerobot_drivers.nodes.runner import run_node
from lerobot_drivers.teleop.terminal import TerminalKeys
from lerobot_msgs.action import RecordEpisode
from std_srvs.srv import Trigger

from lerobot_recorder.keyboard_session import Command, CommandKind, Key, KeyboardSession, key_from_name

PARAMETERS = (
    ParameterSpec("recorder", "/recorder", "node name of the recorder", read_only=True),
    ParameterSpec("task", "", "task text of every episode (empty: the task the recorder's interface gives)",
                  read_only=True),
    ParameterSpec("episode_time_s", 0.0, "episode length (s); 0 = until the right arrow", bounds=(0.0, 86400.0),
                  read_only=True),
    ParameterSpec("num_episodes", 0, "saved episodes to record before exiting; 0 = until Esc", bounds=(0, 100000),
                  read_only=True),
    ParameterSpec("server_timeout_s", 30.0, "how long to wait for the recorder's RecordEpisode action",
                  bounds=(0.1, 3600.0), read_only=True),
)


def recorder_node_present(node: Node, recorder: str) -> bool:
    namespace, _, name = recorder.rpartition("/")
    return (name, namespace or "/") in set(node.get_node_names_and_namespaces())


def absence_text(recorder: str, present: bool, lifecycle_label: str | None) -> str:
    """Why `recorder`'s action server is not there, from what the graph told."""
    if not present:
        return (f"no node {recorder} on the ROS graph: the recorder is not running (did it exit? its output says why) "
                f"or runs with another ROS_DOMAIN_ID")
    if lifecycle_label is None:
        return f"node {recorder} exists but offers no RecordEpisode action and does not answer {recorder}/get_state"
    return (f"the recorder {recorder} is {lifecycle_label}, not active: its configure or activate failed (its log "
            f"says why), or it waits for a lifecycle manager (autostart:=false)")


class RecordKeyboardNode(Node):
    def __init__(self) -> None:
        super().__init__("record_keyboard")
        declare_parameters(self, PARAMETERS)
        p = parameter_values(self, PARAMETERS)
        self.recorder = str(p["recorder"]).rstrip("/") or "/recorder"
        if not self.recorder.startswith("/"):
            self.recorder = "/" + self.recorder
        self.server_timeout_s = float(p["server_timeout_s"])
        self.session = KeyboardSession(task=str(p["task"]), episode_time_s=float(p["episode_time_s"]),
                                       num_episodes=int(p["num_episodes"]))
        self._action = ActionClient(self, RecordEpisode, f"{self.recorder}/record_episode")
        self._stop = self.create_client(Trigger, f"{self.recorder}/stop")
        self._goal_handle = None
        self.keys: "queue.Queue[Key | None]" = queue.Queue()
        self.done = threading.Event()
        self.exit_code = 0
        self._started = False
        self.create_timer(0.05, self._drain_keys)
        self._reader_stop = threading.Event()
        self._reader = threading.Thread(target=self._read_keys, name="record-keyboard-keys", daemon=True)
        self._reader.start()
        self.create_timer(0.1, self._start_when_ready)
        self._waited_s = 0.0
        self._state_client = None
        self._state_query = None  # the recorder's GetState call once the wait timed out (False: no such service)

    # ----------------------------------------------------------------------------------------------- keys
    def _read_keys(self) -> None:
        """Key names from the terminal (or pipe) -> session keys; None at the end of the input (acts as Esc)."""
        with TerminalKeys(sys.stdin) as terminal:
            while not self._reader_stop.is_set():
                name = terminal.read_key(timeout=0.1)
                if name is not None and key_from_name(name) is not None:
                    self.keys.put(key_from_name(name))
                if terminal.at_end and name is None:
                    self.keys.put(None)
                    return

    def stop_reading(self) -> None:
        self._reader_stop.set()
        self._reader.join(1.0)  # restores the terminal mode

    def _drain_keys(self) -> None:
        if not self._started:
            return  # keys before the first goal would act on nothing
        while True:
            try:
                key = self.keys.get_nowait()
            except queue.Empty:
                return
            if key is None:  # end of input: behave as Esc
                key = Key.ESCAPE
            self._say(f"key {key.value}")
            self._run(self.session.on_key(key))

    # ---------------------------------------------------------------------------------------------- start
    def _start_when_ready(self) -> None:
        if self._started or self.done.is_set():
            return
        if self._action.server_is_ready():
            self._started = True
            self._say("keys: → save episode / end reset, ← re-record, Esc stop")
            self._run(self.session.start())
            return
        self._waited_s += 0.1
        if self._waited_s < self.server_timeout_s:
            return
        # Ask the graph why, without blocking this callback: the recorder's lifecycle state, if it answers.
        if self._state_query is None:
            from lifecycle_msgs.srv import GetState

            self._state_client = self.create_client(GetState, f"{self.recorder}/get_state")
            self._state_query = (self._state_client.call_async(GetState.Request())
                                 if self._state_client.wait_for_service(timeout_sec=0.5) else False)
        query = self._state_query
        if query is not False and not query.done() and self._waited_s < self.server_timeout_s + 3.0:
            return
        label = query.result().current_state.label if query is not False and query.done() and query.result() else None
        why = absence_text(self.recorder, recorder_node_present(self, self.recorder), label)
        self._fail(f"no RecordEpisode server at {self.recorder}/record_episode after {self.server_timeout_s:g} s: {why}")

    # ------------------------------------------------------------------------------------------- commands
    def _say(self, text: str) -> None:
        print(f"[record_keyboard] {text}", flush=True)

    def _fail(self, reason: str) -> None:
        self._say(f"error: {reason}")
        self.exit_code = 1
        self.done.set()

    def _run(self, commands: list[Command]) -> None:
        for command in commands:
            if command.kind is CommandKind.SEND_GOAL:
                self._say(f"recording episode: task {command.task!r}")
                goal = RecordEpisode.Goal(task=command.task, duration=command.duration)
                self._action.send_goal_async(goal).add_done_callback(self._on_goal_response)
            elif command.kind is CommandKind.STOP:
                self._stop.call_async(Trigger.Request()).add_done_callback(self._on_stop_response)
            elif command.kind is CommandKind.CANCEL_GOAL:
                if self._goal_handle is not None:
                    self._goal_handle.cancel_goal_async()
            elif command.kind is CommandKind.EXIT:
                if self.session.failure:
                    self._fail(f"{self.session.failure} ({self.session.saved_episodes} episodes saved)")
                else:
                    self._say(f"done: {self.session.saved_episodes} episodes saved")
                    self.done.set()

    def _on_stop_response(self, future) -> None:
        response = future.result()
        self._say(f"stop: {response.message}" if response is not None else "stop failed")
        # Esc during the reset period: the goal waiting for the reset to end must not start an episode.
        if response is not None and self.session.stopping and "reset period" in response.message:
            if self._goal_handle is not None:
                self._goal_handle.cancel_goal_async()

    def _on_goal_response(self, future) -> None:
        handle = future.result()
        if handle is None or not handle.accepted:
            self._run(self.session.on_goal_rejected(
                "the recorder rejected the RecordEpisode goal (its log says why: not active, disk full, ERROR, ...)"))
            return
        self._goal_handle = handle
        handle.get_result_async().add_done_callback(self._on_result)

    def _on_result(self, future) -> None:
        self._goal_handle = None
        result = future.result().result
        if result.saved:
            self._say(f"episode {result.episode_index} saved: {result.frames} frames ({result.reason})")
        elif result.reason.startswith("error"):
            self._say(f"episode not saved ({result.reason})")
        else:
            self._say(f"episode discarded ({result.reason})")
        error = result.reason if result.reason.startswith("error") else ""
        self._run(self.session.on_result(result.saved, error))


def main(args: list[str] | None = None) -> int:
    holder: dict[str, RecordKeyboardNode] = {}

    def make() -> RecordKeyboardNode:
        holder["node"] = RecordKeyboardNode()
        return holder["node"]

    code = run_node(make, "record_keyboard", args, on_exit=RecordKeyboardNode.stop_reading,
                    description=__doc__.split("\n\n")[0], parameters=PARAMETERS,
                    until=lambda node: node.done.is_set())
    node = holder.get("node")
    return node.exit_code if code == 0 and node is not None else code


if __name__ == "__main__":
    sys.exit(main())
