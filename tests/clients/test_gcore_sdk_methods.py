"""Every public method of the Gcore SDK's `cloud.security_groups`,
`cloud.security_groups.rules` and `cloud.tasks` resources, driven against
sgbridge over each backend, with the SDK's strict response validation on.

The methods are listed from the installed package: a method a new SDK release
adds has no driver below and fails `test_every_public_method_has_a_driver`.
Over a CF backend the calls CF has no meaning for answer a Gcore 400 that
says so (asserted below, not skipped)."""

import inspect
import uuid
import warnings

import gcore
import pytest
from gcore import Gcore

PROJECT, REGION = 1, 76
RESOURCES = ("security_groups", "security_groups.rules", "tasks")

EGRESS = {
    "direction": "egress",
    "ethertype": "IPv4",
    "protocol": "tcp",
    "port_range_min": 443,
    "port_range_max": 443,
    "remote_ip_prefix": "10.0.0.0/8",
    "description": "https",
}


def resource(client, path):
    res = client.cloud
    for part in path.split("."):
        res = getattr(res, part)
    return res


def public_methods(res):
    cls = type(res)
    return {n for n in dir(cls) if not n.startswith("_") and inspect.isfunction(inspect.getattr_static(cls, n))}


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def sdk(url, project=PROJECT):
    return Gcore(
        api_key="dev-api-key",
        base_url=url,
        cloud_project_id=project,
        cloud_region_id=REGION,
        polling_interval_seconds=1,
        polling_timeout_seconds=30,
        _strict_response_validation=True,
    )


# --- security_groups ----------------------------------------------------------


def sg_create(c, kind):
    created = c.cloud.security_groups.create(name=unique("create"), rules=[EGRESS])
    assert len(created.tasks) == 1
    task = c.cloud.tasks.poll(created.tasks[0])
    assert task.created_resources.security_groups


def sg_create_and_poll(c, kind):
    tags = {} if kind == "cf" else {"owner": "net"}
    sg = c.cloud.security_groups.create_and_poll(name=unique("cap"), description="" if kind == "cf" else "d", rules=[EGRESS], tags=tags)
    assert len(sg.security_group_rules) == 1
    assert {t.key: t.value for t in sg.tags_v2} == tags


def sg_list(c, kind):
    prefix = unique("list")
    ids = [c.cloud.security_groups.create_and_poll(name=f"{prefix}-{i}", rules=[]).id for i in range(3)]
    assert [g.id for g in c.cloud.security_groups.list(name=f"{prefix}-1")] == [ids[1]]
    page = c.cloud.security_groups.list(limit=2)
    assert len(page.results) == 2 and page.count >= 3
    assert set(ids) <= {g.id for g in c.cloud.security_groups.list(limit=2)}
    if kind != "cf":
        tagged = c.cloud.security_groups.create_and_poll(name=unique("tagged"), rules=[], tags={"team": prefix})
        assert [g.id for g in c.cloud.security_groups.list(tag_key_value=f'{{"team":"{prefix}"}}')] == [tagged.id]
        assert tagged.id in {g.id for g in c.cloud.security_groups.list(tag_key=["team"])}


def sg_get(c, kind):
    sg = c.cloud.security_groups.create_and_poll(name=unique("get"), rules=[EGRESS])
    got = c.cloud.security_groups.get(group_id=sg.id)
    assert (got.id, got.name, got.project_id, got.region_id) == (sg.id, sg.name, PROJECT, REGION)
    with pytest.raises(gcore.NotFoundError):
        c.cloud.security_groups.get(group_id=str(uuid.uuid4()))


def sg_update(c, kind):
    sg = c.cloud.security_groups.create_and_poll(name=unique("upd"), rules=[])
    answer = c.cloud.security_groups.update(group_id=sg.id, name=sg.name + "-x", rules=[EGRESS])
    for task in answer.tasks:
        c.cloud.tasks.poll(task)
    got = c.cloud.security_groups.get(group_id=sg.id)
    assert got.name == sg.name + "-x" and len(got.security_group_rules) == 1


def sg_update_and_poll(c, kind):
    sg = c.cloud.security_groups.create_and_poll(name=unique("uap"), rules=[EGRESS])
    dns = {**EGRESS, "protocol": "udp", "port_range_min": 53, "port_range_max": 53, "description": "dns"}
    updated = c.cloud.security_groups.update_and_poll(group_id=sg.id, rules=[EGRESS, dns])
    assert sorted(r.port_range_min for r in updated.security_group_rules) == [53, 443]


def sg_delete(c, kind):
    sg = c.cloud.security_groups.create_and_poll(name=unique("del"), rules=[])
    assert c.cloud.security_groups.delete(group_id=sg.id) is None
    with pytest.raises(gcore.NotFoundError):
        c.cloud.security_groups.get(group_id=sg.id)


def sg_copy(c, kind):
    tags = {} if kind == "cf" else {"owner": "net"}
    sg = c.cloud.security_groups.create_and_poll(name=unique("orig"), rules=[EGRESS], tags=tags)
    name = unique("copy")
    copy = c.cloud.security_groups.copy(group_id=sg.id, name=name)
    assert copy.id != sg.id and copy.name == name
    strip = lambda g: sorted((r.direction, r.protocol, r.port_range_min, r.remote_ip_prefix) for r in g.security_group_rules)
    assert strip(copy) == strip(sg)
    assert {t.key: t.value for t in copy.tags_v2} == tags
    assert c.cloud.security_groups.get(group_id=copy.id).name == name


def sg_revert_to_default(c, kind):
    sg = c.cloud.security_groups.create_and_poll(name=unique("rev"), rules=[EGRESS])
    if kind == "cf":
        with pytest.raises(gcore.BadRequestError, match="default"):
            c.cloud.security_groups.revert_to_default(group_id=sg.id)
        return
    reverted = c.cloud.security_groups.revert_to_default(group_id=sg.id)
    # The default template: what a create without `rules` gets.
    default = c.cloud.security_groups.create_and_poll(name=unique("default"))
    shape = lambda g: sorted(
        (r.direction, r.ethertype, r.protocol or "", r.port_range_min or 0, r.remote_ip_prefix or "") for r in g.security_group_rules
    )
    assert len(reverted.security_group_rules) > 1
    assert shape(reverted) == shape(default)
    assert shape(c.cloud.security_groups.get(group_id=sg.id)) == shape(default)


# --- security_groups.rules ----------------------------------------------------


def rules_create(c, kind):
    sg = c.cloud.security_groups.create_and_poll(name=unique("rc"), rules=[])
    answer = c.cloud.security_groups.rules.create(group_id=sg.id, **EGRESS)
    task = c.cloud.tasks.poll(answer.tasks[0])
    assert len(task.created_resources.security_group_rules) == 1


def rules_create_and_poll(c, kind):
    sg = c.cloud.security_groups.create_and_poll(name=unique("rcap"), rules=[])
    rule = c.cloud.security_groups.rules.create_and_poll(group_id=sg.id, **{**EGRESS, "port_range_min": 5432, "port_range_max": 5432})
    assert (rule.port_range_min, rule.security_group_id) == (5432, sg.id)


def rules_delete(c, kind):
    sg = c.cloud.security_groups.create_and_poll(name=unique("rd"), rules=[EGRESS])
    answer = c.cloud.security_groups.rules.delete(rule_id=sg.security_group_rules[0].id, group_id=sg.id)
    c.cloud.tasks.poll(answer.tasks[0])
    assert c.cloud.security_groups.get(group_id=sg.id).security_group_rules == []


def rules_delete_and_poll(c, kind):
    sg = c.cloud.security_groups.create_and_poll(name=unique("rdap"), rules=[EGRESS])
    c.cloud.security_groups.rules.delete_and_poll(rule_id=sg.security_group_rules[0].id, group_id=sg.id)
    assert c.cloud.security_groups.get(group_id=sg.id).security_group_rules == []


def rules_replace(c, kind):
    sg = c.cloud.security_groups.create_and_poll(name=unique("rr"), rules=[EGRESS])
    old = sg.security_group_rules[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        new = c.cloud.security_groups.rules.replace(
            rule_id=old.id, direction="egress", protocol="udp", port_range_min=53, port_range_max=53, remote_ip_prefix="10.0.0.2/32"
        )
    assert (new.protocol, new.port_range_min, new.security_group_id) == ("udp", 53, sg.id)
    rules = c.cloud.security_groups.get(group_id=sg.id).security_group_rules
    assert [(r.protocol, r.port_range_min) for r in rules] == [("udp", 53)]


# --- tasks --------------------------------------------------------------------


def tasks_get(c, kind):
    created = c.cloud.security_groups.create(name=unique("tg"), rules=[])
    task = c.cloud.tasks.get(created.tasks[0])
    assert task.id == created.tasks[0] and task.state in ("NEW", "RUNNING", "FINISHED")
    assert task.task_type == "create_security_group"


def tasks_poll(c, kind):
    created = c.cloud.security_groups.create(name=unique("tp"), rules=[])
    done = c.cloud.tasks.poll(created.tasks[0])
    assert done.state == "FINISHED" and done.finished_on


def tasks_list(c, kind):
    ids = [c.cloud.security_groups.create(name=unique("tl"), rules=[]).tasks[0] for _ in range(3)]
    for t in ids:
        c.cloud.tasks.poll(t)
    finished = c.cloud.tasks.list(project_id=[PROJECT], state=["FINISHED"], task_type="create_security_group", limit=1000)
    assert set(ids) <= {t.id for t in finished.results}
    assert all(t.state == "FINISHED" for t in finished.results)
    assert {t.id for t in c.cloud.tasks.list(state=["ERROR"], limit=1000)}.isdisjoint(ids)
    # Paging, followed by the SDK over offset.
    assert set(ids) <= {t.id for t in c.cloud.tasks.list(project_id=[PROJECT], limit=2)}
    newest = c.cloud.tasks.list(project_id=[PROJECT], order_by="desc", limit=1).results[0]
    assert newest.id == ids[-1]


def tasks_acknowledge_one(c, kind):
    task_id = c.cloud.security_groups.create(name=unique("ack"), rules=[]).tasks[0]
    c.cloud.tasks.poll(task_id)
    acked = c.cloud.tasks.acknowledge_one(task_id)
    assert acked.id == task_id and acked.acknowledged_at
    listed = {t.id for t in c.cloud.tasks.list(project_id=[PROJECT], is_acknowledged=True, limit=1000)}
    assert task_id in listed


def tasks_acknowledge_all(c, kind):
    task_id = c.cloud.security_groups.create(name=unique("ackall"), rules=[]).tasks[0]
    c.cloud.tasks.poll(task_id)
    assert c.cloud.tasks.acknowledge_all(project_id=PROJECT, region_id=REGION) is None
    pending = {t.id for t in c.cloud.tasks.list(project_id=[PROJECT], region_id=[REGION], is_acknowledged=False, limit=1000)}
    assert task_id not in pending


DRIVERS = {
    "security_groups": {
        "copy": sg_copy,
        "create": sg_create,
        "create_and_poll": sg_create_and_poll,
        "delete": sg_delete,
        "get": sg_get,
        "list": sg_list,
        "revert_to_default": sg_revert_to_default,
        "update": sg_update,
        "update_and_poll": sg_update_and_poll,
    },
    "security_groups.rules": {
        "create": rules_create,
        "create_and_poll": rules_create_and_poll,
        "delete": rules_delete,
        "delete_and_poll": rules_delete_and_poll,
        "replace": rules_replace,
    },
    "tasks": {
        "acknowledge_all": tasks_acknowledge_all,
        "acknowledge_one": tasks_acknowledge_one,
        "get": tasks_get,
        "list": tasks_list,
        "poll": tasks_poll,
    },
}


@pytest.mark.parametrize("path", RESOURCES)
def test_every_public_method_has_a_driver(path):
    sync = public_methods(resource(Gcore(api_key="x", cloud_project_id=1, cloud_region_id=1), path))
    from gcore import AsyncGcore

    asynchronous = public_methods(resource(AsyncGcore(api_key="x", cloud_project_id=1, cloud_region_id=1), path))
    assert sync == asynchronous
    assert sync == set(DRIVERS[path])


CASES = [(path, name) for path in RESOURCES for name in sorted(DRIVERS[path])]


@pytest.fixture(params=["embedded", "chained", "cf_backed"])
def backend(request):
    gw = request.getfixturevalue(request.param)
    kind = {"embedded": "embedded", "chained": "gcore", "cf_backed": "cf"}[request.param]
    return gw, kind


@pytest.mark.parametrize("path,name", CASES, ids=[f"{p}.{n}" for p, n in CASES])
def test_method(backend, path, name):
    gw, kind = backend
    DRIVERS[path][name](sdk(gw.url), kind)
