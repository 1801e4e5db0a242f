"""Pre-signed result callbacks for scripts/bench: one form-encoded body per
line, each for its own order (B-0000001 ...) and payment, with the fields of
a successful result notification (protocol reference section 2.2, about 600
bytes) and a pg_sig made by the reference rule: md5 of the script name, the
values ordered by field name, and the secret key, joined with ';'. (The
field names here are distinct and none is another's prefix followed by a
character below '0', so ordering by plain name is the canonical rule.)

usage: bodies.py COUNT SCRIPT_NAME SECRET OUT_FILE
       bodies.py --pairs SCRIPT_NAME SECRET   (body 1's fields, one name=value
                                               a line, then its pg_sig: for
                                               a cross-check with `sign`)
"""

import hashlib
import random
import sys
from urllib.parse import urlencode

MERCHANT_ORDER_AMOUNT = "2500.5"


def order_id(i):
    return f"B-{i:07d}"


def payment_id(i):
    return str(800_000_000 + i)


def fields(i, rng):
    """The fields of body i, in FreedomPay's arrival order, without pg_sig."""
    return [
        ("pg_order_id", order_id(i)),
        ("pg_payment_id", payment_id(i)),
        ("pg_amount", MERCHANT_ORDER_AMOUNT),
        ("pg_currency", "KZT"),
        ("pg_net_amount", "2425.99"),
        ("pg_ps_amount", MERCHANT_ORDER_AMOUNT),
        ("pg_ps_full_amount", MERCHANT_ORDER_AMOUNT),
        ("pg_ps_currency", "KZT"),
        ("pg_description", "Заказ в интернет-магазине"),
        ("pg_result", "1"),
        ("pg_payment_date", "2026-11-25 12:00:00"),
        ("pg_can_reject", "1"),
        ("pg_user_phone", "77001234567"),
        ("pg_user_contact_email", "payer@example.kz"),
        ("pg_testing_mode", "0"),
        ("pg_captured", "1"),
        ("pg_card_pan", "5483-18XX-XXXX-0293"),
        ("pg_card_exp", "03/29"),
        ("pg_card_owner", "IVAN IVANOV"),
        ("pg_card_brand", "MC"),
        ("pg_payment_method", "bankcard"),
        ("pg_salt", f"{rng.getrandbits(64):016x}"),
    ]


def sign(script, pairs, secret):
    values = [value for _, value in sorted(pairs, key=lambda p: p[0].encode())]
    return hashlib.md5(";".join([script, *values, secret]).encode()).hexdigest()


def main(argv):
    rng = random.Random(14)
    if argv[1] == "--pairs":
        script, secret = argv[2], argv[3]
        pairs = fields(1, rng)
        for name, value in pairs:
            print(f"{name}={value}")
        print(sign(script, pairs, secret))
        return
    count, script, secret, out = int(argv[1]), argv[2], argv[3], argv[4]
    with open(out, "w") as f:
        for i in range(1, count + 1):
            pairs = fields(i, rng)
            pairs.append(("pg_sig", sign(script, pairs, secret)))
            f.write(urlencode(pairs))
            f.write("\n")


if __name__ == "__main__":
    main(sys.argv)
