//! The body of every response the server sends: whole (every API answer
//! and console page), or a stream (the console's live events).
//!
//! Whole bodies stay unboxed; only a stream pays for a box, so the API's
//! answers cost no extra allocation.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Either, Full};
use hyper::Response;

/// A response body.
pub type ResponseBody = Either<Full<Bytes>, UnsyncBoxBody<Bytes, Infallible>>;

/// A response with its whole body in hand.
pub fn whole(response: Response<Full<Bytes>>) -> Response<ResponseBody> {
    response.map(Either::Left)
}

/// A response whose body is the stream `body`.
pub fn stream<B>(response: Response<B>) -> Response<ResponseBody>
where
    B: hyper::body::Body<Data = Bytes, Error = Infallible> + Send + 'static,
{
    response.map(|body| Either::Right(body.boxed_unsync()))
}
