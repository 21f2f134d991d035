"""ROS 2 node modules: thin translation between ROS and the package core."""
