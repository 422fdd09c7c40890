//! Layer decompression by content (magic bytes), not by media type: docker-archive layers are
//! plain tars, registry layers gzip or zstd, and a mislabelled blob still unpacks or fails clearly.

use std::io::{self, BufRead, BufReader, Read};

/// `r` decompressed: gzip (every member), zstd (every frame, skippable frames skipped) or as is.
pub fn auto<'a, R: Read + Send + 'a>(r: R) -> io::Result<Box<dyn Read + Send + 'a>> {
    let mut b = BufReader::with_capacity(256 << 10, r);
    let head = b.fill_buf()?;
    Ok(if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::bufread::MultiGzDecoder::new(b))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(Zstd {
            src: b,
            dec: None,
            done: false,
        })
    } else {
        Box::new(b)
    })
}

struct Zstd<R: BufRead> {
    src: R,
    dec: Option<ruzstd::decoding::FrameDecoder>,
    done: bool,
}

fn bad(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("zstd: {e}"))
}

impl<R: BufRead> Read for Zstd<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use ruzstd::decoding::errors::{FrameDecoderError, ReadFrameHeaderError};
        use ruzstd::decoding::{BlockDecodingStrategy, FrameDecoder};
        loop {
            if self.done || buf.is_empty() {
                return Ok(0);
            }
            if let Some(d) = &mut self.dec {
                let n = d.read(buf)?;
                if n > 0 {
                    return Ok(n);
                }
                if !d.is_finished() {
                    d.decode_blocks(&mut self.src, BlockDecodingStrategy::UptoBytes(1 << 20))
                        .map_err(bad)?;
                    continue;
                }
                self.dec = None;
            }
            // Between frames: the next frame, a skippable frame, or the end.
            if self.src.fill_buf()?.is_empty() {
                self.done = true;
                return Ok(0);
            }
            let mut d = FrameDecoder::new();
            match d.init(&mut self.src) {
                Ok(()) => self.dec = Some(d),
                Err(FrameDecoderError::ReadFrameHeaderError(ReadFrameHeaderError::SkipFrame {
                    length,
                    ..
                })) => {
                    io::copy(&mut (&mut self.src).take(length as u64), &mut io::sink())?;
                }
                Err(e) => return Err(bad(e)),
            }
        }
    }
}
