//! The committed fuzz corpus (`fuzz/corpus/<target>/`) through the fuzz
//! targets' bodies, so that every finding stays a regression test and the
//! targets cannot rot.

use std::path::Path;

use freedompay_receiver::protocol::fuzzing;

fn run_corpus(target: &str, body: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        body(&std::fs::read(&path).unwrap());
        count += 1;
    }
    assert!(count > 0, "empty corpus for {target}");
}

#[test]
fn decode_request_corpus() {
    run_corpus("decode_request", fuzzing::decode_any);
}

#[test]
fn signature_corpus() {
    run_corpus("signature", fuzzing::signature);
}

#[test]
fn amount_corpus() {
    run_corpus("amount", fuzzing::amount);
}
