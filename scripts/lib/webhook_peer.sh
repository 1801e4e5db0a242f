# shellcheck shell=bash
# The webhook endpoints of scripts/bench's webhook cells, as throwaway
# processes on free loopback ports. Source after scripts/lib/pg.sh.
#   webhook_nginx_start STATUS      one nginx worker answering STATUS to every
#                                   request at once (`return STATUS;`, no
#                                   access log): the cheap endpoint of the
#                                   throughput cells (204) and the failing one
#                                   (500); sets WEBHOOK_NGINX_URL and
#                                   WEBHOOK_NGINX_PID
#   webhook_nginx_stop
#   webhook_recorder_start FILE     bench/webhook_receiver.py answering 200 and
#                                   appending `webhook-id arrival` to FILE;
#                                   sets WEBHOOK_RECORDER_URL and
#                                   WEBHOOK_RECORDER_PID
#   webhook_recorder_stop

WEBHOOK_NGINX_DIR=""
WEBHOOK_NGINX_PID=""
WEBHOOK_RECORDER_PID=""

# webhook_wait_port PORT PID WHAT: the port accepts connections (10 s at most).
webhook_wait_port() {
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    kill -0 "$2" 2>/dev/null || break
    sleep 0.1
  done
  echo "the webhook endpoint ($3) did not start" >&2
  return 1
}

# pg_free_port's port may still be taken when the endpoint binds it (another
# process's outgoing connection can hold it): each start tries 5 ports.
webhook_nginx_start() { pg_port_tries webhook_nginx_start_once webhook_nginx_stop "$1"; }

webhook_nginx_start_once() {
  local status=$1 port
  port=$(pg_free_port)
  WEBHOOK_NGINX_DIR=$(mktemp -d /tmp/fpr-webhook-nginx.XXXXXX)
  cat >"$WEBHOOK_NGINX_DIR/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
pid $WEBHOOK_NGINX_DIR/nginx.pid;
error_log $WEBHOOK_NGINX_DIR/nginx-error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $WEBHOOK_NGINX_DIR/client_body;
    fastcgi_temp_path $WEBHOOK_NGINX_DIR/fastcgi;
    proxy_temp_path $WEBHOOK_NGINX_DIR/proxy;
    uwsgi_temp_path $WEBHOOK_NGINX_DIR/uwsgi;
    scgi_temp_path $WEBHOOK_NGINX_DIR/scgi;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$port;
        location / { return $status; }
    }
}
NGINX
  /usr/sbin/nginx -p "$WEBHOOK_NGINX_DIR" -c "$WEBHOOK_NGINX_DIR/nginx.conf" \
    -e "$WEBHOOK_NGINX_DIR/nginx-error.log" >"$WEBHOOK_NGINX_DIR/nginx.out" 2>&1 &
  WEBHOOK_NGINX_PID=$!
  # shellcheck disable=SC2034  # read by scripts/bench
  WEBHOOK_NGINX_URL="http://127.0.0.1:$port/hook"
  webhook_wait_port "$port" "$WEBHOOK_NGINX_PID" "nginx, $status" || {
    cat "$WEBHOOK_NGINX_DIR"/nginx.out "$WEBHOOK_NGINX_DIR"/nginx-error.log >&2 2>/dev/null || true
    return 1
  }
}

webhook_nginx_stop() {
  if [ -n "$WEBHOOK_NGINX_PID" ] && kill -0 "$WEBHOOK_NGINX_PID" 2>/dev/null; then
    kill -QUIT "$WEBHOOK_NGINX_PID" 2>/dev/null || true
    wait "$WEBHOOK_NGINX_PID" 2>/dev/null || true
  fi
  WEBHOOK_NGINX_PID=""
  [ -n "$WEBHOOK_NGINX_DIR" ] && rm -rf "$WEBHOOK_NGINX_DIR"
  WEBHOOK_NGINX_DIR=""
}

webhook_recorder_start() { pg_port_tries webhook_recorder_start_once webhook_recorder_stop "$1"; }

webhook_recorder_start_once() {
  local file=$1 port
  port=$(pg_free_port)
  : >"$file"
  python3 bench/webhook_receiver.py "$port" 200 "$file" &
  WEBHOOK_RECORDER_PID=$!
  # shellcheck disable=SC2034  # read by scripts/bench
  WEBHOOK_RECORDER_URL="http://127.0.0.1:$port/hook"
  webhook_wait_port "$port" "$WEBHOOK_RECORDER_PID" "bench/webhook_receiver.py"
}

webhook_recorder_stop() {
  if [ -n "$WEBHOOK_RECORDER_PID" ] && kill -0 "$WEBHOOK_RECORDER_PID" 2>/dev/null; then
    kill -TERM "$WEBHOOK_RECORDER_PID" 2>/dev/null || true
    wait "$WEBHOOK_RECORDER_PID" 2>/dev/null || true
  fi
  WEBHOOK_RECORDER_PID=""
}
