"""Web Push deliveries per second (issue 13): `--subscriptions` verified PushSubscriptions
(each with keys, so every push is aes128gcm-encrypted and VAPID-signed) on one account, all
pointing at a push endpoint this process runs on loopback (asyncio, keep-alive, answers 201);
then `--rounds` changes (a Mailbox created), each `--gap` seconds apart, and for each the time
from the change until every subscription has had its push. Reports deliveries per second
(subscriptions / time to the last push), the time to the first and the last push, and the
server's CPU seconds per delivery.

    .venv/bin/python -m bench.webpush [--subscriptions 1000] [--rounds 5] [--workers 1]
        [--backend sqlite|postgresql] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import secrets
import statistics
import threading
import time
from typing import Any

import http_ece
import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from bench.fill import jmapd_env
from bench.machine import cpu_model, cpu_seconds, cpu_used
from bench.server import JmapdServer, one_account, server_arguments

USER, PASSWORD = "push@localhost", "push-password"
USING = ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail"]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Endpoint:
    """A minimal HTTP/1.1 push service on its own event loop thread: every POST is recorded
    (path, arrival time, body) and answered 201."""

    def __init__(self) -> None:
        self.arrivals: list[tuple[str, float, bytes]] = []
        self.loop = asyncio.new_event_loop()
        self.port = 0
        ready = threading.Event()
        threading.Thread(target=self._run, args=(ready,), daemon=True).start()
        ready.wait()

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        ready.set()
        self.loop.run_forever()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                path = lines[0].split(" ")[1]
                length = next((int(line.split(":", 1)[1]) for line in lines[1:]
                               if line.lower().startswith("content-length:")), 0)  # fmt: skip
                body = await reader.readexactly(length)
                self.arrivals.append((path, time.perf_counter(), body))
                writer.write(b"HTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()


def api(client: httpx.Client, calls: list[Any]) -> list[Any]:
    r = client.post("/jmap/api", json={"using": USING, "methodCalls": calls})
    r.raise_for_status()
    answers: list[Any] = r.json()["methodResponses"]
    return answers


def subscribe(client: httpx.Client, endpoint: Endpoint, count: int) -> None:
    """`count` subscriptions with keys, verified with the codes pushed to the endpoint."""
    devices: dict[str, tuple[ec.EllipticCurvePrivateKey, bytes]] = {}
    create = {}
    for i in range(count):
        key, auth = ec.generate_private_key(ec.SECP256R1()), secrets.token_bytes(16)
        path = f"/push/{i}"
        devices[path] = (key, auth)
        point = key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        create[str(i)] = {"deviceClientId": f"bench-{i}", "types": ["Mailbox"], "url": f"http://127.0.0.1:{endpoint.port}{path}",
                          "keys": {"p256dh": b64url(point), "auth": b64url(auth)}}  # fmt: skip
    items = list(create.items())
    for start in range(0, count, 400):
        batch = {"create": dict(items[start : start + 400])}
        [[_, result, _]] = api(client, [["PushSubscription/set", batch, "s"]])
        if result.get("notCreated"):
            raise RuntimeError(str(result["notCreated"])[:500])
    deadline = time.monotonic() + 120
    while len(endpoint.arrivals) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(endpoint.arrivals)} verifications arrived")
        time.sleep(0.1)
    update = {}
    for path, _, body in endpoint.arrivals:
        key, auth = devices[path]
        plain = http_ece.decrypt(body, private_key=key, auth_secret=auth, version="aes128gcm")
        value = json.loads(plain)
        update[value["pushSubscriptionId"]] = {"verificationCode": value["verificationCode"]}
    endpoint.arrivals.clear()
    updates = list(update.items())
    for start in range(0, len(updates), 400):
        batch = {"update": dict(updates[start : start + 400])}
        [[_, result, _]] = api(client, [["PushSubscription/set", batch, "u"]])
        if result.get("notUpdated"):
            raise RuntimeError(str(result["notUpdated"])[:500])


def run(subscriptions: int, rounds: int, gap: float, workers: int, backend: str,
        pg_server: str) -> dict[str, Any]:  # fmt: skip
    with one_account(backend, pg_server, "jmapd_bench_webpush", USER, PASSWORD) as (
        data,
        database,
    ):
        env = jmapd_env() | {
            "JMAPD_PUSH_ALLOW_LOOPBACK": "true",
            "JMAPD_MAX_PUSH_SUBSCRIPTIONS": str(subscriptions),
            "JMAPD_MAX_OBJECTS_IN_SET": "1000",
            "JMAPD_WORKERS": str(workers),
        }
        args = ["--data", str(data)] + (["--database", database] if database else [])
        server = JmapdServer(args, env)
        endpoint = Endpoint()
        try:
            server.wait_ready()
            client = httpx.Client(base_url=server.url, auth=(USER, PASSWORD), timeout=120)
            account = client.get("/jmap/session").json()["primaryAccounts"][USING[1]]
            started = time.perf_counter()
            subscribe(client, endpoint, subscriptions)
            setup = time.perf_counter() - started
            time.sleep(gap)
            endpoint.arrivals.clear()
            firsts, lasts, rates = [], [], []
            cpu_before = cpu_seconds(server.pids())
            for i in range(rounds):
                endpoint.arrivals.clear()
                changed = time.perf_counter()
                create = {"m": {"name": f"round {i}"}}
                api(client, [["Mailbox/set", {"accountId": account, "create": create}, "m"]])
                deadline = time.monotonic() + 120
                while len(endpoint.arrivals) < subscriptions:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"round {i}: {len(endpoint.arrivals)} pushes arrived")
                    time.sleep(0.005)
                times = sorted(t for _, t, _ in endpoint.arrivals[:subscriptions])
                firsts.append(times[0] - changed)
                lasts.append(times[-1] - changed)
                rates.append(subscriptions / (times[-1] - changed))
                time.sleep(gap)
            cpu = cpu_used(cpu_before, cpu_seconds(server.pids()))
            return {
                "backend": "postgresql" if database else "sqlite",
                "workers": workers,
                "subscriptions": subscriptions,
                "rounds": rounds,
                "setup seconds": round(setup, 1),
                "deliveries/s (median)": round(statistics.median(rates)),
                "first push ms (median)": round(statistics.median(firsts) * 1000, 1),
                "last push ms (median)": round(statistics.median(lasts) * 1000, 1),
                "server CPU ms per delivery": round(cpu * 1000 / (subscriptions * rounds), 2),
            }
        finally:
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscriptions", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--gap", type=float, default=1.5, help="seconds between changes")
    server_arguments(parser)
    args = parser.parse_args()
    print(f"machine: {cpu_model()}")
    results = []
    for workers in args.workers:
        result = run(args.subscriptions, args.rounds, args.gap, workers, args.backend, args.server)
        print(result)
        results.append(result)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
