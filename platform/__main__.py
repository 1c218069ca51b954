"""The Pulumi program (`main: platform/`): validate the stack's config, then declare the platform.

The config is validated first, so a wrong key fails before a single resource is declared.
"""

from mlflow_platform.infra.platform import MlflowPlatform, MlflowPlatformArgs, export_stack_outputs
from mlflow_platform.infra.stack_config import load_platform_config

config = load_platform_config()
# The component's name (`name:` in the stack, "mlflow" by default) prefixes every resource name.
deployment = MlflowPlatform(config.name, MlflowPlatformArgs(config=config))
export_stack_outputs(deployment)
