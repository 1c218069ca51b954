"""Identity in the AWS stack (Pulumi mocks): STS inside the VPC for the server, the admin secret readable
only by the server, the deployer and the principals mapped as admins, and a client config that signs
scientists in with their AWS identity and names no secret."""

from __future__ import annotations

import json
from typing import Any

from mlflow_platform.infra.admin_secret_policy import principal_arn_patterns
from mlflow_platform.server import contract
from tests.infra.conftest import ACCOUNT, Deployment, run_program
from tests.infra.helpers import (
    arn,
    container_definitions,
    plain,
    resource_id,
    stack_values,
    statements,
    with_section,
)
from tests.infra.test_config import EXISTING
from toolkit.client_config import ClientConfig


def _sts_endpoints(deployment: Deployment) -> list[dict[str, Any]]:
    return [
        e.inputs
        for e in deployment.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")
        if e.inputs["serviceName"] == f"com.amazonaws.{deployment.config.region}.sts"
    ]


def test_sts_is_reachable_from_the_server_inside_the_vpc(deployment: Deployment) -> None:
    [endpoint] = _sts_endpoints(deployment)
    assert endpoint["vpcEndpointType"] == "Interface"
    assert endpoint["privateDnsEnabled"] is True
    private = {resource_id(s) for s in deployment.of_type("aws:ec2/subnet:Subnet") if "-private-" in s.name}
    assert set(endpoint["subnetIds"]) == private
    [group_id] = endpoint["securityGroupIds"]
    server_group = next(
        g for g in deployment.of_type("aws:ec2/securityGroup:SecurityGroup") if g.name.endswith("-sg-server")
    )
    rules = [
        r.inputs
        for r in deployment.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
        if r.inputs["securityGroupId"] == group_id
    ]
    assert rules == [
        {
            **rules[0],
            "ipProtocol": "tcp",
            "fromPort": 443,
            "toPort": 443,
            "referencedSecurityGroupId": resource_id(server_group),
        }
    ]
    assert "cidrIpv4" not in rules[0]


def test_an_existing_vpc_gets_no_sts_endpoint() -> None:
    values = with_section(stack_values("dev"), "network", {"existing": EXISTING})
    assert _sts_endpoints(run_program(values, stack="existing")) == []


def test_the_server_is_told_the_mapping_and_its_audiences(deployment: Deployment) -> None:
    [container] = container_definitions(deployment)
    environment = {item["name"]: item["value"] for item in container["environment"]}
    identity = contract.ServerIdentity.model_validate_json(environment[contract.IDENTITY])
    assert identity.principals == deployment.config.identity.principals
    assert identity.principals, "the example stacks map someone"
    assert identity.region == deployment.config.region
    assert contract.audience_of(deployment.outputs["tracking_uri"]) in identity.audiences
    # The server replays to STS's regional endpoint (resolved to the VPC endpoint): no override is set.
    assert contract.STS_ENDPOINT not in environment


def _admin_secret_policy(deployment: Deployment) -> dict[str, Any]:
    [record] = deployment.of_type("aws:secretsmanager/secretPolicy:SecretPolicy")
    admin = next(s for s in deployment.of_type("aws:secretsmanager/secret:Secret") if s.name.endswith("-admin"))
    assert record.inputs["secretArn"] == arn(admin)
    document = json.loads(plain(record.inputs["policy"]))
    [statement] = statements(document)
    assert statement["Effect"] == "Deny"
    assert statement["Principal"] == "*"
    assert statement["Action"] == ["secretsmanager:GetSecretValue"]
    assert statement["Resource"] == arn(admin)
    assert isinstance(statement, dict)
    return statement


def test_only_the_server_the_deployer_and_mapped_admins_read_the_admin_secret(deployment: Deployment) -> None:
    allowed = _admin_secret_policy(deployment)["Condition"]["StringNotLike"]["aws:PrincipalArn"]
    execution_role = next(r for r in deployment.of_type("aws:iam/role:Role") if r.name.endswith("-server-execution"))
    expected = [arn(execution_role), f"arn:aws:iam::{ACCOUNT}:user/deployer"]
    for principal in deployment.config.identity.principals:
        if principal.admin:
            expected.extend(principal_arn_patterns(principal.arn))
    assert allowed == expected
    scientists = [p.arn for p in deployment.config.identity.principals if "DataScientist" in p.arn]
    assert scientists, "the example stacks map scientists"
    assert not any("DataScientist" in pattern for pattern in allowed)


def test_mapped_role_sessions_become_their_roles_under_any_path() -> None:
    sso = "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_PlatformAdmin_*/*"
    assert principal_arn_patterns(sso) == [
        "arn:aws:iam::123456789012:role/AWSReservedSSO_PlatformAdmin_*",
        "arn:aws:iam::123456789012:role/*/AWSReservedSSO_PlatformAdmin_*",
    ]
    user = "arn:aws:iam::123456789012:user/platform/*"
    assert principal_arn_patterns(user) == [user]


def test_the_client_config_signs_in_with_the_aws_identity_and_names_no_secret(deployment: Deployment) -> None:
    client = ClientConfig.from_stack_outputs(deployment.outputs)
    assert client.auth == "aws-iam"
    assert client.credentials_secret_id is None
    admin = next(s for s in deployment.of_type("aws:secretsmanager/secret:Secret") if s.name.endswith("-admin"))
    assert arn(admin) not in json.dumps(deployment.outputs["client_config"])
    parameter = deployment.one("aws:ssm/parameter:Parameter")
    assert arn(admin) not in str(plain(parameter.inputs.get("insecureValue")))
