"""`cloudfoundry-client`'s v3 security-group manager, unmodified, against
sgbridge's CF v3 front end over the embedded backend (and over a gateway whose
backend is Gcore), then against a gateway whose backend is a Cloud Controller.

Every public method of the manager is driven; the list of methods comes from
the installed package, so a method a new release adds fails the first test."""

import inspect
import uuid

import pytest
from cloudfoundry_client.client import CloudFoundryClient
from cloudfoundry_client.errors import InvalidStatusCode
from cloudfoundry_client.v3.entities import ToManyRelationship, ToOneRelationship
from cloudfoundry_client.v3.security_groups import GloballyEnabled, Rule, RuleProtocol, SecurityGroupManager

from conftest import SPACES

DRIVEN = {
    "bind_running_security_group_to_spaces",
    "bind_staging_security_group_to_spaces",
    "create",
    "get",
    "get_first",
    "len",
    "list",
    "remove",
    "unbind_running_security_group_from_space",
    "unbind_staging_security_group_from_space",
    "update",
}


def manager(url: str) -> SecurityGroupManager:
    client = CloudFoundryClient(url)
    client._access_token = "dev-admin-token"
    return client.v3.security_groups


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(params=["embedded", "chained", "cf_backed"])
def gateway(request):
    return request.getfixturevalue(request.param)


def test_every_public_method_is_driven():
    public = {
        n
        for n in dir(SecurityGroupManager)
        if not n.startswith("_") and inspect.isfunction(getattr(SecurityGroupManager, n))
    }
    assert public == DRIVEN


def test_create_get_update_remove(gateway):
    sgm = manager(gateway.url)
    name = unique("v3")
    rules = [
        Rule(RuleProtocol.TCP, "10.0.0.0/8", ports="443,80", description="web", log=True),
        Rule(RuleProtocol.ICMP, "0.0.0.0/0", type=8, code=0),
    ]
    created = sgm.create(name, rules=rules, globally_enabled=GloballyEnabled(running=False, staging=False))
    guid = created["guid"]
    assert created["name"] == name
    # sgbridge renders ports canonically (CC echoes the submitted text).
    assert created["rules"] == [
        {"protocol": "tcp", "destination": "10.0.0.0/8", "ports": "443, 80", "description": "web", "log": True},
        {"protocol": "icmp", "destination": "0.0.0.0/0", "type": 8, "code": 0},
    ]
    assert created["globally_enabled"] == {"running": False, "staging": False}

    got = sgm.get(guid)
    assert got["guid"] == guid and got["rules"] == created["rules"]
    assert sgm[guid]["name"] == name

    renamed = sgm.update(guid, name=name + "-x", rules=[Rule(RuleProtocol.UDP, "10.0.0.2", ports="53")])
    assert renamed["name"] == name + "-x"
    assert renamed["rules"] == [{"protocol": "udp", "destination": "10.0.0.2", "ports": "53"}]

    # remove waits on the job the DELETE's Location names.
    assert sgm.remove(guid, asynchronous=False) is None
    with pytest.raises(InvalidStatusCode) as missing:
        sgm.get(guid)
    assert missing.value.status_code.value == 404
    assert missing.value.body["errors"][0]["code"] == 10010
    assert missing.value.body["errors"][0]["title"] == "CF-ResourceNotFound"


def test_remove_answers_a_job_guid(embedded):
    sgm = manager(embedded.url)
    guid = sgm.create(unique("job"))["guid"]
    job = sgm.remove(guid)
    assert job
    client = CloudFoundryClient(embedded.url)
    client._access_token = "dev-admin-token"
    client.v3.jobs.wait_for_job_completion(job)
    assert client.v3.jobs.get(job)["state"] == "COMPLETE"


def test_list_filters_paging_and_len(gateway):
    sgm = manager(gateway.url)
    prefix = unique("ls")
    guids = [sgm.create(f"{prefix}-{i}")["guid"] for i in range(3)]
    names = [f"{prefix}-{i}" for i in range(3)]

    # names filter, followed over absolute next links, two per page.
    listed = list(sgm.list(names=names, per_page=2, order_by="created_at"))
    assert [g["guid"] for g in listed] == guids
    assert [g["guid"] for g in sgm.list(names=names, order_by="-created_at")] == guids[::-1]
    assert sgm.len(names=names) == 3
    assert [g["guid"] for g in sgm.list(guids=guids[1:])] == guids[1:]
    assert sgm.get_first(names=names[2])["guid"] == guids[2]
    assert sgm.get_first(names=unique("none")) is None
    assert guids[0] in {g["guid"] for g in sgm}

    # The client sends Python's True as "True"; the CC accepts only true/false.
    sgm.update(guids[0], globally_enabled=GloballyEnabled(running=True))
    running = {g["guid"] for g in sgm.list(names=names, globally_enabled_running="true")}
    assert running == {guids[0]}
    with pytest.raises(InvalidStatusCode) as bad:
        list(sgm.list(names=names, globally_enabled_running=True))
    # CC's list messages answer 422 here, not CF-BadQueryParameter.
    assert bad.value.status_code.value == 422
    assert bad.value.body["errors"][0]["detail"] == "Globally enabled running must be 'true' or 'false'"
    for g in guids:
        sgm.remove(g, asynchronous=False)


def test_bind_and_unbind_spaces(gateway):
    sgm = manager(gateway.url)
    guid = sgm.create(unique("bind"))["guid"]
    bound = sgm.bind_running_security_group_to_spaces(guid, ToManyRelationship(*SPACES))
    assert sorted(bound.guids) == sorted(SPACES)
    staged = sgm.bind_staging_security_group_to_spaces(guid, ToManyRelationship(SPACES[1]))
    assert SPACES[1] in staged.guids

    assert {g["guid"] for g in sgm.list(running_space_guids=SPACES[0])} >= {guid}
    assert guid in {g["guid"] for g in sgm.list(staging_space_guids=SPACES[1])}

    sgm.unbind_running_security_group_from_space(guid, ToOneRelationship(SPACES[0]))
    sgm.unbind_staging_security_group_from_space(guid, ToOneRelationship(SPACES[1]))
    got = sgm.get(guid)
    assert got["relationships"]["running_spaces"]["data"] == [{"guid": SPACES[1]}]
    assert got["relationships"]["staging_spaces"]["data"] == []
    sgm.remove(guid, asynchronous=False)


def test_v3_validation_errors(embedded):
    sgm = manager(embedded.url)
    with pytest.raises(InvalidStatusCode) as bad:
        sgm.create(unique("bad"), rules=[Rule(RuleProtocol.TCP, "10.0.0.0/8", ports="70000")])
    assert bad.value.status_code.value == 422
    error = bad.value.body["errors"][0]
    assert (error["code"], error["title"]) == (10008, "CF-UnprocessableEntity")
    assert error["detail"].startswith("Rules[0]: ")

    name = unique("taken")
    sgm.create(name)
    with pytest.raises(InvalidStatusCode) as taken:
        sgm.create(name)
    assert taken.value.status_code.value == 422
    assert name in taken.value.body["errors"][0]["detail"]
