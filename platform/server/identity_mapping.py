"""Which MLflow user an AWS principal signs in as, from the stack's `identity` mapping.

The first principal whose ARN pattern matches the caller's ARN decides; an ARN that matches none is
refused. The user name is the principal's fixed name, the role session name (`session`: for an SSO
user the e-mail address, for a pipeline whatever session name it assumed its role with) or the IAM
user or role name (`name`). Patterns are matched as IAM matches them: `*` stands for any characters,
`/` included, and everything else is literal and case-sensitive.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from mlflow_platform.server import contract
from mlflow_platform.server.contract import IdentityMapping, Principal

__all__ = ["MappedUser", "UnmappedPrincipal", "map_principal"]

# What AWS lets a role session name or an IAM user/role name contain.
_AWS_NAME = re.compile(r"^[\w+=,.@-]{1,128}$")


class UnmappedPrincipal(ValueError):
    """The ARN may not sign in; the message (one line) says why, naming the ARN."""


@dataclass(frozen=True)
class MappedUser:
    username: str
    admin: bool
    arn: str


@lru_cache(maxsize=256)
def _pattern(arn_pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in arn_pattern.split("*")))


def _resource(arn: str) -> tuple[str, list[str]]:
    """`arn:aws:sts::123456789012:assumed-role/Role/session` -> ("assumed-role", ["Role", "session"])."""
    resource = arn.split(":", 5)[5] if arn.count(":") >= 5 else ""
    kind, _, rest = resource.partition("/")
    return kind, rest.split("/") if rest else []


def _name(principal: Principal, arn: str) -> str:
    kind, parts = _resource(arn)
    if principal.username == contract.USERNAME_FROM_SESSION:
        if kind != "assumed-role" or len(parts) != 2:
            raise UnmappedPrincipal(
                f"{arn} is not an assumed role, so it has no session name to sign in as "
                f"(its principal {principal.arn} maps username: session)"
            )
        return parts[1]
    if principal.username == contract.USERNAME_FROM_NAME:
        if kind == "assumed-role" and len(parts) == 2:
            return parts[0]
        if kind in ("user", "federated-user") and parts:
            return parts[-1]
        raise UnmappedPrincipal(f"{arn} is neither an IAM user nor an assumed role, so it has no name to sign in as")
    return principal.username


def map_principal(mapping: IdentityMapping, arn: str) -> MappedUser:
    """The MLflow user `arn` signs in as; `UnmappedPrincipal` when no principal admits it."""
    for principal in mapping.principals:
        if _pattern(principal.arn).fullmatch(arn) is None:
            continue
        username = _name(principal, arn)
        if not _AWS_NAME.match(username):
            raise UnmappedPrincipal(f"{arn}: the name {username[:100]!r} is not a valid MLflow user name")
        if username == contract.ADMIN_USERNAME:
            raise UnmappedPrincipal(
                f"{arn} would sign in as {contract.ADMIN_USERNAME!r}, the break-glass admin, which signs in "
                "only with its password"
            )
        return MappedUser(username=username, admin=principal.admin, arn=arn)
    raise UnmappedPrincipal(f"{arn} matches no principal of the identity mapping")
