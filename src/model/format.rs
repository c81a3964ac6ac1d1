//! Decide what a weight file is from its first bytes, never from its name.

use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};

/// What a file's magic bytes say it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// llama.cpp's GGUF container.
    Gguf,
    /// A safetensors file (8-byte little-endian header length, then a JSON header).
    Safetensors,
    /// A Python pickle, raw or inside PyTorch's zip container: never loaded.
    Pickle,
    /// Anything else.
    Unknown,
}

/// Read the first bytes of `path` and classify them.
pub fn sniff(path: &Path) -> Result<FileFormat> {
    let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut head = [0u8; 16];
    let mut filled = 0;
    while filled < head.len() {
        let n = file
            .read(&mut head[filled..])
            .map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    Ok(classify(&head[..filled]))
}

/// Classify a file from its first (up to 16) bytes.
pub fn classify(head: &[u8]) -> FileFormat {
    if head.starts_with(b"GGUF") {
        return FileFormat::Gguf;
    }
    // PyTorch's zip checkpoints hold a pickle (data.pkl); older ones are a bare pickle stream
    // starting with the PROTO opcode 0x80 and a protocol number 2..=5.
    if head.starts_with(b"PK\x03\x04") {
        return FileFormat::Pickle;
    }
    if head.len() >= 2 && head[0] == 0x80 && (2..=5).contains(&head[1]) {
        return FileFormat::Pickle;
    }
    if head.len() >= 9 {
        let mut len = [0u8; 8];
        len.copy_from_slice(&head[..8]);
        let header_len = u64::from_le_bytes(len);
        if (2..(100 << 20)).contains(&header_len) && head[8] == b'{' {
            return FileFormat::Safetensors;
        }
    }
    FileFormat::Unknown
}

/// The error for a pickle checkpoint: it can run code when loaded, so aligndiff refuses it.
pub fn pickle_refusal(path: &Path) -> Error {
    Error::bad_file(
        path,
        "this is a pickle checkpoint (PyTorch .bin/.pt/.pth/.ckpt); pickle files can run arbitrary \
         code when loaded, so aligndiff never opens them. Convert it to safetensors first (e.g. \
         `transformers`' save_pretrained(..., safe_serialization=True)) or use a GGUF file",
    )
}

/// Extensions of files that are pickles by convention.
pub const PICKLE_EXTENSIONS: &[&str] = &["bin", "pt", "pth", "ckpt", "pkl"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gguf_magic_is_recognised_whatever_the_extension() {
        assert_eq!(classify(b"GGUF\x03\0\0\0"), FileFormat::Gguf);
    }

    #[test]
    fn torch_zip_and_raw_pickle_are_pickles() {
        assert_eq!(classify(b"PK\x03\x04rest"), FileFormat::Pickle);
        assert_eq!(classify(&[0x80, 0x04, 0x95, 0, 0]), FileFormat::Pickle);
    }

    #[test]
    fn safetensors_header_is_recognised() {
        let mut head = 120u64.to_le_bytes().to_vec();
        head.extend_from_slice(b"{\"a\":1}");
        assert_eq!(classify(&head), FileFormat::Safetensors);
    }

    #[test]
    fn short_or_random_bytes_are_unknown() {
        assert_eq!(classify(b""), FileFormat::Unknown);
        assert_eq!(classify(b"hello world, not a model"), FileFormat::Unknown);
    }
}
