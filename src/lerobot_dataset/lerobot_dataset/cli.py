"""`lerobot-dataset`: inspect, validate, edit and share LeRobotDataset v3.0 folders.

    lerobot-dataset info DATASET [--json]
    lerobot-dataset validate DATASET [--json] [--no-videos]
    lerobot-dataset recover DATASET
    lerobot-dataset delete-episodes DATASET --episodes 1 3 [--output DST] [--reencode]
    lerobot-dataset merge SRC SRC [SRC...] --output DST [--reencode]
    lerobot-dataset split DATASET (--fractions train=0.8,val=0.2 | --episodes train=0-7 val=8,9) --output DIR
    lerobot-dataset remove-feature DATASET --features KEY [KEY ...] [--output DST]
    lerobot-dataset modify-tasks DATASET [--new-task TASK] [--episode-tasks EP=TASK ...] [--output DST]
    lerobot-dataset convert-images-to-video DATASET --output DST [--vcodec C] [--crf N] [--g N] [--episodes EP]
    lerobot-dataset recompute-stats DATASET [--output DST] [--relative-action [--chunk-size N] [--exclude-joints J ...]]
    lerobot-dataset push DATASET --repo-id USER/NAME [--private] [--branch B] [--tags T ...] [--dry-run]
    lerobot-dataset pull REPO_ID [--root DST] [--revision REV]

DATASET is a folder, or a repo_id (USER/NAME) already in the local cache: `$HF_LEROBOT_HOME/USER/NAME` (where
upstream LeRobot keeps datasets) or a Hugging Face Hub cache snapshot. The operations are lerobot-edit-dataset's
(delete_episodes, split, merge, remove_feature, modify_tasks, convert_image_to_video).

Editing never changes the input in place, except `delete-episodes` and `remove-feature` without `--output` (the
original is kept as `<DATASET>_old`, as upstream's lerobot-edit-dataset does; refused if that exists),
`modify-tasks` without `--output` (in place, as upstream) and `recompute-stats` without `--output` (only
meta/episodes and stats.json are replaced, each atomically). Every command takes the dataset's lock: a dataset open
in a writer (a recording) is refused, and so is one with an interrupted save until `recover` has repaired it.
Exit status: 0 success; 1 invalid dataset (validate) or a failed operation; 2 bad command line.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any, Sequence

from .errors import DatasetToolError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


# ---------------------------------------------------------------------------------------------- argument parsing
def parse_episode_list(text: str) -> list[int]:
    """'0,1,2' / '3' / '0-4' / '0-2,7' -> episode indices (ranges inclusive)."""
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            if "-" in part[1:]:
                a, b = part.split("-", 1)
                lo, hi = int(a), int(b)
                if hi < lo:
                    raise ValueError
                out.extend(range(lo, hi + 1))
            else:
                out.append(int(part))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"bad episode list {text!r}: expected integers, commas and inclusive ranges like 0-4"
            ) from None
    return out


def parse_fractions(text: str) -> dict[str, float]:
    """'train=0.8,val=0.2' -> {'train': 0.8, 'val': 0.2} (order kept)."""
    out: dict[str, float] = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        name = name.strip()
        try:
            if not sep or not name:
                raise ValueError
            out[name] = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"bad fraction {part!r} in {text!r}: expected NAME=FLOAT") from None
    return out


def parse_split_episodes(items: Sequence[str]) -> dict[str, list[int]]:
    """['train=0,1,2', 'val=3'] -> {'train': [0, 1, 2], 'val': [3]}."""
    out: dict[str, list[int]] = {}
    for item in items:
        name, sep, eps = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise argparse.ArgumentTypeError(f"bad split {item!r}: expected NAME=EPISODES, e.g. train=0,1,2")
        if name in out:
            raise argparse.ArgumentTypeError(f"split {name!r} given twice")
        out[name] = parse_episode_list(eps)
    return out


def parse_episode_tasks(items: Sequence[str]) -> dict[int, str]:
    """['0=pick the cube', '3=place it'] -> {0: 'pick the cube', 3: 'place it'}."""
    out: dict[int, str] = {}
    for item in items:
        ep, sep, task = item.partition("=")
        try:
            if not sep:
                raise ValueError
            index = int(ep.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"bad episode task {item!r}: expected EP=TASK, e.g. 0='pick the cube'") from None
        if index in out:
            raise argparse.ArgumentTypeError(f"episode {index} is given two tasks")
        out[index] = task.strip()
    return out


def dataset_location(text: str) -> Path:
    """A DATASET argument: an existing path as given, else a repo_id found in the local Hub cache, else the path
    as given (the command reports that it does not exist)."""
    path = Path(text).expanduser()
    if path.exists():
        return path
    from .hub import find_cached_dataset, is_repo_id

    if is_repo_id(text):
        cached = find_cached_dataset(text)
        if cached is not None:
            return cached
    return path


def _editable(root: Path, has_output: bool) -> None:
    """An in-place edit must not touch huggingface_hub's cache (its files are shared links into blobs/)."""
    from .hub import is_hub_cache_snapshot

    if not has_output and is_hub_cache_snapshot(root):
        raise DatasetToolError(f"{root} is a snapshot in the Hugging Face Hub cache, which must not be edited; "
                               f"pass --output to write an edited copy")


def _missing_dataset_hint(text: str) -> str:
    from .hub import cached_dataset_candidates, is_repo_id

    if not is_repo_id(text) or Path(text).exists():
        return ""
    places = ", ".join(str(p) for p in cached_dataset_candidates(text)[:2])
    return f" (not found as a folder, nor as a cached Hub dataset in {places}; `lerobot-dataset pull {text}` downloads it)"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lerobot-dataset",
        description="Inspect, validate, edit and share LeRobotDataset v3.0 folders.",
        epilog="DATASET: a dataset folder, or a repo_id (USER/NAME) found in the local Hugging Face cache.",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    dataset_help = "dataset folder, or a repo_id (USER/NAME) in the local Hub cache"

    s = sub.add_parser("info", help="summary: fps, robot type, episodes, frames, tasks, features, files, sizes")
    s.add_argument("root", type=dataset_location, metavar="DATASET", help=dataset_help)
    s.add_argument("--json", action="store_true", help="print the summary as JSON")

    s = sub.add_parser("validate", help="check the dataset against the v3.0 format; exit 0 only if valid")
    s.add_argument("root", type=dataset_location, metavar="DATASET", help=dataset_help)
    s.add_argument("--json", action="store_true", help="print the report as JSON")
    s.add_argument("--no-videos", action="store_true", help="skip decoding the videos (faster, less thorough)")

    s = sub.add_parser("recover", help="finish or roll back an interrupted save, video append or in-place edit")
    s.add_argument("root", type=Path, metavar="DATASET", help="dataset folder")

    def edit_flags(s: argparse.ArgumentParser, reencode: bool = True) -> None:
        if reencode:
            s.add_argument("--reencode", action="store_true",
                           help="re-encode every video segment (default: stream copy, re-encoding only when needed)")
        s.add_argument("--quiet", action="store_true", help="no progress bars")

    s = sub.add_parser("delete-episodes", help="remove episodes; the rest are renumbered 0..K-1")
    s.add_argument("root", type=dataset_location, metavar="DATASET", help=dataset_help)
    s.add_argument("--episodes", nargs="+", required=True, type=parse_episode_list, metavar="EP",
                   help="episode indices to delete (e.g. 1 3, or 1,3, or 2-5)")
    s.add_argument("--output", type=Path, default=None,
                   help="new dataset folder; without it DATASET is replaced and the original kept as DATASET_old")
    edit_flags(s)

    s = sub.add_parser("merge", help="concatenate datasets with the same fps, robot type and features")
    s.add_argument("sources", nargs="+", type=dataset_location, metavar="SRC",
                   help="datasets to merge, in order (folders or cached repo_ids)")
    s.add_argument("--output", type=Path, required=True, help="new dataset folder (must not exist or be empty)")
    edit_flags(s)

    s = sub.add_parser("split", help="one dataset per split under OUTPUT/<split name>")
    s.add_argument("root", type=dataset_location, metavar="DATASET", help=dataset_help)
    g = s.add_mutually_exclusive_group(required=True)
    g.add_argument("--fractions", type=parse_fractions,
                   help="e.g. train=0.8,val=0.2: consecutive episodes; the fractions must sum to 1 (the last split "
                        "takes the rounding remainder), so every episode lands in a split")
    g.add_argument("--episodes", nargs="+", metavar="NAME=EPS", help="e.g. train=0-7 val=8,9")
    s.add_argument("--output", type=Path, required=True, help="folder that receives one dataset per split")
    edit_flags(s)

    s = sub.add_parser("remove-feature", help="drop features (their data columns, videos and stats)")
    s.add_argument("root", type=dataset_location, metavar="DATASET", help=dataset_help)
    s.add_argument("--features", nargs="+", required=True, metavar="KEY",
                   help="feature keys to remove, e.g. observation.images.wrist (the 5 default features stay)")
    s.add_argument("--output", type=Path, default=None,
                   help="new dataset folder; without it DATASET is replaced and the original kept as DATASET_old")
    edit_flags(s, reencode=False)

    s = sub.add_parser("modify-tasks", help="give episodes new tasks (in place unless --output)")
    s.add_argument("root", type=dataset_location, metavar="DATASET", help=dataset_help)
    s.add_argument("--new-task", default=None, metavar="TASK", help="task for every episode not in --episode-tasks")
    s.add_argument("--episode-tasks", nargs="+", default=None, metavar="EP=TASK",
                   help="tasks of single episodes, e.g. 0='pick the cube' 3='place it'")
    s.add_argument("--output", type=Path, default=None, help="write a new dataset instead of editing DATASET in place")
    edit_flags(s, reencode=False)

    s = sub.add_parser("convert-images-to-video", help="store image (PNG) features as video features (new dataset)")
    s.add_argument("root", type=dataset_location, metavar="DATASET", help=dataset_help)
    s.add_argument("--output", type=Path, required=True, help="new dataset folder")
    s.add_argument("--episodes", nargs="+", type=parse_episode_list, default=None, metavar="EP",
                   help="convert only these episodes (renumbered 0..K-1; default: all)")
    s.add_argument("--vcodec", default="libsvtav1", help="video encoder (libsvtav1 as upstream, h264, hevc, ...)")
    s.add_argument("--pix-fmt", default="yuv420p", help="pixel format of the videos")
    s.add_argument("--g", type=int, default=2, help="GOP size: a keyframe every G frames (upstream: 2)")
    s.add_argument("--crf", type=int, default=30, help="constant rate factor: lower is better quality (upstream: 30)")
    s.add_argument("--preset", default=None, help="encoder preset (default: 12 for libsvtav1)")
    s.add_argument("--fast-decode", type=int, default=0, help="encoder's fast-decode tuning, 0-2 (upstream: 0)")
    edit_flags(s, reencode=False)

    s = sub.add_parser("recompute-stats", help="recompute episode stats from data + decoded frames, and stats.json")
    s.add_argument("root", type=Path, metavar="DATASET", help="dataset folder")
    s.add_argument("--output", type=Path, default=None, help="write a copy with new stats instead of editing ROOT")
    s.add_argument("--quiet", action="store_true", help="no progress bars")
    s.add_argument("--relative-action", action="store_true",
                   help="store stats of relative actions (action - state at the chunk start) as stats.json 'action', "
                        "for policies trained with relative actions")
    s.add_argument("--chunk-size", type=int, default=None, metavar="N",
                   help="action chunk length of the policy (with --relative-action; default 50, as upstream)")
    s.add_argument("--exclude-joints", nargs="*", default=None, metavar="J",
                   help="joints kept absolute, matched against action names (with --relative-action; default: gripper)")

    s = sub.add_parser("push", help="upload to the Hugging Face Hub (tags the upload v3.0)")
    s.add_argument("root", type=Path, metavar="DATASET", help="dataset folder")
    s.add_argument("--repo-id", required=True, help="Hub dataset repo to upload to, USER/NAME")
    s.add_argument("--private", action="store_true", help="create the repo as private (when it does not exist)")
    s.add_argument("--branch", default=None, help="upload to this branch (created if needed) instead of main")
    s.add_argument("--tags", nargs="*", default=None, help="extra dataset card tags")
    s.add_argument("--license", default="apache-2.0", help="license in the dataset card (default: apache-2.0)")
    s.add_argument("--no-videos", action="store_true", help="do not upload videos/")
    s.add_argument("--skip-validate", action="store_true", help="push even if validation reports problems")
    s.add_argument("--dry-run", action="store_true", help="print the files and the dataset card; do not upload")

    s = sub.add_parser("pull", help="download a dataset from the Hub at its v3.0 revision")
    s.add_argument("repo_id", metavar="REPO_ID", help="Hub dataset repo, USER/NAME")
    s.add_argument("--root", type=Path, default=None,
                   help="folder to download into (default: $HF_LEROBOT_HOME/REPO_ID, where upstream LeRobot looks)")
    s.add_argument("--revision", default=None, help="tag/branch/commit (default: v3.0 or newest compatible v3.x)")
    return p


# ---------------------------------------------------------------------------------------------- commands
def _human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.1f} {unit}" if unit != "B" else f"{int(size)} B"
        size /= 1024
    return f"{n} B"


def format_summary(s: dict[str, Any]) -> str:
    lines = [
        f"dataset       {s['root']}",
        f"version       {s['codebase_version']}",
        f"robot_type    {s['robot_type']}",
        f"fps           {s['fps']}",
        f"episodes      {s['total_episodes']}",
        f"frames        {s['total_frames']}  ({s['duration_s']:.1f} s)",
    ]
    if s["episode_length"]:
        el = s["episode_length"]
        lines.append(f"episode len   min {el['min']}  mean {el['mean']:.1f}  max {el['max']} frames")
    lines.append(f"tasks         {len(s['tasks'])}")
    lines += [f"  [{i}] {t}" for i, t in enumerate(s["tasks"])]
    lines.append(f"features      {len(s['features'])}")
    for k, f in s["features"].items():
        extra = f"  codec={f['codec']}" if f.get("codec") else ""
        lines.append(f"  {k:<40} {f['dtype']:<8} {tuple(f['shape'])}{extra}")
    lines.append("files")
    for group, names in s["files"].items():
        lines.append(f"  {group:<14} {len(names)}")
    sz = s["sizes_bytes"]
    lines.append(
        f"size          total {_human_bytes(sz['total'])}  (data {_human_bytes(sz['data'])}, "
        f"videos {_human_bytes(sz['videos'])}, meta {_human_bytes(sz['meta'])})"
    )
    return "\n".join(lines)


def cmd_info(a: argparse.Namespace) -> int:
    from .tools import dataset_summary

    summary = dataset_summary(a.root)
    print(json.dumps(summary, indent=2, ensure_ascii=False) if a.json else format_summary(summary))
    return EXIT_OK


def _report_json(report: Any) -> dict[str, Any]:
    return {
        "root": str(report.root),
        "ok": report.ok,
        "summary": report.summary,
        "problems": [
            {"severity": p.severity, "check": p.check, "location": p.location(), "file": p.file,
             "episode": p.episode, "index": p.index, "message": p.message}
            for p in report.problems
        ],
    }


def cmd_validate(a: argparse.Namespace) -> int:
    from .validate import validate_dataset

    report = validate_dataset(a.root, check_videos=not a.no_videos)
    if a.json:
        print(json.dumps(_report_json(report), indent=2, ensure_ascii=False, default=str))
    else:
        print(report.format())
    return EXIT_OK if report.ok else EXIT_FAILED


def cmd_recover(a: argparse.Namespace) -> int:
    from .locking import dataset_lock
    from .recovery import recover, replace_journal_path, unfinished_work

    if not a.root.is_dir() and not replace_journal_path(a.root).exists():
        what = "is a file, not a dataset folder" if a.root.exists() else "does not exist"
        raise DatasetToolError(f"{a.root} {what}")
    before = unfinished_work(a.root)
    if a.root.is_dir():
        with dataset_lock(a.root, action="recover it"):
            repaired = recover(a.root)
    else:  # only an interrupted in-place edit can bring the folder back
        repaired = recover(a.root)
    print(f"{a.root}: repaired ({before or 'leftover staging files'})" if repaired else f"{a.root}: nothing to repair")
    return EXIT_OK


def _print_edit(r: Any, what: str = "") -> None:
    print(f"wrote {r.root}: {r.total_episodes} episodes, {r.total_frames} frames, {len(r.tasks)} tasks{what}"
          f"{f', {r.reencoded_segments} video segment(s) re-encoded' if r.reencoded_segments else ''}")
    if r.backup:
        print(f"original kept at {r.backup}")


def cmd_remove_feature(a: argparse.Namespace) -> int:
    from .feature_edits import remove_features

    _editable(a.root, a.output is not None)
    r = remove_features(a.root, a.features, a.output, progress=not a.quiet)
    _print_edit(r, f" (removed {', '.join(a.features)})")
    return EXIT_OK


def cmd_modify_tasks(a: argparse.Namespace) -> int:
    from .feature_edits import modify_tasks

    if a.new_task is None and not a.episode_tasks:
        print("lerobot-dataset modify-tasks: error: give --new-task, --episode-tasks, or both", file=sys.stderr)
        return EXIT_USAGE
    try:
        episode_tasks = parse_episode_tasks(a.episode_tasks or [])
    except argparse.ArgumentTypeError as exc:
        print(f"lerobot-dataset modify-tasks: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    _editable(a.root, a.output is not None)
    r = modify_tasks(a.root, a.new_task, episode_tasks, a.output, progress=not a.quiet)
    _print_edit(r)
    for i, task in enumerate(r.tasks):
        print(f"  [{i}] {task}")
    return EXIT_OK


def cmd_convert(a: argparse.Namespace) -> int:
    from .feature_edits import convert_images_to_video
    from .video import VideoEncoderConfig

    encoder = VideoEncoderConfig(vcodec=a.vcodec, pix_fmt=a.pix_fmt, g=a.g, crf=a.crf,
                                 preset=int(a.preset) if a.preset is not None and a.preset.isdigit() else a.preset,
                                 fast_decode=a.fast_decode)
    episodes = [e for group in a.episodes for e in group] if a.episodes else None
    r = convert_images_to_video(a.root, a.output, video_encoder=encoder, episodes=episodes, progress=not a.quiet)
    _print_edit(r, f" (image features encoded with {encoder.encoder_name})")
    return EXIT_OK


def cmd_delete(a: argparse.Namespace) -> int:
    from .tools import delete_episodes

    _editable(a.root, a.output is not None)
    episodes = [e for group in a.episodes for e in group]
    r = delete_episodes(a.root, episodes, a.output, force_reencode=a.reencode, progress=not a.quiet)
    _print_edit(r)
    return EXIT_OK


def cmd_merge(a: argparse.Namespace) -> int:
    from .tools import merge_datasets

    r = merge_datasets(a.sources, a.output, force_reencode=a.reencode, progress=not a.quiet)
    print(f"wrote {r.root}: {r.total_episodes} episodes, {r.total_frames} frames, {len(r.tasks)} tasks from "
          f"{len(a.sources)} datasets")
    return EXIT_OK


def cmd_split(a: argparse.Namespace) -> int:
    from .tools import split_dataset

    if a.fractions is not None:
        splits: dict[str, Any] = a.fractions
    else:
        try:
            splits = parse_split_episodes(a.episodes)
        except argparse.ArgumentTypeError as exc:
            print(f"lerobot-dataset split: error: {exc}", file=sys.stderr)
            return EXIT_USAGE
    results = split_dataset(a.root, splits, a.output, force_reencode=a.reencode, progress=not a.quiet)
    for name, r in results.items():
        print(f"{name}: {r.root} ({r.total_episodes} episodes, {r.total_frames} frames)")
    return EXIT_OK


def cmd_recompute(a: argparse.Namespace) -> int:
    from .tools import reading_source, recompute_stats

    if not a.relative_action and (a.chunk_size is not None or a.exclude_joints is not None):
        print("lerobot-dataset recompute-stats: error: --chunk-size and --exclude-joints need --relative-action",
              file=sys.stderr)
        return EXIT_USAGE
    if a.chunk_size is not None and a.chunk_size < 1:
        print(f"lerobot-dataset recompute-stats: error: --chunk-size must be >= 1, got {a.chunk_size}", file=sys.stderr)
        return EXIT_USAGE
    relative = None
    if a.relative_action:  # computed first: a bad --exclude-joints or --chunk-size changes nothing
        from . import relative_actions as rel

        chunk = a.chunk_size if a.chunk_size is not None else rel.DEFAULT_CHUNK_SIZE
        relative = rel.compute_dataset_relative_action_stats(a.root, chunk, a.exclude_joints)
    root = a.root
    if a.output is not None:
        if a.output.exists():
            raise DatasetToolError(f"output {a.output} already exists; choose a new path")
        with reading_source(a.root, "copy it"):  # no writer may change it while it is copied
            shutil.copytree(a.root, a.output)
        root = a.output
    recompute_stats(root, progress=not a.quiet)
    print(f"recomputed stats of {root}")
    if relative is not None:
        stats, mask = relative
        rel.write_relative_action_stats(root, stats)
        print(f"stats.json 'action' now holds relative-action stats: chunk size {chunk}, "
              f"{int(mask.sum())}/{mask.size} dimensions relative, {int(stats['count'][0])} rows")
    return EXIT_OK


def cmd_push(a: argparse.Namespace) -> int:
    from .locking import dataset_lock
    from .recovery import require_finished

    if not (a.root / "meta" / "info.json").is_file():
        raise DatasetToolError(f"{a.root} is not a LeRobot dataset: meta/info.json is missing")
    # One shared lock over validation and upload: no writer can change the files in between.
    with dataset_lock(a.root, shared=True, action="push it"):
        require_finished(a.root, "push it")
        return _push(a)


def _push(a: argparse.Namespace) -> int:
    from . import hub
    from .meta_info import read_info

    if not a.skip_validate:
        from .validate import validate_dataset

        report = validate_dataset(a.root)
        if not report.ok:
            print(report.format(), file=sys.stderr)
            print("lerobot-dataset push: refusing to push an invalid dataset (use --skip-validate to force)",
                  file=sys.stderr)
            return EXIT_FAILED
    if a.dry_run:
        files = hub.select_upload_files(a.root, push_videos=not a.no_videos)
        print(f"would upload {len(files)} files to dataset repo {a.repo_id}"
              f"{f' (branch {a.branch})' if a.branch else ''}, then tag {hub.CODEBASE_VERSION}:")
        for f in files:
            print(f"  {f}")
        print("dataset card (README.md):")
        print(hub.dataset_card_text(read_info(a.root), a.repo_id, a.tags, a.license))
        return EXIT_OK
    hub.push_dataset(a.root, a.repo_id, private=a.private, branch=a.branch, tags=a.tags, license=a.license,
                     push_videos=not a.no_videos)
    print(f"pushed {a.root} to https://huggingface.co/datasets/{a.repo_id} (tag {hub.CODEBASE_VERSION})")
    return EXIT_OK


def cmd_pull(a: argparse.Namespace) -> int:
    from . import hub

    root = hub.pull_dataset(a.repo_id, a.root if a.root is not None else hub.lerobot_home() / a.repo_id,
                            revision=a.revision)
    print(f"downloaded {a.repo_id} to {root}")
    return EXIT_OK


COMMANDS = {
    "info": cmd_info,
    "validate": cmd_validate,
    "recover": cmd_recover,
    "delete-episodes": cmd_delete,
    "merge": cmd_merge,
    "split": cmd_split,
    "remove-feature": cmd_remove_feature,
    "modify-tasks": cmd_modify_tasks,
    "convert-images-to-video": cmd_convert,
    "recompute-stats": cmd_recompute,
    "push": cmd_push,
    "pull": cmd_pull,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    a = parser.parse_args(argv)
    from .errors import DatasetError
    from .hub import HubRevisionError

    try:
        return COMMANDS[a.command](a)
    except (DatasetError, HubRevisionError, ValueError, OSError) as exc:
        root = getattr(a, "root", None)
        hint = _missing_dataset_hint(str(root)) if root is not None and not Path(root).exists() else ""
        print(f"lerobot-dataset {a.command}: error: {exc}{hint}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(f"lerobot-dataset {a.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
