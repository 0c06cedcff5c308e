"""The `cloudfoundry-client` package against sgbridge's CF v2 front end, with
the access token set directly (no UAA), and what a CF caller wrote read back
with the Gcore SDK."""

import uuid

import pytest
from cloudfoundry_client.client import CloudFoundryClient
from cloudfoundry_client.errors import InvalidStatusCode
from gcore import Gcore


def cf_client(url: str) -> CloudFoundryClient:
    client = CloudFoundryClient(url)
    client._access_token = "dev-admin-token"
    return client


@pytest.fixture(params=["embedded", "chained", "cf_backed"])
def gateway(request):
    return request.getfixturevalue(request.param)


def test_security_group_lifecycle(gateway):
    client = cf_client(gateway.url)
    groups = client.v2.security_groups
    name = f"cf-{uuid.uuid4().hex[:8]}"
    created = groups._create({"name": name, "rules": [{"protocol": "tcp", "destination": "10.0.0.0/8", "ports": "443"}]})
    guid = created["metadata"]["guid"]
    assert created["entity"]["name"] == name

    listed = list(groups.list(name=name))
    assert [g["metadata"]["guid"] for g in listed] == [guid]
    got = groups.get(guid)
    assert got["entity"]["rules"] == [{"protocol": "tcp", "destination": "10.0.0.0/8", "ports": "443"}]

    rules = [{"protocol": "udp", "destination": "10.0.0.1-10.0.0.6", "ports": "53, 5353", "log": True}]
    updated = groups._update(guid, {"rules": rules})
    assert updated["entity"]["rules"] == rules

    groups._remove(guid)
    with pytest.raises(InvalidStatusCode) as missing:
        groups.get(guid)
    assert missing.value.status_code.value == 404
    assert missing.value.body["error_code"] == "CF-SecurityGroupNotFound"
    assert missing.value.body["code"] == 300002


def test_duplicate_name_is_300005(gateway):
    groups = cf_client(gateway.url).v2.security_groups
    name = f"dup-{uuid.uuid4().hex[:8]}"
    groups._create({"name": name})
    with pytest.raises(InvalidStatusCode) as taken:
        groups._create({"name": name})
    assert taken.value.body["code"] == 300005


def test_what_cf_wrote_is_what_the_gcore_sdk_reads(embedded, chained):
    groups = cf_client(chained.url).v2.security_groups
    name = f"both-{uuid.uuid4().hex[:8]}"
    created = groups._create(
        {"name": name, "rules": [{"protocol": "tcp", "destination": "10.0.0.1-10.0.0.6", "ports": "443, 80", "description": "web"}]}
    )
    sdk = Gcore(api_key="dev-api-key", base_url=embedded.url, cloud_project_id=1, cloud_region_id=76, polling_interval_seconds=1)
    sg = sdk.cloud.security_groups.get(group_id=created["metadata"]["guid"])
    assert sg.name == name
    got = sorted((r.direction, r.protocol, r.port_range_min, r.remote_ip_prefix, r.description) for r in sg.security_group_rules)
    want = sorted(
        ("egress", "tcp", port, prefix, "web")
        for prefix in ["10.0.0.1/32", "10.0.0.2/31", "10.0.0.4/31", "10.0.0.6/32"]
        for port in (443, 80)
    )
    assert got == want
