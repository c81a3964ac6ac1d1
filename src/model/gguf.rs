//! A strict GGUF header reader. The file comes from the party under audit, so every count, shape
//! and offset is checked before anything is allocated or handed to candle.

use std::collections::{HashMap, HashSet};
use std::io::{BufReader, Read, Seek};
use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file::{Content, TensorInfo, Value, VersionedMagic};
use candle_core::quantized::GgmlDType;

use crate::error::{Error, Result};

/// Limits on what a header may declare; far above any real model, far below an allocation bomb.
const MAX_STRING_BYTES: u64 = 64 << 20;
const MAX_DIMS: u32 = 4;
const MAX_ARRAY_NESTING: u32 = 2;

/// A validated GGUF file: its parsed header, ready for candle to read tensors from.
#[derive(Debug)]
pub struct GgufFile {
    /// Where it lives.
    pub path: PathBuf,
    /// The container version (2 or 3).
    pub version: u32,
    /// Data alignment in bytes.
    pub alignment: u64,
    /// File size in bytes.
    pub file_size: u64,
    /// The parsed header in candle's own type.
    pub content: Content,
    /// Tensor names in file order.
    pub tensor_order: Vec<String>,
}

impl GgufFile {
    /// Read and validate the header of `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let file_size = file.metadata().map_err(|e| Error::io(path, e))?.len();
        let mut reader = Bounded {
            inner: BufReader::with_capacity(1 << 16, file),
            pos: 0,
            len: file_size,
            path,
        };
        parse(&mut reader, path, file_size)
    }

    /// A metadata value by key.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.content.metadata.get(key)
    }

    /// A string metadata value.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        match self.get(key)? {
            Value::String(s) => Some(s.as_str()),
            _ => None,
        }
    }

    /// An unsigned integer metadata value (any integer width, non-negative).
    pub fn get_u64(&self, key: &str) -> Option<u64> {
        match *self.get(key)? {
            Value::U8(v) => Some(u64::from(v)),
            Value::U16(v) => Some(u64::from(v)),
            Value::U32(v) => Some(u64::from(v)),
            Value::U64(v) => Some(v),
            Value::I8(v) => u64::try_from(v).ok(),
            Value::I16(v) => u64::try_from(v).ok(),
            Value::I32(v) => u64::try_from(v).ok(),
            Value::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// A float metadata value.
    pub fn get_f64(&self, key: &str) -> Option<f64> {
        match *self.get(key)? {
            Value::F32(v) => Some(f64::from(v)),
            Value::F64(v) => Some(v),
            _ => self.get_u64(key).map(|v| v as f64),
        }
    }

    /// A boolean metadata value.
    pub fn get_bool(&self, key: &str) -> Option<bool> {
        match *self.get(key)? {
            Value::Bool(v) => Some(v),
            _ => None,
        }
    }

    /// A string-array metadata value.
    pub fn get_str_array(&self, key: &str) -> Option<Vec<&str>> {
        let Value::Array(items) = self.get(key)? else {
            return None;
        };
        items
            .iter()
            .map(|v| match v {
                Value::String(s) => Some(s.as_str()),
                _ => None,
            })
            .collect()
    }

    /// Shape of a tensor, if present.
    pub fn tensor_dims(&self, name: &str) -> Option<&[usize]> {
        self.content.tensor_infos.get(name).map(|t| t.shape.dims())
    }

    /// Count of each tensor type, most common first, e.g. `[("Q8_0", 120), ("F32", 61)]`.
    pub fn tensor_type_counts(&self) -> Vec<(String, usize)> {
        let mut counts: HashMap<String, usize> = HashMap::new();
        for info in self.content.tensor_infos.values() {
            *counts.entry(format!("{:?}", info.ggml_dtype)).or_default() += 1;
        }
        let mut counts: Vec<_> = counts.into_iter().collect();
        counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        counts
    }
}

struct Bounded<'a, R> {
    inner: R,
    pos: u64,
    len: u64,
    path: &'a Path,
}

impl<R: Read> Bounded<'_, R> {
    fn remaining(&self) -> u64 {
        self.len.saturating_sub(self.pos)
    }

    fn bytes<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        if self.remaining() < N as u64 {
            return Err(self.truncated(what));
        }
        let mut buf = [0u8; N];
        self.inner
            .read_exact(&mut buf)
            .map_err(|e| Error::io(self.path, e))?;
        self.pos += N as u64;
        Ok(buf)
    }

    fn u32(&mut self, what: &str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.bytes(what)?))
    }

    fn u64(&mut self, what: &str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.bytes(what)?))
    }

    fn string(&mut self, what: &str) -> Result<String> {
        let len = self.u64(what)?;
        if len > MAX_STRING_BYTES || len > self.remaining() {
            return Err(Error::bad_file(
                self.path,
                format!(
                    "malformed GGUF: {what} claims {len} bytes at offset {} but only {} remain",
                    self.pos,
                    self.remaining()
                ),
            ));
        }
        let mut buf = vec![0u8; len as usize];
        self.inner
            .read_exact(&mut buf)
            .map_err(|e| Error::io(self.path, e))?;
        self.pos += len;
        String::from_utf8(buf).map_err(|e| {
            Error::bad_file(
                self.path,
                format!("malformed GGUF: {what} is not valid UTF-8 ({e})"),
            )
        })
    }

    fn truncated(&self, what: &str) -> Error {
        Error::bad_file(
            self.path,
            format!(
                "malformed GGUF: file ends at byte {} while reading {what}",
                self.len
            ),
        )
    }

    fn value(&mut self, value_type: u32, what: &str, depth: u32) -> Result<Value> {
        Ok(match value_type {
            0 => Value::U8(self.bytes::<1>(what)?[0]),
            1 => Value::I8(i8::from_le_bytes(self.bytes(what)?)),
            2 => Value::U16(u16::from_le_bytes(self.bytes(what)?)),
            3 => Value::I16(i16::from_le_bytes(self.bytes(what)?)),
            4 => Value::U32(self.u32(what)?),
            5 => Value::I32(i32::from_le_bytes(self.bytes(what)?)),
            6 => Value::F32(f32::from_le_bytes(self.bytes(what)?)),
            7 => match self.bytes::<1>(what)?[0] {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                b => {
                    return Err(Error::bad_file(
                        self.path,
                        format!("malformed GGUF: {what} is a bool with byte value {b}"),
                    ))
                }
            },
            8 => Value::String(self.string(what)?),
            9 => {
                if depth >= MAX_ARRAY_NESTING {
                    return Err(Error::bad_file(
                        self.path,
                        format!("malformed GGUF: {what} nests arrays too deeply"),
                    ));
                }
                let item_type = self.u32(what)?;
                let count = self.u64(what)?;
                // Every item takes at least one byte, so a count beyond the bytes left is a lie.
                if count > self.remaining() {
                    return Err(Error::bad_file(
                        self.path,
                        format!(
                            "malformed GGUF: {what} claims {count} array items but only {} bytes remain",
                            self.remaining()
                        ),
                    ));
                }
                let mut items = Vec::with_capacity((count as usize).min(1 << 20));
                for _ in 0..count {
                    items.push(self.value(item_type, what, depth + 1)?);
                }
                Value::Array(items)
            }
            10 => Value::U64(self.u64(what)?),
            11 => Value::I64(i64::from_le_bytes(self.bytes(what)?)),
            12 => Value::F64(f64::from_le_bytes(self.bytes(what)?)),
            other => {
                return Err(Error::bad_file(
                    self.path,
                    format!("malformed GGUF: {what} has unknown value type {other}"),
                ))
            }
        })
    }
}

/// candle's tensor type for a GGUF type id, with its block size and bytes per block.
fn ggml_type(id: u32) -> Option<(GgmlDType, u64, u64)> {
    Some(match id {
        0 => (GgmlDType::F32, 1, 4),
        1 => (GgmlDType::F16, 1, 2),
        2 => (GgmlDType::Q4_0, 32, 18),
        3 => (GgmlDType::Q4_1, 32, 20),
        6 => (GgmlDType::Q5_0, 32, 22),
        7 => (GgmlDType::Q5_1, 32, 24),
        8 => (GgmlDType::Q8_0, 32, 34),
        9 => (GgmlDType::Q8_1, 32, 36),
        10 => (GgmlDType::Q2K, 256, 84),
        11 => (GgmlDType::Q3K, 256, 110),
        12 => (GgmlDType::Q4K, 256, 144),
        13 => (GgmlDType::Q5K, 256, 176),
        14 => (GgmlDType::Q6K, 256, 210),
        15 => (GgmlDType::Q8K, 256, 292),
        30 => (GgmlDType::BF16, 1, 2),
        _ => return None,
    })
}

fn parse<R: Read + Seek>(r: &mut Bounded<'_, R>, path: &Path, file_size: u64) -> Result<GgufFile> {
    let bad = |msg: String| Error::bad_file(path, format!("malformed GGUF: {msg}"));
    let magic = r.bytes::<4>("the magic bytes")?;
    if &magic != b"GGUF" {
        return Err(Error::bad_file(path, "not a GGUF file (wrong magic bytes)"));
    }
    let version = r.u32("the version")?;
    let versioned_magic = match version {
        2 => VersionedMagic::GgufV2,
        3 => VersionedMagic::GgufV3,
        v => {
            return Err(bad(format!(
                "version {v} is not supported (only GGUF versions 2 and 3)"
            )))
        }
    };
    let tensor_count = r.u64("the tensor count")?;
    let kv_count = r.u64("the metadata count")?;
    // A tensor info takes at least 8+4+8+4+8 bytes, a key/value at least 8+4+1.
    if tensor_count > r.remaining() / 32 {
        return Err(bad(format!(
            "header claims {tensor_count} tensors, more than the file can hold"
        )));
    }
    if kv_count > r.remaining() / 13 {
        return Err(bad(format!(
            "header claims {kv_count} metadata entries, more than the file can hold"
        )));
    }

    let mut metadata = HashMap::with_capacity(kv_count as usize);
    for i in 0..kv_count {
        let key = r.string(&format!("metadata key #{i}"))?;
        let value_type = r.u32(&format!("the type of metadata `{key}`"))?;
        let value = r.value(value_type, &format!("metadata `{key}`"), 0)?;
        if metadata.insert(key.clone(), value).is_some() {
            return Err(bad(format!("metadata key `{key}` appears twice")));
        }
    }

    let alignment = match metadata.get("general.alignment") {
        None => 32,
        Some(Value::U32(a)) => u64::from(*a),
        Some(Value::U64(a)) => *a,
        Some(other) => {
            return Err(bad(format!(
                "general.alignment has the wrong type ({other:?})"
            )))
        }
    };
    if alignment == 0 || !alignment.is_power_of_two() {
        return Err(bad(format!(
            "general.alignment is {alignment}; it must be a non-zero power of two"
        )));
    }

    struct RawInfo {
        name: String,
        dims: Vec<usize>,
        dtype: GgmlDType,
        offset: u64,
        bytes: u64,
    }
    let mut infos = Vec::with_capacity(tensor_count as usize);
    let mut names = HashSet::with_capacity(tensor_count as usize);
    for i in 0..tensor_count {
        let name = r.string(&format!("the name of tensor #{i}"))?;
        if !names.insert(name.clone()) {
            return Err(bad(format!("tensor `{name}` appears twice")));
        }
        let n_dims = r.u32(&format!("the rank of tensor `{name}`"))?;
        if n_dims == 0 || n_dims > MAX_DIMS {
            return Err(bad(format!(
                "tensor `{name}` has {n_dims} dimensions (1 to {MAX_DIMS} allowed)"
            )));
        }
        let mut dims = Vec::with_capacity(n_dims as usize);
        let mut elements: u64 = 1;
        for _ in 0..n_dims {
            let d = r.u64(&format!("the shape of tensor `{name}`"))?;
            if d == 0 {
                return Err(bad(format!("tensor `{name}` has a zero-sized dimension")));
            }
            elements = elements
                .checked_mul(d)
                .ok_or_else(|| bad(format!("tensor `{name}`'s element count overflows")))?;
            dims.push(
                usize::try_from(d)
                    .map_err(|e| bad(format!("tensor `{name}` has a dimension too large ({e})")))?,
            );
        }
        let type_id = r.u32(&format!("the type of tensor `{name}`"))?;
        let (dtype, block, block_bytes) = ggml_type(type_id).ok_or_else(|| {
            bad(format!(
                "tensor `{name}` has type id {type_id}, which aligndiff cannot load \
                 (supported: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1, Q2_K..Q8_K)"
            ))
        })?;
        // GGUF stores the fastest-varying dimension first; rows must hold whole blocks.
        if !(dims[0] as u64).is_multiple_of(block) {
            return Err(bad(format!(
                "tensor `{name}` has rows of {} elements, not a multiple of its {dtype:?} block size {block}",
                dims[0]
            )));
        }
        let bytes = (elements / block)
            .checked_mul(block_bytes)
            .ok_or_else(|| bad(format!("tensor `{name}`'s byte size overflows")))?;
        let offset = r.u64(&format!("the offset of tensor `{name}`"))?;
        if offset % alignment != 0 {
            return Err(bad(format!(
                "tensor `{name}` starts at offset {offset}, not a multiple of the alignment {alignment}"
            )));
        }
        dims.reverse();
        infos.push(RawInfo {
            name,
            dims,
            dtype,
            offset,
            bytes,
        });
    }

    let data_offset = r
        .pos
        .checked_next_multiple_of(alignment)
        .ok_or_else(|| bad("the data offset overflows".into()))?;
    let mut tensor_infos = HashMap::with_capacity(infos.len());
    let mut tensor_order = Vec::with_capacity(infos.len());
    for info in infos {
        let end = data_offset
            .checked_add(info.offset)
            .and_then(|start| start.checked_add(info.bytes))
            .ok_or_else(|| bad(format!("tensor `{}`'s extent overflows", info.name)))?;
        if end > file_size {
            return Err(bad(format!(
                "tensor `{}` needs bytes up to {end} but the file has only {file_size} (truncated download?)",
                info.name
            )));
        }
        tensor_order.push(info.name.clone());
        tensor_infos.insert(
            info.name,
            TensorInfo {
                ggml_dtype: info.dtype,
                shape: candle_core::Shape::from(info.dims),
                offset: info.offset,
            },
        );
    }
    Ok(GgufFile {
        path: path.to_path_buf(),
        version,
        alignment,
        file_size,
        content: Content {
            magic: versioned_magic,
            metadata,
            tensor_infos,
            tensor_data_offset: data_offset,
        },
        tensor_order,
    })
}
