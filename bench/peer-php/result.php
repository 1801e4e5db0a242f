<?php
// The result receiver a merchant would write instead of running
// freedompay-receiver, in the classic PayBox style: part of the benchmark
// (scripts/bench), not of the service. It verifies the flat ksort md5
// signature with hash_equals, marks the order paid and stores the callback
// (every field, as JSON) in one transaction on a persistent PDO connection,
// and answers signed XML. Same tables as the service (events, orders), same
// database cluster.
//
// Settings come from the php-fpm pool's environment: BENCH_DSN (a PDO pgsql
// DSN), BENCH_SECRET (the merchant's secret key), BENCH_MERCHANT_ID.

declare(strict_types=1);

const SCRIPT_NAME = 'result.php';

function pg_sig(array $fields, string $secret): string
{
    unset($fields['pg_sig']);
    ksort($fields);
    return md5(SCRIPT_NAME . ';' . implode(';', $fields) . ';' . $secret);
}

function answer(string $status, string $description, string $secret): void
{
    $fields = [
        'pg_status' => $status,
        'pg_description' => $description,
        'pg_salt' => bin2hex(random_bytes(8)),
    ];
    $fields['pg_sig'] = pg_sig($fields, $secret);
    header('Content-Type: application/xml; charset=utf-8');
    $xml = '<?xml version="1.0" encoding="utf-8"?><response>';
    foreach ($fields as $name => $value) {
        $xml .= "<$name>" . htmlspecialchars($value, ENT_XML1) . "</$name>";
    }
    echo $xml, '</response>';
}

$secret = (string) getenv('BENCH_SECRET');
$merchant = (string) getenv('BENCH_MERCHANT_ID');
$params = $_POST;

if (!hash_equals(pg_sig($params, $secret), (string) ($params['pg_sig'] ?? ''))) {
    answer('error', 'Invalid signature', $secret);
    exit;
}

$orderId = (string) ($params['pg_order_id'] ?? '');
$paymentId = (string) ($params['pg_payment_id'] ?? '');
$paid = ($params['pg_result'] ?? '') === '1';
$pairs = [];
foreach ($params as $name => $value) {
    $pairs[] = [(string) $name, $value];
}

try {
    $db = new PDO((string) getenv('BENCH_DSN'), null, null, [
        PDO::ATTR_PERSISTENT => true,
        PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION,
    ]);
    $db->beginTransaction();
    $update = $db->prepare(
        'UPDATE orders SET status = ?, paid_payment_id = ?, updated_at = now()
          WHERE merchant_id = ? AND order_id = ? AND amount = CAST(? AS numeric)
            AND currency = ? AND status IN (\'pending\', \'paid\')'
    );
    $update->execute([$paid ? 'paid' : 'failed', $paid ? $paymentId : null, $merchant, $orderId,
        (string) ($params['pg_amount'] ?? ''), (string) ($params['pg_currency'] ?? '')]);
    [$status, $description] = $update->rowCount() === 1
        ? ['ok', 'Payment accepted']
        : ['rejected', 'Unknown order or amount'];
    $insert = $db->prepare(
        'INSERT INTO events (merchant_id, kind, order_id, payment_id, fields, answer_status, answer_description)
         VALUES (?, \'result\', ?, ?, CAST(? AS jsonb), ?, ?)'
    );
    $insert->execute([$merchant, $orderId, $paymentId, json_encode($pairs, JSON_UNESCAPED_UNICODE),
        $status, $description]);
    $db->commit();
} catch (PDOException $e) {
    if (isset($db) && $db->inTransaction()) {
        $db->rollBack();
    }
    error_log('result.php: ' . $e->getMessage());
    http_response_code(503);
    answer('error', 'Temporarily unavailable', $secret);
    exit;
}
answer($status, $description, $secret);
