"""Training data over LeRobotDataset v3.0 (torch; never rclpy).

- `windows.delta_timestamps_for(policy_config, fps)`: a policy's observation/action/reward windows in seconds.
- `dataset.TrainingDataset`: map-style dataset over one or more dataset folders (lazy decode, windows, pads).
- `sampler.EpisodeAwareSampler` + `compute_sampler_state`: deterministic, resumable, rank-aware frame order.
- `streaming.StreamingEpisodeDataset`: an iterable episode pool for datasets that do not fit on local disk.
- `augment.ImageTransforms` + `ImageTransformsConfig`: upstream's camera augmentations in plain torch.

Import the submodules directly (`from lerobot_train.data.dataset import TrainingDataset`); this package
imports nothing heavy by itself.
"""
