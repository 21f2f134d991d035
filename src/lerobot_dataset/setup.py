"""lerobot_dataset: an ament_python package that is also a plain pip package (`pip install src/lerobot_dataset`)
for training machines without ROS. The ament index files are only installed when colcon builds it."""
import os

from setuptools import find_packages, setup

PACKAGE = "lerobot_dataset"
HERE = os.path.dirname(os.path.abspath(__file__))

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + PACKAGE]),
        ("share/" + PACKAGE, ["package.xml"]),
    ],
    # Everything the writer, reader, validator and tools need; OpenCV only for image (PNG) features, torch only for
    # the reader's output="torch", huggingface_hub only for push/pull.
    install_requires=["numpy", "pyarrow", "av", "pandas", "packaging", "tqdm"],
    extras_require={
        "torch": ["torch"],
        "images": ["opencv-python-headless"],
        "hub": ["huggingface_hub"],
    },
    python_requires=">=3.10",
    zip_safe=False,
    maintainer="lerobot_ros maintainers",
    maintainer_email="maintainers@lerobot-ros.dev",
    description="LeRobotDataset v3.0 writer, reader, validation, tools and Hub transfer (no ROS).",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "lerobot-dataset = lerobot_dataset.cli:main",
        ],
    },
)
