//! The one place llmhub calls into the C library.
//!
//! glibc's allocator serves requests from its heaps below a threshold and maps larger ones
//! directly, returning them to the system when freed; by default the threshold rises to the size
//! of each large block freed (up to 32 MiB), so after a while request bodies, decoded spans and
//! encode buffers of a few hundred KiB all come from the heaps. Under a long overload those heaps
//! fragment between short-lived request buffers and long-lived queued data, and resident memory
//! climbs well past what is held (40 MiB past it in the overload test, TESTING.md). Fixing the
//! threshold keeps large blocks mapped, so freeing them gives the memory back.

/// Fixes glibc's mmap threshold at `bytes` (turning off its dynamic raise). Returns whether the
/// setting took (always false off glibc). Call it at the start of `main`, before other threads.
pub fn fix_mmap_threshold(bytes: usize) -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let Ok(value) = libc::c_int::try_from(bytes) else {
            return false;
        };
        // SAFETY: mallopt only changes the allocator's tuning parameters; it takes no pointers
        // and glibc serializes it with allocation internally.
        unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, value) == 1 }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        let _ = bytes;
        false
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_threshold_is_set_on_glibc() {
        let took = super::fix_mmap_threshold(128 * 1024);
        assert_eq!(took, cfg!(all(target_os = "linux", target_env = "gnu")));
        // Out of range for a C int: refused, not truncated.
        assert!(!super::fix_mmap_threshold(usize::MAX));
    }
}
