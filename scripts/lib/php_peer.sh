# The PHP peer of scripts/bench (bench/peer-php/): nginx + php-fpm as
# throwaway processes on a free loopback port, with their configuration
# generated into a temporary directory from bench/peer-php/*.conf.in.
# Source after scripts/lib/pg.sh and scripts/lib/bench_deps.sh.
#   php_peer_start DSN SECRET MERCHANT_ID   sets PHP_PEER_URL (the result URL),
#                                           PHP_PEER_FPM_PID and PHP_PEER_NGINX_PID
#                                           (the masters, in the foreground: the
#                                           roots of bench/cpu.py's process groups)
#   php_peer_stop

PHP_PEER_DIR=""
PHP_PEER_NGINX_PID=""
PHP_PEER_FPM_PID=""

# pg_free_port's port may be taken by the time nginx binds it (seen in a
# scripts/bench run: "bind() ... Address already in use"): 5 tries, each on
# a new port.
php_peer_start() { pg_port_tries php_peer_start_once php_peer_stop "$@"; }

php_peer_start_once() {
  local dsn=$1 secret=$2 merchant=$3 port user root fpm
  port=$(pg_free_port)
  root=$(cd bench/peer-php && pwd)
  user=$(id -un)
  fpm=$(bench_php_fpm_bin)
  PHP_PEER_DIR=$(mktemp -d /tmp/fpr-php-peer.XXXXXX)
  chmod 755 "$PHP_PEER_DIR"
  local fill=(-e "s|@DIR@|$PHP_PEER_DIR|g" -e "s|@PORT@|$port|g" -e "s|@ROOT@|$root|g"
              -e "s|@USER@|$user|g" -e "s|@DSN@|$dsn|g" -e "s|@SECRET@|$secret|g"
              -e "s|@MERCHANT@|$merchant|g")
  sed "${fill[@]}" bench/peer-php/nginx.conf.in >"$PHP_PEER_DIR/nginx.conf"
  sed "${fill[@]}" bench/peer-php/php-fpm.conf.in >"$PHP_PEER_DIR/php-fpm.conf"
  local as_root=()
  [ "$(id -u)" = 0 ] && as_root=(--allow-to-run-as-root)
  "$fpm" --nodaemonize "${as_root[@]}" --fpm-config "$PHP_PEER_DIR/php-fpm.conf" \
    -d opcache.enable=1 -d opcache.validate_timestamps=0 -d display_errors=0 \
    >"$PHP_PEER_DIR/php-fpm.out" 2>&1 &
  PHP_PEER_FPM_PID=$!
  /usr/sbin/nginx -p "$PHP_PEER_DIR" -c "$PHP_PEER_DIR/nginx.conf" -e "$PHP_PEER_DIR/nginx-error.log" \
    >"$PHP_PEER_DIR/nginx.out" 2>&1 &
  PHP_PEER_NGINX_PID=$!
  PHP_PEER_URL="http://127.0.0.1:$port/result.php"
  for _ in $(seq 1 100); do
    if [ -S "$PHP_PEER_DIR/php-fpm.sock" ] && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  echo "the PHP peer did not start:" >&2
  cat "$PHP_PEER_DIR"/*.out "$PHP_PEER_DIR"/*.log >&2 2>/dev/null || true
  return 1
}

php_peer_stop() {
  local pid
  for pid in $PHP_PEER_NGINX_PID $PHP_PEER_FPM_PID; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -QUIT "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  PHP_PEER_NGINX_PID=""
  PHP_PEER_FPM_PID=""
  if [ -n "$PHP_PEER_DIR" ]; then
    # PHP errors, if any, stay visible in the run's output.
    grep -h -i "error\|warning" "$PHP_PEER_DIR/php-fpm.log" 2>/dev/null | grep -v NOTICE | head -n 5 >&2 || true
    rm -rf "$PHP_PEER_DIR"
  fi
  PHP_PEER_DIR=""
}
