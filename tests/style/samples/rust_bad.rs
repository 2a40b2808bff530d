use std::io::*;

pub const maxEntries: usize = 64;

pub struct page_cache {
    Pages: Vec<String>,
}

enum Error {
    not_found,
}

impl page_cache {
    pub fn page(&self) {}

    /// Documented.
    pub fn GetPage(&self, Path: &str) {
      let pageCount = 1;
    }
}

mod Helpers {}

fn Helper() {}

macro_rules! MakeThing { () => {} }

static LIMIT: &str = "this line goes past the one hundred column limit that rustfmt sets by default";
