"""lerobot-train's flags and train_config.json: LeRobot's names, both flag forms, one-line errors, presets, JSON."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import train_testlib as tl  # noqa: E402

from lerobot_train.train_config import (  # noqa: E402
    CliError,
    TrainPipelineConfig,
    help_text,
    parse_train_args,
    split_args,
)

BASE = ["--dataset.root=/data/so101", "--policy.type=act", "--policy.push_to_hub=false"]


def parse(*flags: str, tmp: Path | None = None) -> TrainPipelineConfig:
    out = [f"--output_dir={tmp / 'run'}"] if tmp is not None else []
    return parse_train_args([*BASE, *out, *flags])


def error_of(*argv: str) -> str:
    with pytest.raises(CliError) as info:
        parse_train_args(list(argv))
    message = str(info.value)
    assert "\n" not in message, "errors are one line"
    return message


def test_both_flag_forms_bare_booleans_and_alias(tmp_path):
    cfg = parse("--steps", "120", "--batch_size=16", "--policy.dim_model", "64", "--use_amp", "--seed=null",
                "--dataset.episodes=[0, 2, 5]", "--policy.device", "cpu", tmp=tmp_path)
    assert (cfg.steps, cfg.batch_size, cfg.policy.dim_model, cfg.seed) == (120, 16, 64, None)
    assert cfg.policy.use_amp is True  # --use_amp is --policy.use_amp
    assert cfg.dataset.episodes == [0, 2, 5]
    assert cfg.dataset.repo_id == "local/so101"  # derived from --dataset.root
    assert cfg.job_name == "act" and cfg.output_dir == tmp_path / "run"
    assert split_args(["--resume", "--config_path", "x"]) == {"resume": "true", "config_path": "x"}


def test_presets_are_the_policys_and_optimizer_flags_refine_them(tmp_path):
    cfg = parse(tmp=tmp_path)
    assert cfg.optimizer.type == "adamw" and cfg.optimizer.lr == 1e-5 and cfg.optimizer.weight_decay == 1e-4
    assert cfg.optimizer.grad_clip_norm == 10.0 and cfg.scheduler is None
    refined = parse("--optimizer.lr=3e-4", "--optimizer.betas=[0.8, 0.99]", tmp=tmp_path)
    assert refined.optimizer.lr == 3e-4 and refined.optimizer.betas == (0.8, 0.99)
    assert refined.optimizer.weight_decay == 1e-4  # the rest of the preset stays
    own = parse("--use_policy_training_preset=false", "--optimizer.type=adam", "--optimizer.lr=0.01",
                "--scheduler.type=diffuser", "--scheduler.num_warmup_steps=5", tmp=tmp_path)
    assert own.optimizer.type == "adam" and own.optimizer.lr == 0.01
    assert own.scheduler.type == "diffuser" and own.scheduler.num_warmup_steps == 5


@pytest.mark.parametrize("argv, expected", [
    (["--batch_size=abc"], "--batch_size must be an integer, got 'abc'"),
    (["--policy.type=foo"], "--policy.type must be one of ['act', 'diffusion', 'flow_chunk'], got 'foo'"),
    (["--stepz=3"], "unknown flag --stepz; did you mean --steps?"),
    ([*BASE, "--policy.dim_modl=3"], "unknown flag --policy.dim_modl; did you mean --policy.dim_model?"),
    ([*BASE, "--resume=maybe"], "--resume must be true or false, got 'maybe'"),
    ([*BASE, "--dataset.video_backend=opencv"], "dataset.video_backend must be one of ['pyav', 'torchcodec'"),
    ([*BASE, "--eval.batch_size=100"], "eval.batch_size (100) is greater than eval.n_episodes (50)"),
    ([*BASE, "--env.gym_id=CartPole-v1"], "--env.gym_id needs --env.type (one of ['gym', 'so101_reach'])"),
    ([*BASE, "--optimizer.type=lion"], "--optimizer.type must be one of ['adam', 'adamw'], got 'lion'"),
    ([*BASE, "--amp_dtype=int8"], "--amp_dtype must be one of ['bfloat16', 'float16'], got 'int8'"),
    ([*BASE, "--steps=0"], "--steps must be >= 1, got 0"),
    (["--dataset.root=x", "--policy.type=act"], "--policy.repo_id is required to upload to the Hub"),
    ([*BASE, "--resume=true"], "--resume needs --config_path"),
    (["--policy.push_to_hub=false"], "--policy.push_to_hub needs --policy.type (one of ['act', 'diffusion'"),
    (["--steps=3"], "no policy: give --policy.type"),
    (["--policy.type=act", "--policy.push_to_hub=false"], "no dataset: give --dataset.root"),
    ([*BASE, "--wandb.enable=true"], "Weights & Biases logging is not supported here"),
    ([*BASE, "--batch_size"], "--batch_size must be an integer, got 'true'"),
    (["positional"], "unexpected argument 'positional'"),
    ([*BASE, "--steps=1", "--steps=2"], "--steps is given twice"),
])
def test_bad_flags_are_one_line_errors_naming_the_flag(argv, expected):
    assert expected in error_of(*argv)


def test_existing_output_dir_needs_resume(tmp_path):
    (tmp_path / "run").mkdir()
    message = error_of(*BASE, f"--output_dir={tmp_path / 'run'}")
    assert "already exists" in message and "--resume=true" in message


def test_train_config_json_round_trip_and_our_extras(tmp_path):
    cfg = parse("--policy.chunk_size=20", "--policy.n_action_steps=10", "--dataset.image_transforms.enable=true",
                tmp=tmp_path)
    data = cfg.to_dict()
    # upstream 0.4.4's keys, in its order; our own fields are absent while at their defaults
    assert list(data)[:5] == ["dataset", "env", "policy", "output_dir", "job_name"]
    assert not {"gradient_accumulation_steps", "ema", "amp_dtype", "save_checkpoint_to_hub"} & set(data)
    assert data["policy"]["type"] == "act" and data["optimizer"]["type"] == "adamw"
    assert data["dataset"]["image_transforms"]["tfs"]["affine"]["kwargs"]["degrees"] == [-5.0, 5.0]
    path = cfg.save(tmp_path / "saved")
    again = TrainPipelineConfig.from_file(path)
    assert again.to_dict() == data
    extras = parse("--gradient_accumulation_steps=4", "--ema.enable=true", tmp=tmp_path).to_dict()
    assert extras["gradient_accumulation_steps"] == 4 and extras["ema"]["enable"] is True
    assert TrainPipelineConfig.from_dict(json.loads(json.dumps(extras)), "x").ema.enable is True


def test_train_config_file_errors_name_the_key(tmp_path):
    cfg = parse(tmp=tmp_path).to_dict()
    cfg["batch_sise"] = 3
    bad = tmp_path / "train_config.json"
    bad.write_text(json.dumps(cfg))
    message = error_of("--resume=true", f"--config_path={bad}")
    assert str(bad) in message and "batch_sise" in message


def test_resume_reads_the_checkpoint_and_flags_override(tmp_path):
    cfg = parse("--steps=50", tmp=tmp_path)
    pretrained = tmp_path / "run" / "checkpoints" / "000010" / "pretrained_model"
    cfg.save(pretrained)
    (tmp_path / "run" / "checkpoints" / "last").symlink_to("000010")
    for config_path in (pretrained / "train_config.json", pretrained, pretrained.parent, tmp_path / "run"):
        resumed = parse_train_args(["--resume=true", f"--config_path={config_path}", "--steps=80"])
        assert resumed.resume and resumed.steps == 80
        assert resumed.checkpoint_path.resolve() == pretrained.parent.resolve()
        assert resumed.policy.pretrained_path.resolve() == pretrained.resolve()
        assert resumed.optimizer.lr == 1e-5  # from the file, not re-derived
    assert "no train_config.json there" in error_of("--resume=true", f"--config_path={tmp_path}")


def test_help_lists_flags_and_policy_fields():
    text = help_text(["--policy.type=act", "--help"])
    for flag in ("--dataset.root", "--batch_size", "--save_checkpoint_to_hub", "--ema.enable", "--policy.chunk_size",
                 "--policy.path", "--config_path"):
        assert flag in text


@pytest.mark.slow
def test_cli_help_and_errors_exit_cleanly():
    ok = tl.run_cli(["-m", "lerobot_train.train", "--help"], timeout=120)
    assert ok.returncode == 0 and "--dataset.root" in ok.stdout
    bad = tl.run_cli(["-m", "lerobot_train.train", "--batch_size=x"], timeout=120)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.strip() == "lerobot-train: --batch_size must be an integer, got 'x'"
    ev = tl.run_cli(["-m", "lerobot_train.eval", "--env.type=so101_reach"], timeout=120)
    assert ev.returncode == 2 and "Traceback" not in ev.stderr and "--policy.path is required" in ev.stderr


def test_training_modules_never_import_rclpy():
    code = ("import sys; import lerobot_train.train, lerobot_train.eval, lerobot_train.hub, lerobot_train.envs.reach, "
            "lerobot_train.envs.factory, lerobot_train.metrics; print('rclpy' in sys.modules)")
    result = tl.run_cli(["-c", code], timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "False", result.stderr[-2000:]
