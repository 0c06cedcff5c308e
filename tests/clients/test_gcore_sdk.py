"""The official Gcore Python SDK (`pip install gcore`), unmodified, against
sgbridge's Gcore front end: once over the embedded backend, once through a
gateway whose backend is Gcore (pointed at the first)."""

import uuid

import gcore
import pytest
from gcore import Gcore

PROJECT, REGION = 1, 76


@pytest.fixture(params=["embedded", "chained"])
def client(request):
    gw = request.getfixturevalue(request.param)
    return Gcore(
        api_key="dev-api-key",
        base_url=gw.url,
        cloud_project_id=PROJECT,
        cloud_region_id=REGION,
        polling_interval_seconds=1,
        polling_timeout_seconds=30,
    )


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


HTTPS = {
    "direction": "ingress",
    "ethertype": "IPv4",
    "protocol": "tcp",
    "port_range_min": 443,
    "port_range_max": 443,
    "remote_ip_prefix": "10.0.0.0/8",
    "description": "https",
}


def test_create_and_poll_get_and_list(client):
    name = unique("sdk")
    sg = client.cloud.security_groups.create_and_poll(name=name, rules=[HTTPS], tags={"owner": "cf"})
    assert sg.name == name
    assert len(sg.security_group_rules) == 1
    rule = sg.security_group_rules[0]
    assert (rule.protocol, rule.port_range_min, rule.port_range_max, rule.remote_ip_prefix) == ("tcp", 443, 443, "10.0.0.0/8")
    assert {t.key: t.value for t in sg.tags_v2} == {"owner": "cf"}
    assert client.cloud.security_groups.get(group_id=sg.id).id == sg.id

    found = list(client.cloud.security_groups.list(name=name))
    assert [g.id for g in found] == [sg.id]

    # Offset pagination, followed by the SDK itself.
    prefix = unique("page")
    ids = {client.cloud.security_groups.create_and_poll(name=f"{prefix}-{i}", rules=[]).id for i in range(3)}
    first_page = client.cloud.security_groups.list(limit=2, offset=0)
    assert len(first_page.results) == 2
    assert first_page.count >= 3
    everything = {g.id for g in client.cloud.security_groups.list(limit=2)}
    assert ids <= everything


def test_update_and_poll_rules_and_merge_patch_tags(client):
    sg = client.cloud.security_groups.create_and_poll(name=unique("upd"), rules=[HTTPS], tags={"owner": "cf", "stale": "yes"})
    dns = {"direction": "egress", "ethertype": "IPv4", "protocol": "udp", "port_range_min": 53, "port_range_max": 53, "remote_ip_prefix": "10.0.0.2/32"}
    updated = client.cloud.security_groups.update_and_poll(group_id=sg.id, rules=[HTTPS, dns], tags={"owner": "team", "stale": None})
    assert sorted((r.protocol, r.port_range_min) for r in updated.security_group_rules) == [("tcp", 443), ("udp", 53)]
    assert {t.key: t.value for t in updated.tags_v2} == {"owner": "team"}
    # Nothing to change: no task, and update_and_poll still answers the group.
    again = client.cloud.security_groups.update_and_poll(group_id=sg.id, rules=[HTTPS, dns])
    assert len(again.security_group_rules) == 2


def test_rules_create_and_delete_and_poll(client):
    sg = client.cloud.security_groups.create_and_poll(name=unique("rules"), rules=[])
    rule = client.cloud.security_groups.rules.create_and_poll(
        group_id=sg.id, direction="egress", protocol="tcp", port_range_min=5432, port_range_max=5432, remote_ip_prefix="10.1.0.0/16"
    )
    assert rule.port_range_min == 5432
    client.cloud.security_groups.rules.delete_and_poll(rule_id=rule.id, group_id=sg.id)
    assert client.cloud.security_groups.get(group_id=sg.id).security_group_rules == []


def test_tasks_get_and_poll(client):
    created = client.cloud.security_groups.create(name=unique("task"), rules=[])
    task_id = created.tasks[0]
    task = client.cloud.tasks.get(task_id)
    assert task.id == task_id
    assert task.state in ("NEW", "RUNNING", "FINISHED")
    done = client.cloud.tasks.poll(task_id)
    assert done.state == "FINISHED"
    assert done.created_resources.security_groups


def test_delete(client):
    sg = client.cloud.security_groups.create_and_poll(name=unique("del"), rules=[])
    client.cloud.security_groups.delete(group_id=sg.id)
    with pytest.raises(gcore.NotFoundError):
        client.cloud.security_groups.get(group_id=sg.id)


def test_sdk_error_types(client):
    with pytest.raises(gcore.NotFoundError):
        client.cloud.security_groups.get(group_id=str(uuid.uuid4()))
    with pytest.raises(gcore.BadRequestError) as bad:
        # Gcore blocks egress port 25.
        client.cloud.security_groups.create(
            name=unique("smtp"), rules=[{"direction": "egress", "protocol": "tcp", "port_range_min": 25, "port_range_max": 25}]
        )
    assert "port 25" in str(bad.value)
    sg = client.cloud.security_groups.create_and_poll(name=unique("err"), rules=[])
    # A remote group that does not exist fails when the task applies the rule.
    with pytest.raises(ValueError, match="could not be found"):
        client.cloud.security_groups.rules.create_and_poll(group_id=sg.id, direction="ingress", remote_group_id=str(uuid.uuid4()))
