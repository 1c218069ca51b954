"""The model reader policy: a pipeline's role may read model files and column schemas, decrypt them through
S3, list inside model folders, and nothing else."""

from __future__ import annotations

import json
from fnmatch import fnmatchcase
from typing import Any

from tests.infra.conftest import Deployment
from tests.infra.helpers import arn, artifact_bucket, as_list, component, plain, statements
from toolkit.client_config import ClientConfig


def _reader_policy(deployment: Deployment) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    policy = deployment.one("aws:iam/policy:Policy")
    document = json.loads(plain(policy.inputs["policy"]))
    return policy.inputs, statements(document)


def _artifact_key_arn(deployment: Deployment) -> str:
    return arn(next(k for k in deployment.of_type("aws:kms/key:Key") if k.name.endswith("-artifacts-key")))


def _allows(resources: list[str], bucket_arn: str, key: str) -> bool:
    """IAM's resource matching: `*` matches any characters, slashes included (as fnmatch's does)."""
    return any(fnmatchcase(f"{bucket_arn}/{key}", pattern) for pattern in resources)


def test_reader_policy_grants_exactly_reading_models_and_decrypting_them(deployment: Deployment) -> None:
    inputs, granted = _reader_policy(deployment)
    bucket_arn = arn(artifact_bucket(deployment))
    assert all(statement["Effect"] == "Allow" for statement in granted)
    actions = sorted(action for statement in granted for action in as_list(statement["Action"]))
    assert actions == ["kms:Decrypt", "s3:GetObject", "s3:ListBucket"]
    for statement in granted:
        for resource in as_list(statement["Resource"]):
            assert resource != "*"
            assert resource not in (f"{bucket_arn}/*", "arn:aws:s3:::*")
    by_action = {as_list(statement["Action"])[0]: statement for statement in granted}

    objects = as_list(by_action["s3:GetObject"]["Resource"])
    assert "Condition" not in by_action["s3:GetObject"]
    model = "12/models/m-0123456789abcdef0123456789abcdef/artifacts"
    for key in (f"{model}/MLmodel", f"{model}/model.pkl", f"{model}/extra_files/column_schema.json.gz"):
        assert _allows(objects, bucket_arn, key), key
    run_artifacts = ("eval_results_table.json", "residuals.png", "column_schema.json.gz", "model/MLmodel")
    for key in [f"12/0f3a9c/artifacts/{name}" for name in run_artifacts] + ["secrets.txt", "12/models/m-1/x"]:
        assert not _allows(objects, bucket_arn, key), key

    listing = by_action["s3:ListBucket"]
    assert listing["Resource"] == [bucket_arn]
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["*/models/m-*/artifacts/*"]}}

    decrypt = by_action["kms:Decrypt"]
    assert decrypt["Resource"] == [_artifact_key_arn(deployment)]
    assert decrypt["Condition"]["StringEquals"] == {"kms:ViaService": f"s3.{deployment.config.region}.amazonaws.com"}
    assert decrypt["Condition"]["StringLike"] == {"kms:EncryptionContext:aws:s3:arn": [bucket_arn, f"{bucket_arn}/*"]}
    assert inputs["namePrefix"] == f"mlflow-platform-{deployment.stack}-model-reader-"


def test_reader_policy_is_a_stack_output_and_in_the_client_config(deployment: Deployment) -> None:
    policy = deployment.one("aws:iam/policy:Policy")
    reader = component(deployment, "mlflow-platform:security:ModelReaderPolicy")
    assert policy.parent_urn == reader.urn
    assert deployment.outputs["model_reader_policy_arn"] == arn(policy)
    assert ClientConfig.from_stack_outputs(deployment.outputs).model_reader_policy_arn == arn(policy)
    # A managed policy to attach, not a role the stack would have to know about.
    assert not any(role.inputs.get("managedPolicyArns") for role in deployment.of_type("aws:iam/role:Role"))
