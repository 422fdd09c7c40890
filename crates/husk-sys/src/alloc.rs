//! husk's global allocator: a bump arena for the short life of a husk command, falling back to
//! the system allocator once the arena is spent.
//!
//! Why: musl's allocator maps and unmaps small regions as a process grows (62 mmap/munmap calls
//! for `husk --version`, more for `create`), each a syscall and fresh page faults, while a husk
//! command allocates a few hundred KiB in total and exits. The arena lives in .bss (free until
//! touched), hands out memory by bumping an offset, and takes back only the latest block (the
//! common pattern of a temporary String or Vec); everything else is released at exit. The
//! processes that live long (a foreground `run` waiting for its container, the `--init` reaper)
//! allocate little after start-up, and when the arena is used up every further allocation goes
//! to the system allocator, so memory stays bounded by ARENA_SIZE plus what malloc holds.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicUsize, Ordering};

const ARENA_SIZE: usize = 4 << 20;

#[repr(C, align(4096))]
struct Memory(UnsafeCell<[u8; ARENA_SIZE]>);

// SAFETY: the bytes are only reached through `Arena`, which hands every byte to one owner at a
// time (the offset moves with compare-exchange).
unsafe impl Sync for Memory {}

pub struct Arena {
    memory: Memory,
    /// Offset of the first free byte.
    top: AtomicUsize,
}

impl Arena {
    pub const fn new() -> Arena {
        Arena {
            memory: Memory(UnsafeCell::new([0; ARENA_SIZE])),
            top: AtomicUsize::new(0),
        }
    }

    fn base(&self) -> usize {
        self.memory.0.get() as usize
    }

    fn owns(&self, p: *mut u8) -> bool {
        (self.base()..self.base() + ARENA_SIZE).contains(&(p as usize))
    }

    /// A block of `layout` from the arena, or None when it does not fit.
    fn bump(&self, layout: Layout) -> Option<*mut u8> {
        let base = self.base();
        let mut top = self.top.load(Ordering::Relaxed);
        loop {
            let start = (base + top).checked_next_multiple_of(layout.align())? - base;
            let end = start.checked_add(layout.size())?;
            if end > ARENA_SIZE {
                return None;
            }
            match self
                .top
                .compare_exchange_weak(top, end, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return Some((base + start) as *mut u8),
                Err(now) => top = now,
            }
        }
    }
}

impl Default for Arena {
    fn default() -> Self {
        Self::new()
    }
}

// SAFETY: blocks from the arena never overlap (each is carved past the current offset with a
// compare-exchange, aligned as asked, inside the arena); a block is given back (offset moved
// down) only when it is the latest one, so no live block is handed out twice. Everything else
// is the system allocator's, with the caller's own layouts.
unsafe impl GlobalAlloc for Arena {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match self.bump(layout) {
            Some(p) => p,
            // SAFETY: the caller's layout has a non-zero size, as GlobalAlloc requires.
            None => unsafe { System.alloc(layout) },
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if self.owns(ptr) {
            let start = ptr as usize - self.base();
            let _ = self.top.compare_exchange(
                start + layout.size(),
                start,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        } else {
            // SAFETY: not the arena's, so System allocated it with this layout.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if self.owns(ptr) {
            let start = ptr as usize - self.base();
            let end = start + layout.size();
            // The latest block grows (or shrinks) in place.
            if start + new_size <= ARENA_SIZE
                && self
                    .top
                    .compare_exchange(end, start + new_size, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
            {
                return ptr;
            }
            // SAFETY: same alignment and a non-zero size, as the caller guarantees.
            let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
            // SAFETY: as `alloc`.
            let new = unsafe { self.alloc(new_layout) };
            if !new.is_null() {
                // SAFETY: both blocks are valid for the smaller size and do not overlap (the
                // new one was carved past the old one or comes from the system allocator).
                unsafe {
                    std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                    self.dealloc(ptr, layout);
                }
            }
            new
        } else {
            // SAFETY: the system allocator's block, with the caller's layout.
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bumps_aligns_takes_back_the_latest_and_falls_back() {
        static A: Arena = Arena::new();
        let a = &A;
        let l = |s, al| Layout::from_size_align(s, al).unwrap();
        // SAFETY: layouts are non-zero; blocks are used within their sizes and freed once.
        unsafe {
            let p = a.alloc(l(10, 1));
            let q = a.alloc(l(8, 64));
            assert_eq!(q as usize % 64, 0);
            assert!(q as usize >= p as usize + 10);
            q.write_bytes(7, 8);
            a.dealloc(q, l(8, 64));
            assert_eq!(a.alloc(l(8, 64)), q, "the latest block is taken back");
            let r = a.realloc(q, l(8, 64), 4096);
            assert_eq!(r, q, "the latest block grows in place");
            assert_eq!(*r.add(7), 7);
            let big = a.alloc(l(ARENA_SIZE, 8));
            assert!(
                !big.is_null() && !a.owns(big),
                "too big: the system allocator's"
            );
            big.write_bytes(1, ARENA_SIZE);
            a.dealloc(big, l(ARENA_SIZE, 8));
            let s = a.realloc(p, l(10, 1), 20);
            assert!(a.owns(s) && s != p && *s.add(9) == 0);
        }
    }
}
