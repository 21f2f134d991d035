"""Diffusion Policy (Chi et al. 2023) with upstream LeRobot's architecture, parameter names and config."""
