"""The web ACL in front of an internet-facing load balancer: AWS's managed rules and a per-IP rate limit.

Every failed password costs the server a full password hash, so unthrottled guessing is also a cheap
way to burn its CPU; the rate-based rule blocks a client IP that sends more than the configured number
of requests in five minutes, whatever it sends. AWS's common and known-bad-inputs rule groups block the
usual probes (path traversal, SSRF to the metadata service, Log4j-style payloads, bad bots).

Artifact uploads are arbitrary bytes: the managed rules that inspect the request body (size,
cross-site scripting, file inclusion, SSRF and deserialization patterns), and the one that refuses
paths ending in `.log`, `.ini` and similar (artifact names), only count in this ACL, so they show in
the WAF logs without breaking uploads of models and files. `COUNTED_COMMON_RULES` and
`COUNTED_KNOWN_BAD_INPUTS_RULES` list them.

The WAF logs go to a CloudWatch log group (WAF requires the `aws-waf-logs-` prefix), encrypted with
the platform key; the `Authorization` and `Cookie` headers are redacted, since basic auth carries the
password in every request.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

COMMON_RULES = "AWSManagedRulesCommonRuleSet"
KNOWN_BAD_INPUTS_RULES = "AWSManagedRulesKnownBadInputsRuleSet"
# Rules of the managed groups that only count (see the module docstring).
COUNTED_COMMON_RULES = (
    "SizeRestrictions_BODY",
    "CrossSiteScripting_BODY",
    "GenericLFI_BODY",
    "GenericRFI_BODY",
    "EC2MetaDataSSRF_BODY",
    "RestrictedExtensions_URIPATH",
)
COUNTED_KNOWN_BAD_INPUTS_RULES = ("JavaDeserializationRCE_BODY", "Log4JRCE_BODY")
# The rate-based rule counts requests per client IP over this window (WAF's default).
RATE_WINDOW_SECONDS = 300
REDACTED_HEADERS = ("authorization", "cookie")
WAF_LOG_GROUP_PREFIX = "aws-waf-logs-"


@dataclass(frozen=True)
class EdgeProtectionArgs:
    load_balancer_arn: pulumi.Input[str]
    """The internet-facing load balancer the web ACL is associated with."""
    rate_limit_per_ip: int
    """Requests one client IP may send per `RATE_WINDOW_SECONDS` before it is blocked (`access.rate_limit_per_ip`)."""
    log_group_name: str
    """The WAF log group's name; must start with `aws-waf-logs-`."""
    log_retention_days: int
    """Days CloudWatch keeps the WAF logs (`audit.log_retention_days`)."""
    kms_key_arn: pulumi.Input[str]
    """The key encrypting the WAF log group (the platform key)."""


def _rule_visibility(metric_name: str) -> aws.wafv2.WebAclRuleVisibilityConfigArgsDict:
    return {"cloudwatch_metrics_enabled": True, "metric_name": metric_name, "sampled_requests_enabled": True}


def _managed_rule_group(name: str, priority: int, counted: tuple[str, ...]) -> aws.wafv2.WebAclRuleArgsDict:
    return {
        "name": name,
        "priority": priority,
        # The group's own actions apply (block), except the rules overridden to count.
        "override_action": {"none": {}},
        "statement": {
            "managed_rule_group_statement": {
                "name": name,
                "vendor_name": "AWS",
                "rule_action_overrides": [{"name": rule, "action_to_use": {"count": {}}} for rule in counted],
            }
        },
        "visibility_config": _rule_visibility(name),
    }


class EdgeProtection(pulumi.ComponentResource):
    """WAFv2 web ACL, its association with the load balancer, and its logging."""

    web_acl_arn: pulumi.Output[str]
    """The web ACL's ARN."""
    log_group_name: pulumi.Output[str]
    """The CloudWatch log group the WAF logs go to."""

    def __init__(self, name: str, args: EdgeProtectionArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlflow-platform:network:EdgeProtection", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        if not args.log_group_name.startswith(WAF_LOG_GROUP_PREFIX):
            raise ValueError(f"log_group_name: got {args.log_group_name!r}, expected {WAF_LOG_GROUP_PREFIX}...")

        rate_rule: aws.wafv2.WebAclRuleArgsDict = {
            "name": "rate-limit-per-ip",
            "priority": 0,
            "action": {"block": {}},
            "statement": {
                "rate_based_statement": {
                    "aggregate_key_type": "IP",
                    "limit": args.rate_limit_per_ip,
                    "evaluation_window_sec": RATE_WINDOW_SECONDS,
                }
            },
            "visibility_config": _rule_visibility("rate-limit-per-ip"),
        }
        web_acl = aws.wafv2.WebAcl(
            f"{name}-acl",
            description="MLflow load balancer: AWS managed rules and a per-IP rate limit",
            scope="REGIONAL",
            default_action=aws.wafv2.WebAclDefaultActionArgs(allow=aws.wafv2.WebAclDefaultActionAllowArgs()),
            rules=[
                rate_rule,
                _managed_rule_group(COMMON_RULES, 1, COUNTED_COMMON_RULES),
                _managed_rule_group(KNOWN_BAD_INPUTS_RULES, 2, COUNTED_KNOWN_BAD_INPUTS_RULES),
            ],
            visibility_config={
                "cloudwatch_metrics_enabled": True,
                "metric_name": f"{name}-acl",
                "sampled_requests_enabled": True,
            },
            opts=child,
        )
        aws.wafv2.WebAclAssociation(
            f"{name}-association",
            resource_arn=args.load_balancer_arn,
            web_acl_arn=web_acl.arn,
            opts=child,
        )
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=args.log_group_name,
            retention_in_days=args.log_retention_days,
            kms_key_id=args.kms_key_arn,
            opts=child,
        )
        aws.wafv2.WebAclLoggingConfiguration(
            f"{name}-logging",
            resource_arn=web_acl.arn,
            log_destination_configs=[log_group.arn],
            redacted_fields=[{"single_header": {"name": header}} for header in REDACTED_HEADERS],
            opts=child,
        )

        self.web_acl_arn = web_acl.arn
        self.log_group_name = log_group.name
        self.register_outputs({"web_acl_arn": self.web_acl_arn, "log_group_name": self.log_group_name})
