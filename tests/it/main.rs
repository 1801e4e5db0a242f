//! The project's one integration-test binary. Each module covers one area.

mod protocol_amount;
mod protocol_answer;
mod protocol_cli;
mod protocol_decode;
mod protocol_props;
mod protocol_vectors;
