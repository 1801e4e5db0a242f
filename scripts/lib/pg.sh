# Throwaway PostgreSQL for tests and benchmarks. Source this file, then call
# pg_start_throwaway; it exports FPR_TEST_PG_URL (a server URL without a
# database name; tests create their own databases) and FPR_TEST_PG_CTL (a
# command that runs pg_ctl on this cluster, so tests can stop and start it to
# simulate outages). The cluster lives in a temporary directory, listens on a
# free loopback port only, and is removed by pg_stop_throwaway. Two optional
# variables place it: PG_THROWAWAY_PARENT (the folder it is made in, default
# /tmp; a test puts it on a small file system of its own) and
# PG_THROWAWAY_INITDB_ARGS (more initdb arguments, e.g. --wal-segsize=1);
# a third adds lines to its postgresql.conf: PG_THROWAWAY_CONF (e.g.
# "shared_preload_libraries = 'pg_stat_statements'").

pg_bin_dir() {
  local dir
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
      echo "$dir"
      return 0
    fi
  done
  return 1
}

# Installs the server from Debian's packages when it is missing (fresh machine).
pg_ensure_installed() {
  if pg_bin_dir >/dev/null; then return 0; fi
  echo "PostgreSQL not found: installing it with apt-get" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq postgresql postgresql-contrib >/dev/null
  # Debian starts a default cluster on install; ours does not need it.
  pg_bin_dir >/dev/null
}

pg_free_port() {
  local port
  for _ in $(seq 1 200); do
    # Below Linux's ephemeral range (32768-60999 by default): a port taken
    # from there can be given to an outgoing connection between this check
    # and the server's bind (seen: "Address already in use").
    port=$(( (RANDOM % 22000) + 10000 ))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  return 1
}

# pg_port_tries START STOP [ARGS...]: runs START ARGS, which binds a port it
# picked with pg_free_port, up to 5 times, running STOP after each failure:
# a port free when picked may be taken by the time it is bound.
pg_port_tries() {
  local start=$1 stop=$2 try
  shift 2
  for try in 1 2 3 4 5; do
    "$start" "$@" && return 0
    "$stop"
    echo "($start: try $try of 5)" >&2
  done
  return 1
}

# initdb refuses to run as root, so as root the cluster belongs to 'postgres'.
pg_as_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

pg_start_throwaway() {
  pg_ensure_installed
  local bin port
  bin=$(pg_bin_dir)
  port=$(pg_free_port)
  PG_THROWAWAY_DIR=$(mktemp -d "${PG_THROWAWAY_PARENT:-/tmp}/fpr-pg.XXXXXX")
  chmod 755 "$PG_THROWAWAY_DIR"
  [ "$(id -u)" = 0 ] && chown postgres: "$PG_THROWAWAY_DIR"
  pg_as_owner "$bin/initdb" -D "$PG_THROWAWAY_DIR/data" -U postgres -A trust \
    --no-sync -E UTF8 --locale=C.UTF-8 ${PG_THROWAWAY_INITDB_ARGS:-} >"$PG_THROWAWAY_DIR/initdb.log" 2>&1 \
    || { cat "$PG_THROWAWAY_DIR/initdb.log" >&2; return 1; }
  cat >"$PG_THROWAWAY_DIR/pg_ctl" <<SCRIPT
#!/usr/bin/env bash
# pg_ctl for the throwaway cluster in $PG_THROWAWAY_DIR
if [ "\$(id -u)" = 0 ]; then
  exec runuser -u postgres -- "$bin/pg_ctl" -D "$PG_THROWAWAY_DIR/data" -l "$PG_THROWAWAY_DIR/server.log" "\$@"
fi
exec "$bin/pg_ctl" -D "$PG_THROWAWAY_DIR/data" -l "$PG_THROWAWAY_DIR/server.log" "\$@"
SCRIPT
  chmod 755 "$PG_THROWAWAY_DIR/pg_ctl"
  echo "port = $port" >>"$PG_THROWAWAY_DIR/data/postgresql.conf"
  echo "listen_addresses = '127.0.0.1'" >>"$PG_THROWAWAY_DIR/data/postgresql.conf"
  echo "unix_socket_directories = '$PG_THROWAWAY_DIR'" >>"$PG_THROWAWAY_DIR/data/postgresql.conf"
  echo "max_connections = 300" >>"$PG_THROWAWAY_DIR/data/postgresql.conf"
  [ -n "${PG_THROWAWAY_CONF:-}" ] && echo "$PG_THROWAWAY_CONF" >>"$PG_THROWAWAY_DIR/data/postgresql.conf"
  "$PG_THROWAWAY_DIR/pg_ctl" start -w -t 60 >/dev/null \
    || { cat "$PG_THROWAWAY_DIR/server.log" >&2; return 1; }
  export FPR_TEST_PG_URL="postgres://postgres@127.0.0.1:$port"
  export FPR_TEST_PG_CTL="$PG_THROWAWAY_DIR/pg_ctl"
  export PG_THROWAWAY_DIR
  echo "throwaway PostgreSQL ($bin) on 127.0.0.1:$port" >&2
}

pg_stop_throwaway() {
  if [ -n "${PG_THROWAWAY_DIR:-}" ] && [ -d "$PG_THROWAWAY_DIR" ]; then
    "$PG_THROWAWAY_DIR/pg_ctl" stop -m immediate >/dev/null 2>&1 || true
    rm -rf "$PG_THROWAWAY_DIR"
  fi
}

# A streaming standby of the throwaway cluster on 127.0.0.1:$1 (run after
# pg_start_throwaway, in a shell of its own): pg_basebackup -R into a new
# temporary directory, started on a free port. Exports the same variables as
# pg_start_throwaway, for the standby.
pg_start_standby() {
  local primary_port=$1 bin port
  bin=$(pg_bin_dir)
  port=$(pg_free_port)
  PG_THROWAWAY_DIR=$(mktemp -d "${PG_THROWAWAY_PARENT:-/tmp}/fpr-pg-standby.XXXXXX")
  chmod 755 "$PG_THROWAWAY_DIR"
  [ "$(id -u)" = 0 ] && chown postgres: "$PG_THROWAWAY_DIR"
  pg_as_owner "$bin/pg_basebackup" -h 127.0.0.1 -p "$primary_port" -U postgres \
    -D "$PG_THROWAWAY_DIR/data" -R -X stream >"$PG_THROWAWAY_DIR/basebackup.log" 2>&1 \
    || { cat "$PG_THROWAWAY_DIR/basebackup.log" >&2; return 1; }
  cat >"$PG_THROWAWAY_DIR/pg_ctl" <<SCRIPT
#!/usr/bin/env bash
# pg_ctl for the throwaway standby in $PG_THROWAWAY_DIR
if [ "\$(id -u)" = 0 ]; then
  exec runuser -u postgres -- "$bin/pg_ctl" -D "$PG_THROWAWAY_DIR/data" -l "$PG_THROWAWAY_DIR/server.log" "\$@"
fi
exec "$bin/pg_ctl" -D "$PG_THROWAWAY_DIR/data" -l "$PG_THROWAWAY_DIR/server.log" "\$@"
SCRIPT
  chmod 755 "$PG_THROWAWAY_DIR/pg_ctl"
  # The copied configuration names the primary's port and socket folder
  # (the last `port` line counts: a port taken meanwhile is tried again
  # with another).
  echo "unix_socket_directories = '$PG_THROWAWAY_DIR'" >>"$PG_THROWAWAY_DIR/data/postgresql.conf"
  local started=""
  for _ in 1 2 3; do
    echo "port = $port" >>"$PG_THROWAWAY_DIR/data/postgresql.conf"
    if "$PG_THROWAWAY_DIR/pg_ctl" start -w -t 60 >/dev/null; then
      started=1
      break
    fi
    port=$(pg_free_port)
  done
  [ -n "$started" ] || { cat "$PG_THROWAWAY_DIR/server.log" >&2; return 1; }
  export FPR_TEST_PG_URL="postgres://postgres@127.0.0.1:$port"
  export FPR_TEST_PG_CTL="$PG_THROWAWAY_DIR/pg_ctl"
  export PG_THROWAWAY_DIR
}
