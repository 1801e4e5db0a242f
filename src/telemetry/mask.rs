//! The log writer: every formatted log line passes through the card-number
//! mask (`domain::pan::mask_card_numbers`) on its way to the output, so no
//! field, error message or span value can put a PAN into the logs.
//!
//! `tracing-subscriber` formats each event completely and hands it over in one
//! `write`, so the mask always sees whole lines. Digit runs it masks are
//! 13 digits or longer; numbers the service logs itself stay shorter (the
//! request latency is rounded to microseconds for that reason), so JSON lines
//! stay valid.

use std::io::{self, Write};

use tracing::Metadata;
use tracing_subscriber::fmt::MakeWriter;

use crate::domain::pan::mask_card_numbers;

/// Wraps a [`MakeWriter`] so that everything written through it is masked.
#[derive(Clone, Copy, Debug)]
pub struct MaskCardNumbers<M>(pub M);

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for MaskCardNumbers<M> {
    type Writer = MaskingWriter<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        MaskingWriter(self.0.make_writer())
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Self::Writer {
        MaskingWriter(self.0.make_writer_for(meta))
    }
}

/// One event's writer: masks each buffer, then writes it whole.
#[derive(Debug)]
pub struct MaskingWriter<W>(W);

impl<W: Write> Write for MaskingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match std::str::from_utf8(buf) {
            Ok(text) => self.0.write_all(mask_card_numbers(text).as_bytes())?,
            // The formatter writes UTF-8 only; anything else passes unchanged.
            Err(_) => self.0.write_all(buf)?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}
