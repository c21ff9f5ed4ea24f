//! First-fit allocator over the pages of the memory file.
//!
//! The free list is a map from range start to range length, kept coalesced:
//! no two free ranges touch. Allocation walks it in address order and takes
//! the first range that is large enough, which keeps application memory
//! packed at the front of the file.

use std::collections::BTreeMap;

use crate::FileRange;

#[derive(Debug)]
pub(crate) struct Allocator {
    /// start -> len of every free range; ranges never overlap nor touch.
    free: BTreeMap<u64, u64>,
    allocated: u64,
}

impl Allocator {
    /// An allocator whose whole `[0, size)` is free.
    pub(crate) fn new(size: u64) -> Self {
        let mut free = BTreeMap::new();
        if size > 0 {
            free.insert(0, size);
        }
        Allocator { free, allocated: 0 }
    }

    pub(crate) fn allocated(&self) -> u64 {
        self.allocated
    }

    /// Bytes still free (not necessarily contiguous).
    pub(crate) fn available(&self) -> u64 {
        self.free.values().sum()
    }

    /// Takes `len` bytes (already rounded to pages by the caller) from the
    /// first free range large enough.
    pub(crate) fn allocate(&mut self, len: u64) -> Option<FileRange> {
        let (&start, &free_len) = self.free.iter().find(|(_, &l)| l >= len)?;
        self.free.remove(&start);
        if free_len > len {
            self.free.insert(start + len, free_len - len);
        }
        self.allocated += len;
        Some(FileRange { start, len })
    }

    /// Returns `r` to the free list, merging it with its neighbours.
    ///
    /// Panics if `r` overlaps a free range: that is a double free, a bug in
    /// the caller that would otherwise hand one page to two owners.
    pub(crate) fn free(&mut self, r: FileRange) {
        let mut start = r.start;
        let mut len = r.len;
        if let Some((&pstart, &plen)) = self.free.range(..=start).next_back() {
            assert!(pstart + plen <= start, "memfile: double free of {r:?}");
            if pstart + plen == start {
                self.free.remove(&pstart);
                start = pstart;
                len += plen;
            }
        }
        if let Some((&nstart, &nlen)) = self.free.range(r.start..).next() {
            assert!(nstart >= r.end(), "memfile: double free of {r:?}");
            if nstart == r.end() {
                self.free.remove(&nstart);
                len += nlen;
            }
        }
        self.free.insert(start, len);
        self.allocated -= r.len;
    }

    #[cfg(test)]
    pub(crate) fn free_ranges(&self) -> Vec<(u64, u64)> {
        self.free.iter().map(|(&s, &l)| (s, l)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_fit_and_coalesce() {
        let mut a = Allocator::new(10 * 4096);
        let r1 = a.allocate(4096).unwrap();
        let r2 = a.allocate(2 * 4096).unwrap();
        let r3 = a.allocate(4096).unwrap();
        assert_eq!((r1.start, r2.start, r3.start), (0, 4096, 3 * 4096));
        assert_eq!(a.allocated(), 4 * 4096);

        a.free(r2);
        // A one-page request fits in the hole left by r2 (first fit).
        let r4 = a.allocate(4096).unwrap();
        assert_eq!(r4.start, 4096);
        a.free(r4);
        a.free(r1);
        assert_eq!(a.free_ranges(), vec![(0, 3 * 4096), (4 * 4096, 6 * 4096)]);
        a.free(r3);
        assert_eq!(a.free_ranges(), vec![(0, 10 * 4096)]);
        assert_eq!(a.allocated(), 0);
    }

    #[test]
    fn exhaustion() {
        let mut a = Allocator::new(4 * 4096);
        let _x = a.allocate(3 * 4096).unwrap();
        assert!(a.allocate(2 * 4096).is_none());
        assert_eq!(a.available(), 4096);
    }

    #[test]
    #[should_panic(expected = "double free")]
    fn double_free_panics() {
        let mut a = Allocator::new(4 * 4096);
        let r = a.allocate(4096).unwrap();
        a.free(r);
        a.free(r);
    }
}
