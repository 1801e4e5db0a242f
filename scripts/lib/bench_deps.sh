# The benchmark's outside tools, from Debian's packages when missing (fresh
# machine): wrk (the load generator), nginx, php-fpm and php-pgsql (the PHP
# peer receiver), python3-matplotlib (the plots, for the system python3).
# Source this file, then call bench_ensure_tools.

# bench_php_fpm_bin: the installed php-fpm binary (php-fpm8.2 on Debian 12).
bench_php_fpm_bin() {
  ls /usr/sbin/php-fpm* 2>/dev/null | sort -V -r | head -n1
}

bench_ensure_tools() {
  local missing=()
  command -v wrk >/dev/null || missing+=(wrk)
  [ -x /usr/sbin/nginx ] || missing+=(nginx)
  [ -n "$(bench_php_fpm_bin)" ] || missing+=(php-fpm)
  php -m 2>/dev/null | grep -qx pdo_pgsql || missing+=(php-pgsql)
  /usr/bin/python3 -c 'import matplotlib' 2>/dev/null || missing+=(python3-matplotlib)
  [ "${#missing[@]}" -eq 0 ] && return 0
  echo "installing with apt-get: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
