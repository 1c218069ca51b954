"""Reading what the mocks recorded: secret markers, policy documents, components and their children."""

from __future__ import annotations

import json
from typing import Any

from tests.infra.conftest import PROJECT, Deployment, Recorded, load_stack_file, pulumi_config_values

# How the Pulumi wire format marks a secret value: {SECRET_SIG: SECRET_SIG_VALUE, "value": ...}.
SECRET_SIG = "4dabf18193072939515e22adb298388d"
SECRET_SIG_VALUE = "1b47061264138c4ac30d75fd1eb44270"

POLICY_PROPERTIES: dict[str, tuple[str, ...]] = {
    "aws:iam/rolePolicy:RolePolicy": ("policy",),
    "aws:iam/policy:Policy": ("policy",),
    "aws:iam/role:Role": ("assumeRolePolicy",),
    "aws:kms/key:Key": ("policy",),
    "aws:s3/bucketPolicy:BucketPolicy": ("policy",),
    "aws:sns/topicPolicy:TopicPolicy": ("policy",),
    "aws:secretsmanager/secretPolicy:SecretPolicy": ("policy",),
}


def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(SECRET_SIG) == SECRET_SIG_VALUE


def plain(value: Any) -> Any:
    """The value with every secret marker removed (what AWS would receive)."""
    if is_secret(value):
        return plain(value["value"])
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


def component(deployment: Deployment, type_token: str) -> Recorded:
    return deployment.one(type_token)


def children(deployment: Deployment, parent: Recorded, typ: str | None = None) -> list[Recorded]:
    """Direct children of a component, optionally of one resource type."""
    return [r for r in deployment.resources if r.parent_urn == parent.urn and (typ is None or r.type == typ)]


def descendants(deployment: Deployment, parent: Recorded, typ: str) -> list[Recorded]:
    found: list[Recorded] = []
    for child in children(deployment, parent):
        if child.type == typ:
            found.append(child)
        found.extend(descendants(deployment, child, typ))
    return found


def below(deployment: Deployment, component_type: str, typ: str) -> Recorded:
    """The one resource of type `typ` among the descendants of the one component of `component_type`."""
    found = descendants(deployment, component(deployment, component_type), typ)
    assert len(found) == 1, f"expected one {typ} below {component_type}, found {[r.name for r in found]}"
    return found[0]


def artifact_bucket(deployment: Deployment) -> Recorded:
    return below(deployment, "mlflow-platform:storage:ArtifactStore", "aws:s3/bucket:Bucket")


def arn(record: Recorded) -> str:
    value = record.state["arn"]
    assert isinstance(value, str)
    return value


def resource_id(record: Recorded) -> str:
    value = record.state["__id"]
    assert isinstance(value, str)
    return value


def policy_documents(deployment: Deployment) -> list[tuple[Recorded, dict[str, Any]]]:
    """Every policy document the program declares, parsed."""
    documents = []
    for record in deployment.resources:
        for prop in POLICY_PROPERTIES.get(record.type, ()):
            raw = plain(record.inputs.get(prop))
            if raw is None:
                continue
            document = json.loads(raw)
            assert isinstance(document, dict), f"{record.name}.{prop} is not a JSON object"
            documents.append((record, document))
    return documents


def statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    raw = document["Statement"]
    return raw if isinstance(raw, list) else [raw]


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def role_policy(deployment: Deployment, role_name_suffix: str) -> dict[str, Any]:
    """The inline policy document of the role whose logical name ends with `role_name_suffix`."""
    policy = next(r for r in deployment.of_type("aws:iam/rolePolicy:RolePolicy") if r.name.endswith(role_name_suffix))
    document = json.loads(plain(policy.inputs["policy"]))
    assert isinstance(document, dict)
    return document


def container_definitions(deployment: Deployment) -> list[dict[str, Any]]:
    task = deployment.one("aws:ecs/taskDefinition:TaskDefinition")
    raw = task.inputs["containerDefinitions"]
    assert isinstance(raw, str), "container definitions must be plain (not secret) JSON"
    definitions = json.loads(raw)
    assert isinstance(definitions, list)
    return definitions


def generated_secret_values(deployment: Deployment) -> list[str]:
    """Every value pulumi-random generated (passwords, the Flask key); never none, so a check over them
    always checks something."""
    values = []
    for record in deployment.of_type("random:index/randomPassword:RandomPassword"):
        value = record.state["result"]
        assert isinstance(value, str)
        assert len(value) >= 32
        values.append(value)
    assert values, "the program generated no secret value to look for"
    return values


def server_log_group(deployment: Deployment) -> Recorded:
    return next(g for g in deployment.of_type("aws:cloudwatch/logGroup:LogGroup") if g.name.endswith("-server-logs"))


def stack_values(stack: str) -> dict[str, str]:
    """The config map `pulumi up` hands the program for an example stack in `stacks/`."""
    return pulumi_config_values(load_stack_file(stack))


def with_section(values: dict[str, str], key: str, change: dict[str, Any]) -> dict[str, str]:
    """A copy of `values` whose structured key `key` has `change` merged in."""
    full_key = f"{PROJECT}:{key}"
    section = json.loads(values[full_key]) if full_key in values else {}
    return {**values, full_key: json.dumps({**section, **change})}


def without(values: dict[str, str], key: str, *names: str) -> dict[str, str]:
    """A copy of `values` whose structured key `key` lacks the entries `names`."""
    full_key = f"{PROJECT}:{key}"
    section = {name: value for name, value in json.loads(values[full_key]).items() if name not in names}
    return {**values, full_key: json.dumps(section)}
