"""The environment contract between the ECS task definition (or the local platform) and the server
entrypoint. Both sides import these names, so a rename cannot leave them disagreeing.

Values marked *secret* reach the container only as ECS `secrets` (Secrets Manager references), never
as plain `environment`; the local platform reads the same secrets from its emulated Secrets Manager.
"""

# JSON of the database connection secret: {"engine", "host", "port", "dbname", "username", "password"}. *secret*
DATABASE_SECRET = "MLFLOW_PLATFORM_DATABASE"
# Alternative to DATABASE_SECRET for a password-less URI (the local platform's SQLite file).
DATABASE_URI = "MLFLOW_PLATFORM_DATABASE_URI"
# JSON of the MLflow admin secret: {"username", "password"}; the toolkit reads the same secret. *secret*
ADMIN_SECRET = "MLFLOW_PLATFORM_ADMIN"
# The Flask secret key, identical on every task and worker (MLflow's own variable name). *secret*
FLASK_SECRET_KEY = "MLFLOW_FLASK_SERVER_SECRET_KEY"
# s3://bucket[/prefix] that the server proxies artifacts to.
ARTIFACTS_DESTINATION = "MLFLOW_PLATFORM_ARTIFACTS_DESTINATION"
# Comma-separated Host header values the server accepts besides its own address (load balancer, domain).
ALLOWED_HOSTS = "MLFLOW_PLATFORM_ALLOWED_HOSTS"
WORKERS = "MLFLOW_PLATFORM_WORKERS"
# Seconds a verified password stays cached per server process (MLflow's `auth_cache_ttl_seconds`); 0 = off.
AUTH_CACHE_SECONDS = "MLFLOW_PLATFORM_AUTH_CACHE_SECONDS"
HOST = "MLFLOW_PLATFORM_HOST"
PORT = "MLFLOW_PLATFORM_PORT"
# Optional: the directory where the entrypoint writes MLflow's basic-auth ini (it holds the database
# URI, password included; mode 0600). Default: a new private temporary directory. The local platform
# points it into its data directory so restarts reuse one file instead of leaving copies in /tmp.
AUTH_CONFIG_DIR = "MLFLOW_PLATFORM_AUTH_CONFIG_DIR"

SECRET_VARIABLES = (DATABASE_SECRET, ADMIN_SECRET, FLASK_SECRET_KEY)
