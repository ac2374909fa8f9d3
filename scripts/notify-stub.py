#!/usr/bin/env python3
"""A stand-in notify service for trying The Eye by hand: prints each POST /v1/notify and answers 204.

    scripts/notify-stub.py [[HOST:]PORT]      (default 127.0.0.1:9000)
"""
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer


class Notify(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        print(self.path, self.headers.get("Idempotency-Key"), body, flush=True)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass  # the request line is printed above; keep the output to one line per notification


def address(argument):
    host, _, port = argument.rpartition(":")
    return (host or "127.0.0.1", int(port))


HTTPServer(address(sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:9000"), Notify).serve_forever()
