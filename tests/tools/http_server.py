#!/usr/bin/python3
"""Test-only HTTP/1.1 server whose answers the test controls: GET /delay/<ms>/<status>
answers after <ms> milliseconds with that status (keep-alive, Content-Length). The ground
truth of the HTTP accuracy test: the delays and statuses are what the test asked for.

Usage: http_server.py --port PORT [--pid-file F]
"""
import argparse
import os
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        parts = self.path.strip("/").split("/")
        delay, status = 0, 200
        if len(parts) >= 2 and parts[0] == "delay":
            delay = int(parts[1])
            if len(parts) >= 3:
                status = int(parts[2])
        time.sleep(delay / 1000.0)
        body = b"ok\n"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--pid-file")
    a = p.parse_args()
    srv = ThreadingHTTPServer(("", a.port), Handler)
    srv.daemon_threads = True
    if a.pid_file:
        with open(a.pid_file, "w") as f:
            f.write(str(os.getpid()))
    srv.serve_forever()


if __name__ == "__main__":
    main()
