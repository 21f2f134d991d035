from setuptools import find_packages, setup

PACKAGE = "lerobot_policy_node"

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
    description="Policy inference runtime with real-time chunking and the node publishing action chunks.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "policy_node = lerobot_policy_node.nodes.policy_node:main",
        ],
    },
)
