//! `multipart/form-data` bodies, parsed with `multer` over the bytes already in
//! memory. The stream never waits, so the parse completes synchronously.

use std::convert::Infallible;

use bytes::Bytes;
use futures_util::FutureExt;

use crate::protocol::{DecodeError, Message};

pub fn parse_multipart(content_type: &str, body: &[u8]) -> Result<Message, DecodeError> {
    let boundary = multer::parse_boundary(content_type)
        .map_err(|e| DecodeError::BadMultipart(e.to_string()))?;
    let body = Bytes::copy_from_slice(body);
    let stream = futures_util::stream::once(async move { Ok::<Bytes, Infallible>(body) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    let collect = async move {
        let mut pairs = Vec::new();
        while let Some(field) = multipart.next_field().await.map_err(bad)? {
            let name = field
                .name()
                .ok_or_else(|| DecodeError::BadMultipart("part without a name".into()))?
                .to_owned();
            let bytes = field.bytes().await.map_err(bad)?;
            let value = String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError::InvalidUtf8)?;
            pairs.push((name, value));
        }
        Message::from_pairs(pairs)
    };
    collect
        .now_or_never()
        .unwrap_or_else(|| Err(DecodeError::BadMultipart("incomplete body".into())))
}

fn bad(error: multer::Error) -> DecodeError {
    DecodeError::BadMultipart(error.to_string())
}
