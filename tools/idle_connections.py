#!/usr/bin/env python3
"""Hold N idle TCP connections to a running `vllmc serve` and report what they cost.

Usage: python3 tools/idle_connections.py PORT PID [N]
Prints the server's RSS and /health latency before and with N idle connections, a completion's
latency with them open, and the server's descriptors after the keep-alive timeout closed them.
"""
import os
import socket
import sys
import time
import urllib.request


def rss_mb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
    return float("nan")


def timed(url, data=None):
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    t = time.time()
    status = urllib.request.urlopen(req, timeout=20).status
    return status, (time.time() - t) * 1000


def main():
    port, pid = int(sys.argv[1]), int(sys.argv[2])
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 15000
    base = f"http://127.0.0.1:{port}"
    print(f"before: RSS {rss_mb(pid):.1f} MB, /health {timed(base + '/health')}")
    socks = []
    for i in range(n):
        try:
            socks.append(socket.create_connection(("127.0.0.1", port)))
        except OSError as e:
            print(f"connect failed after {i}: {e}")
            break
    time.sleep(1)
    print(f"{len(socks)} idle: RSS {rss_mb(pid):.1f} MB, /health {timed(base + '/health')}, "
          f"completion {timed(base + '/v1/completions', b'{\"prompt\":\"hi\",\"max_tokens\":4}')}, "
          f"server fds {len(os.listdir(f'/proc/{pid}/fd'))}")
    time.sleep(6)
    print(f"6 s later: server fds {len(os.listdir(f'/proc/{pid}/fd'))}, RSS {rss_mb(pid):.1f} MB")


if __name__ == "__main__":
    main()
