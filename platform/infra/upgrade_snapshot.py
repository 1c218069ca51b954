"""A manual RDS snapshot per MLflow version the stack runs, taken before the server of that version starts.

A new MLflow release may migrate the database schema when its first task starts, and an older server
refuses a migrated schema: if the rollout then fails (the circuit breaker rolls back to the old task
definition) the old server cannot start either. So the ECS service depends on the snapshot of the
version it is about to run: `pulumi up` with a new `server.mlflow_version` declares a new snapshot
(this component is named after the version), AWS takes it, and only then is the service updated and
the first new task migrates the schema (serialized across tasks by the entrypoint's advisory lock).

The snapshot of an earlier version is not deleted when the version changes, nor by `pulumi destroy`
(`retain_on_delete`): it is the way back (README, Operating the platform). Its identifier carries the
version and a random suffix, so running a version again later (a rollback, then a second upgrade)
takes a new snapshot instead of colliding with the kept one.

The first deploy takes one as well, of the database the stack has just created: it is empty, costs
nothing to keep, and keeps the rule without exceptions (every server start of a version follows a
snapshot for that version).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_random as random

# RDS snapshot identifiers: letters, digits and single hyphens, starting with a letter, at most 255.
_NOT_ALLOWED = re.compile(r"[^a-zA-Z0-9]+")
SUFFIX_BYTES = 4


def snapshot_component_name(base: str, mlflow_version: str) -> str:
    """The component's name: one per MLflow version, so a version change declares a new snapshot."""
    return f"{base}-pre-upgrade-{mlflow_version}"


def snapshot_identifier(database_identifier: str, mlflow_version: str, suffix: str) -> str:
    version = _NOT_ALLOWED.sub("-", mlflow_version).strip("-")
    return f"{database_identifier}-before-mlflow-{version}-{suffix}"[:255].rstrip("-")


@dataclass(frozen=True)
class UpgradeSnapshotArgs:
    database_identifier: pulumi.Input[str]
    """The RDS instance to snapshot."""
    mlflow_version: str
    """The MLflow version about to run against the database (`server.mlflow_version`)."""


class UpgradeSnapshot(pulumi.ComponentResource):
    """One retained manual snapshot of the database, for one MLflow version."""

    snapshot_identifier: pulumi.Output[str]
    """The snapshot's identifier (what a rollback restores from)."""
    snapshot_arn: pulumi.Output[str]
    """The snapshot's ARN."""
    snapshot: aws.rds.Snapshot
    """The snapshot resource; the ECS service depends on it."""

    def __init__(self, name: str, args: UpgradeSnapshotArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlflow-platform:storage:UpgradeSnapshot", name, None, opts)
        suffix = random.RandomId(f"{name}-suffix", byte_length=SUFFIX_BYTES, opts=pulumi.ResourceOptions(parent=self))
        identifier = pulumi.Output.all(args.database_identifier, suffix.hex).apply(
            lambda values: snapshot_identifier(str(values[0]), args.mlflow_version, str(values[1]))
        )
        self.snapshot = aws.rds.Snapshot(
            f"{name}-snapshot",
            db_instance_identifier=args.database_identifier,
            db_snapshot_identifier=identifier,
            tags={"mlflow-platform:mlflow-version": args.mlflow_version},
            # Kept by a version change and by `pulumi destroy`: the way back to this version's schema.
            opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True),
        )

        self.snapshot_identifier = self.snapshot.db_snapshot_identifier
        self.snapshot_arn = self.snapshot.db_snapshot_arn
        self.register_outputs({"snapshot_identifier": self.snapshot_identifier, "snapshot_arn": self.snapshot_arn})
