"""The ROS-free policy runtime: observations in, timed action chunks out.

Modules, in data-flow order:
  observation     newest value of each policy input feature at a control tick, through the robot interface
  compatibility   checkpoint <-> robot interface: every difference, listed at configure
  policy_runner   observation -> batch -> policy -> (horizon, action_dim) chunk in dataset units (RTC arguments)
  ticks           the control-tick grid every chunk row is placed on
  action_queue    which action applies at which tick; merging a new chunk (sync / async aggregation / RTC)
  execution       which rows the executor actually executed (from time, or from the driver's joint goals)
  latency         inference latency statistics (p95 of recent, warm-up excluded)
  gates           safety gates a chunk passes before anything is published
  limits          joint limits (URDF) and the dataset's per-tick action deltas the gates are derived from
  engine          PolicyRuntime: the inference loop step and the control-tick sampling, thread-safe
  outputs         ActionChunk / JointTrajectory / marker content from one timed chunk (plain values)
Nothing here imports rclpy; the node (lerobot_policy_node.nodes.policy_node) only translates.
"""
