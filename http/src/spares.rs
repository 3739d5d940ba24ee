//! A bounded stack of spare values kept for reuse (emptied read buffers,
//! emptied header lists): what the worker's pools (`read_buf`,
//! `header_lists`) share. Each pool is a thread-local `Spares`, so it needs
//! no lock; what goes in is the caller's to empty first.

use std::cell::RefCell;

pub(crate) struct Spares<T> {
    kept: RefCell<Vec<T>>,
    limit: usize,
}

impl<T> Spares<T> {
    /// An empty stack that keeps at most `limit` values.
    pub(crate) const fn new(limit: usize) -> Spares<T> {
        Spares { kept: RefCell::new(Vec::new()), limit }
    }

    /// The value kept last, if any.
    pub(crate) fn take(&self) -> Option<T> {
        self.kept.borrow_mut().pop()
    }

    /// How many values are kept.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.kept.borrow().len()
    }

    /// Keeps `value` for reuse, or drops it when the stack is full.
    pub(crate) fn keep(&self, value: T) {
        let mut kept = self.kept.borrow_mut();
        if kept.len() < self.limit {
            kept.push(value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_up_to_its_limit_and_gives_back_the_last_first() {
        let s = Spares::new(2);
        s.keep(1);
        s.keep(2);
        s.keep(3);
        assert_eq!((s.take(), s.take(), s.take()), (Some(2), Some(1), None));
    }
}
