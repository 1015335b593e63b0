#!/usr/bin/env python3
"""Loads a page in headless Chromium and reports, as one JSON object, every console error or warning, uncaught
exception and failed load, and how many elements match a CSS selector once the page has rendered.

Usage: page_check.py CHROMIUM URL SELECTOR MIN_COUNT

It speaks the DevTools protocol over `--remote-debugging-pipe` (file descriptors 3 and 4), so it needs nothing
but the standard library and opens no port. `tests/it/api_contract.rs` runs it and asserts on the report.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

chromium, url, selector, min_count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
to_browser_read, to_browser_write = os.pipe()
from_browser_read, from_browser_write = os.pipe()


def browser_fds():
    # In the child: the browser reads commands on fd 3 and writes answers on fd 4.
    read, write = os.dup(to_browser_read), os.dup(from_browser_write)
    os.dup2(read, 3)
    os.dup2(write, 4)


profile = tempfile.mkdtemp(prefix="storefront-chromium-")
browser = subprocess.Popen(
    [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe", "--no-first-run",
     "--no-default-browser-check", "--disable-background-networking", f"--user-data-dir={profile}", "about:blank"],
    close_fds=False, preexec_fn=browser_fds, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
os.close(to_browser_read)
os.close(from_browser_write)

pending = b""
last_id = 0
problems = []
requests = {}


def send(method, params=None, session=None):
    global last_id
    last_id += 1
    message = {"id": last_id, "method": method, "params": params or {}}
    if session:
        message["sessionId"] = session
    os.write(to_browser_write, json.dumps(message).encode() + b"\0")
    return last_id


def receive():
    global pending
    while b"\0" not in pending:
        chunk = os.read(from_browser_read, 1 << 16)
        if not chunk:
            raise SystemExit("Chromium closed the DevTools pipe")
        pending += chunk
    raw, pending = pending.split(b"\0", 1)
    return json.loads(raw)


def note(message):
    method, params = message.get("method"), message.get("params", {})
    if method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert", "warning"):
        text = " ".join(str(arg.get("value", arg.get("description"))) for arg in params["args"])
        problems.append(f"console.{params['type']}: {text}")
    elif method == "Runtime.exceptionThrown":
        details = params["exceptionDetails"]
        problems.append("exception: " + details.get("exception", {}).get("description", details.get("text", "")))
    elif method == "Log.entryAdded" and params["entry"]["level"] in ("error", "warning"):
        entry = params["entry"]
        problems.append(f"log.{entry['level']}: {entry['text']} {entry.get('url', '')}")
    elif method == "Network.requestWillBeSent":
        requests[params["requestId"]] = params["request"]["url"]
    elif method == "Network.loadingFailed":
        problems.append(f"failed load: {requests.get(params['requestId'], '?')} ({params.get('errorText')})")
    elif method == "Network.responseReceived" and params["response"]["status"] >= 400:
        problems.append(f"HTTP {params['response']['status']}: {params['response']['url']}")


def call(method, params=None, session=None):
    wanted = send(method, params, session)
    while True:
        message = receive()
        note(message)
        if message.get("id") == wanted:
            if "error" in message:
                raise SystemExit(f"{method}: {message['error']}")
            return message.get("result", {})


report = {"url": url, "selector": selector}
try:
    target = call("Target.createTarget", {"url": "about:blank"})
    session = call("Target.attachToTarget", {"targetId": target["targetId"], "flatten": True})["sessionId"]
    for domain in ("Runtime.enable", "Log.enable", "Page.enable", "Network.enable"):
        call(domain, session=session)
    call("Page.navigate", {"url": url}, session=session)
    count = 0
    deadline = time.time() + 30
    while time.time() < deadline:
        time.sleep(0.25)
        result = call("Runtime.evaluate", {"expression": f"document.querySelectorAll({json.dumps(selector)}).length", "returnByValue": True}, session=session)
        count = result["result"].get("value", 0)
        if count >= min_count:
            # Let late errors (a failed load after rendering) arrive before reporting.
            time.sleep(1.0)
            call("Runtime.evaluate", {"expression": "1"}, session=session)
            break
    title = call("Runtime.evaluate", {"expression": "document.title", "returnByValue": True}, session=session)
    report.update({"count": count, "title": title["result"].get("value"), "problems": problems})
finally:
    try:
        send("Browser.close")
    except OSError:
        pass
    try:
        browser.wait(10)
    except subprocess.TimeoutExpired:
        browser.kill()
        browser.wait()
    # The browser's profile (some megabytes of caches) is this run's alone.
    shutil.rmtree(profile, ignore_errors=True)
print(json.dumps(report))
