#!/usr/bin/env python3
"""fleet-peer.py LOG SOCKET...: libvirt peers that show whether a fleet
scan talks to its hosts at the same time.

Each SOCKET is a Unix socket that a qemu+unix:// URI names.  A peer accepts
one connection and never answers; it holds the connection until every
peer has one, then all close together, and libvirt's open fails at once
("End of file").  LOG gets "open NAME" lines as connections arrive and
"close NAME" lines as they are closed.

So the outcome depends only on what the scan did, never on how fast it
ran:
  - a scan that opens its hosts together gets every connection closed
    under it: each host fails with libvirt's end-of-file error, well
    within virt-dmaguard's own open deadline;
  - a scan that opens them one at a time leaves the first one waiting for
    a second that never comes while it waits: that host fails with
    virt-dmaguard's "no answer within 30 s", and only then is the next
    one opened.

Exits when every peer has served one connection, or after SAFETY seconds.
"""
import os
import socket
import sys
import threading

SAFETY = 150.0  # the longest this program runs

log_path, paths = sys.argv[1], sys.argv[2:]
cond = threading.Condition()
opened = set()


def record(what):
    with open(log_path, "a") as f:
        f.write(what + "\n")


def serve(srv, name):
    srv.settimeout(SAFETY)
    try:
        conn, _ = srv.accept()
    except socket.timeout:
        return
    with cond:
        opened.add(name)
        record("open " + name)
        cond.notify_all()
        cond.wait_for(lambda: len(opened) == len(paths), SAFETY)
        record("close " + name)
    conn.close()
    srv.close()


servers = []
for p in paths:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(p)
    s.listen(4)
    servers.append((s, os.path.basename(p)))
threads = [threading.Thread(target=serve, args=sv, daemon=True) for sv in servers]
for t in threads:
    t.start()
# Every socket listens: the caller may start the scan.
print("ready", flush=True)
for t in threads:
    t.join(SAFETY)
