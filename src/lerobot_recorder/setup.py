from setuptools import find_packages, setup

PACKAGE = "lerobot_recorder"

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
    description="The robot interface file, frame alignment, the recorder node and bag conversion (through lerobot_dataset).",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "recorder = lerobot_recorder.nodes.recorder_node:main",
            "record_keyboard = lerobot_recorder.nodes.record_keyboard_node:main",
            "lerobot-bag-convert = lerobot_recorder.bag_convert:main",
        ],
    },
)
