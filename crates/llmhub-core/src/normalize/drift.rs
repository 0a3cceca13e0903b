//! Usage-like attribute keys that nothing reads (an instrumentation's rename shows here first).

use super::*;

thread_local! {
    /// Attribute keys this thread met that no rule reads and that are not unmapped usage keys, so
    /// that the drift check of a key seen before costs one lookup instead of a scan of its bytes
    /// (most are content keys, on every span). Cleared when it reaches [`PLAIN_KEYS_MAX`].
    static PLAIN_KEYS: std::cell::RefCell<std::collections::HashSet<Box<str>, ahash::RandomState>> =
        std::cell::RefCell::new(std::collections::HashSet::with_hasher(ahash::RandomState::new()));
}

/// Bound of [`PLAIN_KEYS`].
pub(super) const PLAIN_KEYS_MAX: usize = 4096;

/// [`keys::is_unmapped_usage_key`], remembering the keys that are not.
pub(super) fn unmapped_usage_key(key: &str) -> bool {
    PLAIN_KEYS.with(|set| {
        let mut set = set.borrow_mut();
        if set.contains(key) {
            return false;
        }
        if keys::is_unmapped_usage_key(key) {
            return true;
        }
        if set.len() >= PLAIN_KEYS_MAX {
            set.clear();
        }
        set.insert(key.into());
        false
    })
}
