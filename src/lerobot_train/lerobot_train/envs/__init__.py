"""Evaluation environments for `lerobot-eval` and `lerobot-train --eval_freq` (gymnasium; never rclpy).

`configs` holds the `--env.type` choices; `reach` the simulated SO-101 reaching scene as a gymnasium env;
`factory.make_envs(config, n_envs, seed)` builds them and `factory.observation_to_batch` turns an observation into
the policy's dataset-unit inputs.
"""
