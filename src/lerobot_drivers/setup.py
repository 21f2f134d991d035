from setuptools import find_packages, setup

PACKAGE = "lerobot_drivers"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + PACKAGE]),
        ("share/" + PACKAGE, ["package.xml"]),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="lerobot_ros maintainers",
    maintainer_email="maintainers@lerobot-ros.dev",
    description="Servo buses (Feetech, Dynamixel), LeRobot-compatible calibration, SO-100/101 and Koch arms, cameras, teleoperators and their wire-level simulators as ROS 2 nodes.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "lerobot-servo-sim = lerobot_drivers.sim.servo_bus_simulator:main",
            "lerobot-calibrate = lerobot_drivers.calibrate_cli:main",
            "lerobot-find-port = lerobot_drivers.find_port_cli:main",
            "arm_driver = lerobot_drivers.nodes.arm_driver_node:main",
            "opencv_camera = lerobot_drivers.nodes.camera_node:main",
            "sim_camera = lerobot_drivers.nodes.sim_camera_node:main",
            "gym_robot = lerobot_drivers.nodes.gym_robot_node:main",
            "keyboard_teleop = lerobot_drivers.nodes.keyboard_teleop_node:main",
            "gamepad_teleop = lerobot_drivers.nodes.gamepad_teleop_node:main",
            "scripted_operator = lerobot_drivers.nodes.scripted_operator_node:main",
        ],
    },
)
