"""`lerobot-dataset`: inspect, validate, edit and share LeRobotDataset v3.0 folders.

    lerobot-dataset info ROOT [--json]
    lerobot-dataset validate ROOT [--json]
    lerobot-dataset delete-episodes ROOT --episodes 1 3 [--output DST] [--reencode]
    lerobot-dataset merge SRC SRC [SRC...] --output DST [--reencode]
    lerobot-dataset split ROOT (--fractions train=0.8,val=0.2 | --episodes train=0-7 val=8,9) --output DIR
    lerobot-dataset recompute-stats ROOT [--output DST] [--relative-action [--chunk-size N] [--exclude-joints J ...]]
    lerobot-dataset push ROOT --repo-id USER/NAME [--private] [--branch B] [--tags T ...] [--dry-run]
    lerobot-dataset pull REPO_ID --root DST [--revision REV]

Editing never changes the input in place, except `delete-episodes` without `--output` (the original is kept as
`<ROOT>_old`, as upstream's lerobot-edit-dataset does; refused if that exists) and `recompute-stats` without
`--output` (only meta/episodes and stats.json are replaced, each atomically).
Exit status: 0 success; 1 invalid dataset (validate) or a failed operation; 2 bad command line.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any, Sequence

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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lerobot-dataset",
        description="Inspect, validate, edit and share LeRobotDataset v3.0 folders.",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("info", help="summary: fps, robot type, episodes, frames, tasks, features, files, sizes")
    s.add_argument("root", type=Path)
    s.add_argument("--json", action="store_true", help="print the summary as JSON")

    s = sub.add_parser("validate", help="check the dataset against the v3.0 format; exit 0 only if valid")
    s.add_argument("root", type=Path)
    s.add_argument("--json", action="store_true", help="print the report as JSON")
    s.add_argument("--no-videos", action="store_true", help="skip decoding the videos (faster, less thorough)")

    def edit_flags(s: argparse.ArgumentParser) -> None:
        s.add_argument("--reencode", action="store_true",
                       help="re-encode every video segment (default: stream copy, re-encoding only when needed)")
        s.add_argument("--quiet", action="store_true", help="no progress bars")

    s = sub.add_parser("delete-episodes", help="remove episodes; the rest are renumbered 0..K-1")
    s.add_argument("root", type=Path)
    s.add_argument("--episodes", nargs="+", required=True, type=parse_episode_list, metavar="EP",
                   help="episode indices to delete (e.g. 1 3, or 1,3, or 2-5)")
    s.add_argument("--output", type=Path, default=None,
                   help="new dataset folder; without it ROOT is replaced and the original kept as ROOT_old")
    edit_flags(s)

    s = sub.add_parser("merge", help="concatenate datasets with the same fps, robot type and features")
    s.add_argument("sources", nargs="+", type=Path, metavar="SRC")
    s.add_argument("--output", type=Path, required=True)
    edit_flags(s)

    s = sub.add_parser("split", help="one dataset per split under OUTPUT/<split name>")
    s.add_argument("root", type=Path)
    g = s.add_mutually_exclusive_group(required=True)
    g.add_argument("--fractions", type=parse_fractions, help="e.g. train=0.8,val=0.2 (consecutive episodes)")
    g.add_argument("--episodes", nargs="+", metavar="NAME=EPS", help="e.g. train=0-7 val=8,9")
    s.add_argument("--output", type=Path, required=True)
    edit_flags(s)

    s = sub.add_parser("recompute-stats", help="recompute episode stats from data + decoded frames, and stats.json")
    s.add_argument("root", type=Path)
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
    s.add_argument("root", type=Path)
    s.add_argument("--repo-id", required=True, help="USER/NAME")
    s.add_argument("--private", action="store_true")
    s.add_argument("--branch", default=None)
    s.add_argument("--tags", nargs="*", default=None, help="extra dataset card tags")
    s.add_argument("--license", default="apache-2.0")
    s.add_argument("--no-videos", action="store_true", help="do not upload videos/")
    s.add_argument("--skip-validate", action="store_true", help="push even if validation reports problems")
    s.add_argument("--dry-run", action="store_true", help="print the files and the dataset card; do not upload")

    s = sub.add_parser("pull", help="download a dataset from the Hub at its v3.0 revision")
    s.add_argument("repo_id", metavar="REPO_ID")
    s.add_argument("--root", type=Path, required=True)
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


def cmd_delete(a: argparse.Namespace) -> int:
    from .tools import delete_episodes

    episodes = [e for group in a.episodes for e in group]
    r = delete_episodes(a.root, episodes, a.output, force_reencode=a.reencode, progress=not a.quiet)
    print(f"wrote {r.root}: {r.total_episodes} episodes, {r.total_frames} frames, {len(r.tasks)} tasks"
          f"{f', {r.reencoded_segments} video segment(s) re-encoded' if r.reencoded_segments else ''}")
    if r.backup:
        print(f"original kept at {r.backup}")
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
    from .tools import recompute_stats
    from .errors import DatasetToolError

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
    from . import hub
    from .format import read_info

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

    root = hub.pull_dataset(a.repo_id, a.root, revision=a.revision)
    print(f"downloaded {a.repo_id} to {root}")
    return EXIT_OK


COMMANDS = {
    "info": cmd_info,
    "validate": cmd_validate,
    "delete-episodes": cmd_delete,
    "merge": cmd_merge,
    "split": cmd_split,
    "recompute-stats": cmd_recompute,
    "push": cmd_push,
    "pull": cmd_pull,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    a = parser.parse_args(argv)
    from .hub import HubRevisionError
    from .errors import DatasetToolError

    try:
        return COMMANDS[a.command](a)
    except (DatasetToolError, HubRevisionError, ValueError, OSError) as exc:
        print(f"lerobot-dataset {a.command}: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(f"lerobot-dataset {a.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
