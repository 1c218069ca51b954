"""The local platform: the AWS stack's moving parts as processes on 127.0.0.1.

moto stands in for S3, Secrets Manager and SSM (`moto_server`), a SQLite file or a throwaway
PostgreSQL cluster (`postgres`) for RDS, and the tracking server runs the very entrypoint the
container runs. `platform.LocalPlatform` starts and stops them; `cli` holds `mlflow-platform local`.
"""
