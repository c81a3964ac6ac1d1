//! Giving freed memory back to the operating system.

/// Return the heap's free pages to the system. Building a tokenizer from a large vocabulary
/// (Gemma 3's 262,144 tokens) goes through a JSON document several times the tokenizer's own
/// size; glibc keeps those freed pages mapped, so a loaded Gemma 3 270M otherwise held ~360 MB
/// it no longer used (measured: 503 MB resident after the tokenizer, 140 MB after this).
pub fn release_freed() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // `malloc_trim` is a glibc extension with no Rust binding in std.
        #[allow(unsafe_code)]
        // SAFETY: malloc_trim takes a padding size and only releases free heap pages.
        unsafe {
            unsafe extern "C" {
                fn malloc_trim(pad: usize) -> i32;
            }
            malloc_trim(0);
        }
    }
}
