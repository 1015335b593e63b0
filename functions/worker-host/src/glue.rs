//! The request and response conversions between workerd and the routers, through `js/glue.js`.
//!
//! workers-rs' own conversions (`HttpRequest` in the fetch handler, `response_to_wasm`) make a JavaScript call
//! and a string conversion per header and per request property; here the method, URL and headers cross the wasm
//! boundary as one string each way. A request's body stays workerd's stream, read by the caller with its limit.
//! A response whose length is not known (a stream) still goes through workers-rs, chunk by chunk.

use axum::body::Body;
use worker::wasm_bindgen::JsValue;
use worker::wasm_bindgen::prelude::wasm_bindgen;
use worker::web_sys;

#[wasm_bindgen(module = "/js/glue.js", wasm_bindgen = ::worker::wasm_bindgen)]
extern "C" {
    /// `"METHOD\nURL\nname:value\n..."`.
    #[wasm_bindgen(js_name = requestHead)]
    fn request_head(request: &web_sys::Request) -> String;

    /// A response with this status, `"name:value"` lines joined by `'\n'` and body (none when empty).
    #[wasm_bindgen(js_name = newResponse, catch)]
    fn new_response(status: u16, head: &str, body: &[u8]) -> Result<web_sys::Response, JsValue>;
}

/// The request as the routers take it: method, URL and headers from workerd's (one call), its body workerd's
/// stream.
///
/// # Errors
/// When the method, the URL or a header is not one the `http` crate takes (workerd has already refused what HTTP
/// forbids, so this is not expected).
pub(crate) fn request(req: &web_sys::Request) -> anyhow::Result<http::Request<worker::Body>> {
    let head = request_head(req);
    let mut lines = head.split('\n');
    let (Some(method), Some(url)) = (lines.next(), lines.next()) else {
        anyhow::bail!("the request's head has no method or URL");
    };
    let mut builder = http::Request::builder().method(method).uri(url);
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            anyhow::bail!("a request header line has no colon");
        };
        builder = builder.header(name, value);
    }
    Ok(builder.body(req.body().map_or_else(worker::Body::empty, worker::Body::new))?)
}

/// The JavaScript response for a routed one. A body of known length (every JSON answer and problem document)
/// goes as one byte array, which the runtime sends with a `Content-Length`, and the headers as one string; a body
/// of unknown length streams through workers-rs. A 204 or 304 (or any empty body) gets no body at all, as the
/// Fetch standard requires.
///
/// # Errors
/// When a header value is not UTF-8 (this Worker writes none such) or the runtime refuses the response.
pub(crate) async fn response(response: http::Response<Body>) -> worker::Result<web_sys::Response> {
    use axum::body::HttpBody as _;
    if response.body().size_hint().exact().is_none() {
        return worker::response_to_wasm(response);
    }
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await.map_err(|error| worker::Error::RustError(format!("response body: {error}")))?;
    let mut head = String::with_capacity(parts.headers.len() * 48);
    for (name, value) in &parts.headers {
        if !head.is_empty() {
            head.push('\n');
        }
        head.push_str(name.as_str());
        head.push(':');
        head.push_str(std::str::from_utf8(value.as_bytes())?);
    }
    Ok(new_response(parts.status.as_u16(), &head, &bytes)?)
}
