#!/usr/bin/env python3
"""Fill a geecache node's cache with N values of S bytes and report VmRSS against cache bytes.

usage: measure-rss.py BINARY VALUE_BYTES FILL_MIB CACHE_BUDGET [CHURN_SECONDS [POLICY|OPTIONS]]

Prints one markdown row: value size, items, cache bytes, evictions, VmRSS before and after
the fill, RSS growth / cache bytes, RSS / cache bytes. See docs/operations.md, "Sizing".

With CHURN_SECONDS, the fill is followed by that long of reads of files drawn uniformly at
random (seeded), four connections, so that a cache smaller than the files keeps evicting and
loading; VmRSS "after" is read when the churn ends, and the server's CPU time per churn
request (user + system, from /proc/PID/stat) is printed to stderr, so that allocator settings
can be compared on CPU as well as memory. Standard error also gets the resident set split into
anonymous memory (the heap: what the cache and the allocator hold) and file-backed pages (the
binary's code), and the server's thread count (each thread may have an allocator arena).
POLICY is the group's `policy=` (default: the server's default); OPTIONS, any group options,
e.g. `policy=s3fifo,charge=memory`.
"""
import http.client, os, random, re, subprocess, sys, threading, time

binary, size, fill_mib, budget = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
churn = float(sys.argv[5]) if len(sys.argv) > 5 else 0
# A bare word is a policy (`s3fifo`); anything with `=` is a list of group options as written
# after the source (`policy=s3fifo,charge=memory`).
options = sys.argv[6] if len(sys.argv) > 6 else ""
policy = "" if not options else f",{options}" if "=" in options else f",policy={options}"
count = fill_mib * (1 << 20) // size
data = f"/tmp/rss/data-{size}-{count}"
if not os.path.isdir(data):
    os.makedirs(data)
    for i in range(count):
        with open(f"{data}/{i:07d}", "wb") as f:
            f.write(os.urandom(size))

proc = subprocess.Popen(
    [binary, "serve", "--listen", "127.0.0.1:0", "--log-level", "warn",
     "--group", f"files=dir:{data},cache={budget}{policy}"],
    stdout=subprocess.PIPE, text=True)
line = proc.stdout.readline()
host, port = re.match(r"listening on http://(.+):(\d+)", line).groups()

def rss_kib():
    with open(f"/proc/{proc.pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+) kB", f.read()).group(1))

def get(conn, path):
    conn.request("GET", path)
    r = conn.getresponse()
    body = r.read()
    return r.status, body

base = rss_kib()
def worker(ids):
    conn = http.client.HTTPConnection(host, int(port))
    for i in ids:
        status, _ = get(conn, f"/api/files/{i:07d}")
        assert status == 200, status
threads = [threading.Thread(target=worker, args=(range(t, count, 4),)) for t in range(4)]
for t in threads: t.start()
for t in threads: t.join()

def cpu_seconds():
    with open(f"/proc/{proc.pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime

requests = [0] * 4
def churner(seed, until):
    rng = random.Random(seed)
    conn = http.client.HTTPConnection(host, int(port))
    while time.monotonic() < until:
        status, _ = get(conn, f"/api/files/{rng.randrange(count):07d}")
        assert status == 200, status
        requests[seed] += 1
if churn > 0:
    cpu_before = cpu_seconds()
    until = time.monotonic() + churn
    threads = [threading.Thread(target=churner, args=(t, until)) for t in range(4)]
    for t in threads: t.start()
    for t in threads: t.join()
    done = sum(requests)
    print(f"churn: {done} requests, server CPU {1e6 * (cpu_seconds() - cpu_before) / max(done, 1):.1f} us/request",
          file=sys.stderr)

conn = http.client.HTTPConnection(host, int(port))
_, metrics = get(conn, "/metrics")
metrics = metrics.decode()
cached = sum(float(m) for m in re.findall(r'^geecache_cache_bytes\{group="files",cache="\w+"\} (\S+)', metrics, re.M))
items = sum(float(m) for m in re.findall(r'^geecache_cache_items\{group="files",cache="\w+"\} (\S+)', metrics, re.M))
evictions = sum(float(m) for m in re.findall(r'^geecache_cache_evictions_total\{group="files",cache="\w+"\} (\S+)', metrics, re.M))
after = rss_kib()
with open(f"/proc/{proc.pid}/status") as f:
    status = dict(re.findall(r"^(\w+):\s+(\d+)", f.read(), re.M))
print(f"RssAnon {int(status['RssAnon']) / 1024:.1f} MiB, RssFile {int(status['RssFile']) / 1024:.1f} MiB, "
      f"{status['Threads']} threads, {int(items)} entries", file=sys.stderr)
proc.terminate(); proc.wait(timeout=30)
mib = lambda kib: kib / 1024
print(f"| {size} B | {int(items)} | {cached/2**20:.1f} MiB | {int(evictions)} | {mib(base):.1f} MiB | {mib(after):.1f} MiB | "
      f"{(after-base)*1024/cached:.2f} | {after*1024/cached:.2f} |")
