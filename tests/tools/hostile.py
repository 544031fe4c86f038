#!/usr/bin/env python3
"""Hostile HTTP clients for the flowlens servers' regression tests. Each prints one JSON object
with what it sent and what it saw, the attacker's own ground truth.

  hostile.py noauth HOST PORT CONNS BYTES    POST bodies without a token, as fast as allowed
  hostile.py bodies HOST PORT CONNS BYTES TOKEN  the same with the token
  hostile.py expect HOST PORT                Expect: 100-continue, 10 GB, no token
  hostile.py slowloris HOST PORT SRC N SECS  N connections from SRC trickling header bytes
  hostile.py framing HOST PORT TOKEN FILE    a batch with conflicting Content-Length /
                                             Transfer-Encoding headers
"""
import json
import selectors
import socket
import sys
import time


def connect(host, port, src=None, timeout=5):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    if src:
        s.bind((src, 0))
    s.connect((host, port))
    return s


def status_of(data):
    try:
        return int(data.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return 0


def noauth(host, port, conns, nbytes, token=None):
    """Each connection declares nbytes and sends the body until the server answers or closes;
    reports how many body bytes the server took in before answering. With a token: bodies
    from an authenticated (but broken or hostile) sender."""
    auth = b"Authorization: Bearer " + token.encode() + b"\r\n" if token else b""
    sel = selectors.DefaultSelector()
    chunk = b"\0" * 65536
    out = {"connections": conns, "offered_bytes": conns * nbytes, "statuses": {},
           "sent_bytes": 0, "refused_connect": 0}
    socks = {}
    for _ in range(conns):
        try:
            s = connect(host, port)
        except OSError:
            out["refused_connect"] += 1
            continue
        s.sendall(b"POST /v1/batches HTTP/1.1\r\nHost: x\r\n" + auth +
                  b"Content-Type: application/x-protobuf\r\nContent-Encoding: deflate\r\n"
                  b"Content-Length: %d\r\n\r\n" % nbytes)
        s.setblocking(False)
        socks[s] = 0
        sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE)
    deadline = time.time() + 30
    while socks and time.time() < deadline:
        for key, ev in sel.select(timeout=1):
            s = key.fileobj
            if ev & selectors.EVENT_READ:
                try:
                    data = s.recv(4096)
                except OSError:
                    data = b""
                st = str(status_of(data)) if data else "closed"
                out["statuses"][st] = out["statuses"].get(st, 0) + 1
                sel.unregister(s)
                s.close()
                del socks[s]
                continue
            if ev & selectors.EVENT_WRITE and socks[s] < nbytes:
                try:
                    n = s.send(chunk[: min(len(chunk), nbytes - socks[s])])
                except OSError:
                    n = 0
                socks[s] += n
                out["sent_bytes"] += n
                if socks[s] >= nbytes:
                    sel.modify(s, selectors.EVENT_READ)
    out["unanswered"] = len(socks)
    for s in socks:
        s.close()
    return out


def expect(host, port):
    s = connect(host, port)
    s.sendall(b"POST /v1/batches HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
              b"Content-Type: application/x-protobuf\r\nContent-Encoding: deflate\r\n"
              b"Content-Length: 10000000000\r\n\r\n")
    data = s.recv(4096)
    s.close()
    return {"first_status": status_of(data), "first_line": data.split(b"\r\n")[0].decode()}


def slowloris(host, port, src, n, secs):
    """Opens n connections from src, each sending a request line and then one header byte a
    second. Reports how many the server accepted and how long the longest one was held."""
    out = {"attempted": n, "connected": 0, "refused": 0, "closed_by_server": 0,
           "longest_held_s": 0.0}
    live = {}
    for _ in range(n):
        try:
            s = connect(host, port, src, timeout=2)
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
            s.setblocking(False)
            live[s] = time.time()
            out["connected"] += 1
        except OSError:
            out["refused"] += 1
    # A server that accepts and then refuses (at its limit) closes at once: those count too.
    end = time.time() + secs
    while live and time.time() < end:
        time.sleep(1)
        for s, t0 in list(live.items()):
            gone = False
            try:
                s.send(b"X")
                try:
                    if s.recv(1, socket.MSG_PEEK) == b"":
                        gone = True
                except BlockingIOError:
                    pass
            except OSError:
                gone = True
            if gone:
                out["closed_by_server"] += 1
                out["longest_held_s"] = max(out["longest_held_s"], time.time() - t0)
                s.close()
                del live[s]
    for s, t0 in live.items():
        out["longest_held_s"] = max(out["longest_held_s"], time.time() - t0)
        s.close()
    out["still_open_at_end"] = len(live)
    return out


def framing(host, port, token, body_file):
    """A valid batch sent with ambiguous framing: a server that guesses would apply it (200)."""
    body = open(body_file, "rb").read()
    chunked = b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n"
    reqs = {
        "duplicate_differing_content_length":
            b"Content-Length: %d\r\nContent-Length: %d\r\n\r\n" % (len(body), len(body) + 1) +
            body + b"\0",
        "content_length_and_chunked":
            b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n" % len(chunked) + chunked,
    }
    out = {}
    for name, tail in reqs.items():
        s = connect(host, port)
        s.sendall(b"POST /v1/batches HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                  token.encode() + b"\r\nContent-Type: application/x-protobuf\r\n"
                  b"Content-Encoding: deflate\r\n" + tail)
        try:
            out[name] = status_of(s.recv(4096))
        except OSError:
            out[name] = 0
        s.close()
    return out


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "noauth":
        r = noauth(args[0], int(args[1]), int(args[2]), int(args[3]))
    elif cmd == "bodies":
        r = noauth(args[0], int(args[1]), int(args[2]), int(args[3]), args[4])
    elif cmd == "expect":
        r = expect(args[0], int(args[1]))
    elif cmd == "slowloris":
        r = slowloris(args[0], int(args[1]), args[2], int(args[3]), float(args[4]))
    elif cmd == "framing":
        r = framing(args[0], int(args[1]), args[2], args[3])
    else:
        sys.exit("hostile.py: unknown command " + cmd)
    print(json.dumps(r))


if __name__ == "__main__":
    main()
