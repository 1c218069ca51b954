"""`python -m mlflow_platform.server`: the container's command."""

from mlflow_platform.server.entrypoint import main

if __name__ == "__main__":
    main()
