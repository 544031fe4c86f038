#!/usr/bin/env python3
"""A real gRPC server and client for the lab (Debian's python3-grpcio), over h2c.

server: answers /flowlens.Lab/Call after the delay the request asks for, with the status it
asks for (a request is the text "DELAY_MS STATUS_NAME").
client: makes calls and prints its own tally as JSON: {"calls": [[status, seconds], ...]},
seconds being the client's own time from the call to its status.
"""
import argparse
import concurrent.futures
import json
import os
import sys
import time

import grpc

METHOD = "/flowlens.Lab/Call"


def serve(args):
    def call(request, context):
        delay, status = request.decode().split()
        time.sleep(int(delay) / 1000.0)
        if status != "OK":
            context.abort(getattr(grpc.StatusCode, status), "injected " + status)
        return b"done"

    handler = grpc.method_handlers_generic_handler(
        "flowlens.Lab", {"Call": grpc.unary_unary_rpc_method_handler(call)})
    server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=128))
    server.add_generic_rpc_handlers((handler,))
    for port in args.port:
        server.add_insecure_port("[::]:%d" % port)
    server.start()
    if args.pid_file:
        with open(args.pid_file, "w") as f:
            f.write(str(os.getpid()))
    server.wait_for_termination()


def one(fn, req):
    t0 = time.monotonic()
    try:
        fn(req, timeout=30)
        code = "OK"
    except grpc.RpcError as e:
        code = e.code().name
    return [code, time.monotonic() - t0]


def client(args):
    """--plan "CHANNELS x DELAY_MS STATUS N, ...": per channel, N calls of each kind, all
    issued at once (multiplexed on the channel's one connection)."""
    kinds = []
    for part in args.plan.split(","):
        delay, status, n = part.split()
        kinds.append((int(delay), status, int(n)))
    channels = [grpc.insecure_channel(args.target) for _ in range(args.channels)]
    calls = []
    if args.before:
        # One call now (the connection exists before whatever starts next), then wait.
        fn = channels[0].unary_unary(METHOD)
        one(fn, b"0 OK")
        while not os.path.exists(args.before):
            time.sleep(0.05)
        for delay, status, n in kinds:
            for _ in range(n):
                calls.append(one(fn, ("%d %s" % (delay, status)).encode()))
    else:
        with concurrent.futures.ThreadPoolExecutor(max_workers=256) as pool:
            futs = []
            for ch in channels:
                fn = ch.unary_unary(METHOD)
                for delay, status, n in kinds:
                    for _ in range(n):
                        futs.append(pool.submit(one, fn, ("%d %s" % (delay, status)).encode()))
            calls = [f.result() for f in futs]
    for ch in channels:
        ch.close()
    json.dump({"calls": calls}, sys.stdout)
    print()


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("server")
    s.add_argument("--port", type=int, action="append", required=True)
    s.add_argument("--pid-file")
    c = sub.add_parser("client")
    c.add_argument("--target", required=True)
    c.add_argument("--channels", type=int, default=1)
    c.add_argument("--plan", required=True)
    c.add_argument("--before", help="one call, then wait for this file before the plan")
    args = p.parse_args()
    serve(args) if args.cmd == "server" else client(args)


if __name__ == "__main__":
    main()
