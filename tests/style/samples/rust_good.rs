use std::collections::HashMap;
use std::fmt;

/// The largest number of entries a cache keeps.
pub const MAX_ENTRIES: usize = 64;

static GREETING: &str = "hello";

/// A cache of rendered pages.
#[derive(Debug, Default)]
pub struct PageCache {
    pages: HashMap<String, String>,
}

/// What went wrong.
pub enum CacheError {
    /// The page is not there.
    Missing,
}

impl PageCache {
    /// The page at a path, if cached.
    pub fn page(&self, path: &str) -> Option<&String> {
        let found_page = self.pages.get(path);
        found_page
    }

    fn evict(&mut self) {
        self.pages.clear();
    }
}

impl fmt::Display for PageCache {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{} pages, {}", self.pages.len(),
               GREETING)
    }
}

mod helpers {}
