"""The robot interface file, frame alignment, the recorder node and bag conversion (datasets through lerobot_dataset)."""
