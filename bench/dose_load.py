#!/usr/bin/env python3
"""Steady-rate load on the dose endpoint: POST /api/v1/doses at a fixed rate on loopback.

Usage: bench/dose_load.py URL USERNAME PASSWORD [--rate 200] [--seconds 10] [--clients 2500]
       bench/dose_load.py URL USERNAME PASSWORD --clients 12000 --setup-only UICS_FILE

With --setup-only it only creates the clients and their orders and writes their UICs, one per
line, for bench/capacity.sh (whose load comes from wrk, not from this script).

Sets up its own site of clients with dose orders through the API (as a prescriber), then
records one dose per client at the given rate from several keep-alive connections, and prints
p50/p90/p99/max latency and the achieved rate. Only talks to the URL it is given (loopback).
"""
import argparse, http.client, json, threading, time, urllib.parse

def conn(url):
    u = urllib.parse.urlparse(url)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=30)

def call(c, method, path, token=None, body=None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = "Bearer " + token
    c.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
    r = c.getresponse()
    data = r.read()
    return r.status, (json.loads(data) if data else None)

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url"); ap.add_argument("username"); ap.add_argument("password")
    ap.add_argument("--nurse", default=None)
    ap.add_argument("--rate", type=float, default=200); ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--clients", type=int, default=2500); ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--prefix", default="BN")
    ap.add_argument("--setup-only", default=None, metavar="UICS_FILE")
    a = ap.parse_args()
    c = conn(a.url)
    s, login = call(c, "POST", "/api/v1/auth/login", body={"username": a.username, "password": a.password})
    assert s == 200, login
    tok = login["token"]
    today = time.strftime("%Y-%m-%d")
    t0 = time.time()
    uics = []
    for i in range(a.clients):
        uic = f"{a.prefix}-{i:05d}"
        s, cl = call(c, "POST", "/api/v1/clients", tok, {"uic": uic})
        if s == 409:
            uics.append(uic); continue
        assert s == 201, cl
        s, o = call(c, "POST", f"/api/v1/clients/{cl['id']}/orders", tok, {"kind": "induction", "start": cl["enrolled_on"], "mg": 60})
        assert s == 201, o
        uics.append(uic)
    print(f"setup: {len(uics)} clients with orders in {time.time()-t0:.1f}s")
    if a.setup_only:
        with open(a.setup_only, "w") as f:
            f.write("\n".join(uics) + "\n")
        return
    if a.nurse:
        s, login = call(c, "POST", "/api/v1/auth/login", body={"username": a.nurse, "password": a.password})
        tok = login["token"]
    total = min(int(a.rate * a.seconds), len(uics))
    interval = 1.0 / a.rate
    lat, codes, lock = [], {}, threading.Lock()
    start = time.perf_counter() + 0.2
    def worker(k):
        cc = conn(a.url)
        for n in range(k, total, a.threads):
            due = start + n * interval
            d = due - time.perf_counter()
            if d > 0:
                time.sleep(d)
            t = time.perf_counter()
            s, _ = call(cc, "POST", "/api/v1/doses", tok, {"uic": uics[n]})
            # Latency from the scheduled send time: a slow server delays later requests too.
            el = time.perf_counter() - due
            with lock:
                lat.append(el); codes[s] = codes.get(s, 0) + 1
    ts = [threading.Thread(target=worker, args=(k,)) for k in range(a.threads)]
    for t in ts: t.start()
    for t in ts: t.join()
    wall = time.perf_counter() - start
    lat.sort()
    pct = lambda p: lat[min(len(lat)-1, int(p/100*len(lat)))] * 1000
    print(f"requests {len(lat)} in {wall:.2f}s = {len(lat)/wall:.1f}/s, status {codes}")
    print(f"latency ms: p50 {pct(50):.2f}  p90 {pct(90):.2f}  p99 {pct(99):.2f}  max {lat[-1]*1000:.2f}")

main()
