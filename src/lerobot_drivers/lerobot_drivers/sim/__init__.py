"""Simulators that stand in for hardware: servo bus, camera scene, kinematics."""
