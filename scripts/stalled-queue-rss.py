#!/usr/bin/env python3
"""Peak RSS of `eye api` while its Redis hangs (admission control, issue 11 point 3).

Starts a private redis-server on a free port and a fresh PostgreSQL database (at $EYE_TEST_DATABASE_URL's
server, default postgres@127.0.0.1:5432), runs the release `eye api` on them, SIGSTOPs the redis-server,
fires REQUESTS concurrent requests of EVENTS events, samples the API's RSS, and prints what each request
was told and how long it took, and how many keys Redis holds 3 s after it resumes (0: nothing refused was
queued). Everything it started is stopped and removed at the end.

    cargo build --release -p eye-server
    scripts/stalled-queue-rss.py [--requests 200] [--events 1000] [--eye target/release/eye]
"""

import argparse, http.client, json, os, signal, socket, subprocess, tempfile, threading, time, uuid


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def wait_http(port, path="/health", seconds=60):
    until = time.time() + seconds
    while time.time() < until:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", path)
            if c.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"nothing answers on port {port}")


def psql(sql):
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qAtc", sql], check=True)


def body(events):
    return json.dumps({"events": [
        {"event_id": str(uuid.uuid4()), "session_id": f"s{i % 50}", "category": "page interaction",
         "name": "pageview", "data": {"host": "example.com", "path": f"/page/{i}"},
         "timestamp": "2021-01-01T09:15:27Z"} for i in range(events)]}).encode()


def fire(port, key, payload, results, i):
    started = time.time()
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        c.request("POST", "/v1/events", payload,
                  {"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
        r = c.getresponse()
        r.read()
        results[i] = (r.status, r.getheader("Retry-After"), time.time() - started)
    except OSError as e:
        results[i] = (f"error {e.__class__.__name__}", None, time.time() - started)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--events", type=int, default=1000)
    ap.add_argument("--eye", default=os.environ.get("EYE_BIN", "target/release/eye"))
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="eye-rss-")
    redis_port, api_port = free_port(), free_port()
    db = f"eye_rss_{uuid.uuid4().hex[:12]}"
    redis = subprocess.Popen(["redis-server", "--port", str(redis_port), "--save", "", "--appendonly", "no",
                              "--dir", tmp], stdout=subprocess.DEVNULL)
    api = None
    try:
        psql(f'CREATE DATABASE "{db}"')
        env = dict(os.environ, EYE_DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{db}",
                   EYE_REDIS_URL=f"redis://127.0.0.1:{redis_port}", EYE_BIND=f"127.0.0.1:{api_port}",
                   EYE_QUEUE_NAME="eye:rss", RUST_LOG="warn")
        created = subprocess.run([args.eye, "apps", "create", "rss"], env=env, check=True,
                                 capture_output=True, text=True)
        key = json.loads(created.stdout)["ingest_key"]
        api = subprocess.Popen([args.eye, "api"], env=env, stderr=subprocess.DEVNULL)
        wait_http(api_port)
        payloads = [body(args.events) for _ in range(args.requests)]
        baseline = rss_mb(api.pid)
        os.kill(redis.pid, signal.SIGSTOP)
        peak, stop = [baseline], threading.Event()

        def sample():
            while not stop.is_set():
                peak[0] = max(peak[0], rss_mb(api.pid))
                time.sleep(0.01)

        sampler = threading.Thread(target=sample)
        sampler.start()
        results = [None] * args.requests
        threads = [threading.Thread(target=fire, args=(api_port, key, p, results, i))
                   for i, p in enumerate(payloads)]
        started = time.time()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.time() - started
        stop.set()
        sampler.join()
        # Whatever the refused requests left in flight must never reach the queue once Redis resumes.
        os.kill(redis.pid, signal.SIGCONT)
        time.sleep(3)
        keys = subprocess.run(["redis-cli", "-p", str(redis_port), "dbsize"], capture_output=True,
                              text=True).stdout.strip()
        statuses = {}
        for status, retry_after, _ in results:
            statuses[(status, retry_after)] = statuses.get((status, retry_after), 0) + 1
        times = sorted(r[2] for r in results)
        print(json.dumps({
            "requests": args.requests, "events_per_request": args.events,
            "body_bytes": len(payloads[0]),
            "rss_mb_before": round(baseline, 1), "rss_mb_peak": round(peak[0], 1),
            "answers": {f"{s} retry-after={r}": n for (s, r), n in statuses.items()},
            "answer_s_p50": round(times[len(times) // 2], 2), "answer_s_max": round(times[-1], 2),
            "all_answered_s": round(wall, 2),
            "redis_keys_3s_after_resume": keys,
        }, indent=2))
    finally:
        os.kill(redis.pid, signal.SIGCONT)
        if api:
            api.terminate()
            api.wait()
        redis.terminate()
        redis.wait()
        psql(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    main()
