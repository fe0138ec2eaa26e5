//! The destination name a guest's connection announces: the `Host` header of an HTTP/1
//! request (parsed by `httparse`) or the `server_name` extension of a TLS ClientHello.
//!
//! The ClientHello walk is done by hand because it reads five length-prefixed fields of the
//! first record and nothing else; a TLS library would need a full handshake state machine
//! (or a whole parser crate) for the same answer.

/// What the bytes read so far say.
#[derive(Debug, PartialEq, Eq)]
pub enum Peek {
    /// Read more (the header / record is not complete yet).
    More,
    /// The name the client asked for, if it sent one.
    Name(Option<String>),
}

/// The `Host` of an HTTP/1.x request (without port).
pub fn http_host(buf: &[u8]) -> Peek {
    let mut headers = [httparse::EMPTY_HEADER; 96];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Partial) => Peek::More,
        Ok(httparse::Status::Complete(_)) => Peek::Name(
            req.headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("host"))
                .and_then(|h| std::str::from_utf8(h.value).ok())
                .map(strip_port),
        ),
        Err(_) => Peek::Name(None),
    }
}

fn strip_port(host: &str) -> String {
    let host = host.trim();
    match host.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) && !h.contains(':') => h.to_string(),
        _ => host.to_string(),
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        (self.0.len() >= n).then(|| {
            let (a, b) = self.0.split_at(n);
            self.0 = b;
            a
        })
    }
    fn u8(&mut self) -> Option<usize> {
        self.take(1).map(|b| b[0] as usize)
    }
    fn u16(&mut self) -> Option<usize> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]) as usize)
    }
    fn vec8(&mut self) -> Option<&'a [u8]> {
        let n = self.u8()?;
        self.take(n)
    }
    fn vec16(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()?;
        self.take(n)
    }
}

/// The SNI of a TLS ClientHello in the first record of `buf`.
pub fn tls_sni(buf: &[u8]) -> Peek {
    if buf.len() < 5 {
        return Peek::More;
    }
    // A handshake record (22) carrying a ClientHello (1).
    if buf[0] != 22 {
        return Peek::Name(None);
    }
    let len = u16::from_be_bytes([buf[3], buf[4]]) as usize;
    if buf.len() < 5 + len {
        return Peek::More;
    }
    Peek::Name(client_hello_sni(&buf[5..5 + len]))
}

fn client_hello_sni(record: &[u8]) -> Option<String> {
    let mut r = Reader(record);
    if r.u8()? != 1 {
        return None;
    }
    r.take(3)?; // handshake length
    r.take(2 + 32)?; // client_version, random
    r.vec8()?; // session_id
    r.vec16()?; // cipher_suites
    r.vec8()?; // compression_methods
    let mut exts = Reader(r.vec16()?);
    while !exts.0.is_empty() {
        let kind = exts.u16()?;
        let data = exts.vec16()?;
        if kind == 0 {
            let mut list = Reader(Reader(data).vec16()?);
            while !list.0.is_empty() {
                let name_type = list.u8()?;
                let name = list.vec16()?;
                if name_type == 0 {
                    return std::str::from_utf8(name).ok().map(str::to_ascii_lowercase);
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_header() {
        assert_eq!(
            http_host(b"GET / HTTP/1.1\r\nHost: Example.com:8080\r\n\r\n"),
            Peek::Name(Some("Example.com".into()))
        );
        assert_eq!(http_host(b"GET / HTTP/1.1\r\nHos"), Peek::More);
        assert_eq!(http_host(b"\x16\x03\x01garbage\r\n\r\n"), Peek::Name(None));
    }

    fn client_hello(name: &str) -> Vec<u8> {
        let mut sni = vec![0u8];
        sni.extend((name.len() as u16).to_be_bytes());
        sni.extend(name.as_bytes());
        let mut sni_ext = (sni.len() as u16).to_be_bytes().to_vec();
        sni_ext.extend(sni);
        let mut exts = vec![0x00, 0x0b, 0x00, 0x02, 0x01, 0x00]; // ec_point_formats first
        exts.extend([0u8, 0]);
        exts.extend((sni_ext.len() as u16).to_be_bytes());
        exts.extend(sni_ext);
        let mut body = vec![3, 3];
        body.extend([7u8; 32]);
        body.push(0); // session id
        body.extend([0, 2, 0x13, 0x01]); // one cipher suite
        body.extend([1, 0]); // null compression
        body.extend((exts.len() as u16).to_be_bytes());
        body.extend(exts);
        let mut hs = vec![1u8, 0];
        hs.extend((body.len() as u16).to_be_bytes());
        hs.extend(body);
        let mut rec = vec![22u8, 3, 1];
        rec.extend((hs.len() as u16).to_be_bytes());
        rec.extend(hs);
        rec
    }

    #[test]
    fn sni_of_a_client_hello() {
        let hello = client_hello("Api.Example.com");
        assert_eq!(tls_sni(&hello), Peek::Name(Some("api.example.com".into())));
        assert_eq!(tls_sni(&hello[..hello.len() - 3]), Peek::More);
        assert_eq!(tls_sni(b"GET / HTTP/1.1\r\n"), Peek::Name(None));
    }
}
