"""The platform's loader reads the stack's Pulumi config map, as `pulumi up` hands it to the program."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pulumi
import pytest
from pulumi.runtime.config import set_all_config

from mlflow_platform.infra.stack_config import load_platform_config


class _NoResources(pulumi.runtime.Mocks):
    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, object]]:
        raise AssertionError("loading the config must not declare resources")

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, object], list[tuple[str, str]] | None]:
        raise AssertionError("loading the config must not call providers")


@pytest.fixture
def stack_config() -> Iterator[dict[str, str]]:
    pulumi.runtime.set_mocks(_NoResources(), project="mlflow-platform", stack="dev", preview=False)
    values: dict[str, str] = {}
    yield values
    set_all_config({})


def test_reads_structured_values_of_the_project_namespace(stack_config: dict[str, str]) -> None:
    stack_config.update(
        {
            "aws:region": "eu-west-1",
            "mlflow-platform:server": json.dumps({"cpu": 512, "memory_mib": 2048}),
            "mlflow-platform:access": json.dumps({"allowed_cidrs": ["10.0.0.0/8"], "allow_insecure_http": True}),
        }
    )
    set_all_config(stack_config)
    config = load_platform_config()
    assert (config.region, config.server.cpu, config.server.memory_mib) == ("eu-west-1", 512, 2048)


def test_a_bad_stack_config_ends_the_program_without_a_traceback(stack_config: dict[str, str]) -> None:
    stack_config.update({"aws:region": "eu-west-1", "mlflow-platform:servr": "{}"})
    set_all_config(stack_config)
    with pytest.raises(pulumi.RunError) as caught:
        load_platform_config()
    message = str(caught.value)
    assert "invalid config of stack 'dev'" in message
    assert "servr: got {}, unknown key" in message
    assert "access: required, but not set" in message
