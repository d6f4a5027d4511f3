#!/usr/bin/env python3
"""Compare ASGI servers (granian, uvicorn, hypercorn) for jmapd.

For each server, one at a time, start a single-worker subprocess on a free
loopback port serving bench/bare_app.py (raw ASGI ``app`` and Starlette
``starlette_app``), drive ``POST /api`` with bench/loadgen.py at concurrency
1 and 32, and print a markdown table.

    python bench/server_choice.py                 # full run (~2.5 min)
    python bench/server_choice.py --repeat 3      # median of 3 runs per cell
    python bench/server_choice.py --check-tls     # also verify TLS + HTTP/2 + 2 workers
    python bench/server_choice.py --servers granian --apps raw -d 2 -w 0.5

The load generator runs in this process, on uvloop if importable (it only
makes the client cheaper, so that more of the 2 cores go to the server).
Optional variants: ``uvicorn-zttp`` (uvicorn's HTTP/2-capable ``--http zttp``
protocol) runs only if the ``zttp`` package is importable, ``granian-rloop`` only
if ``rloop`` is; set ZTTP_PATH / RLOOP_PATH to a directory holding it (e.g. a
``pip install --target`` dir) to add it to that server's PYTHONPATH only.
``granian-asyncio`` is granian on the stdlib loop (what you get without uvloop).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as _dt
import functools
import http.client
import importlib.metadata
import json
import os
import platform
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import loadgen  # noqa: E402

PY = sys.executable
BODY = b'{"using":["urn:ietf:params:jmap:core"],"methodCalls":[["Core/echo",{"hello":true},"c1"]]}'
APPS = {"raw": "bare_app:app", "starlette": "bare_app:starlette_app"}


# Optional variants that need a package which is not a project dependency:
# server -> (module to import, env var naming an extra PYTHONPATH dir holding it).
NEEDS = {"uvicorn-zttp": ("zttp", "ZTTP_PATH"), "granian-rloop": ("rloop", "RLOOP_PATH")}


def _server_env(name: str) -> tuple[bool, dict[str, str] | None]:
    """(usable, env) for a server; env None means inherit ours."""
    if name not in NEEDS:
        return True, None
    module, var = NEEDS[name]
    env = dict(os.environ)
    extra = os.environ.get(var, "")
    if extra:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (extra, env.get("PYTHONPATH", "")) if p)
    r = subprocess.run([PY, "-c", f"import {module}"], env=env, capture_output=True)
    return r.returncode == 0, env


# name -> function(port, target, workers, tls: (cert, key) | None) -> argv
def _granian(port, target, workers=1, tls=None, loop=None):
    argv = [
        PY,
        "-m",
        "granian",
        "--interface",
        "asgi",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        "warning",
    ]
    if loop:  # default 'auto' picks rloop > uvloop > asyncio, whichever is importable
        argv += ["--loop", loop]
    if tls:
        argv += ["--http", "auto", "--ssl-certificate", tls[0], "--ssl-keyfile", tls[1]]
    return [*argv, target]


def _uvicorn(port, target, workers=1, tls=None):
    argv = [
        PY,
        "-m",
        "uvicorn",
        target,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    if tls:
        argv += ["--ssl-certfile", tls[0], "--ssl-keyfile", tls[1]]
    return argv


def _uvicorn_zttp(port, target, workers=1, tls=None):
    argv = [
        PY,
        "-m",
        "uvicorn",
        target,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--loop",
        "uvloop",
        "--http",
        "zttp",
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    if tls:
        argv += ["--http2", "--ssl-certfile", tls[0], "--ssl-keyfile", tls[1]]
    return argv


def _hypercorn(port, target, workers=1, tls=None):
    argv = [
        PY,
        "-m",
        "hypercorn",
        target,
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--worker-class",
        "uvloop",
        "--log-level",
        "warning",
    ]
    if tls:
        argv += ["--certfile", tls[0], "--keyfile", tls[1]]
    return argv


def _granian_api(port, target, workers=1, tls=None):
    """granian started through its Python API (``from granian import Granian``)."""
    kw = [
        "address='127.0.0.1'",
        f"port={port}",
        "interface=Interfaces.ASGI",
        f"workers={workers}",
        "log_level=LogLevels.warning",
    ]
    if tls:
        kw += ["http=HTTPModes.auto", f"ssl_cert=Path({tls[0]!r})", f"ssl_key=Path({tls[1]!r})"]
    code = (
        "from pathlib import Path\n"
        "from granian import Granian\n"
        "from granian.constants import Interfaces, HTTPModes\n"
        "from granian.log import LogLevels\n"
        f"Granian({target!r}, {', '.join(kw)}).serve()\n"
    )
    return [PY, "-c", code]


SERVERS = {
    "granian": _granian,
    "uvicorn": _uvicorn,
    "hypercorn": _hypercorn,
    "uvicorn-zttp": _uvicorn_zttp,
    "granian-asyncio": functools.partial(_granian, loop="asyncio"),
    "granian-rloop": functools.partial(_granian, loop="rloop"),
}
DEFAULT_SERVERS = ["granian", "uvicorn", "hypercorn"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProc:
    def __init__(self, name: str, argv: list[str], port: int, env=None, tls: bool = False):
        self.name, self.argv, self.port, self.tls = name, argv, port, tls
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        # Own session so that the server's worker processes can be cleaned up as a group.
        self.proc = subprocess.Popen(
            argv,
            cwd=HERE,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-3000:]

    def wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.proc.returncode}:\n{self.output()}"
                )
            try:
                if self.tls:
                    ctx = ssl._create_unverified_context()
                    conn = http.client.HTTPSConnection(
                        "127.0.0.1", self.port, timeout=2, context=ctx
                    )
                else:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request(
                    "POST", "/api", body=BODY, headers={"Content-Type": "application/json"}
                )
                resp = conn.getresponse()
                data = resp.read()
                conn.close()
                if resp.status == 200 and b"methodResponses" in data:
                    return
                last = f"status {resp.status}"
            except OSError as e:
                last = repr(e)
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready after {timeout}s ({last}):\n{self.output()}")

    def children(self) -> list[int]:
        out = subprocess.run(
            ["ps", "-o", "pid=", "--ppid", str(self.proc.pid)], capture_output=True, text=True
        )
        return [int(x) for x in out.stdout.split()]

    def descendants(self) -> list[int]:
        """All processes in the session we started (server, workers, helpers)."""
        out = subprocess.run(
            ["ps", "-o", "pid=", "--sid", str(self.proc.pid)], capture_output=True, text=True
        )
        return [int(x) for x in out.stdout.split() if int(x) != self.proc.pid]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.proc.wait(5)
        # Kill any straggler in the session/process group we created (pgid == our child's pid).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        if self.proc.poll() is None:
            self.proc.wait(5)
        self.log.close()


_CLK_TCK = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pids: list[int]) -> float:
    """utime+stime (all threads) of the given processes, in seconds."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
        except (OSError, IndexError, ValueError):
            pass
    return total / _CLK_TCK


def _system_busy_seconds() -> float:
    """Busy CPU time of the whole machine (all CPUs), in seconds, from /proc/stat."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
    except OSError:
        return float("nan")
    idle = v[3] + (v[4] if len(v) > 4 else 0)  # idle + iowait
    guest = sum(v[8:10]) if len(v) > 9 else 0  # already counted in user/nice
    return (sum(v) - idle - guest) / _CLK_TCK


def _run_load(
    url: str, concurrency: int, duration: float, warmup: float, pids: list[int]
) -> tuple[loadgen.Result, dict[str, float]]:
    """Run loadgen; also return CPU use (in cores) of server, client and everything else
    on the machine during the measured window."""
    cpu: dict[str, float] = {}

    async def sample() -> None:
        await asyncio.sleep(warmup)
        t = time.perf_counter()
        s, c, a = _cpu_seconds(pids), sum(os.times()[:2]), _system_busy_seconds()
        await asyncio.sleep(duration)
        dt = time.perf_counter() - t
        cpu["server"] = (_cpu_seconds(pids) - s) / dt
        cpu["client"] = (sum(os.times()[:2]) - c) / dt
        cpu["other"] = max(0.0, (_system_busy_seconds() - a) / dt - cpu["server"] - cpu["client"])

    async def go() -> loadgen.Result:
        sampler = asyncio.ensure_future(sample())
        res = await loadgen.run(
            url,
            method="POST",
            body=BODY,
            headers={"Content-Type": "application/json"},
            concurrency=concurrency,
            duration=duration,
            warmup=warmup,
        )
        await sampler
        return res

    try:
        import uvloop
    except ImportError:
        res = asyncio.run(go())
    else:
        res = uvloop.run(go())
    return res, cpu


def _wait_quiet(max_other: float, max_wait: float) -> None:
    """Wait (up to max_wait s) until the machine is idle apart from us (busy < max_other cores)."""
    deadline = time.monotonic() + max_wait
    while time.monotonic() < deadline:
        a, t = _system_busy_seconds(), time.perf_counter()
        time.sleep(0.5)
        if (_system_busy_seconds() - a) / (time.perf_counter() - t) < max_other:
            return


def _run_quiet(url, c, duration, warmup, pids, max_other, tries=6, max_wait=60.0):
    """_run_load, retried while other processes used more than max_other cores meanwhile."""
    best = None
    for _ in range(tries):
        _wait_quiet(max_other, max_wait)
        res, cpu = _run_load(url, c, duration, warmup, pids)
        if cpu.get("other", 0.0) <= max_other:
            return res, cpu
        print(f"#   discarded run (other load {cpu['other']:.2f} cores), retrying", file=sys.stderr)
        if best is None or cpu["other"] < best[1]["other"]:
            best = (res, cpu)
    return best


def bench(
    servers, apps, concurrencies, duration, warmup, repeat, max_other=0.25, workers=1
) -> list[dict]:
    """Each round starts every (server, app) in turn, one at a time, and runs every
    concurrency once; rounds interleave so that noise from other load on the machine
    is spread over all servers. The median round (by req/s) is reported per cell."""
    envs = {name: _server_env(name) for name in servers}
    cells: dict[tuple[str, str, int], list] = {}
    argvs: dict[tuple[str, str], str] = {}
    for rnd in range(repeat):
        for name in servers:
            usable, env = envs[name]
            if not usable:
                module, var = NEEDS[name]
                print(f"# skipping {name}: {module} not importable (set {var})", file=sys.stderr)
                continue
            for app_name in apps:
                port = free_port()
                argv = SERVERS[name](port, APPS[app_name], workers=workers)
                argvs[name, app_name] = " ".join(argv[1:])
                srv = ServerProc(name, argv, port, env=env)
                try:
                    try:
                        srv.wait_ready()
                    except RuntimeError as e:  # report and go on with the other servers
                        print(f"# {name} {app_name}: FAILED TO START: {e}", file=sys.stderr)
                        continue
                    url = f"http://127.0.0.1:{port}/api"
                    time.sleep(0.5)  # let worker processes settle
                    pids = [srv.proc.pid, *srv.descendants()]
                    for c in concurrencies:
                        res, cpu = _run_quiet(url, c, duration, warmup, pids, max_other)
                        cells.setdefault((name, app_name, c), []).append((res, cpu))
                        print(
                            f"# round {rnd + 1}/{repeat} {name:12s} {app_name:9s} c={c:<3d} "
                            f"rps={res.rps:9.1f} p50={res.p50_ms:.3f} p99={res.p99_ms:.3f} "
                            f"errors={res.errors} cpu server={cpu.get('server', 0):.2f} "
                            f"client={cpu.get('client', 0):.2f} other={cpu.get('other', 0):.2f}",
                            file=sys.stderr,
                        )
                finally:
                    srv.stop()
    rows = []
    for (name, app_name, c), runs in cells.items():
        runs.sort(key=lambda r: r[0].rps)
        med, cpu = runs[len(runs) // 2]
        server_cpu = cpu.get("server", float("nan"))
        rows.append(
            {
                "server": name,
                "workers": workers,
                "app": app_name,
                "concurrency": c,
                "rps": med.rps,
                "p50_ms": med.p50_ms,
                "p99_ms": med.p99_ms,
                "requests": med.requests,
                "errors": sum(r[0].errors for r in runs),
                "rps_all": [round(r[0].rps, 1) for r in runs],
                "server_cpu_cores": server_cpu,
                "client_cpu_cores": cpu.get("client", float("nan")),
                "other_cpu_cores_max": max(r[1].get("other", float("nan")) for r in runs),
                "server_cpu_us_per_req": server_cpu * 1e6 / med.rps if med.rps else None,
                "argv": argvs[name, app_name],
            }
        )
    order = {n: i for i, n in enumerate(servers)}
    rows.sort(key=lambda r: (order[r["server"]], apps.index(r["app"]), r["concurrency"]))
    return rows


def markdown_table(rows: list[dict]) -> str:
    out = [
        "| server | workers | app | concurrency | req/s | p50 ms | p99 ms | errors "
        "| server CPU (cores) | server CPU µs/req | other load (cores, max) | req/s of each run |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        out.append(
            f"| {r['server']} | {r['workers']} | {r['app']} | {r['concurrency']} | "
            f"{r['rps']:.0f} | "
            f"{r['p50_ms']:.3f} | {r['p99_ms']:.3f} | {r['errors']} | "
            f"{r['server_cpu_cores']:.2f} | {r['server_cpu_us_per_req'] or float('nan'):.0f} | "
            f"{r['other_cpu_cores_max']:.2f} | "
            f"{', '.join(f'{x:.0f}' for x in r['rps_all'])} |"
        )
    return "\n".join(out)


# --- TLS / HTTP/2 / multi-worker check -------------------------------------------------


def _make_cert(d: Path) -> tuple[str, str]:
    cert, key = d / "cert.pem", d / "key.pem"
    # OpenSSL 3 writes the key as PKCS#8 ("BEGIN PRIVATE KEY"), which granian requires.
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return str(cert), str(key)


def check_tls(servers: list[str], workers: int = 2) -> list[dict]:
    import httpx  # only needed for this check (with h2 for HTTP/2)

    rows = []
    with tempfile.TemporaryDirectory(dir=HERE, prefix=".tls-") as d:
        tls = _make_cert(Path(d))
        for name in servers:
            usable, env = _server_env(name)
            if not usable:
                continue
            port = free_port()
            argv = SERVERS[name](port, APPS["raw"], workers=workers, tls=tls)
            srv = ServerProc(name, argv, port, env=env, tls=True)
            shown = " ".join(argv[1:]).replace(d, "$TLS_DIR").replace("\n", "; ")
            row = {"server": name, "workers_flag": workers, "argv": shown}
            try:
                srv.wait_ready()
                time.sleep(0.5)  # let all workers come up
                row["child_processes"] = len(srv.children())
                with httpx.Client(http2=True, verify=False) as client:
                    r = client.post(f"https://127.0.0.1:{port}/api", content=BODY)
                    row["negotiated"] = r.http_version
                    row["status"] = r.status_code
            except Exception as e:  # report, don't abort the other checks
                row["error"] = f"{type(e).__name__}: {e}"[:500]
            finally:
                srv.stop()
            print(
                f"# tls {name:12s} {row.get('negotiated')} status={row.get('status')} "
                f"children={row.get('child_processes')} {row.get('error', '')}",
                file=sys.stderr,
            )
            rows.append(row)
    return rows


def machine_info() -> dict:
    model = ""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    versions: dict[str, str | None] = {}
    for pkg in ("granian", "uvicorn", "hypercorn", "starlette", "uvloop", "httptools"):
        try:
            versions[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            versions[pkg] = None
    for name, (module, _var) in NEEDS.items():  # optional extras, maybe on an extra path
        usable, env = _server_env(name)
        versions[module] = None
        if usable:
            code = f"from importlib.metadata import version; print(version({module!r}))"
            out = subprocess.run([PY, "-c", code], env=env, capture_output=True, text=True)
            versions[module] = out.stdout.strip() or "importable"
    return {
        "date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--servers", nargs="+", default=DEFAULT_SERVERS, choices=[*SERVERS, "granian-api"]
    )
    p.add_argument("--apps", nargs="+", default=list(APPS), choices=list(APPS))
    p.add_argument("-c", "--concurrency", nargs="+", type=int, default=[1, 32])
    p.add_argument("-d", "--duration", type=float, default=5.0)
    p.add_argument("-w", "--warmup", type=float, default=1.0)
    p.add_argument(
        "--repeat", type=int, default=1, help="runs per cell; the median (by req/s) is reported"
    )
    p.add_argument(
        "--check-tls", action="store_true", help="also verify TLS, HTTP/2 (ALPN) and --workers 2"
    )
    p.add_argument("--tls-only", action="store_true", help="only the TLS/HTTP/2 check")
    p.add_argument(
        "--max-other-load",
        type=float,
        default=0.25,
        help="retry a run if other processes used more than this many cores during it "
        "(default 0.25; use a large value to disable on a busy machine)",
    )
    p.add_argument("--workers", type=int, default=1, help="worker processes per server")
    p.add_argument("--json", type=Path, help="write raw results + machine info as JSON here")
    a = p.parse_args(argv)

    SERVERS["granian-api"] = _granian_api
    info = machine_info()
    print(
        f"# {info['date']}  {info['cpus']} CPUs  {info['cpu_model']}  Python {info['python']}",
        file=sys.stderr,
    )
    print(f"# {info['versions']}", file=sys.stderr)
    rows = (
        []
        if a.tls_only
        else bench(
            a.servers,
            a.apps,
            a.concurrency,
            a.duration,
            a.warmup,
            a.repeat,
            a.max_other_load,
            a.workers,
        )
    )
    tls_rows = []
    if a.check_tls or a.tls_only:
        tls_rows = check_tls([*a.servers, "granian-api"] if "granian" in a.servers else a.servers)
    if rows:
        print(markdown_table(rows))
    if tls_rows:
        print()
        print("| server (TLS, workers=2) | negotiated | child processes | command |")
        print("|---|---|---:|---|")
        for r in tls_rows:
            neg = r.get("negotiated") or r.get("error", "?")
            print(f"| {r['server']} | {neg} | {r.get('child_processes', '?')} | `{r['argv']}` |")
    if a.json:
        a.json.write_text(json.dumps({"machine": info, "results": rows, "tls": tls_rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
