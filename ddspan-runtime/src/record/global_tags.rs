//! Tags set on the tracer at run time (Python's `tracer.set_tags`): every
//! span finished afterwards carries them. A chunk takes a snapshot when it
//! is handed over; until the first tag is set this costs one relaxed load.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

static ANY: AtomicBool = AtomicBool::new(false);
pub(crate) type Snapshot = Option<Arc<Vec<(String, String)>>>;

static TAGS: RwLock<Snapshot> = RwLock::new(None);

/// Sets a tag on every span finished from now on.
///
/// # Examples
///
/// ```
/// ddspan_runtime::tracer::set_global_tag("deployment.color", "blue");
/// ```
pub fn set_global_tag(key: impl Into<String>, value: impl Into<String>) {
    let (key, value) = (key.into(), value.into());
    let mut tags = TAGS.write().unwrap_or_else(PoisonError::into_inner);
    let mut next: Vec<(String, String)> = tags.as_deref().cloned().unwrap_or_default();
    next.retain(|(k, _)| *k != key);
    next.push((key, value));
    *tags = Some(Arc::new(next));
    ANY.store(true, Ordering::Release);
}

pub(crate) fn snapshot() -> Snapshot {
    if !ANY.load(Ordering::Acquire) {
        return None;
    }
    TAGS.read().unwrap_or_else(PoisonError::into_inner).clone()
}
