//! Worker event-loop primitives: tokens, a generation-checked slab, timers.
//!
//! Each worker thread owns one `mio::Poll`, its listeners and its
//! connections. Connections live in a [`Slab`]; a [`Token`] names a slot, a
//! role within it (the client socket, an upstream socket, a CGI pipe, ...)
//! and the slot's generation, so an event that arrives late for a slot that
//! has since been reused is recognised and dropped. Every wait has a timer in
//! [`Timers`].
//!
//! The HTTP worker loop itself (accept, route, expire) is in sluice-http's
//! `worker` module: it is the one consumer of these pieces, and keeping the
//! loop next to the connection state machine it drives keeps the routing of
//! an event to its owner in one place.

use std::collections::BTreeSet;
use std::time::{Instant, SystemTime};

use mio::Token;

/// Bits of a token given to the slot index.
const SLOT_BITS: u32 = 32;
/// Bits of a token given to the role.
const ROLE_BITS: u32 = 8;
/// Bits of a token given to the generation.
const GEN_BITS: u32 = 16;

/// What a token stands for inside its slot.
pub type Role = u8;

/// The client socket of a connection.
pub const ROLE_CLIENT: Role = 0;
/// The first role a request's task may register its own descriptors under
/// (an upstream socket, a CGI pipe); roles up to [`ROLE_TASK_LAST`] are the
/// task's to choose.
pub const ROLE_TASK_FIRST: Role = 1;
/// The last role a task may use.
pub const ROLE_TASK_LAST: Role = 0xfc;
/// A descriptor registered through a route (the slot is a route index):
/// the worker looks up which connection and role the route points to now,
/// so a socket that passes from request to request (a kept-alive upstream
/// connection) stays registered without a system call per hand-over.
pub const ROLE_ROUTED: Role = 0xfd;
/// A listening socket (the slot is the listener's index).
pub const ROLE_LISTENER: Role = 0xfe;
/// The worker's waker (the slot is unused).
pub const ROLE_WAKER: Role = 0xff;

/// Builds a token from its parts.
pub fn token(slot: usize, role: Role, generation: u16) -> Token {
    debug_assert!((slot as u64) < (1u64 << SLOT_BITS));
    Token(((generation as usize) << (SLOT_BITS + ROLE_BITS)) | ((role as usize) << SLOT_BITS) | slot)
}

/// Splits a token into slot, role and generation.
pub fn token_parts(t: Token) -> (usize, Role, u16) {
    let slot = t.0 & ((1usize << SLOT_BITS) - 1);
    let role = ((t.0 >> SLOT_BITS) & ((1 << ROLE_BITS) - 1)) as Role;
    let generation = ((t.0 >> (SLOT_BITS + ROLE_BITS)) & ((1 << GEN_BITS) - 1)) as u16;
    (slot, role, generation)
}

struct Entry<T> {
    generation: u16,
    value: Option<T>,
}

/// A slab of values keyed by slot index, with a generation per slot.
pub struct Slab<T> {
    entries: Vec<Entry<T>>,
    free: Vec<usize>,
    len: usize,
}

impl<T> std::fmt::Debug for Slab<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slab").field("len", &self.len).finish()
    }
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab::new()
    }
}

impl<T> Slab<T> {
    /// An empty slab.
    pub fn new() -> Self {
        Slab { entries: Vec::new(), free: Vec::new(), len: 0 }
    }

    /// Stores a value; returns its slot and generation.
    pub fn insert(&mut self, value: T) -> (usize, u16) {
        self.len += 1;
        if let Some(slot) = self.free.pop() {
            let e = &mut self.entries[slot];
            e.generation = e.generation.wrapping_add(1);
            e.value = Some(value);
            (slot, e.generation)
        } else {
            self.entries.push(Entry { generation: 0, value: Some(value) });
            (self.entries.len() - 1, 0)
        }
    }

    /// The value in `slot` if its generation matches.
    pub fn get_mut(&mut self, slot: usize, generation: u16) -> Option<&mut T> {
        match self.entries.get_mut(slot) {
            Some(e) if e.generation == generation => e.value.as_mut(),
            _ => None,
        }
    }

    /// The generation a slot has now.
    pub fn generation(&self, slot: usize) -> Option<u16> {
        self.entries.get(slot).filter(|e| e.value.is_some()).map(|e| e.generation)
    }

    /// Removes and returns the value in `slot`.
    pub fn remove(&mut self, slot: usize) -> Option<T> {
        let v = self.entries.get_mut(slot)?.value.take();
        if v.is_some() {
            self.len -= 1;
            self.free.push(slot);
        }
        v
    }

    /// Number of stored values.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Slots in use, with their generations.
    pub fn slots(&self) -> Vec<(usize, u16)> {
        self.entries.iter().enumerate().filter(|(_, e)| e.value.is_some()).map(|(i, e)| (i, e.generation)).collect()
    }
}

thread_local! {
    static NOW: std::cell::Cell<Option<Instant>> = const { std::cell::Cell::new(None) };
    /// The wall clock of the current event cycle, read on first use.
    static WALL: std::cell::Cell<Option<SystemTime>> = const { std::cell::Cell::new(None) };
}

/// Reads the clock and caches it for this thread (a worker calls it once
/// per loop iteration, as nginx updates its cached time per event cycle).
pub fn refresh_now() -> Instant {
    let now = Instant::now();
    NOW.with(|c| c.set(Some(now)));
    WALL.with(|c| c.set(None));
    now
}

/// The wall-clock time of this thread's current event cycle (for `Date`
/// headers): read once per cycle, on first use; the clock itself on a
/// thread that never called [`refresh_now`].
pub fn wall_now() -> SystemTime {
    if NOW.with(|c| c.get()).is_none() {
        return SystemTime::now();
    }
    WALL.with(|c| {
        c.get().unwrap_or_else(|| {
            let t = SystemTime::now();
            c.set(Some(t));
            t
        })
    })
}

/// The cached time of this thread's current event cycle; the clock itself
/// on a thread that never called [`refresh_now`]. Deadlines and request
/// start times use it, so a request's work costs no clock reads.
pub fn now() -> Instant {
    NOW.with(|c| c.get()).unwrap_or_else(Instant::now)
}

/// Work a module asks a worker thread to do about once a second (flushing
/// buffered log lines, say), and once more when the worker ends (then the
/// flag is true: finish everything).
pub type Tick = Box<dyn FnMut(Instant, bool)>;

thread_local! {
    static TICKS: std::cell::RefCell<Vec<Tick>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Registers periodic work for the calling worker thread; it runs from the
/// worker's loop (see [`run_ticks`]), never concurrently with requests.
pub fn add_tick(tick: Tick) {
    TICKS.with(|t| t.borrow_mut().push(tick));
}

/// True when the calling thread has periodic work (the worker then wakes
/// at least once a second).
pub fn has_ticks() -> bool {
    TICKS.with(|t| !t.borrow().is_empty())
}

/// Runs the calling thread's periodic work; `last` when the worker ends.
pub fn run_ticks(now: Instant, last: bool) {
    // Taken out while running, so a tick may register another.
    let mut ticks = TICKS.with(|t| std::mem::take(&mut *t.borrow_mut()));
    for tick in ticks.iter_mut() {
        tick(now, last);
    }
    TICKS.with(|t| {
        let mut t = t.borrow_mut();
        ticks.append(&mut t);
        *t = ticks;
    });
}

/// Work a module asks to run once the worker has handled the events and
/// timers of the current cycle, before it waits for more (where nginx
/// handles its posted events). A plain function, so asking costs no
/// allocation; asking again for the same function within a cycle runs it
/// once.
pub type CycleEnd = fn();

thread_local! {
    static CYCLE_END: std::cell::RefCell<Vec<CycleEnd>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Asks for `f` to run at the end of the calling worker's current event
/// cycle (see [`run_cycle_end`]).
pub fn at_cycle_end(f: CycleEnd) {
    CYCLE_END.with(|c| {
        let mut c = c.borrow_mut();
        if !c.iter().any(|g| std::ptr::fn_addr_eq(*g, f)) {
            c.push(f);
        }
    });
}

/// Runs the work asked for with [`at_cycle_end`] during this cycle, once
/// each (the worker calls it at the end of each cycle). Work asked for
/// while it runs waits for the end of the next cycle.
pub fn run_cycle_end() {
    if CYCLE_END.with(|c| c.borrow().is_empty()) {
        return;
    }
    let mut asked = CYCLE_END.with(|c| std::mem::take(&mut *c.borrow_mut()));
    for f in asked.drain(..) {
        f();
    }
    // The list keeps its allocation from cycle to cycle.
    CYCLE_END.with(|c| {
        let mut c = c.borrow_mut();
        if c.is_empty() {
            std::mem::swap(&mut *c, &mut asked);
        }
    });
}

/// A pending timer: when it fires and what it is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimerId {
    at: Instant,
    seq: u64,
}

impl TimerId {
    /// When the timer fires.
    pub fn deadline(&self) -> Instant {
        self.at
    }
}

/// Timers of one worker, ordered by deadline. A connection keeps the
/// [`TimerId`] of its one pending wait and cancels it when the wait ends.
#[derive(Debug, Default)]
pub struct Timers {
    set: BTreeSet<(Instant, u64, Token)>,
    seq: u64,
}

impl Timers {
    /// No timers.
    pub fn new() -> Self {
        Timers::default()
    }

    /// Adds a timer that fires `token` at `at`.
    pub fn add(&mut self, at: Instant, token: Token) -> TimerId {
        self.seq += 1;
        self.set.insert((at, self.seq, token));
        TimerId { at, seq: self.seq }
    }

    /// Cancels a timer (no-op if it already fired).
    pub fn cancel(&mut self, id: TimerId, token: Token) {
        self.set.remove(&(id.at, id.seq, token));
    }

    /// The earliest deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.set.first().map(|(at, _, _)| *at)
    }

    /// Removes and returns one expired timer's token.
    pub fn pop_expired(&mut self, now: Instant) -> Option<(TimerId, Token)> {
        match self.set.first() {
            Some(&(at, seq, tok)) if at <= now => {
                self.set.pop_first();
                Some((TimerId { at, seq }, tok))
            }
            _ => None,
        }
    }

    /// Number of pending timers.
    pub fn len(&self) -> usize {
        self.set.len()
    }

    /// True when no timer is pending.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    thread_local! {
        static RAN: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
    }

    fn count_run() {
        RAN.with(|r| r.set(r.get() + 1));
        // Asked again while running: that is for the next cycle.
        if RAN.with(|r| r.get()) == 1 {
            at_cycle_end(count_run);
        }
    }

    #[test]
    fn cycle_end_work_runs_once_per_asking_cycle() {
        std::thread::spawn(|| {
            run_cycle_end();
            assert_eq!(RAN.with(|r| r.get()), 0);
            at_cycle_end(count_run);
            at_cycle_end(count_run);
            run_cycle_end();
            assert_eq!(RAN.with(|r| r.get()), 1, "asked twice, run once");
            run_cycle_end();
            assert_eq!(RAN.with(|r| r.get()), 2, "asked while running: run at the next cycle's end");
            run_cycle_end();
            assert_eq!(RAN.with(|r| r.get()), 2, "not asked again");
        })
        .join()
        .unwrap();
    }

    #[test]
    fn wall_clock_is_cached_per_cycle() {
        // A thread that never refreshed reads the clock each time.
        std::thread::spawn(|| {
            let a = wall_now();
            std::thread::sleep(Duration::from_millis(5));
            assert!(wall_now() > a);
        })
        .join()
        .unwrap();
        std::thread::spawn(|| {
            refresh_now();
            let a = wall_now();
            std::thread::sleep(Duration::from_millis(5));
            assert_eq!(wall_now(), a, "one reading per event cycle");
            refresh_now();
            assert!(wall_now() > a, "the next cycle reads the clock again");
        })
        .join()
        .unwrap();
    }

    #[test]
    fn token_round_trip() {
        for (slot, role, gen) in [(0usize, 0u8, 0u16), (12345, 3, 65535), ((1 << 32) - 1, 0xfe, 7)] {
            assert_eq!(token_parts(token(slot, role, gen)), (slot, role, gen));
        }
    }

    #[test]
    fn slab_generations_reject_stale_slots() {
        let mut s = Slab::new();
        let (a, ga) = s.insert("a");
        assert_eq!(s.remove(a), Some("a"));
        let (b, gb) = s.insert("b");
        assert_eq!(a, b);
        assert_ne!(ga, gb);
        assert!(s.get_mut(a, ga).is_none());
        assert_eq!(s.get_mut(b, gb), Some(&mut "b"));
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn timers_fire_in_order_and_cancel() {
        let mut t = Timers::new();
        let now = Instant::now();
        let a = t.add(now + Duration::from_millis(20), Token(1));
        t.add(now + Duration::from_millis(10), Token(2));
        t.add(now + Duration::from_millis(30), Token(3));
        t.cancel(a, Token(1));
        assert_eq!(t.next_deadline(), Some(now + Duration::from_millis(10)));
        let later = now + Duration::from_millis(40);
        let fired: Vec<Token> = std::iter::from_fn(|| t.pop_expired(later).map(|(_, k)| k)).collect();
        assert_eq!(fired, vec![Token(2), Token(3)]);
        assert!(t.is_empty());
    }
}
