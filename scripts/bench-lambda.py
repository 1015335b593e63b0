#!/usr/bin/env python3
"""A Lambda Runtime API emulator on 127.0.0.1 that measures release binaries, and writes a markdown table.

Usage: bench-lambda.py EVENT_FILE COLD_STARTS WARM_INVOCATIONS NAME=BINARY[@EVENT_FILE][;KEY=VALUE...] [...]

A binary given its own EVENT_FILE (an SQS consumer, say) gets that event instead of the shared one, and one given
KEY=VALUE pairs gets those variables on top of the shared environment (a queue URL only that function is given
when deployed, say). In a value, {empty_dynamodb} is the URL of a stand-in DynamoDB on 127.0.0.1 that answers
every call with an empty result, for a function whose every invocation reads the store (the checkout sweep): its
invocation figures then include one local round trip.

For every binary and every cold start (round-robin over the binaries) it starts the process with AWS_LAMBDA_RUNTIME_API pointing here and
measures: init (from just before `posix_spawn` to the moment the Runtime API accepts the first connection, which
`lambda_runtime` opens to ask for its first event), the first invocation (event handed out to
response received) and warm invocations (the same, after the first), the peak resident memory (VmHWM) and
the binary's size (a script, such as the Python comparison's, has none). Medians over the cold starts; the
cold total is init plus the first invocation, per cold start. Ratios are to the first binary named. Standard library only; it serves nothing but 127.0.0.1.
"""

import http.server
import json
import os
import re
import socket
import statistics
import select
import signal
import tempfile
import sys
import threading
import time


class Emulator(http.server.ThreadingHTTPServer):
    def __init__(self, event):
        super().__init__(("127.0.0.1", 0), Handler)
        self.event = event
        self.lock = threading.Condition()
        self.next_times = []
        self.responses = []
        self.queue = []

    def handle_error(self, request, client_address):
        # A process stopped at the end of its run drops its kept-alive connection: that is not an error.
        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            super().handle_error(request, client_address)

    def hand_out(self, count):
        with self.lock:
            self.queue.extend(range(count))
            self.lock.notify_all()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Without TCP_NODELAY, Nagle's algorithm and delayed ACKs add 40 ms to every kept-alive exchange.
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def do_GET(self):
        server = self.server
        if not self.path.endswith("/runtime/invocation/next"):
            self.send_error(404)
            return
        with server.lock:
            server.next_times.append(time.perf_counter())
            while not server.queue:
                if not server.lock.wait(timeout=30):
                    # The run is over and the process is being stopped: leave its last `next` unanswered.
                    self.close_connection = True
                    return
            request_id = f"bench-{server.queue.pop(0)}-{len(server.next_times)}"
        body = server.event
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Lambda-Runtime-Aws-Request-Id", request_id)
        self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 30_000))
        self.send_header("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:bench")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        with server.lock:
            server.handed_at = time.perf_counter()

    def do_POST(self):
        server = self.server
        length = int(self.headers.get("Content-Length", "0"))
        payload = self.rfile.read(length)
        now = time.perf_counter()
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()
        with server.lock:
            server.responses.append((now - server.handed_at, self.path.endswith("/response"), payload))
            server.lock.notify_all()


class EmptyDynamoDb:
    """Answers every DynamoDB call (JSON 1.0 protocol) with an empty result: no item, an empty page.

    A raw responder, one thread per connection, that reads a request's head and body and writes one canned
    response: a keep-alive round trip from a client on this machine took 0.014 ms (median; 0.046 ms at p90),
    against 0.082 ms through `http.server`'s parsing, which the checkout sweep and the sales report (four calls
    per invocation) paid on every call. What the benchmark measures is the function's work; the store's latency is
    neither the function's nor the hello-world's (on Lambda a DynamoDB call takes milliseconds)."""

    RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.0\r\nContent-Length: 39\r\n\r\n" \
        b'{"Count":0,"Items":[],"ScannedCount":0}'

    def __init__(self):
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.server_address = self.socket.getsockname()

    def serve_forever(self):
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self.serve, args=(connection,), daemon=True).start()

    def serve(self, connection):
        buffer = b""
        with connection:
            while True:
                head_end = buffer.find(b"\r\n\r\n")
                if head_end < 0:
                    chunk = connection.recv(65536)
                    if not chunk:
                        return
                    buffer += chunk
                    continue
                length = re.search(rb"(?im)^content-length:\s*(\d+)", buffer[:head_end])
                end = head_end + 4 + (int(length.group(1)) if length else 0)
                while len(buffer) < end:
                    chunk = connection.recv(65536)
                    if not chunk:
                        return
                    buffer += chunk
                buffer = buffer[end:]
                connection.sendall(self.RESPONSE)

    def shutdown(self):
        self.socket.close()


def peak_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


# How long the machine rests before each cold start (BENCH_REST_MS, default 50). On this machine's virtual CPUs a
# process started after 10 ms or more of idleness reaches its first `next` some 0.6 ms later than one started
# while the CPUs are busy, every binary alike: the CPUs wake up. A fixed rest makes every cold start meet the same
# state, a machine at rest when the request arrives; BENCH_REST_MS=0 measures them back to back instead (the
# smaller figures, and the larger ratios).
REST_SECONDS = int(os.environ.get("BENCH_REST_MS", "50")) / 1000


def spawn(binary, env, stderr):
    """Starts `binary` with stdout discarded and stderr into the file `stderr`; returns its pid.

    `posix_spawn` (a vfork and an exec) rather than `subprocess.Popen`, whose fork of this Python process and
    handshake over a pipe no binary's init has (0.06-0.08 ms more to the hello-world's first connection, measured
    side by side): they made every init look longer by the same amount, which pulled every ratio towards 1."""
    with open(os.devnull, "wb") as devnull:
        return os.posix_spawn(binary, [binary], env, file_actions=[
            (os.POSIX_SPAWN_DUP2, devnull.fileno(), 1),
            (os.POSIX_SPAWN_DUP2, stderr.fileno(), 2),
        ])


def exited(pid):
    return os.waitpid(pid, os.WNOHANG)[0] != 0


def run_once(binary, event, warm, env):
    # BENCH_EXPECT_STATUS: every response must be an HTTP answer with this status (a real read, not a 404).
    expected_status = env.get("BENCH_EXPECT_STATUS")
    server = Emulator(event)
    child_env = dict(env, AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{server.server_address[1]}")
    stderr = tempfile.TemporaryFile()
    pid = None
    try:
        time.sleep(REST_SECONDS)
        # The first connection is accepted here, on this thread, blocked in `select` until it arrives, as the Runtime
        # API, a process of its own, would. Accepted by the HTTP server's own thread instead, it was stamped only once
        # that thread had woken up and taken the interpreter, later by the same for every binary (with Popen too, the
        # hello-world's init was 1.71 ms against 1.59 ms without either, in two runs one after the other).
        started = time.perf_counter()
        pid = spawn(binary, child_env, stderr)
        deadline = started + 30
        while not select.select([server.socket], [], [], 0.05)[0]:
            if exited(pid) or time.perf_counter() > deadline:
                stderr.seek(0)
                raise RuntimeError(f"{binary} never asked for an event: {stderr.read().decode(errors='replace')[-2000:]}")
        connection, address = server.socket.accept()
        init = time.perf_counter() - started
        # From here the HTTP server serves that connection on a thread of its own. `lambda_runtime` keeps it alive
        # for every later request; a second connection would wait unanswered and fail the run loudly.
        server.process_request(connection, address)
        durations = []
        for index in range(1 + warm):
            server.hand_out(1)
            with server.lock:
                while len(server.responses) <= index:
                    if not server.lock.wait(timeout=30):
                        raise RuntimeError(f"{binary} did not answer invocation {index}")
            duration, ok, payload = server.responses[index]
            if not ok:
                raise RuntimeError(f"{binary} reported an error: {payload[:500]!r}")
            if expected_status and json.loads(payload).get("statusCode") != int(expected_status):
                raise RuntimeError(f"{binary} answered {payload[:500]!r}, not status {expected_status}")
            durations.append(duration)
        peak = peak_kib(pid)
        return init, durations[0], statistics.median(durations[1:]) if warm else 0.0, peak
    finally:
        if pid is not None:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
        server.server_close()
        stderr.close()


def main():
    event_file, cold, warm = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    with open(event_file, "rb") as handle:
        event = handle.read()
    env = {key: value for key, value in os.environ.items()}
    empty_dynamodb = EmptyDynamoDb()
    threading.Thread(target=empty_dynamodb.serve_forever, daemon=True).start()
    empty_dynamodb_url = f"http://127.0.0.1:{empty_dynamodb.server_address[1]}"
    targets = []
    for spec in sys.argv[4:]:
        spec, *assignments = spec.split(";")
        name, binary = spec.split("=", 1)
        own_event = event
        if "@" in binary:
            binary, own_event_file = binary.split("@", 1)
            with open(own_event_file, "rb") as handle:
                own_event = handle.read()
        own_env = dict(env)
        for assignment in assignments:
            key, value = assignment.split("=", 1)
            own_env[key] = value.replace("{empty_dynamodb}", empty_dynamodb_url)
        targets.append((name, binary, own_event, own_env))
    # Round-robin: every round starts each binary once, so a change in the machine's load during the run
    # reaches every binary alike and the ratios to the hello-world stay comparable.
    runs = {name: [] for name, _, _, _ in targets}
    for _ in range(cold):
        for name, binary, own_event, own_env in targets:
            runs[name].append(run_once(binary, own_event, warm, own_env))
    empty_dynamodb.shutdown()
    rows = []
    baseline = None
    for name, binary, _, _ in targets:
        init = statistics.median(run[0] for run in runs[name]) * 1000
        first = statistics.median(run[1] for run in runs[name]) * 1000
        warm_ms = statistics.median(run[2] for run in runs[name]) * 1000
        peak = max(run[3] for run in runs[name]) / 1024
        # Cold total: init plus the first invocation, so that work moved from init into the first request gains nothing.
        total = statistics.median((run[0] + run[1]) for run in runs[name]) * 1000
        with open(binary, "rb") as handle:
            native = handle.read(4) == b"\x7fELF"
        size = f"{os.path.getsize(binary) / 1024 / 1024:.1f}" if native else "(script)"
        if baseline is None:
            baseline = (init, total)
        rows.append((name, init, init / baseline[0], first, total, total / baseline[1], warm_ms, peak, size))
    first_name = targets[0][0]
    print(f"| function | init ms (median of {cold}) | init vs {first_name} | first invocation ms | cold total ms | cold total vs {first_name} | warm invocation ms (median of {warm}) | peak memory MB | binary MB |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, init, ratio, first, total, total_ratio, warm_ms, peak, size in rows:
        print(f"| {name} | {init:.2f} | {ratio:.2f}x | {first:.2f} | {total:.2f} | {total_ratio:.2f}x | {warm_ms:.3f} | {peak:.1f} | {size} |")


if __name__ == "__main__":
    main()
