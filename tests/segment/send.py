#!/usr/bin/env python3
"""Drives the official Segment Python SDK against The Eye (run by tests/tests/e2e/segment_sdk.rs).

Usage: send.py HOST WRITE_KEY COUNT

Sends one call of each kind, then COUNT `track` calls in two halves with the SDK's own batching and
gzip. After the first half is delivered it prints HALF and waits for a line on stdin: the test stops the
server meanwhile, so the second half meets a server that is down and then restarted, and the SDK's
retries must deliver it. Exits non-zero if the SDK reported any failure.
"""
import sys
import threading

from segment.analytics import Client

host, write_key, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
failures = []
lock = threading.Lock()


def on_error(error, batch):
    with lock:
        failures.append((str(error), len(batch)))


client = Client(
    write_key,
    host=host,
    gzip=True,
    upload_size=100,
    max_retries=10,
    on_error=on_error,
)
assert client.consumers[0].gzip, "the SDK compresses"

# One of each call; fixed message ids so the test can find each one.
client.identify("user-1", {"email": "user-1@example.com"}, message_id="sdk-identify")
client.group("user-1", "group-1", {"plan": "pro"}, message_id="sdk-group")
client.alias("anon-1", "user-1", message_id="sdk-alias")
client.page("user-1", name="Home", properties={"path": "/"}, message_id="sdk-page")
client.screen("user-1", name="Settings", properties={"tab": "privacy"}, message_id="sdk-screen")
client.track(
    "user-1",
    "Order Completed",
    {"revenue": 9.5},
    anonymous_id="anon-1",
    context={"sessionId": 1700000000},
    message_id="sdk-track",
)


def track(first, last):
    for i in range(first, last):
        queued, _ = client.track(f"user-{i % 50}", "Item Viewed", {"item": i}, message_id=f"sdk-item-{i}")
        assert queued, "the SDK's queue is full"


track(0, count // 2)
client.flush()
print("HALF", flush=True)
sys.stdin.readline()
track(count // 2, count)
client.flush()
client.shutdown()
if failures:
    print(f"FAILED {failures}", flush=True)
    sys.exit(1)
print("DONE", flush=True)
