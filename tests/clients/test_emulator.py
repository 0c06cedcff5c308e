"""The embedded backend as a Gcore emulator with faults, met by the real
Gcore SDK: its own retries on 409 and 5xx and on a connection closed
without an answer, and its `*_and_poll` error on a task that ends in ERROR.
Also through a gateway whose backend is Gcore (pointed at the emulator):
the faults of the backend, as that gateway's callers meet them."""

import uuid

import gcore
import pytest
from gcore import Gcore

PROJECT, REGION = 1, 76

RULE = {
    "direction": "egress",
    "ethertype": "IPv4",
    "protocol": "tcp",
    "port_range_min": 443,
    "port_range_max": 443,
    "remote_ip_prefix": "10.0.0.0/8",
}


def sdk(gw, **kw) -> Gcore:
    return Gcore(
        **{
            "api_key": "dev-api-key",
            "base_url": gw.url,
            "cloud_project_id": PROJECT,
            "cloud_region_id": REGION,
            "polling_interval_seconds": 1,
            "polling_timeout_seconds": 20,
            **kw,
        }
    )


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_the_sdk_retries_a_locked_group_and_a_503_on_its_own(embedded, faults):
    client = sdk(embedded)
    name = unique("locked")
    sg = client.cloud.security_groups.create_and_poll(name=name, rules=[RULE])
    faults.arm(
        {"operation": "security_groups.update", "effect": "locked", "group_name": name, "times": 1},
        {"operation": "security_groups.update", "effect": "http_error", "status": 503, "group_name": name, "times": 1},
    )
    updated = client.cloud.security_groups.update_and_poll(group_id=sg.id, name=name + "-2")
    assert updated.name == name + "-2"
    assert faults.hits() == [1, 1]


def test_a_fault_past_the_sdks_retries_is_its_error(embedded, faults):
    client = sdk(embedded, max_retries=1)
    sg = client.cloud.security_groups.create_and_poll(name=unique("down"), rules=[])
    faults.arm({"operation": "security_groups.get", "effect": "http_error", "status": 500, "message": "disk on fire"})
    with pytest.raises(gcore.InternalServerError) as err:
        client.cloud.security_groups.get(group_id=sg.id)
    assert "disk on fire" in str(err.value)
    assert faults.hits() == [2], "the first try and one retry"
    faults.arm({"operation": "security_groups.update", "effect": "locked", "times": 5})
    with pytest.raises(gcore.ConflictError):
        client.cloud.security_groups.update(group_id=sg.id, name="renamed")


def test_and_poll_raises_on_a_task_error_and_nothing_is_applied(embedded, faults):
    client = sdk(embedded)
    name = unique("quota")
    faults.arm({"operation": "security_groups.create", "effect": "task_error", "message": "Quota exceeded", "group_name": name})
    with pytest.raises(ValueError, match="Quota exceeded"):
        client.cloud.security_groups.create_and_poll(name=name, rules=[RULE])
    assert list(client.cloud.security_groups.list(name=name)) == []

    sg = client.cloud.security_groups.create_and_poll(name=unique("rules"), rules=[])
    faults.arm({"operation": "rules.create", "effect": "task_error", "message": "Neutron refused the rule"})
    with pytest.raises(ValueError, match="Neutron refused the rule"):
        client.cloud.security_groups.rules.create_and_poll(
            group_id=sg.id, direction="egress", protocol="udp", port_range_min=53, port_range_max=53, remote_ip_prefix="10.0.0.2/32"
        )
    assert client.cloud.security_groups.get(group_id=sg.id).security_group_rules == []


def test_a_connection_reset_is_retried_by_the_sdk(embedded, faults):
    client = sdk(embedded)
    sg = client.cloud.security_groups.create_and_poll(name=unique("reset"), rules=[])
    faults.arm({"operation": "security_groups.get", "effect": "reset", "times": 1})
    assert client.cloud.security_groups.get(group_id=sg.id).id == sg.id
    assert faults.hits() == [1]
    faults.arm({"operation": "security_groups.get", "effect": "reset"})
    with pytest.raises(gcore.APIConnectionError):
        sdk(embedded, max_retries=0).cloud.security_groups.get(group_id=sg.id)


def test_a_stuck_task_times_the_poll_out(embedded, faults):
    client = sdk(embedded, polling_timeout_seconds=2)
    name = unique("stuck")
    faults.arm({"operation": "security_groups.create", "effect": "task_stuck", "group_name": name})
    with pytest.raises(TimeoutError):
        client.cloud.security_groups.create_and_poll(name=name, rules=[])


def test_a_gateway_on_gcore_meets_its_backends_faults(embedded, chained, faults):
    """The chain: the SDK → a gateway with backend = gcore → the emulator."""
    client = sdk(chained)
    name = unique("chain")
    sg = client.cloud.security_groups.create_and_poll(name=name, rules=[RULE])
    faults.arm({"operation": "security_groups.update", "effect": "task_error", "message": "upstream task failed", "group_name": name})
    with pytest.raises(ValueError, match="upstream task failed"):
        client.cloud.security_groups.update_and_poll(group_id=sg.id, rules=[])
    assert len(client.cloud.security_groups.get(group_id=sg.id).security_group_rules) == 1

    # A 503 of the backend: the gateway retries reads itself, then answers.
    faults.arm({"operation": "security_groups.get", "effect": "http_error", "status": 503, "group_name": name, "times": 1})
    assert client.cloud.security_groups.get(group_id=sg.id).id == sg.id
