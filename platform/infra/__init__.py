"""The Pulumi components of the platform, one `ComponentResource` per module.

`platform.MlflowPlatform` composes them; `stack_config.load_platform_config` validates a stack's
config before any of them is declared. Nothing here runs at import time.
"""
