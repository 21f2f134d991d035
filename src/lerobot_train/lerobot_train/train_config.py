"""The training run's configuration: dataclasses, LeRobot-style command-line flags, and `train_config.json`.

A LeRobot user's command works unchanged:

    lerobot-train --dataset.repo_id=me/so101_reach --dataset.root=data/so101_reach --policy.type=act \
        --policy.push_to_hub=false --steps=20000 --batch_size=8 --output_dir=outputs/train/act_reach
    lerobot-train --resume=true --config_path=outputs/train/act_reach/checkpoints/last/pretrained_model/train_config.json

Flags are `--<field>` or `--<section>.<field>` (`--dataset.root`, `--policy.dim_model`, `--optimizer.lr`,
`--env.type`), given as `--flag=value` or `--flag value`; a bare boolean flag (`--resume`) means true. Values are
read against the field's type (lists and dicts in YAML/JSON syntax: `--dataset.episodes=[0,2,5]`). An unknown flag
or a value of the wrong kind is a one-line error naming the flag and what is allowed.

Differences from upstream, all deliberate:
- `--optimizer.*` / `--scheduler.*` flags refine the policy's preset instead of being silently replaced by it.
- `--use_amp` is an alias of `--policy.use_amp` (upstream keeps it in the policy config only).
- Fields upstream 0.4.4 does not have (gradient accumulation, EMA, AMP dtype, Hub checkpoints, ...) are written to
  train_config.json only when they differ from their defaults: upstream's parser rejects unknown keys, so a run with
  default extras writes a file upstream 0.4.4 reads as its own.
- `--save_freq` <= 0 saves only at the end (upstream HEAD's meaning).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import json
import logging
import types
import typing
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Sequence

import yaml

from lerobot_train.configs.json_codec import ConfigError, decode_fields, decode_value, encode
from lerobot_train.data.augment import ImageTransformsConfig
from lerobot_train.envs.configs import EnvConfig
from lerobot_train.optim import EMAConfig
from lerobot_train.policies.config import BUILTIN_POLICY_TYPES, PreTrainedConfig
from lerobot_train.policies.optim import LRSchedulerConfig, OptimizerConfig

log = logging.getLogger(__name__)

TRAIN_CONFIG_NAME = "train_config.json"
PROGRAM = "lerobot-train"
# flag -> the field it sets
FLAG_ALIASES = {"use_amp": "policy.use_amp"}
# value of --dataset.video_backend upstream may have written; every one is decoded with PyAV here
VIDEO_BACKENDS = ("pyav", "torchcodec", "video_reader")


class CliError(ValueError):
    """A command-line or config problem, reported as one line naming the flag (no traceback)."""


# ------------------------------------------------------------------------------------------------ sections
@dataclass
class DatasetConfig:
    # Hub id of the dataset (`owner/name`); with only --dataset.root given it becomes "local/<folder name>".
    repo_id: str | None = None
    # local dataset folder; None: $HF_LEROBOT_HOME/<repo_id>, downloaded from the Hub when missing
    root: str | None = None
    # episode indices to train on (None: all)
    episodes: list[int] | None = None
    image_transforms: ImageTransformsConfig = field(default_factory=ImageTransformsConfig)
    # Hub revision of the dataset to download (None: the codebase-version tag)
    revision: str | None = None
    # replace the camera normalisation stats by ImageNet's (for ImageNet-pretrained backbones), as upstream
    use_imagenet_stats: bool = True
    # upstream's decoder choice; every value decodes with PyAV here (kept so upstream configs load)
    video_backend: str = "pyav"
    # stream episodes instead of reading a local copy (datasets that do not fit on disk)
    streaming: bool = False

    def __post_init__(self) -> None:
        if self.video_backend not in VIDEO_BACKENDS:
            raise ValueError(f"dataset.video_backend must be one of {list(VIDEO_BACKENDS)}, got {self.video_backend!r}")


@dataclass
class EvalConfig:
    # episodes rolled out per evaluation
    n_episodes: int = 50
    # environments stepped together (one policy batch)
    batch_size: int = 50
    # upstream runs environments in subprocesses when true; here they always step in this process
    use_async_envs: bool = False

    def __post_init__(self) -> None:
        if self.n_episodes < 1 or self.batch_size < 1:
            raise ValueError(f"eval.n_episodes and eval.batch_size must be >= 1, got {self.n_episodes}, {self.batch_size}")
        if self.batch_size > self.n_episodes:
            raise ValueError(f"eval.batch_size ({self.batch_size}) is greater than eval.n_episodes ({self.n_episodes}): "
                             f"lower --eval.batch_size or raise --eval.n_episodes")


@dataclass
class WandBConfig:
    """Upstream's Weights & Biases section, kept so its configs load; logging to W&B is not supported here
    (metrics.csv, TensorBoard and training_curves.png carry the same numbers)."""

    enable: bool = False
    disable_artifact: bool = False
    project: str = "lerobot"
    entity: str | None = None
    notes: str | None = None
    run_id: str | None = None
    mode: str | None = None


@dataclass
class TrainPipelineConfig:
    """Everything a run needs; field order and names as upstream's train_config.json."""

    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    # evaluation environment for --eval_freq (None: no evaluation during training)
    env: EnvConfig | None = None
    policy: PreTrainedConfig | None = None
    # where checkpoints, metrics.csv and training_curves.png go (default outputs/train/<date>/<time>_<job_name>)
    output_dir: Path | None = None
    job_name: str | None = None
    # continue the run whose train_config.json --config_path names
    resume: bool = False
    # seeds model initialisation, data order and evaluation environments
    seed: int | None = 1000
    # DataLoader worker processes (0: load in the training process)
    num_workers: int = 4
    # samples per micro-batch on each process
    batch_size: int = 8
    # optimizer updates in the whole run
    steps: int = 100_000
    # evaluate in --env every this many steps (0 or less: never)
    eval_freq: int = 20_000
    # metrics row / log line every this many steps (0 or less: never)
    log_freq: int = 200
    # tolerance (seconds) for timestamps of windowed frames
    tolerance_s: float = 1e-4
    save_checkpoint: bool = True
    # checkpoint every this many steps and after the last one (0 or less: only after the last one)
    save_freq: int = 20_000
    # optimizer and scheduler from the policy's presets (refined by --optimizer.* / --scheduler.*)
    use_policy_training_preset: bool = True
    optimizer: OptimizerConfig | None = None
    scheduler: LRSchedulerConfig | None = None
    eval: EvalConfig = field(default_factory=EvalConfig)
    wandb: WandBConfig = field(default_factory=WandBConfig)
    # upstream's PEFT adapters and RA-BC weighting: not supported here, must stay unset
    peft: dict[str, Any] | None = None
    use_rabc: bool = False
    rabc_progress_path: str | None = None
    rabc_kappa: float = 0.01
    rabc_epsilon: float = 1e-06
    rabc_head_mode: str | None = "sparse"
    # {dataset key: policy key} for observations whose names differ from a pretrained policy's
    rename_map: dict[str, str] = field(default_factory=dict)
    # the checkpoint folder being resumed (set from --config_path, not a flag)
    checkpoint_path: Path | None = None
    # ---- ours (see the module docstring) ----
    # micro-batches whose gradients are summed into one optimizer update (effective batch: B x G x processes)
    gradient_accumulation_steps: int = 1
    # autocast dtype with --policy.use_amp: bfloat16 (CUDA and CPU) or float16 (CUDA, with a gradient scaler)
    amp_dtype: str = "bfloat16"
    ema: EMAConfig = field(default_factory=EMAConfig)
    # upload every checkpoint to --policy.repo_id under checkpoints/<step> and tag it with the step
    save_checkpoint_to_hub: bool = False
    # batches each DataLoader worker loads ahead
    prefetch_factor: int = 2
    # the robot interface YAML the dataset was recorded with, stored in robot_interface.json of each checkpoint
    # (None: the dataset's own meta/robot_interface.yaml, which the recorder writes, when there is one)
    robot_interface: str | None = None

    # ------------------------------------------------------------------------------------------ JSON
    def to_dict(self) -> dict[str, Any]:
        out = encode(self)
        out["checkpoint_path"] = None  # where this run resumed from is not part of its configuration (as upstream)
        defaults = TrainPipelineConfig()
        for name in OUR_FIELDS:
            if encode(getattr(self, name)) == encode(getattr(defaults, name)):
                del out[name]
        return out

    def save(self, directory: Path | str) -> Path:
        path = Path(directory) / TRAIN_CONFIG_NAME
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=4) + "\n")
        return path

    save_pretrained = save

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str) -> "TrainPipelineConfig":
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: expected a JSON object")
        data = dict(data)
        chosen: dict[str, Any] = {}
        for name, base in _CHOICE_FIELDS.items():
            value = data.pop(name, None)
            chosen[name] = None if value is None else base.from_dict(value, source=f"{source} ({name})")
        kwargs = decode_fields(cls, data, source)
        return cls(**kwargs, **chosen)

    @classmethod
    def from_file(cls, path: Path | str) -> "TrainPipelineConfig":
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text()) if path.suffix in (".yaml", ".yml") else json.loads(path.read_text())
        except (json.JSONDecodeError, yaml.YAMLError) as exc:
            raise ConfigError(f"{path}: not valid {'YAML' if path.suffix in ('.yaml', '.yml') else 'JSON'} ({exc})") from None
        return cls.from_dict(data, str(path))

    # ------------------------------------------------------------------------------------------ derived
    @property
    def effective_batch_size(self) -> int:
        """Samples per optimizer update on ONE process (times the world size for the whole run)."""
        return self.batch_size * self.gradient_accumulation_steps

    def is_saving_step(self, step: int) -> bool:
        return self.save_checkpoint and (step == self.steps or (self.save_freq > 0 and step % self.save_freq == 0))

    def is_log_step(self, step: int) -> bool:
        return self.log_freq > 0 and step % self.log_freq == 0

    def is_eval_step(self, step: int) -> bool:
        return self.env is not None and self.eval_freq > 0 and step % self.eval_freq == 0


OUR_FIELDS = ("gradient_accumulation_steps", "amp_dtype", "ema", "save_checkpoint_to_hub", "prefetch_factor",
              "robot_interface")
# fields whose value is one of several registered classes, chosen by its "type"
_CHOICE_FIELDS: dict[str, Any] = {"policy": PreTrainedConfig, "optimizer": OptimizerConfig,
                                  "scheduler": LRSchedulerConfig, "env": EnvConfig}


# ------------------------------------------------------------------------------------------------ argv
def split_args(argv: Sequence[str], program: str = PROGRAM) -> dict[str, str]:
    """`--a.b=1 --c 2 --flag` -> {"a.b": "1", "c": "2", "flag": "true"} (aliases resolved, duplicates rejected)."""
    out: dict[str, str] = {}
    i = 0
    argv = list(argv)
    while i < len(argv):
        token = argv[i]
        if not token.startswith("--") or token == "--":
            raise CliError(f"{program}: unexpected argument {token!r}: flags are --name=value or --name value")
        key, eq, value = token[2:].partition("=")
        if not eq:
            if i + 1 < len(argv) and not argv[i + 1].startswith("--"):
                value = argv[i + 1]
                i += 1
            else:
                value = "true"  # a bare flag: only meaningful for booleans, checked against the field type later
        key = FLAG_ALIASES.get(key, key)
        if not key:
            raise CliError(f"{program}: empty flag name in {token!r}")
        if key in out:
            raise CliError(f"{program}: --{key} is given twice")
        out[key] = value
        i += 1
    return out


def _strip_optional(annotation: Any) -> tuple[Any, bool]:
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return (rest[0] if len(rest) == 1 else typing.Union[tuple(rest)]), True
    return annotation, False


def parse_flag_value(annotation: Any, text: str, flag: str, program: str = PROGRAM) -> Any:
    """The command-line text of `--flag` as a value of `annotation`, or CliError naming the flag."""
    base, optional = _strip_optional(annotation)
    if optional and text.strip().lower() in ("null", "none", "~"):
        return None
    if base in (str, Path) or (isinstance(base, type) and issubclass(base, Enum)):
        raw: Any = text
    elif base is bool:
        lowered = text.strip().lower()
        if lowered not in ("true", "false", "1", "0", "yes", "no"):
            raise CliError(f"{program}: --{flag} must be true or false, got {text!r}")
        raw = lowered in ("true", "1", "yes")
    elif base in (int, float):
        try:
            raw = int(text) if base is int else float(text)
        except ValueError:
            kind = "an integer" if base is int else "a number"
            raise CliError(f"{program}: --{flag} must be {kind}, got {text!r}") from None
    else:
        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError:
            raise CliError(f"{program}: --{flag}: cannot read {text!r} (lists as [1, 2], mappings as {{a: 1}})") from None
    try:
        return decode_value(annotation, raw, program, f"--{flag}")
    except ConfigError as exc:
        raise CliError(_one_line(exc)) from None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


# fields set by the program, never by a flag
_NOT_FLAGS = frozenset({"checkpoint_path"})


def _field_names(obj_or_cls: Any) -> list[str]:
    return [f.name for f in dataclasses.fields(obj_or_cls) if f.init and f.name not in _NOT_FLAGS]


def _unknown_flag(prefix: str, name: str, known: Sequence[str], program: str) -> CliError:
    flag = f"{prefix}{name}"
    close = difflib.get_close_matches(name, known, n=3)
    hint = f"; did you mean {', '.join('--' + prefix + c for c in close)}?" if close else ""
    shown = ", ".join(sorted(known)) if len(known) <= 40 else ", ".join(sorted(known)[:40]) + ", ..."
    return CliError(f"{program}: unknown flag --{flag}{hint} (known under --{prefix or '*'}: {shown})")


def _group(flags: dict[str, str]) -> dict[str, dict[str, str]]:
    """{"a.b": x, "a.c": y, "d": z} -> {"a": {"b": x, "c": y}, "d": {"": z}}."""
    grouped: dict[str, dict[str, str]] = {}
    for key, value in flags.items():
        head, _, rest = key.partition(".")
        grouped.setdefault(head, {})[rest] = value
    return grouped


def apply_overrides(obj: Any, flags: dict[str, str], prefix: str = "", program: str = PROGRAM) -> Any:
    """A copy of dataclass `obj` with `flags` (relative dotted names -> text) applied, validated by the class."""
    if not flags:
        return obj
    hints = typing.get_type_hints(type(obj))
    names = _field_names(obj)
    changes: dict[str, Any] = {}
    for name, sub in _group(flags).items():
        if name not in names:
            raise _unknown_flag(prefix, name, names, program)
        whole = sub.pop("", None)
        flag = f"{prefix}{name}"
        if name in _CHOICE_FIELDS and (sub or whole is not None):
            if whole is not None and whole.strip().lower() not in ("null", "none"):
                raise CliError(f"{program}: --{flag} takes sub-flags (--{flag}.type=..., --{flag}.<field>=...) "
                               f"or null, got {whole!r}")
            changes[name] = None if whole is not None else apply_choice(getattr(obj, name), _CHOICE_FIELDS[name], sub,
                                                                         f"{flag}.", program)
        elif sub:
            if whole is not None:
                raise CliError(f"{program}: --{flag} and --{flag}.<field> cannot both be given")
            current = getattr(obj, name)
            if not dataclasses.is_dataclass(current):
                raise CliError(f"{program}: --{flag} has no sub-fields (unknown flag --{flag}.{next(iter(sub))})")
            changes[name] = apply_overrides(current, sub, f"{flag}.", program)
        else:
            changes[name] = parse_flag_value(hints[name], whole, flag, program)
    try:
        return dataclasses.replace(obj, **changes)
    except (ValueError, TypeError, ConfigError) as exc:
        where = f" (--{prefix.rstrip('.')})" if prefix else ""
        raise CliError(f"{program}: {_one_line(exc)}{where}") from None


def apply_choice(current: Any, base: Any, flags: dict[str, str], prefix: str, program: str = PROGRAM) -> Any:
    """Sub-flags of a registered-choice field: `type` picks the class, the other flags set its fields."""
    flags = dict(flags)
    choice = flags.pop("type", None)
    if choice is None:
        if current is None:
            raise CliError(f"{program}: --{prefix}{next(iter(flags))} needs --{prefix}type (one of {_choices(base)})")
        return apply_overrides(current, flags, prefix, program)
    cls = _choice_class(base, choice)
    if cls is None:
        raise CliError(f"{program}: --{prefix}type must be one of {_choices(base)}, got {choice!r}")
    if current is not None and type(current) is cls:
        return apply_overrides(current, flags, prefix, program)
    return _construct(cls, flags, prefix, program)


def _choice_class(base: Any, name: str) -> type | None:
    if hasattr(base, "get_choice_class"):
        try:
            return base.get_choice_class(name)
        except ConfigError:
            return None
    return getattr(base, "_choices", {}).get(name)


def _construct(cls: type, flags: dict[str, str], prefix: str, program: str) -> Any:
    """A new `cls` from flags only (for classes whose defaults alone do not validate, e.g. env type gym)."""
    hints = typing.get_type_hints(cls)
    names = _field_names(cls)
    kwargs: dict[str, Any] = {}
    for name, sub in _group(flags).items():
        if name not in names:
            raise _unknown_flag(prefix, name, names, program)
        whole = sub.pop("", None)
        if sub:
            field_cls = _strip_optional(hints[name])[0]
            if not dataclasses.is_dataclass(field_cls):
                raise CliError(f"{program}: --{prefix}{name} has no sub-fields")
            kwargs[name] = apply_overrides(field_cls(), sub, f"{prefix}{name}.", program)
        else:
            kwargs[name] = parse_flag_value(hints[name], whole, f"{prefix}{name}", program)
    try:
        return cls(**kwargs)
    except (ValueError, TypeError, ConfigError) as exc:
        raise CliError(f"{program}: {_one_line(exc)} (--{prefix.rstrip('.')})") from None


def _choices(base: Any) -> list[str]:
    if base is PreTrainedConfig:
        return sorted(BUILTIN_POLICY_TYPES)
    if base is EnvConfig:
        return EnvConfig.choices()
    return sorted(getattr(base, "_choices", {}))


# ------------------------------------------------------------------------------------------------ resume sources
def resolve_config_path(config_path: str, program: str = PROGRAM) -> tuple[Path, Path | None]:
    """(train_config.json, checkpoint folder or None) for --config_path given as the file, a pretrained_model/
    folder, a checkpoint step folder, a run's output_dir (its checkpoints/last), or a Hub model repo id."""
    path = Path(config_path).expanduser()
    if path.is_file():
        parent = path.parent
        return path, (parent.parent if parent.name == "pretrained_model" else None)
    candidates = [path / TRAIN_CONFIG_NAME, path / "pretrained_model" / TRAIN_CONFIG_NAME,
                  path / "checkpoints" / "last" / "pretrained_model" / TRAIN_CONFIG_NAME]
    for candidate in candidates:
        if candidate.is_file():
            return resolve_config_path(str(candidate), program)
    if path.exists():
        raise CliError(f"{program}: --config_path {path}: no {TRAIN_CONFIG_NAME} there (looked in "
                       f"{', '.join(str(c.parent) for c in candidates)})")
    from lerobot_train.policies.checkpoint_files import looks_like_repo_id

    if looks_like_repo_id(config_path) and config_path.count("/") == 1:
        from lerobot_train.hub import HubError, download_latest_checkpoint

        try:
            checkpoint = download_latest_checkpoint(config_path)
        except HubError as exc:
            raise CliError(f"{program}: --config_path {config_path}: {_one_line(exc)}") from None
        return checkpoint / "pretrained_model" / TRAIN_CONFIG_NAME, checkpoint
    raise CliError(f"{program}: --config_path {config_path}: no such file or folder (and not a Hub repo id)")


# ------------------------------------------------------------------------------------------------ parse
def parse_train_args(argv: Sequence[str], program: str = PROGRAM) -> TrainPipelineConfig:
    """The validated config of `lerobot-train <argv>`; CliError (one line) for anything wrong."""
    flags = split_args(argv, program)
    config_path = flags.pop("config_path", None)
    policy_path = flags.pop("policy.path", None)
    if config_path is not None:
        config_file, checkpoint = resolve_config_path(config_path, program)
        try:
            cfg = TrainPipelineConfig.from_file(config_file)
        except (ConfigError, ValueError) as exc:
            raise CliError(f"{program}: {_one_line(exc)}") from None
        cfg.checkpoint_path = checkpoint
    else:
        cfg = TrainPipelineConfig()
    if policy_path is not None:
        if "policy.type" in flags:
            raise CliError(f"{program}: give --policy.path or --policy.type, not both")
        try:
            cfg.policy = PreTrainedConfig.from_pretrained(policy_path)
        except (ConfigError, OSError, ValueError) as exc:
            raise CliError(f"{program}: --policy.path {policy_path}: {_one_line(exc)}") from None
        cfg.policy.pretrained_path = Path(policy_path)

    late = {k: v for k, v in flags.items() if k.split(".", 1)[0] in ("optimizer", "scheduler")}
    early = {k: v for k, v in flags.items() if k not in late}
    cfg = apply_overrides(cfg, early, "", program)
    if cfg.resume and config_path is None:
        raise CliError(f"{program}: --resume needs --config_path (the checkpoint's {TRAIN_CONFIG_NAME}, its folder, "
                       f"the run's output_dir, or a Hub repo id)")
    if cfg.policy is None:
        raise CliError(f"{program}: no policy: give --policy.type (one of {sorted(BUILTIN_POLICY_TYPES)}) or "
                       f"--policy.path (a checkpoint to fine-tune)")
    if cfg.use_policy_training_preset and not cfg.resume:
        cfg.optimizer = cfg.policy.get_optimizer_preset()
        cfg.scheduler = cfg.policy.get_scheduler_preset()
    cfg = apply_overrides(cfg, late, "", program)
    validate(cfg, program)
    return cfg


def validate(cfg: TrainPipelineConfig, program: str = PROGRAM) -> None:
    """Cross-field rules; fills job_name, output_dir, dataset.repo_id and (on resume) the policy's weights path."""
    def fail(message: str) -> None:
        raise CliError(f"{program}: {message}")

    if cfg.resume:
        if cfg.checkpoint_path is None:
            fail(f"--resume: --config_path must point into a checkpoint (…/checkpoints/<step>/pretrained_model/"
                 f"{TRAIN_CONFIG_NAME}), a run's output_dir or a Hub repo id")
        cfg.policy.pretrained_path = Path(cfg.checkpoint_path) / "pretrained_model"
    for name, value in (("steps", cfg.steps), ("batch_size", cfg.batch_size),
                        ("gradient_accumulation_steps", cfg.gradient_accumulation_steps)):
        if value < 1:
            fail(f"--{name} must be >= 1, got {value}")
    if cfg.num_workers < 0:
        fail(f"--num_workers must be >= 0, got {cfg.num_workers}")
    if cfg.prefetch_factor < 1:
        fail(f"--prefetch_factor must be >= 1, got {cfg.prefetch_factor}")
    if cfg.amp_dtype not in ("bfloat16", "float16"):
        fail(f"--amp_dtype must be one of ['bfloat16', 'float16'], got {cfg.amp_dtype!r}")
    if cfg.optimizer is None:
        fail("no optimizer: with --use_policy_training_preset=false give --optimizer.type (one of "
             f"{_choices(OptimizerConfig)}) and its fields")
    if cfg.peft is not None:
        fail("--peft: PEFT adapters are not supported by this trainer; remove the peft section")
    if cfg.use_rabc:
        fail("--use_rabc: RA-BC sample weighting is not supported by this trainer")
    if cfg.wandb.enable:
        fail("--wandb.enable: Weights & Biases logging is not supported here; metrics.csv, training_curves.png and "
             "TensorBoard (when installed) hold the same metrics")
    if not cfg.dataset.repo_id and not cfg.dataset.root:
        fail("no dataset: give --dataset.root (a local LeRobotDataset v3.0 folder) and/or --dataset.repo_id")
    if not cfg.dataset.repo_id:
        cfg.dataset.repo_id = f"local/{Path(cfg.dataset.root).name}"
    if (cfg.policy.push_to_hub or cfg.save_checkpoint_to_hub) and not cfg.policy.repo_id:
        fail("--policy.repo_id is required to upload to the Hub (--policy.push_to_hub is true by default, as "
             "upstream); pass --policy.push_to_hub=false to train without uploading")
    if not cfg.job_name:
        cfg.job_name = cfg.policy.type if cfg.env is None else f"{cfg.env.type}_{cfg.policy.type}"
    if cfg.output_dir is None:
        now = dt.datetime.now()
        cfg.output_dir = Path("outputs/train") / f"{now:%Y-%m-%d}" / f"{now:%H-%M-%S}_{cfg.job_name}"
    elif not cfg.resume and Path(cfg.output_dir).is_dir():
        fail(f"--output_dir {cfg.output_dir} already exists: choose another folder, or continue that run with "
             f"--resume=true --config_path={cfg.output_dir}")


# ------------------------------------------------------------------------------------------------ help
def _type_name(annotation: Any) -> str:
    base, optional = _strip_optional(annotation)
    name = getattr(base, "__name__", None) or str(base)
    if typing.get_origin(base) is not None:
        name = str(base)
    for module in ("typing.", "lerobot_train.configs.types.", "pathlib."):
        name = name.replace(module, "")
    return f"{name} | None" if optional else name


def _field_lines(cls_or_obj: Any, prefix: str, depth: int = 0) -> list[str]:
    obj = cls_or_obj if not isinstance(cls_or_obj, type) else None
    cls = type(obj) if obj is not None else cls_or_obj
    hints = typing.get_type_hints(cls)
    lines = []
    for f in dataclasses.fields(cls):
        if not f.init or f.name in _NOT_FLAGS:
            continue
        if obj is not None:
            default = getattr(obj, f.name)
        elif f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = None
        if dataclasses.is_dataclass(default) and depth < 1 and f.name not in _CHOICE_FIELDS:
            lines += _field_lines(default, f"{prefix}{f.name}.", depth + 1)
            continue
        shown = json.dumps(encode(default)) if not dataclasses.is_dataclass(default) else "{...}"
        if len(shown) > 60:
            shown = shown[:57] + "..."
        lines.append(f"  --{prefix}{f.name:<{max(1, 34 - len(prefix))}} {_type_name(hints[f.name]):<22} {shown}")
    return lines


def help_text(argv: Sequence[str] = ()) -> str:
    """Usage plus every flag with its type and default (a policy's own fields when --policy.type is given)."""
    lines = [
        f"usage: {PROGRAM} --dataset.root=DIR [--dataset.repo_id=ID] --policy.type=TYPE [--flag=value ...]",
        f"       {PROGRAM} --resume=true --config_path=OUTPUT_DIR/checkpoints/last/pretrained_model/train_config.json",
        "",
        "Trains a LeRobot-compatible policy on a LeRobotDataset v3.0 (flags as upstream lerobot-train).",
        f"Policies: {', '.join(sorted(BUILTIN_POLICY_TYPES))}; --policy.type=TYPE --help lists that policy's fields",
        "(and --env.type=TYPE --help an environment's).",
        "Optimizer/scheduler flags (--optimizer.lr, --scheduler.num_warmup_steps, ...) refine the policy's preset.",
        f"Evaluation environments (--env.type): {', '.join(EnvConfig.choices())}. --use_amp is --policy.use_amp.",
        "Multi-GPU: torchrun --nproc_per_node N -m lerobot_train.train <flags>.",
        "",
        "flags (type, default):",
        "  --config_path                      path | repo id         (a train_config.json, checkpoint, run folder or Hub repo)",
        "  --policy.path                      path | repo id         (fine-tune this checkpoint)",
    ]
    lines += _field_lines(TrainPipelineConfig, "")
    try:
        flags = split_args([a for a in argv if a not in ("-h", "--help")])
    except CliError:
        flags = {}
    env_type = flags.get("env.type")
    if env_type:
        try:
            lines += ["", f"env fields of --env.type={env_type}:"] + _field_lines(EnvConfig.get_choice_class(env_type), "env.")
        except ConfigError as exc:
            lines += ["", str(exc)]
    policy_type = flags.get("policy.type")
    if policy_type:
        try:
            cls = PreTrainedConfig.get_choice_class(policy_type)
            lines += ["", f"policy fields of --policy.type={policy_type}:"]
            lines += _field_lines(cls, "policy.")
        except ConfigError as exc:
            lines += ["", str(exc)]
    return "\n".join(lines)
