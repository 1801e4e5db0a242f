"""Webhook receiver of scripts/bench's latency cells: answers every POST with
STATUS at once (HTTP/1.1, kept-open connections) and appends one line per
request to OUT_FILE: its `webhook-id` and its arrival time (wall clock,
time.time(), taken when its headers have been read), space-separated. The
script joins these lines with webhook_messages.created_at
(bench/webhook_latency_pg.sql). Standard library only.

usage: webhook_receiver.py PORT STATUS OUT_FILE
"""

import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main(argv):
    port, status, out = int(argv[1]), int(argv[2]), argv[3]
    lock = threading.Lock()
    log = open(out, "a", buffering=1)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            arrival = time.time()
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            webhook_id = self.headers.get("webhook-id") or "-"
            with lock:
                log.write(f"{webhook_id} {arrival:.6f}\n")
            self.send_response_only(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True

    def stop(*_):
        # shutdown() waits for serve_forever, which runs in this thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    server.serve_forever(poll_interval=0.2)
    with lock:
        log.close()


if __name__ == "__main__":
    main(sys.argv)
