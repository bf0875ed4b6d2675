"""The Ray cluster to join (``--ray-address`` or ``$RAY_ADDRESS``), checked before
``ray.init``, which retries an address that is not a Ray head for many minutes printing only
warnings: something must accept a TCP connection there, and answer as a Ray head's GCS."""

from __future__ import annotations

import os
import socket

from stancelab.errors import InputError

CONNECT_SECONDS = 10  # a head that accepts no TCP connection in this time is not there
GCS_SECONDS = 5  # a head's GCS answers within this (Ray's own client gives it 5 s to connect)
UNAUTHENTICATED = "unauthenticated"  # ray_head_answers: a head, whose token auth refused us
NO_TOKEN = "no token"  # ray_head_answers: RAY_AUTH_MODE=token, and no token to send


def check_ray_address(address: str | None) -> None:
    """Before ``ray.init``: the cluster to join (``address``, else ``$RAY_ADDRESS``, as Ray
    reads them) accepts a TCP connection at its ``HOST:PORT`` and is a Ray head there (see
    ``ray_head_answers``), else an ``InputError`` naming it. Ray itself retries such an
    address for many minutes (an HTTP server or a port that never answers: ~14), printing
    only warnings. No address (or ``auto``, ``local``): Ray starts or finds a local one."""
    source = "--ray-address"
    if address in (None, "auto") and os.environ.get("RAY_ADDRESS", "").strip():
        address, source = os.environ["RAY_ADDRESS"].strip(), "$RAY_ADDRESS"
    if address in (None, "", "auto", "local"):
        return
    host, sep, port = address.split("://", 1)[-1].rstrip("/").rpartition(":")
    host = host.strip("[]")  # an IPv6 address: [::1]:6379
    if not (sep and host and port.isdigit()):
        raise InputError(
            f"{source} {address!r}: expected HOST:PORT, the Ray head's address "
            "(e.g. 10.0.0.1:6379, as `ray start --head` prints it)"
        )
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_SECONDS).close()
    except OSError as exc:
        raise InputError(
            f"no Ray cluster at {address} ({source}): {exc.strerror or exc}; "
            "start one there with `ray start --head`, or give the address it printed"
        ) from None
    if "://" in address:  # ray://HOST:PORT is Ray Client's server, which is not the GCS
        return
    why = ray_head_answers(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
    if why in (UNAUTHENTICATED, NO_TOKEN):
        raise InputError(token_problem(address, source, why))
    if why:
        raise InputError(
            f"{address} ({source}) is not a Ray head: {why}; give the HOST:PORT that "
            "`ray start --head` prints (its GCS port, 6379 by default; 8265 is the dashboard)"
        )


def token_problem(address: str, source: str, why: str = UNAUTHENTICATED) -> str:
    """Why a Ray head refused this process (``why``: ``UNAUTHENTICATED`` or ``NO_TOKEN``):
    its token auth, which ``ray start --head`` (Ray 2.60) turns on whenever
    ``~/.ray/auth_token`` exists, and every local Ray run writes one. ``ray.init`` with an
    address never sends a token unless ``RAY_AUTH_MODE=token``; it retried for ~15 s, then
    said only "Failed to connect". Ray reads the token from ``$RAY_AUTH_TOKEN``, else the
    file ``$RAY_AUTH_TOKEN_PATH`` names, else ``~/.ray/auth_token``."""
    where = f"{address} ({source})"
    give = "copy the head's ~/.ray/auth_token here, or set $RAY_AUTH_TOKEN to the token it holds"
    if why == NO_TOKEN:
        return f"RAY_AUTH_MODE=token, but this machine has no Ray token to send to {where}; {give}"
    if os.environ.get("RAY_AUTH_MODE", "").strip().lower() == "token":
        return (
            f"{where} refused the token this process sent (from {_token_source()}); use "
            f"the cluster's token: {give}"
        )
    return (
        f"{where} wants an authentication token (a Ray head with token auth, which `ray "
        "start --head` turns on when ~/.ray/auth_token exists); run with RAY_AUTH_MODE=token "
        "and the head's token in ~/.ray/auth_token or $RAY_AUTH_TOKEN"
    )


def _token_source() -> str:
    """Where Ray takes the token it sends from, in its order of precedence."""
    if os.environ.get("RAY_AUTH_TOKEN", "").strip():
        return "$RAY_AUTH_TOKEN, which Ray reads first"
    if os.environ.get("RAY_AUTH_TOKEN_PATH", "").strip():
        return f"$RAY_AUTH_TOKEN_PATH, {os.environ['RAY_AUTH_TOKEN_PATH'].strip()}"
    return "~/.ray/auth_token"


def ray_head_answers(target: str) -> str | None:
    """None if a Ray head's GCS answers at ``target`` (``HOST:PORT``), ``UNAUTHENTICATED``
    if one answers but refuses this process (its token auth), else why it is not a head.

    Every Ray head runs the GCS, a gRPC server, at the address ``ray start --head`` prints;
    ``ray.init`` first asks it ``NodeInfoGcsService.GetClusterId``. The same call is made
    here once, through Ray's own GCS channel (its TLS and token settings) and generated
    stub, with a ``GCS_SECONDS`` deadline. A port that is not a GCS fails it at once (an
    HTTP server such as the dashboard: no HTTP/2; a gRPC server of something else: no such
    method) or never answers. A GCS that wants a token this process does not send gives
    ``UNAUTHENTICATED``; ``RAY_AUTH_MODE=token`` without a token here gives ``NO_TOKEN``
    (Ray refuses to send the call). Any other gRPC status is left to ``ray.init`` to report."""
    import grpc

    try:  # Ray's own channel helper is internal: another Ray may move it
        from ray._private.gcs_utils import create_gcs_channel
        from ray.core.generated import gcs_service_pb2, gcs_service_pb2_grpc
    except ImportError:
        return None  # then ray.init alone says whether a head is there, as before

    reasons = {
        grpc.StatusCode.UNAVAILABLE: "it does not speak gRPC (an HTTP server, such as the "
        "dashboard?)",
        grpc.StatusCode.DEADLINE_EXCEEDED: f"no answer to a Ray request within {GCS_SECONDS} s",
        grpc.StatusCode.UNIMPLEMENTED: "a gRPC server without Ray's GCS",
    }
    from ray.exceptions import AuthenticationError

    try:
        with create_gcs_channel(target) as channel:
            stub = gcs_service_pb2_grpc.NodeInfoGcsServiceStub(channel)
            stub.GetClusterId(gcs_service_pb2.GetClusterIdRequest(), timeout=GCS_SECONDS)
    except AuthenticationError:  # RAY_AUTH_MODE=token and no token: raised before sending
        return NO_TOKEN
    except grpc.RpcError as exc:
        if exc.code() == grpc.StatusCode.UNAUTHENTICATED:
            return UNAUTHENTICATED
        return reasons.get(exc.code())
    return None
