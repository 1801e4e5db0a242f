-- wrk script: forged check callbacks (a signature no key makes), each from a
-- source of its own through X-Forwarded-For, as an attacker behind a trusted
-- proxy would send them. Used for the flood figures in RELIABILITY.md:
--
--   wrk -t1 -c8 -d20s -s bench/forged_flood.lua http://127.0.0.1:PORT/freedompay/check
--
-- (server.trusted_proxies = ["127.0.0.1/32"]). With FLOOD_SOURCES=1 in the
-- environment every request comes from one source instead.

local sources = tonumber(os.getenv("FLOOD_SOURCES") or "0")
local n = 0

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.body = "pg_order_id=O&pg_payment_id=1&pg_amount=10&pg_currency=KZT"
  .. "&pg_salt=flood&pg_sig=00000000000000000000000000000000"

request = function()
  n = n + 1
  local i = n
  if sources > 0 then
    i = n % sources
  end
  wrk.headers["X-Forwarded-For"] = string.format(
    "10.%d.%d.%d", math.floor(i / 65536) % 256, math.floor(i / 256) % 256, i % 256)
  return wrk.format()
end
