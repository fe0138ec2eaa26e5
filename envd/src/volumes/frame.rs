//! Framing of the volume channel, shared word for word by both ends (envd's `volumes::wire`
//! and sandboxd's, which includes this file): `[u32 BE header length][u32 BE data length]
//! [header JSON][data]`.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest header or data part accepted (a read or write is at most 1 MiB).
pub const MAX_PART: usize = 4 << 20;

pub async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, header: &[u8], data: &[u8]) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(8 + header.len());
    head.extend_from_slice(&(header.len() as u32).to_be_bytes());
    head.extend_from_slice(&(data.len() as u32).to_be_bytes());
    head.extend_from_slice(header);
    w.write_all(&head).await?;
    w.write_all(data).await?;
    w.flush().await
}

/// `None` at a clean end of the stream.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> std::io::Result<Option<(Vec<u8>, Vec<u8>)>> {
    let mut lens = [0u8; 8];
    match r.read_exact(&mut lens).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let [h0, h1, h2, h3, d0, d1, d2, d3] = lens;
    let hl = u32::from_be_bytes([h0, h1, h2, h3]) as usize;
    let dl = u32::from_be_bytes([d0, d1, d2, d3]) as usize;
    if hl > MAX_PART || dl > MAX_PART {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "volume frame too large"));
    }
    let mut header = vec![0; hl];
    r.read_exact(&mut header).await?;
    let mut data = vec![0; dl];
    r.read_exact(&mut data).await?;
    Ok(Some((header, data)))
}
