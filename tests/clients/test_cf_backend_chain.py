"""The chain of issue 9, over loopback: the Gcore SDK → sgbridge (backend =
cf) → a second sgbridge serving CF v3 over the embedded backend. What the
Gcore caller writes is read back through the second instance's v3 API (with
`cloudfoundry-client`) as the CF rules it translates to."""

import uuid

import gcore
import httpx
import pytest
from cloudfoundry_client.client import CloudFoundryClient
from gcore import Gcore

PROJECT, REGION = 1, 76


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def rule(protocol, lo, hi, prefix, description=None):
    r = {"direction": "egress", "ethertype": "IPv4", "protocol": protocol, "port_range_min": lo, "port_range_max": hi, "remote_ip_prefix": prefix}
    if description:
        r["description"] = description
    return r


@pytest.fixture
def sdk(cf_backed):
    return Gcore(
        api_key="dev-api-key",
        base_url=cf_backed.url,
        cloud_project_id=PROJECT,
        cloud_region_id=REGION,
        polling_interval_seconds=1,
        polling_timeout_seconds=30,
        _strict_response_validation=True,
    )


@pytest.fixture
def cc(embedded):
    client = CloudFoundryClient(embedded.url)
    client._access_token = "dev-admin-token"
    return client.v3.security_groups


def test_gcore_writes_read_back_as_cf_rules(sdk, cc):
    name = unique("chain")
    # The minimal cover of 10.0.0.1-10.0.0.6, each on 443 and 80: one CF rule.
    nets = ["10.0.0.1/32", "10.0.0.2/31", "10.0.0.4/31", "10.0.0.6/32"]
    web = [rule("tcp", port, port, net, "web") for net in nets for port in (443, 80)]
    created = sdk.cloud.security_groups.create(name=name, rules=web)
    task = sdk.cloud.tasks.poll(created.tasks[0])
    assert task.state == "FINISHED"
    guid = task.created_resources.security_groups[0]

    assert [g.id for g in sdk.cloud.security_groups.list(name=name)] == [guid]
    stored = cc.get(guid)
    assert stored["name"] == name
    assert stored["rules"] == [{"protocol": "tcp", "destination": "10.0.0.1-10.0.0.6", "ports": "443, 80", "description": "web"}]

    # PATCH with the full rule set: the CC holds exactly the new set.
    dns = rule("udp", 53, 53, "10.1.0.0/16")
    icmp = {"direction": "egress", "ethertype": "IPv4", "protocol": "icmp", "remote_ip_prefix": "0.0.0.0/0"}
    patched = sdk.cloud.security_groups.update(group_id=guid, rules=[dns, icmp])
    for t in patched.tasks:
        assert sdk.cloud.tasks.poll(t).state == "FINISHED"
    assert cc.get(guid)["rules"] == [
        {"protocol": "udp", "destination": "10.1.0.0/16", "ports": "53"},
        {"protocol": "icmp", "destination": "0.0.0.0/0", "type": -1, "code": -1},
    ]
    got = sdk.cloud.security_groups.get(group_id=guid)
    assert sorted((r.protocol, r.port_range_min) for r in got.security_group_rules) == [("icmp", None), ("udp", 53)]

    sdk.cloud.security_groups.delete(group_id=guid)
    assert cc.get_first(names=name) is None


def test_prefer_wait_answers_the_final_group(cf_backed, cc):
    name = unique("wait")
    answer = httpx.post(
        f"{cf_backed.url}/cloud/v2/security_groups/{PROJECT}/{REGION}",
        headers={"Authorization": "APIKey dev-api-key", "Prefer": "wait=20"},
        json={"name": name, "rules": [rule("tcp", 8080, 8081, "192.168.0.0/24")]},
    )
    assert answer.status_code == 200, answer.text
    group = answer.json()
    assert group["name"] == name and answer.headers["preference-applied"] == "wait=20"
    assert cc.get(group["id"])["rules"] == [{"protocol": "tcp", "destination": "192.168.0.0/24", "ports": "8080-8081"}]


def test_what_cf_cannot_hold_and_cc_refusals(sdk, cc):
    with pytest.raises(gcore.BadRequestError) as ingress:
        sdk.cloud.security_groups.create(name=unique("in"), rules=[{**rule("tcp", 22, 22, "10.0.0.0/8"), "direction": "ingress"}])
    assert "rules.0" in ingress.value.body["invalid_fields"]
    # The CC's own 422 (its 250-character name cap) keeps its detail: in
    # the task's error once accepted, in a 400 when the caller waits.
    too_long = "Name is too long (maximum is 250 characters)"
    with pytest.raises(ValueError, match=too_long.replace("(", r"\(").replace(")", r"\)")):
        sdk.cloud.security_groups.create_and_poll(name="n" * 252, rules=[])
    with pytest.raises(gcore.BadRequestError) as long_name:
        sdk.cloud.security_groups.create(name="n" * 252, rules=[], extra_headers={"Prefer": "wait=20"})
    assert too_long in long_name.value.body["message"]
    # A name the CC already holds: the task the gateway runs ends in ERROR
    # with the CC's words.
    name = unique("taken")
    cc.create(name)
    task = sdk.cloud.security_groups.create(name=name, rules=[]).tasks[0]
    with pytest.raises(ValueError, match="already exists"):
        sdk.cloud.tasks.poll(task)
