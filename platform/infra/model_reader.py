"""The model reader policy: what a scoring pipeline's AWS role needs to read approved models, and no more.

A managed IAM policy, so that attaching it to a pipeline's role is the whole AWS side of giving that
pipeline the models (its MLflow user, read-only, is the other side). It grants:

- `s3:GetObject` on the files of logged models (`<experiment>/models/m-<id>/artifacts/...`, where the
  server stores every LoggedModel, the toolkit's column schema included); never on run artifacts
  (evaluation plots, datasets), and never a write;
- `s3:ListBucket` on the artifact bucket, only for prefixes inside a logged model's folder (the model
  cache lists a model's files to verify its copy);
- `kms:Decrypt` with the artifact bucket's key, only when S3 asks for it on this bucket's behalf.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from mlflow_platform.infra.policies import policy_document

# Where the tracking server puts a LoggedModel's files, relative to the bucket (experiment id first);
# the toolkit's column schema is one of them (`extra_files/column_schema.json.gz`).
MODEL_FILES_PATTERN = "*/models/m-*/artifacts/*"


@dataclass(frozen=True)
class ModelReaderArgs:
    stack: str
    """The Pulumi stack name; it prefixes the policy's name."""
    region: str
    """The stack's region: S3 in it is the only service that may ask the key to decrypt."""
    bucket_arn: pulumi.Input[str]
    """The artifact bucket's ARN."""
    artifact_kms_key_arn: pulumi.Input[str]
    """The ARN of the key the artifact bucket encrypts with."""


class ModelReaderPolicy(pulumi.ComponentResource):
    """A managed policy to attach to the role of whatever scores with the platform's models."""

    policy_arn: pulumi.Output[str]
    """The managed policy's ARN (the stack output `model_reader_policy_arn`)."""

    def __init__(self, name: str, args: ModelReaderArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlflow-platform:security:ModelReaderPolicy", name, None, opts)
        bucket = pulumi.Output.from_input(args.bucket_arn)
        document = policy_document(
            {
                "Sid": "ReadModelFilesAndTheirColumnSchemas",
                "Effect": "Allow",
                "Action": ["s3:GetObject"],
                "Resource": [pulumi.Output.concat(bucket, "/", MODEL_FILES_PATTERN)],
            },
            {
                "Sid": "ListInsideModelFoldersOnly",
                "Effect": "Allow",
                "Action": ["s3:ListBucket"],
                "Resource": [bucket],
                "Condition": {"StringLike": {"s3:prefix": [MODEL_FILES_PATTERN]}},
            },
            {
                "Sid": "DecryptThroughS3ForThisBucketOnly",
                "Effect": "Allow",
                "Action": ["kms:Decrypt"],
                "Resource": [args.artifact_kms_key_arn],
                "Condition": {
                    "StringEquals": {"kms:ViaService": f"s3.{args.region}.amazonaws.com"},
                    # With S3 bucket keys the encryption context is the bucket's ARN; without, the object's.
                    "StringLike": {"kms:EncryptionContext:aws:s3:arn": [bucket, pulumi.Output.concat(bucket, "/*")]},
                },
            },
        )
        policy = aws.iam.Policy(
            f"{name}-policy",
            name_prefix=f"mlflow-platform-{args.stack}-model-reader-",
            description=f"mlflow-platform {args.stack}: read logged models and their column schemas (scoring)",
            policy=document,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.policy_arn = policy.arn
        self.register_outputs({"policy_arn": self.policy_arn})
