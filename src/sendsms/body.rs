//! What a sendsms request's method and content type make of it, as
//! smsbox's `sendsms_thread` and `smsbox_sendsms_post` decide.
//!
//! | request | fields from | `coding` when unset |
//! | --- | --- | --- |
//! | GET (no body) | the query | 8-bit with a `udh`, else 7-bit |
//! | POST `application/x-www-form-urlencoded` | the query, then the form (rapidbox only: smsbox answers `Invalid content-type`) | as a GET |
//! | POST `text/plain` | `X-Kannel-*` headers, the body is the text, the content type's `charset` its charset | 7-bit |
//! | POST `application/octet-stream`, or no content type | likewise | 8-bit |
//! | POST `text/xml` | the XML document ([`super::xml`]) | 7-bit |
//! | POST `text/html`, `text/vnd.wap.wml` | the headers, then refused: `Unsupported content-type, rejected` (415) | |
//! | POST of any other type | refused before anything: `Invalid content-type` (400) | |
//!
//! A POST's query string is ignored, credentials included: smsbox reads
//! only the headers (or the XML).

use super::params::Fields;
use super::xml;

/// How a request carries its fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A GET: the query.
    Get,
    /// A POST form: the query and the body, as a GET's parameters.
    Form,
    /// `text/plain`: headers and the text as the body.
    Plain,
    /// `application/octet-stream`: headers and the data as the body.
    OctetStream,
    /// `text/xml`: Kannel's XML POST.
    Xml,
    /// `text/html` or `text/vnd.wap.wml`: smsbox reads the headers, then
    /// refuses the request once the credentials and receivers pass.
    Markup,
}

impl Kind {
    /// Whether smsbox reads this request through `smsbox_sendsms_post`,
    /// whose words for a missing receiver differ from a GET's.
    pub fn is_post(self) -> bool {
        !matches!(self, Kind::Get | Kind::Form)
    }
}

/// A POST of a content type smsbox does not take at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidContentType;

/// A content type's type (lowercase, without parameters) and its
/// `charset` parameter, as Kannel's `http_header_get_content_type`; no
/// content type is `application/octet-stream`.
pub fn content_type(value: Option<&[u8]>) -> (String, Option<Vec<u8>>) {
    let Some(value) = value else {
        return ("application/octet-stream".to_owned(), None);
    };
    let mut parts = value.split(|&b| b == b';');
    let essence = parts.next().unwrap_or_default();
    let essence =
        String::from_utf8_lossy(super::params::strip_blanks(essence)).to_ascii_lowercase();
    let charset = parts.find_map(|param| {
        let at = param.iter().position(|&b| b == b'=')?;
        let (name, value) = (&param[..at], &param[at + 1..]);
        super::params::strip_blanks(name)
            .eq_ignore_ascii_case(b"charset")
            .then(|| {
                let value = super::params::strip_blanks(value);
                let value = value.strip_prefix(b"\"").unwrap_or(value);
                value.strip_suffix(b"\"").unwrap_or(value).to_vec()
            })
    });
    (essence, charset)
}

/// What a POST of `content_type` is.
pub fn kind_of_post(content_type: &str) -> Result<Kind, InvalidContentType> {
    Ok(match content_type {
        "application/x-www-form-urlencoded" => Kind::Form,
        "text/plain" => Kind::Plain,
        "application/octet-stream" => Kind::OctetStream,
        "text/xml" => Kind::Xml,
        "text/html" | "text/vnd.wap.wml" => Kind::Markup,
        _ => return Err(InvalidContentType),
    })
}

/// The fields of a request of `kind`: from its `query` and `body` for a GET
/// or a form, from `headers` and `body` (the text, in `charset`) for
/// smsbox's POSTs, from the XML `body` for `text/xml`.
pub fn fields<'h>(
    kind: Kind,
    query: &[u8],
    headers: impl IntoIterator<Item = (&'h str, &'h [u8])>,
    charset: Option<Vec<u8>>,
    body: &[u8],
) -> Fields {
    match kind {
        Kind::Get => Fields::from_cgi(&[query]),
        // The query first: it wins over the form, as the first value of a
        // name wins.
        Kind::Form => Fields::from_cgi(&[query, body]),
        Kind::Plain | Kind::OctetStream | Kind::Markup => {
            let mut fields = Fields::from_headers(headers);
            fields.text = Some(body.to_vec());
            fields.charset = charset;
            fields
        }
        Kind::Xml => xml::fields(body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_are_read_as_kannel_reads_them() {
        assert_eq!(
            content_type(Some(b"Text/Plain; charset=\"ISO-8859-1\"")),
            ("text/plain".to_owned(), Some(b"ISO-8859-1".to_vec()))
        );
        assert_eq!(
            content_type(None),
            ("application/octet-stream".to_owned(), None)
        );
        assert_eq!(kind_of_post("text/xml"), Ok(Kind::Xml));
        assert_eq!(kind_of_post("text/html"), Ok(Kind::Markup));
        assert_eq!(kind_of_post("application/json"), Err(InvalidContentType));
    }

    #[test]
    fn a_post_reads_only_its_headers_and_body() {
        let headers: Vec<(&str, &[u8])> = vec![("X-Kannel-Username", b"u")];
        let f = fields(
            Kind::Plain,
            b"username=q&password=p&to=1",
            headers,
            Some(b"UTF-8".to_vec()),
            b"hi",
        );
        assert_eq!(f.username.as_deref(), Some(&b"u"[..]));
        assert_eq!((f.password, f.to), (None, None));
        assert_eq!(f.text.as_deref(), Some(&b"hi"[..]));
        assert_eq!(f.charset.as_deref(), Some(&b"UTF-8"[..]));
        let f = fields(Kind::Form, b"text=q", Vec::new(), None, b"text=f&to=2");
        assert_eq!(f.text.as_deref(), Some(&b"q"[..]), "the query wins");
        assert_eq!(f.to.as_deref(), Some(&b"2"[..]));
    }
}
