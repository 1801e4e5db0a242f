//! Request decoding: every encoding, and every kind of malformed input as a
//! typed error (never a panic).

use freedompay_receiver::protocol::decode::parse_xml;
use freedompay_receiver::protocol::{
    DecodeError, Field, Message, RawRequest, Value, decode_request,
};

fn post(content_type: &str, body: &[u8]) -> Result<Message, DecodeError> {
    decode_request(RawRequest {
        is_get: false,
        content_type: Some(content_type),
        query: None,
        body,
    })
}

fn get(query: &str) -> Result<Message, DecodeError> {
    decode_request(RawRequest {
        is_get: true,
        content_type: None,
        query: Some(query),
        body: b"",
    })
}

const FORM: &str = "application/x-www-form-urlencoded";

#[test]
fn urlencoded_keeps_order_duplicates_and_decodes_plus_and_percent() {
    let m = post(FORM, b"b=1&a=x+y%26z&b=2&empty=&bare").unwrap();
    assert_eq!(
        m.to_pairs(),
        vec![
            ("b".into(), "1".into()),
            ("a".into(), "x y&z".into()),
            ("b".into(), "2".into()),
            ("empty".into(), "".into()),
            ("bare".into(), "".into()),
        ]
    );
    assert_eq!(m.get_unique("b").unwrap_err().0, "b");
}

#[test]
fn cyrillic_percent_encoded_values_decode() {
    let m = get("pg_description=%D0%A2%D0%B5%D1%81%D1%82").unwrap();
    assert_eq!(m.get("pg_description"), Some("Тест"));
}

#[test]
fn malformed_percent_encoding_is_an_error() {
    for body in [&b"a=%zz"[..], b"a=%4", b"a=100%", b"%=1"] {
        assert_eq!(
            post(FORM, body),
            Err(DecodeError::BadPercentEncoding),
            "{body:?}"
        );
    }
}

#[test]
fn invalid_utf8_is_an_error_in_every_encoding() {
    assert_eq!(post(FORM, b"a=%C3%28"), Err(DecodeError::InvalidUtf8));
    assert_eq!(post(FORM, b"a=\xff"), Err(DecodeError::InvalidUtf8));
    assert_eq!(get("a=%FF"), Err(DecodeError::InvalidUtf8));
    assert_eq!(
        post("application/xml", b"<request><a>\xff</a></request>"),
        Err(DecodeError::InvalidUtf8)
    );
    let body =
        b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n\xff\xfe\r\n--XyZ--\r\n";
    assert_eq!(
        post("multipart/form-data; boundary=XyZ", body),
        Err(DecodeError::InvalidUtf8)
    );
}

#[test]
fn multipart_fields_decode_in_order() {
    let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"pg_order_id\"\r\n\r\n42\r\n\
--XyZ\r\nContent-Disposition: form-data; name=\"pg_description\"\r\n\r\nline1\r\nline2\r\n--XyZ--\r\n";
    let m = post("multipart/form-data; boundary=XyZ", body).unwrap();
    assert_eq!(m.get("pg_order_id"), Some("42"));
    assert_eq!(m.get("pg_description"), Some("line1\r\nline2"));
}

#[test]
fn malformed_multipart_is_an_error() {
    assert!(matches!(
        post("multipart/form-data", b"x"),
        Err(DecodeError::BadMultipart(_))
    ));
    let truncated = b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1";
    assert!(matches!(
        post("multipart/form-data; boundary=XyZ", truncated),
        Err(DecodeError::BadMultipart(_))
    ));
}

#[test]
fn xml_arrives_as_pg_xml_field_or_raw_body_with_the_same_result() {
    let xml = "<?xml version=\"1.0\" encoding=\"utf-8\"?><request><pg_order_id>7</pg_order_id>\
<pg_description>A &amp; B &#1058;</pg_description></request>";
    let form = serde_urlencoded::to_string([("pg_xml", xml)]).unwrap();
    let from_field = post(FORM, form.as_bytes()).unwrap();
    let from_body = post("text/xml; charset=utf-8", xml.as_bytes()).unwrap();
    let sniffed = decode_request(RawRequest {
        is_get: false,
        content_type: None,
        query: None,
        body: xml.as_bytes(),
    })
    .unwrap();
    assert_eq!(from_field, from_body);
    assert_eq!(from_body, sniffed);
    assert_eq!(from_body.get("pg_description"), Some("A & B Т"));
}

#[test]
fn xml_nesting_and_layout_whitespace() {
    let m = parse_xml(
        "<response>\n  <a> keep </a>\n  <list>\n    <item><x>1</x></item>\n    <item><x>2</x></item>\n  </list>\n  <empty/>\n</response>",
    )
    .unwrap();
    let x = |v: &str| Field {
        name: "item".into(),
        value: Value::Nested(vec![Field::text("x", v)]),
    };
    assert_eq!(
        m.fields(),
        &[
            Field::text("a", " keep "),
            Field {
                name: "list".into(),
                value: Value::Nested(vec![x("1"), x("2")])
            },
            Field::text("empty", ""),
        ]
    );
}

#[test]
fn xml_with_a_dtd_or_entities_is_refused() {
    let billion_laughs = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]><request><a>&lol2;</a></request>"#;
    assert_eq!(parse_xml(billion_laughs), Err(DecodeError::XmlDtd));
    let external =
        r#"<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><request><a>&x;</a></request>"#;
    assert_eq!(parse_xml(external), Err(DecodeError::XmlDtd));
    assert!(matches!(
        parse_xml("<request><a>&x;</a></request>"),
        Err(DecodeError::BadXml(_))
    ));
}

#[test]
fn malformed_xml_is_an_error() {
    for xml in [
        "<request><a>1</b></request>",
        "<request><a>1</a>",
        "<request><a>1</a></request><request/>",
        "<request>text<a>1</a></request>",
        "",
        "<request><a>&#0;</a></request>",
    ] {
        assert!(
            matches!(parse_xml(xml), Err(DecodeError::BadXml(_))),
            "{xml}"
        );
    }
    assert_eq!(
        parse_xml("<order><a>1</a></order>"),
        Err(DecodeError::XmlRoot("order".into()))
    );
}

#[test]
fn nesting_deeper_than_eight_levels_is_an_error() {
    let open: String = (0..8).map(|i| format!("<l{i}>")).collect();
    let close: String = (0..8).rev().map(|i| format!("</l{i}>")).collect();
    assert!(parse_xml(&format!("<request>{open}v{close}</request>")).is_ok());
    let open9 = format!("{open}<l8>");
    let close9 = format!("</l8>{close}");
    assert_eq!(
        parse_xml(&format!("<request>{open9}v{close9}</request>")),
        Err(DecodeError::TooDeep { limit: 8 })
    );
    assert!(post(FORM, b"a[1][2][3][4][5][6][7]=v").is_ok());
    assert_eq!(
        post(FORM, b"a[1][2][3][4][5][6][7][8]=v"),
        Err(DecodeError::TooDeep { limit: 8 })
    );
}

#[test]
fn more_than_a_thousand_fields_is_an_error() {
    let body = |n: usize| {
        (0..n)
            .map(|i| format!("f{i}=v"))
            .collect::<Vec<_>>()
            .join("&")
    };
    assert!(post(FORM, body(1000).as_bytes()).is_ok());
    assert_eq!(
        post(FORM, body(1001).as_bytes()),
        Err(DecodeError::TooManyFields { limit: 1000 })
    );
    let xml: String = (0..1001).map(|i| format!("<f{i}>v</f{i}>")).collect();
    assert_eq!(
        parse_xml(&format!("<request>{xml}</request>")),
        Err(DecodeError::TooManyFields { limit: 1000 })
    );
}

#[test]
fn bracketed_names_nest_like_php() {
    let m = post(FORM, b"a[]=x&a[]=y&b[k]=1&c[=raw&b[j]=2").unwrap();
    assert_eq!(
        m.to_pairs(),
        vec![
            ("a[0]".into(), "x".into()),
            ("a[1]".into(), "y".into()),
            ("b[k]".into(), "1".into()),
            ("b[j]".into(), "2".into()),
            ("c[".into(), "raw".into()),
        ]
    );
}

#[test]
fn unsupported_content_type_is_an_error() {
    assert_eq!(
        post("application/json", b"{}"),
        Err(DecodeError::UnsupportedContentType(
            "application/json".into()
        ))
    );
}
