"""The MLflow tracking server on ECS Fargate: image, cluster, task definition, service, autoscaling, IAM.

Credentials reach the container only as ECS `secrets` (Secrets Manager ARNs resolved by the agent at
start), never as plain `environment`. The execution role may pull this image, write this log group
and read exactly these secrets; the task role may use exactly this bucket and its key. The only
`Resource: "*"` is `ecr:GetAuthorizationToken`, which AWS does not scope (see `policies.py`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_docker_build as docker_build

from mlflow_platform.infra.policies import caller_identity, partition, policy_document, service_assume_role_policy
from mlflow_platform.server import contract
from toolkit.platform_config import ServerConfig

CONTAINER_NAME = "mlflow"
# The non-root user the image creates (platform/server/Dockerfile: `useradd --uid 10001`); ECS enforces it too.
CONTAINER_USER = "10001:10001"
# The root filesystem is read-only; the one writable path is a task-scoped bind mount at /tmp (the
# entrypoint writes MLflow's auth ini there, MLflow buffers artifact uploads there, HOME points there).
# ECS gives such a mount the mode of the image's directory when the image declares it a VOLUME, which
# platform/server/Dockerfile does (`chmod 1777 /tmp`, `VOLUME ["/tmp"]`), so the non-root user can write it.
SCRATCH_VOLUME = "scratch"
SCRATCH_PATH = "/tmp"  # noqa: S108 - a per-task bind mount, not a shared host directory
# Database migrations run at start: give a new task time before the load balancer's verdict counts.
HEALTH_CHECK_GRACE_SECONDS = 180
ECR_KEEP_IMAGES = 30
SCALE_IN_COOLDOWN_SECONDS = 300
SCALE_OUT_COOLDOWN_SECONDS = 60
ECR_IMAGE = re.compile(r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com/(?P<repo>[^:@]+)")
ECR_PULL_ACTIONS = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]


def server_image_context() -> Path:
    """The image's build context: `platform/server/`, the entrypoint package with its Dockerfile and
    pinned requirements. Nothing else of the repository goes into the image."""
    return Path(__file__).resolve().parent.parent / "server"


def image_mlflow_version(context: Path) -> str | None:
    """The MLflow version an image built from `context` installs: the `mlflow==` pin of its requirements."""
    requirements = context / "requirements.txt"
    if not requirements.is_file():
        return None
    match = re.search(r"^mlflow==([^\s;\\]+)", requirements.read_text(), re.MULTILINE)
    return match.group(1) if match else None


def source_fingerprint(context: Path) -> str:
    """A short content hash of every file in the build context, so an unchanged server never pushes a
    new tag and an edit elsewhere in the repository (the CLI, the components) never rebuilds it."""
    digest = hashlib.sha256()
    for file in sorted(p for p in context.rglob("*") if p.is_file()):
        if "__pycache__" in file.parts or file.suffix == ".pyc":
            continue
        digest.update(file.relative_to(context).as_posix().encode())
        digest.update(b"\0")
        digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def container_definitions(
    *,
    image: pulumi.Input[str],
    region: str,
    log_group_name: pulumi.Input[str],
    environment: Mapping[str, pulumi.Input[str]],
    secrets: Mapping[str, pulumi.Input[str]],
) -> list[dict[str, Any]]:
    """The one container of the task, in RegisterTaskDefinition's shape (Outputs allowed inside)."""
    return [
        {
            "name": CONTAINER_NAME,
            "image": image,
            "essential": True,
            "user": CONTAINER_USER,
            "readonlyRootFilesystem": True,
            "mountPoints": [{"sourceVolume": SCRATCH_VOLUME, "containerPath": SCRATCH_PATH, "readOnly": False}],
            "portMappings": [{"containerPort": contract.LISTEN_PORT, "protocol": "tcp", "name": "http"}],
            "environment": [{"name": key, "value": value} for key, value in sorted(environment.items())],
            "secrets": [{"name": key, "valueFrom": arn} for key, arn in sorted(secrets.items())],
            # The image's tini is PID 1 already, so no ECS init process; no Linux capability is needed.
            "linuxParameters": {"capabilities": {"drop": ["ALL"]}},
            "logConfiguration": {
                "logDriver": "awslogs",
                "options": {
                    "awslogs-group": log_group_name,
                    "awslogs-region": region,
                    "awslogs-stream-prefix": CONTAINER_NAME,
                },
            },
            # SIGTERM to SIGKILL: Fargate's maximum, so in-flight requests (uploads) can finish; the
            # server bounds its own shutdown below this and exits by itself.
            "stopTimeout": contract.STOP_TIMEOUT_SECONDS,
        }
    ]


@dataclass(frozen=True)
class ServerSecrets:
    """Secrets Manager ARNs, keyed by the variables of `contract` that receive them."""

    database: pulumi.Input[str]
    """The database connection secret's ARN."""
    admin: pulumi.Input[str]
    """The admin user secret's ARN."""
    flask_secret_key: pulumi.Input[str]
    """The Flask secret key's ARN."""

    def by_variable(self) -> dict[str, pulumi.Input[str]]:
        return {
            contract.DATABASE_SECRET: self.database,
            contract.ADMIN_SECRET: self.admin,
            contract.FLASK_SECRET_KEY: self.flask_secret_key,
        }


@dataclass(frozen=True)
class TrackingServerArgs:
    config: ServerConfig
    """The stack's `server` section: task size, counts, workers, image, log retention."""
    region: str
    """The stack's region."""
    private_subnet_ids: pulumi.Input[Sequence[str]]
    """Where the tasks run (no public IP)."""
    security_group_id: pulumi.Input[str]
    """The server tasks' security group."""
    target_group_arn: pulumi.Input[str]
    """The load balancer's target group the service registers tasks in."""
    bucket_name: pulumi.Input[str]
    """The artifact bucket (the artifacts destination)."""
    bucket_arn: pulumi.Input[str]
    """The artifact bucket's ARN; the task role may use exactly this bucket."""
    artifact_kms_key_arn: pulumi.Input[str]
    """The artifact bucket's key; the task role may use exactly this key."""
    platform_kms_key_arn: pulumi.Input[str]
    """The key of the secrets and of the log group."""
    secrets: ServerSecrets
    """The secrets the container receives as ECS `secrets`."""
    log_group_name: str
    """The name of the server's CloudWatch log group (created here)."""
    allowed_hosts: pulumi.Input[Sequence[str]]
    """Host names the server must accept (load balancer DNS name, domain, configured extras)."""
    public_scheme: str
    """`https` or `http`: how clients reach the server (the UI's CORS origins use only this scheme)."""
    identity: pulumi.Input[str] | None = None
    """`contract.ServerIdentity` as JSON: who signs in with which AWS identity (none: passwords only)."""
    force_delete_images: bool = False
    """An ECR repository holding images may be deleted with them only where the stack allows it."""
    depends_on: Sequence[pulumi.Resource] = field(default_factory=list)
    """Resources the service must wait for: the listeners that attach the target group to the ALB, and
    the snapshot of the database taken for the MLflow version the service is about to run."""
    image_context: Path | None = None
    """The image's build context; by default `platform/server/` of this checkout (tests point it elsewhere)."""


class TrackingServer(pulumi.ComponentResource):
    """ECR + image (unless `server.image`), cluster, task definition, service, scaling, roles, logs."""

    cluster_name: pulumi.Output[str]
    """The ECS cluster's name."""
    service_name: pulumi.Output[str]
    """The ECS service's name."""
    task_definition_arn: pulumi.Output[str]
    """The task definition revision the service runs."""
    image: pulumi.Output[str]
    """The image the task runs (tag@digest when built here)."""
    execution_role_arn: pulumi.Output[str]
    """The role ECS uses to pull the image, write logs and read the secrets."""
    task_role_arn: pulumi.Output[str]
    """The role the server runs as: the artifact bucket and its key, nothing else."""
    log_group_name: pulumi.Output[str]
    """The server's CloudWatch log group."""

    def __init__(self, name: str, args: TrackingServerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlflow-platform:server:TrackingServer", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        config = args.config
        account_id = caller_identity(self).account_id

        image, image_pull_statements = self._image(name, args)

        log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=args.log_group_name,
            retention_in_days=config.log_retention_days,
            kms_key_id=args.platform_kms_key_arn,
            opts=child,
        )

        execution_role = aws.iam.Role(
            f"{name}-execution",
            description="ECS agent for the MLflow server: pull the image, write its logs, read its secrets",
            assume_role_policy=service_assume_role_policy("ecs-tasks.amazonaws.com", account_id),
            opts=child,
        )
        secret_arns = list(args.secrets.by_variable().values())
        aws.iam.RolePolicy(
            f"{name}-execution",
            role=execution_role.id,
            policy=policy_document(
                *image_pull_statements,
                {
                    "Sid": "WriteThisLogGroup",
                    "Effect": "Allow",
                    "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                    "Resource": pulumi.Output.concat(log_group.arn, ":log-stream:*"),
                },
                {
                    "Sid": "ReadTheseSecrets",
                    "Effect": "Allow",
                    "Action": ["secretsmanager:GetSecretValue"],
                    "Resource": secret_arns,
                },
                {
                    "Sid": "DecryptTheseSecrets",
                    "Effect": "Allow",
                    "Action": ["kms:Decrypt"],
                    "Resource": [args.platform_kms_key_arn],
                    "Condition": {"StringEquals": {"kms:ViaService": f"secretsmanager.{args.region}.amazonaws.com"}},
                },
            ),
            opts=child,
        )

        task_role = aws.iam.Role(
            f"{name}-task",
            description="MLflow server: read and write artifacts in its bucket, nothing else",
            assume_role_policy=service_assume_role_policy("ecs-tasks.amazonaws.com", account_id),
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-task",
            role=task_role.id,
            policy=policy_document(
                {
                    "Sid": "ListThisBucket",
                    "Effect": "Allow",
                    "Action": ["s3:GetBucketLocation", "s3:ListBucket"],
                    "Resource": [args.bucket_arn],
                },
                {
                    "Sid": "ArtifactsInThisBucket",
                    "Effect": "Allow",
                    "Action": [
                        "s3:AbortMultipartUpload",
                        "s3:DeleteObject",
                        "s3:GetObject",
                        "s3:ListMultipartUploadParts",
                        "s3:PutObject",
                    ],
                    "Resource": [pulumi.Output.concat(args.bucket_arn, "/*")],
                },
                {
                    "Sid": "UseTheBucketKey",
                    "Effect": "Allow",
                    "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                    "Resource": [args.artifact_kms_key_arn],
                },
            ),
            opts=child,
        )

        cluster = aws.ecs.Cluster(
            f"{name}-cluster",
            settings=[aws.ecs.ClusterSettingArgs(name="containerInsights", value="enabled")],
            opts=child,
        )

        environment: dict[str, pulumi.Input[str]] = {
            contract.ARTIFACTS_DESTINATION: pulumi.Output.concat("s3://", args.bucket_name),
            contract.ALLOWED_HOSTS: pulumi.Output.from_input(args.allowed_hosts).apply(",".join),
            contract.WORKERS: str(config.workers),
            contract.HOST: contract.LISTEN_HOST,
            contract.PORT: str(contract.LISTEN_PORT),
            contract.PUBLIC_SCHEME: args.public_scheme,
            **({contract.IDENTITY: args.identity} if args.identity is not None else {}),
            "AWS_DEFAULT_REGION": args.region,
            "HOME": SCRATCH_PATH,  # the only writable path: anything a library caches under ~ lands there
        }
        task_definition = aws.ecs.TaskDefinition(
            f"{name}-task",
            family=f"{name}-{pulumi.get_stack()}",
            requires_compatibilities=["FARGATE"],
            network_mode="awsvpc",
            cpu=str(config.cpu),
            memory=str(config.memory_mib),
            runtime_platform=aws.ecs.TaskDefinitionRuntimePlatformArgs(
                operating_system_family="LINUX", cpu_architecture="X86_64"
            ),
            execution_role_arn=execution_role.arn,
            task_role_arn=task_role.arn,
            volumes=[aws.ecs.TaskDefinitionVolumeArgs(name=SCRATCH_VOLUME)],
            container_definitions=pulumi.Output.json_dumps(
                container_definitions(
                    image=image,
                    region=args.region,
                    log_group_name=log_group.name,
                    environment=environment,
                    secrets=args.secrets.by_variable(),
                )
            ),
            opts=child,
        )

        service = aws.ecs.Service(
            f"{name}-service",
            cluster=cluster.arn,
            task_definition=task_definition.arn,
            launch_type="FARGATE",
            platform_version="LATEST",
            desired_count=config.desired_count,
            deployment_minimum_healthy_percent=100,
            deployment_maximum_percent=200,
            deployment_circuit_breaker=aws.ecs.ServiceDeploymentCircuitBreakerArgs(enable=True, rollback=True),
            health_check_grace_period_seconds=HEALTH_CHECK_GRACE_SECONDS,
            network_configuration=aws.ecs.ServiceNetworkConfigurationArgs(
                subnets=args.private_subnet_ids,
                security_groups=[args.security_group_id],
                assign_public_ip=False,
            ),
            load_balancers=[
                aws.ecs.ServiceLoadBalancerArgs(
                    target_group_arn=args.target_group_arn,
                    container_name=CONTAINER_NAME,
                    container_port=contract.LISTEN_PORT,
                )
            ],
            enable_execute_command=False,
            propagate_tags="SERVICE",
            # `pulumi up` waits until the new tasks are running and healthy: a rollout that fails (and
            # that the circuit breaker rolls back) fails the update instead of reporting success.
            wait_for_steady_state=True,
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=list(args.depends_on),
                # The autoscaler owns the running count once the service exists.
                ignore_changes=["desiredCount"],
            ),
        )

        resource_id = pulumi.Output.concat("service/", cluster.name, "/", service.name)
        target = aws.appautoscaling.Target(
            f"{name}-scaling",
            service_namespace="ecs",
            scalable_dimension="ecs:service:DesiredCount",
            resource_id=resource_id,
            min_capacity=config.min_count,
            max_capacity=config.max_count,
            opts=child,
        )
        aws.appautoscaling.Policy(
            f"{name}-cpu",
            policy_type="TargetTrackingScaling",
            service_namespace=target.service_namespace,
            scalable_dimension=target.scalable_dimension,
            resource_id=target.resource_id,
            target_tracking_scaling_policy_configuration=aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationArgs(
                target_value=float(config.cpu_target_percent),
                predefined_metric_specification=aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationPredefinedMetricSpecificationArgs(
                    predefined_metric_type="ECSServiceAverageCPUUtilization"
                ),
                scale_in_cooldown=SCALE_IN_COOLDOWN_SECONDS,
                scale_out_cooldown=SCALE_OUT_COOLDOWN_SECONDS,
            ),
            opts=child,
        )

        self.cluster_name = cluster.name
        self.service_name = service.name
        self.task_definition_arn = task_definition.arn
        self.image = pulumi.Output.from_input(image)
        self.execution_role_arn = execution_role.arn
        self.task_role_arn = task_role.arn
        self.log_group_name = log_group.name
        self.register_outputs(
            {
                "cluster_name": self.cluster_name,
                "service_name": self.service_name,
                "task_definition_arn": self.task_definition_arn,
                "image": self.image,
                "execution_role_arn": self.execution_role_arn,
                "task_role_arn": self.task_role_arn,
                "log_group_name": self.log_group_name,
            }
        )

    def _image(self, name: str, args: TrackingServerArgs) -> tuple[pulumi.Input[str], list[dict[str, Any]]]:
        """The image to run and the execution-role statements that let ECS pull it."""
        configured = args.config.image
        if configured is not None:
            match = ECR_IMAGE.match(configured)
            if match is None:
                # A public registry image: no pull permission to grant.
                return configured, []
            repository_arn = pulumi.Output.concat(
                "arn:", partition(self), ":ecr:", match["region"], ":", match["account"], ":repository/", match["repo"]
            )
            return configured, self._ecr_pull_statements(repository_arn)

        child = pulumi.ResourceOptions(parent=self)
        repository = aws.ecr.Repository(
            f"{name}-images",
            image_tag_mutability="IMMUTABLE",
            image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(scan_on_push=True),
            force_delete=args.force_delete_images,
            opts=child,
        )
        aws.ecr.LifecyclePolicy(
            f"{name}-images",
            repository=repository.name,
            policy=pulumi.Output.json_dumps(
                {
                    "rules": [
                        {
                            "rulePriority": 1,
                            "description": f"keep the newest {ECR_KEEP_IMAGES} images",
                            "selection": {
                                "tagStatus": "any",
                                "countType": "imageCountMoreThan",
                                "countNumber": ECR_KEEP_IMAGES,
                            },
                            "action": {"type": "expire"},
                        }
                    ]
                }
            ),
            opts=child,
        )
        context = args.image_context or server_image_context()
        tag = f"{args.config.mlflow_version}-{source_fingerprint(context)}"
        token = aws.ecr.get_authorization_token_output(
            registry_id=repository.registry_id, opts=pulumi.InvokeOutputOptions(parent=self)
        )
        built = docker_build.Image(
            f"{name}-image",
            context=docker_build.BuildContextArgs(location=str(context)),
            dockerfile=docker_build.DockerfileArgs(location=str(context / "Dockerfile")),
            platforms=[docker_build.Platform.LINUX_AMD64],
            tags=[pulumi.Output.concat(repository.repository_url, ":", tag)],
            push=True,
            registries=[
                docker_build.RegistryArgs(
                    address=repository.repository_url, username=token.user_name, password=token.password
                )
            ],
            opts=child,
        )
        # `ref` is tag@digest: the task definition pins the exact bytes that were scanned.
        return built.ref, self._ecr_pull_statements(repository.arn)

    @staticmethod
    def _ecr_pull_statements(repository_arn: pulumi.Input[str]) -> list[dict[str, Any]]:
        return [
            {
                # Listed in policies.ACTIONS_WITHOUT_RESOURCE_SCOPE: AWS authorises it only on "*".
                "Sid": "RegistryLoginHasNoResourceScope",
                "Effect": "Allow",
                "Action": ["ecr:GetAuthorizationToken"],
                "Resource": "*",
            },
            {
                "Sid": "PullThisRepository",
                "Effect": "Allow",
                "Action": ECR_PULL_ACTIONS,
                "Resource": [repository_arn],
            },
        ]
