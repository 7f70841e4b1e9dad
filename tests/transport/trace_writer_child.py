"""Child process for the SIGKILL test: writes trace records with flush_every=1 until killed.

Usage: python3 trace_writer_child.py PATH N — prints "ready" once N records are on disk,
then keeps writing (at most LIMIT records, so it ends by itself if nobody kills it).
"""

from __future__ import annotations

import sys

from transport.trace import TraceWriter

LIMIT = 5_000_000


def main() -> None:
    path, n = sys.argv[1], int(sys.argv[2])
    with TraceWriter(path, {"child": True, "n": n}, flush_every=1) as w:
        for i in range(LIMIT):
            w.record(
                t=i * 10,
                src="hw",
                dst="guest",
                kind="mem",
                body={
                    "agent": "hw",
                    "addr": 0x4000_0000 + 64 * i,
                    "size": 64,
                    "write": True,
                    "data": bytes([i & 0xFF]) * 64,
                },
                why="its_send_mapc",
            )
            if i + 1 == n:
                print("ready", flush=True)


if __name__ == "__main__":
    main()
