#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    freedompay_receiver::protocol::fuzzing::signature(data);
});
