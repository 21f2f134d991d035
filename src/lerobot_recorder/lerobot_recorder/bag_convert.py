"""ROS 2 bags (sqlite3 or MCAP) -> LeRobotDataset v3, through the live recorder's own code path.

Each bag is replayed through `RecordingSession` with the same robot interface file as the recorder node:
messages are decoded by `RobotInterface.decode` (stamps from message headers, or the bag's log time for
headerless topics) and aligned by the same `FrameAssembler` on the same absolute k/fps grid. The converter's
clock is the input's watermark (the newest stamp fed so far), with the same `latency_s` as the node, so a bag of
the messages a live recorder received converts into the dataset the recorder wrote.

Episodes: one bag = one episode, or, with `split_topic`, episodes start at each std_msgs/String message on that
topic (its text is the task of the episode that starts there; its log time is the boundary). Ticks before the
first marker belong to no episode. The last episode runs to the end of the bag's data: it ends at the last tick
every required stream covers (no frame repeats the last values after the data stopped; the live recorder follows
the same rule).

Stamps are checked against the log time: per topic, the typical offset between header stamp and log time (the
median of its first messages: a simulation's stamps may be on another clock than the bag's) is learnt, and a
message stamped more than `STAMP_TOLERANCE_S` away from its log time plus that offset is dropped as implausibly
stamped (one glitched stamp an hour ahead, or from 1970 or 2038, would otherwise cut the episode or make the
converter walk billions of ticks).

A conversion that saves no episode leaves no dataset behind (the writer makes the folder with the first saved
episode); paths that are not bags are refused up front, naming the path and what a bag is.

Only `rosbags` is needed (no ROS install); lerobot_msgs types are registered from their .msg files.
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from lerobot_recorder.alignment import NS_PER_S, StampCheck
from lerobot_recorder.interface import RobotInterface, find_interface, load_interface
from lerobot_recorder.recording_session import EpisodeReport, EpisodeWindow, RecordingSession

END_OF_TIME_NS = 2**63 - 1
# How far a header stamp may be from its log time (plus the topic's typical offset) before it is implausible.
STAMP_TOLERANCE_S = 5.0
# How many first messages of a topic give its typical stamp - log time offset.
OFFSET_SAMPLES = 25


class NotABagError(ValueError):
    """A path given as a bag that is not one."""


def check_bag_path(path: Path) -> None:
    """Raise NotABagError naming `path` unless it looks like a ros2 bag (rosbags reads what passes)."""
    path = Path(path)
    what = ("a ros2 bag is a folder with metadata.yaml (as `ros2 bag record` writes it), or a single .mcap or .db3 "
            "file")
    if not path.exists():
        raise NotABagError(f"{path}: no such file or folder; {what}")
    if path.is_dir():
        if not (path / "metadata.yaml").is_file() and not any(path.glob("*.mcap")) and not any(path.glob("*.db3")):
            raise NotABagError(f"{path} is a folder without metadata.yaml, .mcap or .db3 files: not a bag; {what}")
        return
    if path.suffix not in (".mcap", ".db3"):
        raise NotABagError(f"{path} is not a bag; {what}")


# ---------------------------------------------------------------------------------------------- types
def _lerobot_msgs_dir() -> Path | None:
    try:
        from ament_index_python.packages import get_package_share_directory

        return Path(get_package_share_directory("lerobot_msgs"))
    except Exception:  # not installed: the source tree next to this package
        for parent in Path(__file__).resolve().parents:
            candidate = parent / "src" / "lerobot_msgs"
            if candidate.is_dir():
                return candidate
            candidate = parent / "lerobot_msgs"
            if (candidate / "msg").is_dir():
                return candidate
    return None


def lerobot_typestore():
    """A rosbags typestore of ROS 2 Jazzy plus the lerobot_msgs message types."""
    from rosbags.typesys import Stores, get_typestore, get_types_from_msg

    store = get_typestore(Stores.ROS2_JAZZY)
    root = _lerobot_msgs_dir()
    if root is not None and (root / "msg").is_dir():
        types = {}
        for path in sorted((root / "msg").glob("*.msg")):
            types.update(get_types_from_msg(path.read_text(), f"lerobot_msgs/msg/{path.stem}"))
        store.register(types)
    return store


# --------------------------------------------------------------------------------------------- report
@dataclass
class BagReport:
    bag: Path
    storage: str
    messages: dict[str, int] = field(default_factory=dict)  # interface topic -> messages in the bag
    missing_topics: list[str] = field(default_factory=list)
    markers: int = 0
    episodes: list[EpisodeReport] = field(default_factory=list)
    streams: dict[str, Any] = field(default_factory=dict)  # FrameAssembler.summary()["streams"]

    def lines(self, fps: int) -> list[str]:
        out = [f"{self.bag} ({self.storage}): " + ", ".join(f"{t} {n}" for t, n in self.messages.items())]
        if self.missing_topics:
            out.append(f"  MISSING topics (no messages in the bag): {', '.join(self.missing_topics)}")
        if self.markers:
            out.append(f"  {self.markers} split markers")
        for report in self.episodes:
            out.append("  " + report.summary())
            for start_ns, ticks in report.gaps:
                out.append(f"    gap: {ticks} frame(s) ({ticks / fps:.3f} s) from t={start_ns / NS_PER_S:.3f} s")
        for key, counters in self.streams.items():
            rejected = {
                "invalid messages": counters.get("invalid_messages", 0),
                **{f"{r} messages": n for r, n in counters.get("dropped", {}).items()},
                "late messages": counters.get("late", 0),
            }
            rejected = {k: v for k, v in rejected.items() if v}
            if rejected:
                out.append(f"  {key}: rejected " + ", ".join(f"{v} {k}" for k, v in rejected.items()))
        return out


@dataclass
class ConversionResult:
    root: Path
    fps: int
    bags: list[BagReport] = field(default_factory=list)

    @property
    def episodes(self) -> list[EpisodeReport]:
        return [e for b in self.bags for e in b.episodes]

    @property
    def saved_episodes(self) -> list[EpisodeReport]:
        return [e for e in self.episodes if e.saved]

    def text(self) -> str:
        lines = [f"dataset {self.root}: {len(self.saved_episodes)} episodes, "
                 f"{sum(e.frames for e in self.saved_episodes)} frames"]
        for bag in self.bags:
            lines += bag.lines(self.fps)
        return "\n".join(lines)


# ------------------------------------------------------------------------------------------ conversion
def _storage_of(path: Path) -> str:
    if path.is_dir():
        if any(path.glob("*.mcap")):
            return "mcap"
        if any(path.glob("*.db3")):
            return "sqlite3"
    return path.suffix.lstrip(".") or "?"


def _read_markers(reader, connections) -> list[tuple[int, str]]:
    markers = []
    for connection, log_ns, raw in reader.messages(connections=connections):
        text = str(reader.deserialize(raw, connection.msgtype).data).strip()
        markers.append((int(log_ns), text))
    return sorted(markers)


def _stamp_offsets(reader, connections, interface: RobotInterface) -> dict[str, int]:
    """topic -> median (header stamp - log time) of its first messages (0 for receive-stamped topics)."""
    samples: dict[str, list[int]] = {}
    for connection in connections:
        topic = connection.topic
        offsets = samples.setdefault(topic, [])
        if len(offsets) >= OFFSET_SAMPLES:
            continue
        for _, log_ns, raw in reader.messages(connections=[connection]):
            msg = reader.deserialize(raw, connection.msgtype)
            decoded = interface.decode(topic, msg, int(log_ns))
            offsets.append(decoded[0].stamp_ns - int(log_ns))
            if len(offsets) >= OFFSET_SAMPLES:
                break
    return {topic: sorted(values)[len(values) // 2] for topic, values in samples.items() if values}


def convert_bag(
    bag: Path,
    interface: RobotInterface,
    writer,
    first_episode_index: int,
    task: str | None = None,
    split_topic: str | None = None,
    latency_s: float = 0.2,
    validate_episode=None,
    progress: bool = True,
) -> BagReport:
    from rosbags.highlevel import AnyReader

    bag = Path(bag)
    report = BagReport(bag=bag, storage=_storage_of(bag))
    session = RecordingSession(
        interface.stream_specs(), interface.fps, writer, interface.frame_values, latency_s=latency_s,
        reset_time_s=0.0, validate_episode=validate_episode, first_episode_index=first_episode_index,
        stamp_check=StampCheck(max_lead_s=STAMP_TOLERANCE_S, max_lag_s=STAMP_TOLERANCE_S))
    topics = {s.topic for s in interface.subscriptions()}
    with AnyReader([bag], default_typestore=lerobot_typestore()) as reader:
        connections = [c for c in reader.connections if c.topic in topics]
        present = {c.topic for c in connections}
        for topic in sorted(topics):
            report.messages[topic] = sum(c.msgcount for c in connections if c.topic == topic)
        report.missing_topics = sorted(t for t in topics if report.messages.get(t, 0) == 0 or t not in present)
        windows: list[EpisodeWindow]
        if split_topic:
            marker_connections = [c for c in reader.connections if c.topic == split_topic]
            markers = _read_markers(reader, marker_connections) if marker_connections else []
            report.markers = len(markers)
            if not markers:
                raise ValueError(f"{bag}: split topic {split_topic!r} has no messages; nothing marks an episode start")
            windows = []
            for i, (start, text) in enumerate(markers):
                end = markers[i + 1][0] if i + 1 < len(markers) else END_OF_TIME_NS
                windows.append(EpisodeWindow(start, end, text or (task or "")))
        else:
            windows = [EpisodeWindow(-END_OF_TIME_NS, END_OF_TIME_NS, task or "")]
        session.plan(windows)

        offsets = _stamp_offsets(reader, connections, interface)
        total = sum(c.msgcount for c in connections)
        bar = _progress(total, bag.name, progress)
        watermark: int | None = None
        try:
            for connection, log_ns, raw in reader.messages(connections=connections):
                msg = reader.deserialize(raw, connection.msgtype)
                # The stamp this message should have, on its topic's clock: its log time plus the typical offset.
                expected_ns = int(log_ns) + offsets.get(connection.topic, 0)
                for sample in interface.decode(connection.topic, msg, int(log_ns)):
                    if session.add_sample(sample, arrival_ns=expected_ns) is not None:
                        continue  # dropped (non-monotonic or implausibly stamped): it must not move the watermark
                    if watermark is None or sample.stamp_ns > watermark:
                        watermark = sample.stamp_ns
                if watermark is not None:
                    report.episodes += session.advance(watermark)
                bar.update(1)
        finally:
            bar.close()
        if watermark is not None:
            # Every tick up to the last stamp is evaluated; frames past what every stream covers are not written.
            end_ns = watermark + 1
            session.stop(end_ns, "end of bag")
            report.episodes += session.process(session.assembler.flush(end_ns), end_ns)
            if session.episode is not None:  # the window outlived the last tick: save what it has
                report.episodes.append(session.save(end_ns, "end of bag"))
        report.streams = dict(session.stream_summary().get("streams", {}))
    return report


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int, name: str, enabled: bool):
    if not enabled:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, desc=name, unit="msg", file=sys.stderr)


def convert_bags(
    bags: Sequence[Path | str],
    interface: RobotInterface,
    output: Path | str,
    task: str | None = None,
    split_topic: str | None = None,
    use_videos: bool = True,
    vcodec: str = "libsvtav1",
    append: bool = False,
    repo_id: str | None = None,
    latency_s: float = 0.2,
    validate: bool = True,
    progress: bool = True,
) -> ConversionResult:
    from lerobot_recorder.recording_dataset import open_dataset_writer, validate_saved_episode

    if not task and not split_topic and interface.task.text is None and interface.task.topic is None:
        raise ValueError(f"no task for the episodes: pass --task, --split-topic, or declare task in {interface.path}")
    for bag in bags:
        check_bag_path(Path(bag))
    root = Path(output).expanduser().resolve()
    opened = open_dataset_writer(interface, root, repo_id=repo_id, use_videos=use_videos, vcodec=vcodec,
                                 append=append, append_hint="--append")
    writer, next_index = opened.writer, opened.next_episode_index
    result = ConversionResult(root=root, fps=interface.fps)
    validator = (lambda index: validate_saved_episode(root, index)) if validate else None
    try:
        for bag in bags:
            bag_report = convert_bag(Path(bag), interface, writer, next_index, task=task, split_topic=split_topic,
                                     latency_s=latency_s, validate_episode=validator, progress=progress)
            next_index += len([e for e in bag_report.episodes if e.saved])
            result.bags.append(bag_report)
    finally:
        writer.close()
    return result


def _rosbags_error() -> type[Exception]:
    try:
        from rosbags.highlevel import AnyReaderError
    except ImportError:  # pragma: no cover - rosbags always provides it
        return ValueError
    return AnyReaderError


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="lerobot-bag-convert",
        description="Convert ROS 2 bags (sqlite3/MCAP) into a LeRobotDataset v3 with a robot interface file, using "
                    "the live recorder's alignment. One bag = one episode unless --split-topic is given.")
    parser.add_argument("bags", nargs="+", type=Path, help="bag folders (or .mcap/.db3 files)")
    parser.add_argument("--interface", required=True, help="robot interface YAML (or a name in config/robots)")
    parser.add_argument("--output", required=True, type=Path, help="dataset root to create (or extend with --append)")
    parser.add_argument("--task", help="task text of every episode (default: the interface's task topic/text)")
    parser.add_argument("--split-topic", help="std_msgs/String topic whose messages start episodes (text = task)")
    parser.add_argument("--append", action="store_true", help="add episodes to an existing dataset")
    parser.add_argument("--repo-id", help="repo_id stored in the dataset (default: local/<folder name>)")
    parser.add_argument("--vcodec", default="libsvtav1", help="video codec (libsvtav1, h264, ...)")
    parser.add_argument("--no-videos", action="store_true", help="store camera frames as PNG images, not video")
    parser.add_argument("--latency", type=float, default=0.2,
                        help="seconds a tick waits for late messages (the recorder node's latency_s)")
    parser.add_argument("--no-validate", action="store_true", help="skip the check of each saved episode")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    # SVT-AV1 prints a ~25-line banner (and a thread-priority warning) per encoder start by default: errors only.
    os.environ.setdefault("SVT_LOG", "1")
    try:
        interface = load_interface(find_interface(args.interface))
        result = convert_bags(
            args.bags, interface, args.output, task=args.task, split_topic=args.split_topic,
            use_videos=not args.no_videos, vcodec=args.vcodec, append=args.append, repo_id=args.repo_id,
            latency_s=args.latency, validate=not args.no_validate, progress=not args.quiet)
    except (ValueError, OSError, RuntimeError, _rosbags_error()) as exc:
        # One line, no traceback: a path that is not a bag, a bad interface file, an output that exists, a dataset
        # another writer holds, a corrupt bag. Nothing half-made is left (no episode saved = no dataset folder).
        print(f"lerobot-bag-convert: error: {exc}", file=sys.stderr)
        return 2
    print(result.text())
    failed = [e for e in result.saved_episodes if e.validation_ok is False]
    if not result.saved_episodes:
        print("lerobot-bag-convert: no episode was saved", file=sys.stderr)
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
