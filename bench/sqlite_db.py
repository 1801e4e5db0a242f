"""The SQLite side of scripts/bench, with Python's sqlite3 on the service's
database file (schema applied by `freedompay-receiver migrate`):

  sqlite_db.py fresh DB N          one pending order per pre-signed callback
                                   (B-0000001 ... as bench/bodies.py signs them)
  sqlite_db.py grow DB ROWS        ROWS earlier payments with their paid orders,
                                   result events and decisions, then ANALYZE
                                   (as bench/grow_pg.sql does on PostgreSQL)
  sqlite_db.py cell DB SINCE SECONDS
                                   the cell's per-second series and correctness
                                   counts as JSON (as bench/cell_pg.sql)
  sqlite_db.py old-month DB ROWS KEEP_DAYS
                                   ROWS result events (the grown ones' fields)
                                   in the month before the one KEEP_DAYS ago,
                                   spread over its first 28 days, with no
                                   stored decision: the month retention deletes
                                   in the sqlite_retention_batches cell
  sqlite_db.py count DB            the events in the log
"""

import json
import sqlite3
import sys
from datetime import datetime, timezone

# A row per number 1..:n, set-based (SQLite has no generate_series here).
SERIES = "WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < :n) "
WHEN = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-60 days', '+' || (2 * n) || ' seconds')"
OLD_ORDER = "'OLD-' || substr('0000000' || n, -7)"
OLD_PAYMENT = "CAST(100000000 + n AS TEXT)"
FIELDS = [
    ("pg_order_id", OLD_ORDER), ("pg_payment_id", OLD_PAYMENT), ("pg_amount", "'2500.5'"),
    ("pg_currency", "'KZT'"), ("pg_net_amount", "'2425.99'"), ("pg_ps_amount", "'2500.5'"),
    ("pg_ps_full_amount", "'2500.5'"), ("pg_ps_currency", "'KZT'"),
    ("pg_description", "'Заказ в интернет-магазине'"), ("pg_result", "'1'"),
    ("pg_payment_date", "'2026-10-01 12:00:00'"), ("pg_can_reject", "'1'"),
    ("pg_user_phone", "'77001234567'"), ("pg_user_contact_email", "'payer@example.kz'"),
    ("pg_testing_mode", "'0'"), ("pg_captured", "'1'"), ("pg_card_pan", "'5483-18XX-XXXX-0293'"),
    ("pg_card_exp", "'03/29'"), ("pg_card_owner", "'IVAN IVANOV'"), ("pg_card_brand", "'MC'"),
    ("pg_payment_method", "'bankcard'"), ("pg_salt", "hex(randomblob(8))"),
    ("pg_sig", "lower(hex(randomblob(16)))"),
]


def fresh(db, n):
    db.execute(
        SERIES + "INSERT INTO orders (merchant_id, order_id, amount, currency) "
        "SELECT '545774', 'B-' || substr('0000000' || n, -7), '2500.5', 'KZT' FROM g",
        {"n": n})
    db.commit()
    db.execute("ANALYZE orders")


def grow(db, rows):
    params = {"n": rows}
    db.execute(
        SERIES + "INSERT INTO orders (merchant_id, order_id, amount, currency, status, "
        f"paid_payment_id, created_at, updated_at) SELECT '545774', {OLD_ORDER}, '2500.5', 'KZT', "
        f"'paid', {OLD_PAYMENT}, {WHEN}, {WHEN} FROM g", params)
    db.execute(
        SERIES + "INSERT INTO payments (merchant_id, payment_id, order_id, amount, currency, "
        "status, captured, testing_mode, card_mask, created_at, updated_at) "
        f"SELECT '545774', {OLD_PAYMENT}, {OLD_ORDER}, '2500.5', 'KZT', 'succeeded', 1, 0, "
        f"'5483-18XX-XXXX-0293', {WHEN}, {WHEN} FROM g", params)
    insert_events(db, rows, "n", WHEN)
    db.execute(
        SERIES + "INSERT INTO callback_decisions (merchant_id, kind, subject_id, discriminator, "
        "answer_status, answer_description, event_id, created_at) "
        f"SELECT '545774', 'result', {OLD_PAYMENT}, '1', 'ok', 'Payment accepted', n, {WHEN} FROM g",
        params)
    db.commit()
    db.execute("ANALYZE")


def insert_events(db, rows, id_expr, when):
    """ROWS result events of the grown database's kind (ids ID_EXPR and
    times WHEN, in terms of the series' n)."""
    pairs = ", ".join(f"json_array('{name}', {value})" for name, value in FIELDS)
    db.execute(
        SERIES + "INSERT INTO events (id, received_at, merchant_id, kind, order_id, payment_id, "
        "fields, answer_status, answer_description, duplicate, signature_variant, key_label) "
        f"SELECT {id_expr}, {when}, '545774', 'result', {OLD_ORDER}, {OLD_PAYMENT}, "
        f"json_array({pairs}), 'ok', 'Payment accepted', 0, 'canonical', 'current' FROM g",
        {"n": rows})


def old_month(db, rows, keep_days):
    # Spread over 28 days from the month's first instant (UTC).
    when = ("strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-{days} days', 'start of month', '-1 month', "
            "'+' || printf('%.3f', (n - 1) * 2419200.0 / {rows}) || ' seconds')").format(
                days=int(keep_days), rows=int(rows))
    insert_events(db, rows, "NULL", when)
    db.commit()
    db.execute("ANALYZE")


def cell(db, since, seconds):
    since_text = datetime.fromtimestamp(since, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    rows = db.execute(
        "SELECT received_at, order_id, payment_id, answer_status, duplicate FROM events "
        "WHERE kind = 'result' AND received_at >= ?", (since_text,)).fetchall()

    def epoch(text):
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
            tzinfo=timezone.utc).timestamp()

    times = [epoch(r[0]) for r in rows]
    series = [0] * seconds
    if times:
        t0 = min(times)
        for t in times:
            s = int(t - t0)
            if s < seconds:
                series[s] += 1
    payments = {}
    for r in rows:
        payments[r[2]] = payments.get(r[2], 0) + 1
    ok_orders = [r[1] for r in rows if r[3] == "ok"]
    not_paid = 0
    for start in range(0, len(ok_orders), 500):
        chunk = ok_orders[start:start + 500]
        marks = ",".join("?" * len(chunk))
        not_paid += db.execute(
            f"SELECT count(*) FROM orders WHERE merchant_id = '545774' AND order_id IN ({marks}) "
            "AND status <> 'paid'", chunk).fetchone()[0]
    return {
        "series": series,
        "result_events": len(rows),
        "ok_events": len(ok_orders),
        "duplicate_events": sum(1 for r in rows if r[4]),
        "payments_with_several_events": sum(1 for n in payments.values() if n > 1),
        "ok_orders_not_paid": not_paid,
        "orders_paid": db.execute(
            "SELECT count(*) FROM orders WHERE order_id LIKE 'B-%' AND status = 'paid'").fetchone()[0],
    }


def main(argv):
    db = sqlite3.connect(argv[2])
    if argv[1] == "fresh":
        fresh(db, int(argv[3]))
    elif argv[1] == "grow":
        grow(db, int(argv[3]))
    elif argv[1] == "cell":
        print(json.dumps(cell(db, float(argv[3]), int(argv[4]))))
    elif argv[1] == "old-month":
        old_month(db, int(argv[3]), int(argv[4]))
    elif argv[1] == "count":
        print(db.execute("SELECT count(*) FROM events").fetchone()[0])
    else:
        sys.exit(f"unknown command {argv[1]}")
    db.close()


if __name__ == "__main__":
    main(sys.argv)
