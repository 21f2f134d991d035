"""LeRobotDataset v3.0 format (writer, reader, tools), the robot interface file, frame alignment, the recorder node and bag conversion."""
