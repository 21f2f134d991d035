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
            # "<command> = lerobot_drivers.<module>:main",
            "lerobot-servo-sim = lerobot_drivers.sim.servo_bus_simulator:main",
            "lerobot-calibrate = lerobot_drivers.calibrate_cli:main",
            "arm_driver = lerobot_drivers.nodes.arm_driver_node:main",
        ],
    },
)
