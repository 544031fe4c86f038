#!/usr/bin/python3
"""Test-only HTTP/1.1 server whose answers the test controls: GET /delay/<ms>/<status>
answers after <ms> milliseconds with that status (keep-alive, Content-Length). The ground
truth of the HTTP accuracy test: the delays and statuses are what the test asked for.

With --redis HOST:PORT every request also counts itself in a Redis server (INCR), so the
demo's api has a real database behind it; an unreachable Redis answers 503.

Usage: http_server.py --port PORT [--pid-file F] [--redis HOST:PORT]
"""
import argparse
import os
import threading
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
        if REDIS is not None:
            try:
                body = b"hit %d\n" % db().incr("hits")
            except Exception:  # the database is away: say so, as an api would
                status, body = 503, b"db unavailable\n"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


REDIS = None
_local = threading.local()


def db():
    """One Redis connection per server thread (redis-py, Debian's python3-redis)."""
    if not hasattr(_local, "conn"):
        import redis

        host, port = REDIS.rsplit(":", 1)
        _local.conn = redis.Redis(host=host, port=int(port), socket_timeout=2)
    return _local.conn


def main():
    global REDIS
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--pid-file")
    p.add_argument("--redis")
    a = p.parse_args()
    REDIS = a.redis
    srv = ThreadingHTTPServer(("", a.port), Handler)
    srv.daemon_threads = True
    if a.pid_file:
        with open(a.pid_file, "w") as f:
            f.write(str(os.getpid()))
    srv.serve_forever()


if __name__ == "__main__":
    main()
