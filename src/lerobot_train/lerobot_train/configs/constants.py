"""Feature keys and checkpoint file names, as upstream LeRobot spells them (`lerobot.utils.constants`)."""

OBS_PREFIX = "observation."
OBS_STATE = "observation.state"
OBS_ENV_STATE = "observation.environment_state"
OBS_IMAGE = "observation.image"
OBS_IMAGES = "observation.images"
ACTION = "action"

# pretrained_model/ files
CONFIG_NAME = "config.json"
SAFETENSORS_SINGLE_FILE = "model.safetensors"
TRAIN_CONFIG_NAME = "train_config.json"
POLICY_PREPROCESSOR_DEFAULT_NAME = "policy_preprocessor"
POLICY_POSTPROCESSOR_DEFAULT_NAME = "policy_postprocessor"
# ours (upstream ignores it): the robot interface the checkpoint was trained for
ROBOT_INTERFACE_NAME = "robot_interface.json"
