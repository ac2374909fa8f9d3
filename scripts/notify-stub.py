#!/usr/bin/env python3
"""A stand-in notify service for trying The Eye by hand: prints each POST /v1/notify and answers 204."""
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer


class Notify(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        print(self.path, self.headers.get("Idempotency-Key"), body, flush=True)
        self.send_response(204)
        self.end_headers()


HTTPServer(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 9000), Notify).serve_forever()
