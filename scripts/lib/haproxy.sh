# HAProxy for the failover tests (the proxy in front of a primary and its
# standby, as production has one). Source this file, then call
# haproxy_ensure: it installs Debian's `haproxy` when it is missing and
# exports FPR_TEST_HAPROXY (its path). The failover tests fail, rather than
# skip, without it when FPR_REQUIRE_PG is set.

haproxy_ensure() {
  if ! command -v haproxy >/dev/null; then
    echo "haproxy not found: installing it with apt-get (for the failover tests)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends haproxy >/dev/null
  fi
  FPR_TEST_HAPROXY=$(command -v haproxy)
  export FPR_TEST_HAPROXY
}
