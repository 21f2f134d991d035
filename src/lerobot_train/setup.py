from setuptools import find_packages, setup

PACKAGE = "lerobot_train"

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
    description="Offline training of LeRobot-compatible policies from LeRobotDataset v3.0 (never imports rclpy).",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            # "<command> = lerobot_train.<module>:main",
            "lerobot-train = lerobot_train.train:main",
            "lerobot-eval = lerobot_train.eval:main",
        ],
    },
)
