//! The one place llmhub calls into the C library: the allocator's settings, and the system
//! constants the process metrics need to read `/proc`.
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

/// The kernel's clock ticks per second (`sysconf(_SC_CLK_TCK)`), the unit of the CPU times in
/// `/proc/self/stat`; `None` off Linux with glibc.
pub fn clock_ticks_per_second() -> Option<u64> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        sysconf(libc::_SC_CLK_TCK)
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        None
    }
}

/// The memory page size in bytes (`sysconf(_SC_PAGESIZE)`), the unit of `/proc/self/stat`'s
/// resident set; `None` off Linux with glibc.
pub fn page_size() -> Option<u64> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        sysconf(libc::_SC_PAGESIZE)
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        None
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn sysconf(name: libc::c_int) -> Option<u64> {
    // SAFETY: sysconf reads a configuration value; it takes no pointers and has no side effects.
    let v = unsafe { libc::sysconf(name) };
    u64::try_from(v).ok().filter(|v| *v > 0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_page_size_and_clock_tick_are_what_getconf_says() {
        let getconf = |name: &str| -> Option<u64> {
            let out = std::process::Command::new("getconf").arg(name).output().ok()?;
            String::from_utf8(out.stdout).ok()?.trim().parse().ok()
        };
        if let (Some(page), Some(tick)) = (getconf("PAGESIZE"), getconf("CLK_TCK")) {
            assert_eq!(super::page_size(), Some(page));
            assert_eq!(super::clock_ticks_per_second(), Some(tick));
        }
    }

    #[test]
    fn the_threshold_is_set_on_glibc() {
        let took = super::fix_mmap_threshold(128 * 1024);
        assert_eq!(took, cfg!(all(target_os = "linux", target_env = "gnu")));
        // Out of range for a C int: refused, not truncated.
        assert!(!super::fix_mmap_threshold(usize::MAX));
    }
}
