"""Pulumi mocks for the infrastructure tests: the real program (`platform/__main__.py`) runs in-process.

The mocks answer like AWS would (ARNs, DNS names, ids in AWS's formats), record every resource with
its inputs and its parent, and the program's stack outputs are resolved, so tests assert on wiring
(this ARN reaches that policy) rather than on the code that builds it.
"""

from __future__ import annotations

import hashlib
import json
import runpy
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime.settings import ROOT
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from toolkit.platform_config import PlatformConfig

REPO = Path(__file__).resolve().parents[2]
STACKS = REPO / "stacks"
PROGRAM = REPO / "platform" / "__main__.py"
PROJECT = "mlflow-platform"
ACCOUNT = "123456789012"
STACK_NAMES = ("dev", "prod")


def _hex(seed: str, length: int) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()[:length]


def _alphanumeric(seed: str, length: int) -> str:
    alphabet = string.ascii_letters + string.digits
    digest = hashlib.sha512(seed.encode()).digest() * (length // 64 + 1)
    return "".join(alphabet[byte % len(alphabet)] for byte in digest[:length])


@dataclass
class Recorded:
    """One registered resource: its type token, logical name, inputs, mocked state, URN and parent URN."""

    type: str
    name: str
    inputs: dict[str, Any]
    state: dict[str, Any]
    urn: str = ""
    parent_urn: str = ""
    custom: bool = True
    # "<provider urn>::<provider id>" for custom resources.
    provider: str = ""
    # URNs of the resources it depends on (explicit `depends_on` and those its inputs come from).
    dependencies: list[str] = field(default_factory=list)
    # Whether `pulumi destroy` (or removing it from the program) leaves it in the cloud.
    retain_on_delete: bool = False


class PlatformMocks(pulumi_mocks.Mocks):
    """Outputs in AWS's formats, derived from the logical name so they are stable and traceable."""

    def __init__(self, region: str) -> None:
        self.region = region
        self.records: dict[tuple[str, str], Recorded] = {}
        self.calls: list[pulumi_mocks.MockCallArgs] = []

    def call(self, args: pulumi_mocks.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        self.calls.append(args)
        token = args.token
        if token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": ACCOUNT,
                "arn": f"arn:aws:iam::{ACCOUNT}:user/deployer",
                "userId": "AIDAMOCKUSER",
                "id": ACCOUNT,
            }, []
        if token == "aws:iam/getSessionContext:getSessionContext":
            # The deployer is an IAM user in the mocks: the issuer of its "session" is itself.
            return {"arn": args.args["arn"], "issuerArn": args.args["arn"], "id": args.args["arn"]}, []
        if token == "aws:index/getPartition:getPartition":
            return {
                "partition": "aws",
                "dnsSuffix": "amazonaws.com",
                "reverseDnsPrefix": "com.amazonaws",
                "id": "aws",
            }, []
        if token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            names = [f"{self.region}{letter}" for letter in "abcdef"]
            return {"names": names, "zoneIds": [f"euw1-az{i}" for i in range(1, 7)], "id": self.region}, []
        if token == "aws:elb/getServiceAccount:getServiceAccount":
            return {"id": "156460612806", "arn": "arn:aws:iam::156460612806:root"}, []
        if token == "aws:ecr/getAuthorizationToken:getAuthorizationToken":
            return {
                "userName": "AWS",
                "password": "mock-registry-token",
                "authorizationToken": "QVdTOm1vY2s=",
                "proxyEndpoint": f"https://{ACCOUNT}.dkr.ecr.{self.region}.amazonaws.com",
                "expiresAt": "2030-01-01T00:00:00Z",
                "id": self.region,
            }, []
        raise NotImplementedError(f"no mock for the invoke {token}")

    def new_resource(self, args: pulumi_mocks.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        inputs = dict(args.inputs)
        resource_id, outputs = self._outputs(args.typ, args.name, inputs)
        state = {**inputs, **outputs}
        self.records[(args.typ, args.name)] = Recorded(
            args.typ, args.name, inputs, state, custom=bool(args.custom), provider=args.provider or ""
        )
        return resource_id, state

    def _arn(self, service: str, resource: str, *, regional: bool = True, account: bool = True) -> str:
        return f"arn:aws:{service}:{self.region if regional else ''}:{ACCOUNT if account else ''}:{resource}"

    def _outputs(self, typ: str, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        region, suffix = self.region, _hex(name, 7)
        generic_id = f"{name}-{suffix}"
        if typ == "aws:s3/bucket:Bucket":
            bucket = inputs.get("bucket") or f"{name}-{suffix}"
            return bucket, {"bucket": bucket, "arn": f"arn:aws:s3:::{bucket}", "region": region}
        if typ == "aws:kms/key:Key":
            raw = _hex(name, 32)
            key_id = f"{raw[:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-{raw[20:]}"
            return key_id, {"keyId": key_id, "arn": self._arn("kms", f"key/{key_id}")}
        if typ == "aws:kms/alias:Alias":
            alias = f"{inputs.get('namePrefix', 'alias/')}{suffix}"
            return alias, {"name": alias, "arn": self._arn("kms", alias)}
        if typ == "aws:secretsmanager/secret:Secret":
            secret_name = f"{inputs.get('namePrefix', name + '-')}{suffix}"
            arn = self._arn("secretsmanager", f"secret:{secret_name}-{_hex(name, 6)}")
            return arn, {"name": secret_name, "arn": arn}
        if typ == "aws:secretsmanager/secretVersion:SecretVersion":
            return f"{inputs['secretId']}|v1", {"arn": inputs["secretId"], "versionId": _hex(name, 32)}
        if typ == "random:index/randomPassword:RandomPassword":
            value = _alphanumeric(name, int(inputs.get("length", 16)))
            return generic_id, {"result": value, "bcryptHash": "$2a$10$" + _hex(name, 53)}
        if typ == "aws:rds/instance:Instance":
            identifier = inputs.get("identifier") or f"{name}-{suffix}"
            address = f"{identifier}.c{_hex(name, 11)}.{region}.rds.amazonaws.com"
            return f"db-{suffix.upper()}", {
                "address": address,
                "endpoint": f"{address}:5432",
                "port": inputs.get("port", 5432),
                "arn": self._arn("rds", f"db:{identifier}"),
                "identifier": identifier,
            }
        if typ == "aws:rds/snapshot:Snapshot":
            snapshot = inputs["dbSnapshotIdentifier"]
            return snapshot, {"dbSnapshotArn": self._arn("rds", f"snapshot:{snapshot}")}
        if typ == "random:index/randomId:RandomId":
            return generic_id, {"hex": _hex(name, 2 * int(inputs.get("byteLength", 4)))}
        if typ in ("aws:rds/subnetGroup:SubnetGroup", "aws:rds/parameterGroup:ParameterGroup"):
            return generic_id, {"name": generic_id, "arn": self._arn("rds", f"pg:{generic_id}")}
        if typ == "aws:lb/loadBalancer:LoadBalancer":
            lb_name = f"{name[:20]}-{suffix}"
            arn = self._arn("elasticloadbalancing", f"loadbalancer/app/{lb_name}/{_hex(name, 16)}")
            prefix = "internal-" if inputs.get("internal") else ""
            return arn, {
                "arn": arn,
                "arnSuffix": f"app/{lb_name}/{_hex(name, 16)}",
                "dnsName": f"{prefix}{lb_name}-{int(_hex(name, 8), 16)}.{region}.elb.amazonaws.com",
                "zoneId": "Z32O12XQLNTSW2",
            }
        if typ == "aws:lb/targetGroup:TargetGroup":
            arn = self._arn("elasticloadbalancing", f"targetgroup/{name[:20]}-{suffix}/{_hex(name, 16)}")
            return arn, {"arn": arn, "arnSuffix": arn.split(":")[-1]}
        if typ == "aws:lb/listener:Listener":
            arn = self._arn("elasticloadbalancing", f"listener/app/{name}/{_hex(name, 16)}")
            return arn, {"arn": arn}
        if typ == "aws:ecr/repository:Repository":
            repo = f"{name}-{suffix}"
            return repo, {
                "name": repo,
                "arn": self._arn("ecr", f"repository/{repo}"),
                "registryId": ACCOUNT,
                "repositoryUrl": f"{ACCOUNT}.dkr.ecr.{region}.amazonaws.com/{repo}",
            }
        if typ == "docker-build:index:Image":
            digest = "sha256:" + _hex(name + "digest", 64)
            tags = inputs.get("tags") or [name]
            return digest, {"digest": digest, "ref": f"{tags[0]}@{digest}"}
        if typ == "aws:ecs/cluster:Cluster":
            cluster = f"{name}-{suffix}"
            return cluster, {"name": cluster, "arn": self._arn("ecs", f"cluster/{cluster}")}
        if typ == "aws:ecs/service:Service":
            service = f"{name}-{suffix}"
            return service, {"name": service, "arn": self._arn("ecs", f"service/{service}")}
        if typ == "aws:ecs/taskDefinition:TaskDefinition":
            family = inputs.get("family", name)
            return family, {"arn": self._arn("ecs", f"task-definition/{family}:1"), "revision": 1}
        if typ == "aws:iam/role:Role":
            role = f"{name}-{suffix}"
            return role, {"name": role, "arn": f"arn:aws:iam::{ACCOUNT}:role/{role}", "uniqueId": "AROA" + suffix}
        if typ == "aws:iam/policy:Policy":
            policy = f"{inputs.get('namePrefix', name + '-')}{suffix}"
            arn = f"arn:aws:iam::{ACCOUNT}:policy/{policy}"
            return arn, {"name": policy, "arn": arn, "policyId": "ANPA" + _hex(name, 17).upper()}
        if typ == "aws:iam/rolePolicy:RolePolicy":
            return f"{inputs.get('role')}:{generic_id}", {"name": generic_id}
        if typ == "aws:cloudwatch/logGroup:LogGroup":
            group = inputs.get("name", generic_id)
            return group, {"name": group, "arn": self._arn("logs", f"log-group:{group}")}
        if typ == "aws:ssm/parameter:Parameter":
            return inputs["name"], {"arn": self._arn("ssm", f"parameter{inputs['name']}"), "version": 1}
        if typ.startswith("aws:ec2/") or typ.startswith("aws:vpc/"):
            prefix = {
                "aws:ec2/vpc:Vpc": "vpc",
                "aws:ec2/subnet:Subnet": "subnet",
                "aws:ec2/securityGroup:SecurityGroup": "sg",
                "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": "sg",
                "aws:ec2/internetGateway:InternetGateway": "igw",
                "aws:ec2/natGateway:NatGateway": "nat",
                "aws:ec2/eip:Eip": "eipalloc",
                "aws:ec2/routeTable:RouteTable": "rtb",
                "aws:ec2/vpcEndpoint:VpcEndpoint": "vpce",
                "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": "sgr",
                "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": "sgr",
            }.get(typ, "r")
            ec2_id = f"{prefix}-{_hex(typ + name, 17)}"
            extra: dict[str, Any] = {"arn": self._arn("ec2", f"{prefix}/{ec2_id}")}
            if typ == "aws:ec2/eip:Eip":
                extra["allocationId"] = ec2_id
                extra["publicIp"] = "198.18.0.1"
            return ec2_id, extra
        return generic_id, {"arn": self._arn("mock", generic_id)}


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """Adds each resource's URN and parent URN to the mocks' record (the plain monitor drops the parent)."""

    mocks: PlatformMocks

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]  # pulumi leaves it unannotated
        record = self.mocks.records.get((request.type, request.name))
        if record is not None:
            record.urn = response.urn
            record.parent_urn = request.parent
            record.dependencies = list(request.dependencies)
            record.retain_on_delete = bool(request.retainOnDelete)
        return response


@dataclass
class Deployment:
    """What one run of the program declared."""

    config: PlatformConfig
    stack: str
    resources: list[Recorded]
    outputs: dict[str, Any]
    secret_outputs: set[str] = field(default_factory=set)
    calls: list[pulumi_mocks.MockCallArgs] = field(default_factory=list)

    def of_type(self, typ: str) -> list[Recorded]:
        return [r for r in self.resources if r.type == typ]

    def one(self, typ: str) -> Recorded:
        found = self.of_type(typ)
        assert len(found) == 1, f"expected one {typ}, found {[r.name for r in found]}"
        return found[0]

    def by_urn(self, urn: str) -> Recorded:
        return next(r for r in self.resources if r.urn == urn)


def pulumi_config_values(stack_file: dict[str, Any]) -> dict[str, str]:
    """What the Pulumi CLI hands a program: structured values JSON-encoded, strings as they are."""
    values: dict[str, str] = {}
    for key, value in (stack_file.get("config") or {}).items():
        if isinstance(value, str):
            values[key] = value
        else:
            values[key] = json.dumps(value)
    return values


def load_stack_file(stack: str) -> dict[str, Any]:
    data = yaml.safe_load((STACKS / f"Pulumi.{stack}.yaml").read_text())
    assert isinstance(data, dict)
    return data


def run_program(config_values: dict[str, str], *, stack: str) -> Deployment:
    """Run `platform/__main__.py` under mocks with this stack config; return what it declared."""
    region = config_values.get(f"{PROJECT}:region") or config_values.get("aws:region") or "eu-west-1"
    mocks = PlatformMocks(region=region)
    monitor = RecordingMonitor(mocks)
    ROOT.set(None)
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=False, monitor=monitor)
    pulumi.runtime.set_all_config(config_values, secret_keys=[])
    captured: dict[str, Any] = {}

    def program() -> None:
        runpy.run_path(str(PROGRAM), run_name="__main__")
        root = pulumi.runtime.get_root_resource()
        assert root is not None
        stack_outputs: dict[str, Any] = dict(getattr(root, "outputs", {}))
        captured["outputs"] = _sync_await(pulumi.Output.from_input(stack_outputs).future())
        captured["secret"] = {
            key for key, value in stack_outputs.items() if _sync_await(pulumi.Output.from_input(value).is_secret())
        }

    _sync_await(run_pulumi_func(program))
    for (typ, name), record in mocks.records.items():
        record.state.setdefault("__id", next((r.id for r in monitor.resources.values() if r.urn == record.urn), None))
        assert record.urn, f"{typ} {name} was never registered"
    config = PlatformConfig.from_stack_config(config_values, namespace=PROJECT)
    return Deployment(
        config=config,
        stack=stack,
        resources=list(mocks.records.values()),
        outputs=captured["outputs"],
        secret_outputs=captured["secret"],
        calls=list(mocks.calls),
    )


def run_failing_program(config_values: dict[str, str], *, stack: str = "broken") -> tuple[BaseException, int]:
    """Run the program expecting a failure; return the error and how many resources were declared first."""
    mocks = PlatformMocks(region="eu-west-1")
    monitor = RecordingMonitor(mocks)
    ROOT.set(None)
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=False, monitor=monitor)
    pulumi.runtime.set_all_config(config_values, secret_keys=[])

    def program() -> None:
        runpy.run_path(str(PROGRAM), run_name="__main__")

    with pytest.raises(Exception) as caught:  # noqa: PT011 - the caller asserts on the exact type and message
        _sync_await(run_pulumi_func(program))
    return caught.value, len(mocks.records)


@pytest.fixture(autouse=True)
def _no_ambient_pulumi_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """The program reads PULUMI_CONFIG too: a developer's shell must not leak into a test."""
    monkeypatch.delenv("PULUMI_CONFIG", raising=False)
    monkeypatch.delenv("PULUMI_CONFIG_SECRET_KEYS", raising=False)


_DEPLOYMENTS: dict[str, Deployment] = {}


def deployment_of(stack: str) -> Deployment:
    """One program run per example stack per session: the whole suite shares it (runs cost ~1 s each)."""
    if stack not in _DEPLOYMENTS:
        _DEPLOYMENTS[stack] = run_program(pulumi_config_values(load_stack_file(stack)), stack=stack)
    return _DEPLOYMENTS[stack]


@pytest.fixture(params=STACK_NAMES)
def deployment(request: pytest.FixtureRequest) -> Deployment:
    """The program run against each example stack in `stacks/`."""
    stack = request.param
    assert isinstance(stack, str)
    return deployment_of(stack)


@pytest.fixture
def dev() -> Deployment:
    return deployment_of("dev")


@pytest.fixture
def prod() -> Deployment:
    return deployment_of("prod")
