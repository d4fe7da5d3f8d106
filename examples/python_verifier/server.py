#!/usr/bin/env python3
"""A RewardService plugin written in Python.

Serves proto/reward.proto with one verifier, "contains": reward 1 when the reference text occurs
(case-insensitively) in the answer, i.e. the text after the last </think>. Register it with the
C++ reward server by name in its config:

    remote:
      contains: {address: "127.0.0.1:50100", timeout_ms: 2000, retries: 2}

and requests for verifier "contains" are routed here.

Needs only Debian packages: python3-grpcio, python3-protobuf and protoc (protobuf-compiler).
The message classes are generated from proto/reward.proto with `protoc --python_out` at start-up;
the service itself is registered through grpcio's generic handlers, so grpc_tools (the Python
gRPC code generator) is not needed.

    python3 examples/python_verifier/server.py --port 50100

prints "listening on HOST:PORT" once it serves (--port 0 picks a free port) and stops cleanly on
SIGINT/SIGTERM.
"""
import argparse
import concurrent.futures
import importlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import grpc

SERVICE = "grpo.reward.v1.RewardService"
HERE = os.path.dirname(os.path.abspath(__file__))


def load_messages(proto):
    """Generates reward_pb2 from `proto` (the path of proto/reward.proto) and imports it."""
    proto = os.path.abspath(proto)
    out = tempfile.mkdtemp(prefix="reward_pb2_")
    try:
        subprocess.run(["protoc", "--proto_path=" + os.path.dirname(proto), "--python_out=" + out, proto],
                       check=True)
        sys.path.insert(0, out)
        return importlib.import_module("reward_pb2")
    finally:  # the module is loaded; its source is no longer needed
        sys.path.remove(out)
        shutil.rmtree(out, ignore_errors=True)


class BadRequest(Exception):
    """The request is wrong (INVALID_ARGUMENT)."""


class UnknownVerifier(Exception):
    """No such verifier here (NOT_FOUND)."""


def contains(completion, reference, options):
    """Reward 1 when `reference` occurs in the answer after the last </think>, else 0."""
    if not reference:
        raise BadRequest("reference: required (the text the answer must contain)")
    unknown = set(options) - {"delay_ms"}
    if unknown:
        raise BadRequest("options: unknown option(s) %s (known: delay_ms)" % sorted(unknown))
    if options.get("delay_ms"):  # lets tests exercise deadlines
        time.sleep(options["delay_ms"] / 1000.0)
    text = completion.decode("utf-8", errors="replace")
    answer = text.rsplit("</think>", 1)[-1].strip()
    found = reference.lower() in answer.lower()
    return {
        "reward": 1.0 if found else 0.0,
        "correct": found,
        "components": {"accuracy": 1.0 if found else 0.0},
        "reason": ("python: found %r" if found else "python: %r not in the answer") % reference,
        "extracted": answer,
    }


VERIFIERS = {"contains": (contains, "python example: answer contains the reference text")}


class RewardService:
    def __init__(self, pb):
        self.pb = pb
        self.started = time.time()
        self.served = 0
        self.lock = threading.Lock()

    def score_one(self, request):
        """A ScoreResponse for one request; raises BadRequest / UnknownVerifier."""
        start = time.perf_counter()
        if request.verifier not in VERIFIERS:
            raise UnknownVerifier("unknown verifier %r (registered: %s)" % (request.verifier, ", ".join(sorted(VERIFIERS))))
        try:
            options = json.loads(request.options) if request.options else {}
        except ValueError as e:
            raise BadRequest("options: invalid JSON: %s" % e)
        if not isinstance(options, dict):
            raise BadRequest("options: expected a JSON object")
        fn = VERIFIERS[request.verifier][0]
        verdict = fn(request.completion, request.reference, options)
        response = self.pb.ScoreResponse(id=request.id, verifier=request.verifier, reward=verdict["reward"],
                                         correct=verdict["correct"], reason=verdict["reason"],
                                         extracted=verdict["extracted"])
        response.components.update(verdict["components"])
        elapsed = int((time.perf_counter() - start) * 1e6)
        response.timings.verify_us = elapsed
        response.timings.total_us = elapsed
        with self.lock:
            self.served += 1
        return response

    def item(self, request):
        """score_one for batch/stream items: failures go in error_code / error_message."""
        try:
            return self.score_one(request)
        except UnknownVerifier as e:
            code, message = grpc.StatusCode.NOT_FOUND, str(e)
        except BadRequest as e:
            code, message = grpc.StatusCode.INVALID_ARGUMENT, str(e)
        except Exception as e:  # a bug in a verifier must not take the server down
            code, message = grpc.StatusCode.INTERNAL, "verifier %r failed: %s" % (request.verifier, e)
        return self.pb.ScoreResponse(id=request.id, verifier=request.verifier, error_code=code.value[0],
                                     error_message=message)

    def Score(self, request, context):
        try:
            return self.score_one(request)
        except UnknownVerifier as e:
            context.abort(grpc.StatusCode.NOT_FOUND, str(e))
        except BadRequest as e:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        except Exception as e:
            context.abort(grpc.StatusCode.INTERNAL, "verifier %r failed: %s" % (request.verifier, e))

    def ScoreBatch(self, request, context):
        return self.pb.ScoreBatchResponse(responses=[self.item(r) for r in request.requests])

    def ScoreStream(self, requests, context):
        for r in requests:
            yield self.item(r)

    def ListVerifiers(self, request, context):
        return self.pb.ListVerifiersResponse(verifiers=[
            self.pb.VerifierInfo(name=name, kind="builtin", description=desc)
            for name, (_, desc) in sorted(VERIFIERS.items())])

    def Health(self, request, context):
        return self.pb.HealthResponse(status=self.pb.HealthResponse.SERVING, workers=8, served=self.served,
                                      uptime_ms=int((time.time() - self.started) * 1000))


def generic_handler(pb, service):
    def unary(fn, req, resp):
        return grpc.unary_unary_rpc_method_handler(fn, request_deserializer=req.FromString,
                                                   response_serializer=resp.SerializeToString)

    return grpc.method_handlers_generic_handler(SERVICE, {
        "Score": unary(service.Score, pb.ScoreRequest, pb.ScoreResponse),
        "ScoreBatch": unary(service.ScoreBatch, pb.ScoreBatchRequest, pb.ScoreBatchResponse),
        "ScoreStream": grpc.stream_stream_rpc_method_handler(
            service.ScoreStream, request_deserializer=pb.ScoreRequest.FromString,
            response_serializer=pb.ScoreResponse.SerializeToString),
        "ListVerifiers": unary(service.ListVerifiers, pb.ListVerifiersRequest, pb.ListVerifiersResponse),
        "Health": unary(service.Health, pb.HealthRequest, pb.HealthResponse),
    })


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", default="127.0.0.1", help="host to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=50100, help="port; 0 picks a free one (default 50100)")
    parser.add_argument("--workers", type=int, default=8, help="handler threads (default 8)")
    parser.add_argument("--proto", default=os.path.join(HERE, "..", "..", "proto", "reward.proto"),
                        help="path to proto/reward.proto")
    args = parser.parse_args()

    pb = load_messages(args.proto)
    server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=args.workers))
    server.add_generic_rpc_handlers((generic_handler(pb, RewardService(pb)),))
    port = server.add_insecure_port("%s:%d" % (args.address, args.port))
    if port == 0:
        sys.exit("cannot listen on %s:%d" % (args.address, args.port))
    server.start()
    print("listening on %s:%d" % (args.address, port), flush=True)

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    server.stop(grace=2).wait()


if __name__ == "__main__":
    main()
