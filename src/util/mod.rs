//! Small helpers every room uses and none owns: hashing, atomic file writes, and reading
//! CSV / JSON-lines record files, and cutting text short.

pub mod atomic;
pub mod hash;
pub mod memory;
pub mod records;
pub mod text;

pub use atomic::write_atomic;
pub use hash::{hex, hex_sha256, short_hash};
