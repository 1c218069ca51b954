"""The tracking server's container: everything the image holds, and nothing else.

`python -m mlflow_platform.server` (the container's command) runs `entrypoint.main`. `contract` is the
one definition of what the task definition, the local platform and the entrypoint pass to each other
(environment names, secret payloads, listen address); `settings` reads it from the environment.
Importing this package loads neither MLflow nor Pulumi, so the toolkit and the components can use the
contract freely.
"""
