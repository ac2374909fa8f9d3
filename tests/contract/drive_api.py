"""Drives the whole API of a running The Eye through a client generated from openapi/openapi.json by a
stock generator (openapi-python-client), as a team integrating from another language would.

Every call goes through the generated functions and models: a response the spec describes wrongly (a
null where the spec promises a string, a schema the generator dropped, an undocumented status) fails
here. Run by the `contract::` end-to-end test:

    python drive_api.py CLIENT_DIR BASE_URL ADMIN_TOKEN
"""

import datetime
import json
import sys
import time
import uuid

CLIENT_DIR, BASE_URL, ADMIN_TOKEN = sys.argv[1:4]
sys.path.insert(0, CLIENT_DIR)

from the_eye_client import AuthenticatedClient  # noqa: E402
from the_eye_client.api.admin import (  # noqa: E402
    create_application,
    issue_key,
    list_applications,
    revoke_keys,
)
from the_eye_client.api.dead_jobs import get_dead_job, list_dead_jobs, replay_dead_jobs  # noqa: E402
from the_eye_client.api.errors import list_errors, replay_errors  # noqa: E402
from the_eye_client.api.event_types import (  # noqa: E402
    list_event_types,
    publish_schema,
    retire_event_type,
)
from the_eye_client.api.ingest import send_event, send_events  # noqa: E402
from the_eye_client.api.lifecycle import erase_user, export_events  # noqa: E402
from the_eye_client.api.notifications import list_notifications  # noqa: E402
from the_eye_client.api.operations import health, metrics, ready  # noqa: E402
from the_eye_client.api.query import (  # noqa: E402
    event_stats,
    query_events,
    query_sessions,
    session_events,
)
from the_eye_client.api.read_keys import create_read_key, revoke_read_key  # noqa: E402
from the_eye_client.api.segment import (  # noqa: E402
    segment_alias,
    segment_batch,
    segment_group,
    segment_identify,
    segment_page,
    segment_screen,
    segment_track,
)
from the_eye_client.api.rules import (  # noqa: E402
    delete_rule,
    dry_run_rule,
    get_rule,
    list_rules,
    publish_rule,
)
from the_eye_client import models  # noqa: E402
from the_eye_client.types import UNSET  # noqa: E402

SESSION = "e2085be5-9137-4e4e-80b5-f1ffddc25423"
SEED_TIME = "2021-01-01 09:15:27.243860"
FROM = datetime.datetime(2021, 1, 1, tzinfo=datetime.timezone.utc)
TO = datetime.datetime(2021, 3, 1, tzinfo=datetime.timezone.utc)
CALLS = []


def client(token):
    return AuthenticatedClient(base_url=BASE_URL, token=token, raise_on_unexpected_status=True,
                               timeout=60.0)


def call(operation, expected_status, **kwargs):
    """Calls a generated operation; the status must be the documented success."""
    response = operation.sync_detailed(**kwargs)
    CALLS.append(operation.__name__.rsplit(".", 1)[-1])
    expected = expected_status if isinstance(expected_status, tuple) else (expected_status,)
    if response.status_code not in expected:
        raise AssertionError(
            f"{operation.__name__}: {response.status_code} {response.content[:500]!r}")
    return response.parsed


def refused(operation, expected_status, **kwargs):
    """Calls an operation expected to answer a problem; returns the parsed `Problem`."""
    response = operation.sync_detailed(**kwargs)
    CALLS.append(operation.__name__.rsplit(".", 1)[-1])
    assert response.status_code == expected_status, (response.status_code, response.content)
    assert isinstance(response.parsed, models.Problem), response.parsed
    return response.parsed


def eventually(what, probe, bound_seconds=90):
    """Polls until `probe` returns something truthy (the pipeline is asynchronous)."""
    deadline = time.monotonic() + bound_seconds
    while True:
        found = probe()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def seed_events():
    host = "www.consumeraffairs.com"
    return [
        {"session_id": SESSION, "category": "page interaction", "name": "pageview",
         "data": {"host": host, "path": "/"}, "timestamp": SEED_TIME, "user_id": "john"},
        {"session_id": SESSION, "category": "page interaction", "name": "cta click",
         "data": {"host": host, "path": "/", "element": "chat bubble"}, "timestamp": SEED_TIME},
        {"session_id": SESSION, "category": "form interaction", "name": "submit",
         "data": {"host": host, "path": "/", "form": {"first_name": "John", "last_name": "Doe"}},
         "timestamp": SEED_TIME},
        # Breaks the pageview schema published below (a path must start with `/`): refused, listed.
        {"session_id": "s2", "category": "page interaction", "name": "pageview",
         "data": {"host": host, "path": "home"}, "timestamp": "2021-01-01T10:00:00Z"},
    ]


def fitness(name, at):
    return models.EventIn.from_dict({
        "session_id": "bar1", "category": "fitness", "name": name, "timestamp": at,
        "user_id": "foo1", "device_id": "bar1",
        "data": {"training_program_id": "2352",
                 "training_program_title": "7 Minutes of HIIT Training"},
    })


def pageview_schema(path_pattern):
    return models.PublishSchemaBody.from_dict({
        "type": "object", "required": ["host", "path"],
        "properties": {"host": {"type": "string"},
                       "path": {"type": "string", "pattern": path_pattern}},
    })


def setup(admin):
    assert call(health, 200, client=admin) == "ok"
    assert call(ready, 200, client=admin).database
    created = call(create_application, 201, client=admin,
                   body=models.NewApplication(name=f"contract {uuid.uuid4()}"))
    assert created.ingest_key
    again = refused(create_application, 409, client=admin,
                    body=models.NewApplication(name=created.name))
    assert again.status == 409
    listed = call(list_applications, 200, client=admin)
    assert any(app.id == created.id for app in listed)
    # The registry may know the seeds' types already: a first version (201) or a new one (200).
    version = call(publish_schema, (200, 201), client=admin, category="page interaction",
                   name="pageview", body=pageview_schema("^/"))
    assert version.version >= 1
    types = call(list_event_types, 200, client=admin)
    assert any(t.name == "pageview" for t in types)
    return created


def ingest(ingest_client):
    batch = models.EventsIn.from_dict({"events": seed_events()})
    accepted = call(send_events, 202, client=ingest_client, body=batch)
    assert accepted.accepted == 4 and len(accepted.event_ids) == 4
    for name, at in [("training_program_started", "2021-02-28 16:23:25"),
                     ("training_program_finished", "2021-02-28T16:59:43Z")]:
        one = call(send_event, 202, client=ingest_client, body=fitness(name, at))
        assert isinstance(one.event_id, uuid.UUID)
    bad = models.EventsIn.from_dict({"events": [dict(seed_events()[0], timestamp="yesterday")]})
    problem = refused(send_events, 400, client=ingest_client, body=bad)
    assert problem.errors[0].field == "events[0].timestamp", problem


def query(reader, app_id):
    def stored():
        page = call(query_events, 200, client=reader, application_id=app_id, limit=100)
        return page if len(page.events) == 5 else None
    page = eventually("5 stored events", stored)
    assert page.next_cursor is None
    assert page.events[0].user_id == "john" and page.events[1].user_id is None
    seen, cursor = [], UNSET
    while True:
        page = call(query_events, 200, client=reader, application_id=app_id, limit=2,
                    cursor=cursor, from_=FROM, to=TO)
        seen += [e.event_id for e in page.events]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert len(seen) == len(set(seen)) == 5, seen
    filtered = call(query_events, 200, client=reader, application_id=app_id,
                    category="page interaction", name="pageview", user_id="john")
    assert [e.name for e in filtered.events] == ["pageview"]
    in_session = call(session_events, 200, client=reader, session_id=SESSION,
                      application_id=app_id)
    assert len(in_session.events) == 3
    sessions = call(query_sessions, 200, client=reader, application_id=app_id, from_=FROM, to=TO)
    assert {s.session_id for s in sessions.sessions} == {SESSION, "bar1"}
    assert sessions.next_cursor is None
    stats = call(event_stats, 200, client=reader, from_=FROM, to=TO,
                 group_by=models.EventStatsGroupBy.CATEGORY,
                 interval=models.EventStatsInterval.DAY)
    assert sum(b.count for b in stats.buckets) == 5
    missing = refused(event_stats, 400, client=reader, from_=TO, to=FROM)
    assert missing.errors[0].field == "from"


def errors_and_replay(admin):
    def listed():
        page = call(list_errors, 200, client=admin, reason=models.Reason.INVALID_PAYLOAD)
        return page if page.errors else None
    page = listed() or eventually("the refused pageview", listed)
    error = page.errors[0]
    assert error.resolved_at is None and page.next_cursor is None
    call(publish_schema, 200, client=admin, category="page interaction", name="pageview",
         body=pageview_schema(".*"))
    outcome = call(replay_errors, 200, client=admin, reason=models.Reason.INVALID_PAYLOAD)
    assert outcome.stored == 1 and outcome.still_failing == 0, outcome
    resolved = call(list_errors, 200, client=admin).errors[0]
    assert isinstance(resolved.resolved_at, datetime.datetime)


def notifications(admin):
    # Without a notify service (EYE_NOTIFY_URL) the notification ends `undeliverable`.
    def decided():
        page = call(list_notifications, 200, client=admin, user_id="foo1",
                    status=models.Status.UNDELIVERABLE)
        return page if page.notifications else None
    note = eventually("the training notification", decided).notifications[0]
    assert note.rule == "daily_training_dose"
    assert note.delivered_at is None
    none = call(list_notifications, 200, client=admin, status=models.Status.DELIVERED, limit=10)
    assert none.notifications == []


def read_keys(admin, app_id):
    issued = call(create_read_key, 201, client=admin,
                  body=models.NewReadKeyIn(name="contract", application_ids=[app_id]))
    reader = client(issued.read_key)
    assert len(call(query_events, 200, client=reader).events) == 6
    call(revoke_read_key, 204, client=admin, id=issued.id)
    refused(query_events, 401, client=reader)


def rules(admin, app_id):
    rule = {"kind": "count", "category": "fitness", "event": "training_program_finished",
            "at_least": 2, "within": "7 days", "message": "{count} workouts this week"}
    name = f"contract_{uuid.uuid4().hex[:8]}"
    published = call(publish_rule, 201, client=admin, name=name,
                     body=models.PublishRuleBody.from_dict(rule))
    assert published.version == 1
    assert any(r.name == name for r in call(list_rules, 200, client=admin).rules)
    detail = call(get_rule, 200, client=admin, name=name)
    assert detail.live and len(detail.versions) == 1
    # The seed's 36-minute program: the published seed rule congratulates foo1 once.
    decided = call(dry_run_rule, 200, client=admin, body=models.DryRunIn(
        rule="daily_training_dose", application_id=app_id, from_=FROM, to=TO))
    assert decided.total == 1 and decided.notifications[0].user_id == "foo1", decided
    call(delete_rule, 204, client=admin, name=name)
    assert not call(get_rule, 200, client=admin, name=name).live


def lifecycle(admin, app_id):
    exported = call(export_events, 200, client=admin, application_id=app_id)
    lines = [json.loads(line) for line in exported.payload.read().splitlines()]
    assert len(lines) == 6 and all(uuid.UUID(line["event_id"]) for line in lines), lines
    erased = call(erase_user, 200, client=admin, id=app_id, user_id="john")
    assert erased.events == 1, erased
    assert call(query_events, 200, client=admin, application_id=app_id, user_id="john").events == []


def segment_message(kind, **fields):
    return dict({"type": kind, "messageId": str(uuid.uuid4()), "userId": "segment-user",
                 "timestamp": "2021-01-02T10:00:00Z"}, **fields)


def segment(ingest_client, admin, app_id):
    batch = models.SegmentBatchIn.from_dict(
        {"batch": [segment_message("track", event="Order Completed", properties={"total": 12})]})
    assert call(segment_batch, 200, client=ingest_client, body=batch).success
    singles = [(segment_track, segment_message("track", event="Signed Up")),
               (segment_page, segment_message("page", name="Home")),
               (segment_screen, segment_message("screen", name="Dashboard")),
               (segment_identify, segment_message("identify", traits={"plan": "pro"})),
               (segment_group, segment_message("group", groupId="g1")),
               (segment_alias, segment_message("alias", previousId="anonymous-1"))]
    for operation, message in singles:
        body = models.SegmentMessageIn.from_dict(message)
        assert call(operation, 200, client=ingest_client, body=body).success

    def stored():
        page = call(query_events, 200, client=admin, application_id=app_id, user_id="segment-user")
        return page if len(page.events) == 7 else None
    page = eventually("the 7 Segment messages", stored)
    assert sorted(e.category for e in page.events) == [
        "alias", "group", "identify", "page", "screen", "track", "track"]


def keys_and_operations(admin, app_id, old_key):
    fresh = call(issue_key, 201, client=admin, id=app_id)
    assert fresh.ingest_key != old_key
    revoked = call(revoke_keys, 200, client=admin, id=app_id)
    assert revoked.revoked == 2
    refused(send_event, 401, client=client(old_key), body=fitness("app_launch", SEED_TIME))
    dead = call(list_dead_jobs, 200, client=admin)
    assert dead.dead_jobs == [] and dead.next_cursor is None
    refused(get_dead_job, 404, client=admin, job_id=str(uuid.uuid4()))
    replayed = call(replay_dead_jobs, 200, client=admin, body=models.DeadJobsToReplay())
    assert replayed.replayed == 0 and replayed.job_ids == []
    assert "eye_events_stored_total" in call(metrics, 200, client=admin)
    call(retire_event_type, 204, client=admin, category="page interaction", name="pageview")


def main():
    admin = client(ADMIN_TOKEN)
    created = setup(admin)
    ingest(client(created.ingest_key))
    query(admin, created.id)
    errors_and_replay(admin)
    notifications(admin)
    read_keys(admin, created.id)
    rules(admin, created.id)
    lifecycle(admin, created.id)
    segment(client(created.ingest_key), admin, created.id)
    keys_and_operations(admin, created.id, created.ingest_key)
    operations = sorted(set(CALLS))
    print(f"contract: {len(CALLS)} calls over {len(operations)} operations: {' '.join(operations)}")


if __name__ == "__main__":
    main()
