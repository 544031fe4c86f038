#!/usr/bin/python3
"""Test-only fake Kubernetes API server for the collector's watcher.

Serves list and watch for pods, services, nodes, replicasets and jobs in the real API shapes:
  GET /api/v1/pods?limit=N[&continue=T]           a PodList, paginated, with resourceVersion
  GET /api/v1/pods?watch=1&resourceVersion=RV...  a stream of {"type","object"} lines:
      ADDED/MODIFIED/DELETED after RV, BOOKMARK (when asked), and for an RV older than the
      compaction point a single ERROR event with a 410 Status, as the real server does.
Test controls (POST):
  /fake/event      body {"type": "ADDED"|"MODIFIED"|"DELETED", "object": {... "kind": ...}}
  /fake/bookmark   a BOOKMARK on every open watch
  /fake/compact    events up to now are gone: a watch from an older RV gets 410
  /fake/drop       every open watch connection is cut without a proper end
  /fake/pause      watch requests get 503 until /fake/resume
GET /fake/log: one line per API request ("LIST pods", "WATCH pods 104", ...).
Leases (coordination.k8s.io/v1, for the collector's replicas), with optimistic concurrency:
  GET/PUT /apis/coordination.k8s.io/v1/namespaces/NS/leases/NAME  (404 when absent; a PUT
      whose metadata.resourceVersion is not the current one gets 409 Conflict)
  POST /apis/coordination.k8s.io/v1/namespaces/NS/leases          (409 when it exists)
Requests without "Authorization: Bearer <token>" (when --token is given, or --token-file: the
file's content, read at each request without a trailing newline, as a service account's
projected token is rotated) get 401 and a "DENIED METHOD PATH" line in the log.
With --tls-cert and --tls-key it serves HTTPS only (the handshake in the request's thread); a
failed handshake (e.g. a client that does not trust the certificate) logs "TLS handshake
failed (REASON)".

Usage: fake_apiserver.py --port PORT --state LIST.json [--token T | --token-file F]
                         [--tls-cert CRT --tls-key KEY] [--pid-file F] [--address A]
                         [--page-size N]   (lists pages of at most N whatever limit asks)
"""
import argparse
import json
import os
import re
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

PATHS = {
    "/api/v1/pods": "Pod",
    "/api/v1/services": "Service",
    "/api/v1/nodes": "Node",
    "/apis/apps/v1/replicasets": "ReplicaSet",
    "/apis/batch/v1/jobs": "Job",
}
PLURAL = {v: k.rsplit("/", 1)[1] for k, v in PATHS.items()}
LEASES = re.compile(r"^/apis/coordination\.k8s\.io/v1/namespaces/([^/]+)/leases(?:/([^/]+))?$")


class State:
    def __init__(self, items):
        self.cond = threading.Condition()
        self.rv = 100
        self.compacted = 0
        self.drop_gen = 0
        self.paused = False
        self.bookmark_gen = 0
        self.objects = {k: {} for k in PATHS.values()}
        self.events = []  # (rv, kind, type, object)
        self.log = []
        self.leases = {}  # (namespace, name) -> object
        for o in items:
            self.rv += 1
            self._store(o)

    def _key(self, o):
        md = o.get("metadata", {})
        return md.get("namespace", "") + "/" + md.get("name", "")

    def _store(self, o):
        o.setdefault("metadata", {})["resourceVersion"] = str(self.rv)
        self.objects[o["kind"]][self._key(o)] = o

    def event(self, typ, o):
        with self.cond:
            self.rv += 1
            o.setdefault("metadata", {})["resourceVersion"] = str(self.rv)
            if typ == "DELETED":
                self.objects[o["kind"]].pop(self._key(o), None)
            else:
                self._store(o)
            self.events.append((self.rv, o["kind"], typ, o))
            self.cond.notify_all()


def make_handler(state, token, page_size, token_file=None, tls=False):
    def wanted_token():
        """The token a request must carry: None for any, "" when the file cannot be read."""
        if token_file:
            try:
                with open(token_file) as f:
                    t = f.read()
            except OSError:
                return ""
            return t[:-1] if t.endswith("\n") else t
        return token

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self):
            if tls:
                try:
                    self.request.do_handshake()
                except (ssl.SSLError, OSError) as e:
                    with state.cond:
                        state.log.append("TLS handshake failed (%s)" %
                                         (getattr(e, "reason", None) or e))
                    raise
            super().setup()

        def log_message(self, *args):
            pass

        def send_json(self, code, obj):
            body = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def authorized(self):
            want = wanted_token()
            if want is not None and (not want or
                                     self.headers.get("Authorization") != "Bearer " + want):
                with state.cond:
                    state.log.append("DENIED %s %s" % (self.command, urlparse(self.path).path))
                self.send_json(401, {"kind": "Status", "code": 401, "reason": "Unauthorized"})
                return False
            return True

        def lease(self, method, body):
            m = LEASES.match(urlparse(self.path).path)
            if not self.authorized():
                return
            ns, name = m.group(1), m.group(2)
            with state.cond:
                state.log.append("%s lease %s/%s" % (method, ns, name or ""))
                if method == "POST":
                    obj = json.loads(body)
                    key = (ns, obj.get("metadata", {}).get("name", ""))
                    if name or key in state.leases:
                        self.send_json(409, {"kind": "Status", "code": 409, "reason": "AlreadyExists"})
                        return
                    state.rv += 1
                    obj["metadata"]["resourceVersion"] = str(state.rv)
                    state.leases[key] = obj
                    self.send_json(201, obj)
                    return
                cur = state.leases.get((ns, name))
                if cur is None:
                    self.send_json(404, {"kind": "Status", "code": 404, "reason": "NotFound"})
                    return
                if method == "GET":
                    self.send_json(200, cur)
                    return
                obj = json.loads(body)
                if obj.get("metadata", {}).get("resourceVersion") != cur["metadata"]["resourceVersion"]:
                    self.send_json(409, {"kind": "Status", "code": 409, "reason": "Conflict"})
                    return
                state.rv += 1
                obj["metadata"]["resourceVersion"] = str(state.rv)
                state.leases[(ns, name)] = obj
                self.send_json(200, obj)

        def do_PUT(self):
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n else b""
            if LEASES.match(urlparse(self.path).path):
                self.lease("PUT", body)
            else:
                self.send_json(405, {})

        def do_POST(self):
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n else b""
            path = urlparse(self.path).path
            if LEASES.match(path):
                self.lease("POST", body)
                return
            if path == "/fake/event":
                ev = json.loads(body)
                state.event(ev["type"], ev["object"])
            elif path == "/fake/bookmark":
                with state.cond:
                    state.bookmark_gen += 1
                    state.cond.notify_all()
            elif path == "/fake/compact":
                with state.cond:
                    state.compacted = state.rv
            elif path in ("/fake/pause", "/fake/resume"):
                with state.cond:
                    state.paused = path == "/fake/pause"
            elif path == "/fake/drop":
                with state.cond:
                    state.drop_gen += 1
                    state.cond.notify_all()
            else:
                self.send_json(404, {})
                return
            self.send_json(200, {"rv": state.rv})

        def do_GET(self):
            u = urlparse(self.path)
            q = {k: v[0] for k, v in parse_qs(u.query).items()}
            if u.path == "/fake/log":
                with state.cond:
                    body = ("\n".join(state.log) + "\n").encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            if LEASES.match(u.path):
                self.lease("GET", b"")
                return
            kind = PATHS.get(u.path)
            if not kind:
                self.send_json(404, {"kind": "Status", "code": 404})
                return
            if not self.authorized():
                return
            if q.get("watch") in ("1", "true"):
                self.watch(kind, q)
            else:
                self.list(kind, q)

        def list(self, kind, q):
            limit = int(q.get("limit", "0") or 0)
            if page_size and (not limit or limit > page_size):
                limit = page_size
            start = int(q.get("continue", "0") or 0)
            with state.cond:
                state.log.append("LIST %s %d" % (PLURAL[kind], start))
                items = sorted(state.objects[kind].values(), key=lambda o: (
                    o["metadata"].get("namespace", ""), o["metadata"]["name"]))
                rv = state.rv
            page = items[start:start + limit] if limit else items[start:]
            md = {"resourceVersion": str(rv)}
            if limit and start + limit < len(items):
                md["continue"] = str(start + limit)
            out = []
            for o in page:
                o = dict(o)
                o.pop("kind", None)  # items of a list carry no kind, as in the real API
                out.append(o)
            self.send_json(200, {"kind": kind + "List", "apiVersion": "v1", "metadata": md,
                                 "items": out})

        def watch(self, kind, q):
            rv = int(q.get("resourceVersion", "0") or 0)
            timeout = float(q.get("timeoutSeconds", "300"))
            bookmarks = q.get("allowWatchBookmarks") == "true"
            with state.cond:
                paused = state.paused
            if paused:
                self.send_json(503, {"kind": "Status", "code": 503})
                return
            with state.cond:
                state.log.append("WATCH %s %d" % (PLURAL[kind], rv))
                drop_gen, bm_gen = state.drop_gen, state.bookmark_gen
                gone = rv < state.compacted
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()

            def send(obj):
                line = (json.dumps(obj) + "\n").encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
                self.wfile.flush()

            if gone:
                send({"type": "ERROR", "object": {
                    "kind": "Status", "apiVersion": "v1", "status": "Failure",
                    "message": "too old resource version: %d (%d)" % (rv, state.compacted),
                    "reason": "Expired", "code": 410}})
                self.wfile.write(b"0\r\n\r\n")
                return
            end = time.time() + timeout
            while True:
                with state.cond:
                    pending = [e for e in state.events if e[0] > rv and e[1] == kind]
                    if not pending and state.drop_gen == drop_gen and \
                            state.bookmark_gen == bm_gen and time.time() < end:
                        state.cond.wait(0.2)
                        continue
                    dropped = state.drop_gen != drop_gen
                    bookmark = state.bookmark_gen != bm_gen
                    bm_gen = state.bookmark_gen
                    cur = state.rv
                try:
                    for e in pending:
                        send({"type": e[2], "object": e[3]})
                        rv = e[0]
                    if dropped:
                        # Cut mid-chunk: the client sees a broken stream, not an end.
                        self.wfile.write(b"ffff\r\n{\"type\":")
                        self.wfile.flush()
                        self.close_connection = True
                        return
                    if bookmark and bookmarks:
                        send({"type": "BOOKMARK", "object": {
                            "kind": kind, "apiVersion": "v1",
                            "metadata": {"resourceVersion": str(cur)}}})
                        rv = max(rv, cur)
                    if time.time() >= end:
                        self.wfile.write(b"0\r\n\r\n")
                        return
                except (BrokenPipeError, ConnectionResetError):
                    return

    return Handler


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # One line, not a traceback: refused handshakes and clients that hang up are expected.
        sys.stderr.write("fake_apiserver: %s: %s\n" % (client_address[0], sys.exc_info()[1]))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--state", required=True)
    p.add_argument("--token")
    p.add_argument("--token-file")
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    p.add_argument("--pid-file")
    p.add_argument("--page-size", type=int, default=0)
    p.add_argument("--address", default="127.0.0.1")
    a = p.parse_args()
    with open(a.state) as f:
        items = json.load(f).get("items", [])
    state = State(items)
    tls = bool(a.tls_cert)
    srv = Server((a.address, a.port),
                 make_handler(state, a.token, a.page_size, a.token_file, tls))
    if tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.tls_cert, a.tls_key)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True,
                                     do_handshake_on_connect=False)
    if a.pid_file:
        with open(a.pid_file, "w") as f:
            f.write(str(os.getpid()))
    srv.serve_forever()


if __name__ == "__main__":
    main()
