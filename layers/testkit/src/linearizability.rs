//! A linearizability checker (Wing & Gong's search with Lowe's memoisation,
//! as in porcupine / knossos), for histories recorded by concurrent tests.
//!
//! A [`History`] records each operation's invocation and completion on one
//! logical clock. An operation that completed is `ok` with its output; one
//! whose outcome is unknown (a timeout, a dropped connection) may have
//! taken effect at any point after its invocation, or never; one known to
//! have failed without effect is left out. [`check`] searches for a
//! sequential order, consistent with real time, in which a [`Model`]
//! produces every recorded output.
//!
//! ```
//! use foresight_testkit::linearizability::{check, History, Register, RegisterInput, RegisterOutput};
//!
//! let history = History::new();
//! let a = history.invoke();
//! let b = history.invoke();
//! history.ok(a, RegisterInput::Cas { expected: 1, value: 7 }, RegisterOutput::Written { version: 2 });
//! history.ok(b, RegisterInput::Load, RegisterOutput::Loaded { version: 1, value: 0 });
//! // The load overlapped the write, so it may be ordered first.
//! assert!(check(Register::new(1, 0), &history.operations()).is_ok());
//! ```

use std::collections::HashSet;
use std::hash::Hash;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// A sequential specification.
pub trait Model: Clone + Eq + Hash {
    /// What an operation asks.
    type Input;
    /// What it answered.
    type Output;

    /// The state after `input` answered `output` in this state, or `None`
    /// if this state cannot produce that answer. With `output == None` (an
    /// unknown outcome), the state after the operation took effect.
    fn step(&self, input: &Self::Input, output: Option<&Self::Output>) -> Option<Self>;
}

/// One recorded operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation<I, O> {
    /// What it asked.
    pub input: I,
    /// Its answer, `None` if unknown.
    pub output: Option<O>,
    /// Clock at invocation.
    pub call: u64,
    /// Clock at completion, `u64::MAX` if unknown.
    pub ret: u64,
}

/// A concurrent recorder of operations.
#[derive(Debug)]
pub struct History<I, O> {
    clock: AtomicU64,
    ops: Mutex<Vec<Operation<I, O>>>,
}

impl<I: Clone, O: Clone> Default for History<I, O> {
    fn default() -> Self {
        Self::new()
    }
}

impl<I: Clone, O: Clone> History<I, O> {
    /// An empty history.
    pub fn new() -> Self {
        Self {
            clock: AtomicU64::new(0),
            ops: Mutex::new(Vec::new()),
        }
    }

    /// Marks an invocation; pass the returned time to [`ok`](Self::ok) or
    /// [`unknown`](Self::unknown). Call it right before the operation starts.
    pub fn invoke(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::SeqCst)
    }

    /// Records an operation invoked at `call` that completed with `output`.
    /// Call it right after the operation returns.
    pub fn ok(&self, call: u64, input: I, output: O) {
        let ret = self.clock.fetch_add(1, Ordering::SeqCst);
        self.push(Operation {
            input,
            output: Some(output),
            call,
            ret,
        });
    }

    /// Records an operation invoked at `call` whose outcome is unknown.
    pub fn unknown(&self, call: u64, input: I) {
        self.push(Operation {
            input,
            output: None,
            call,
            ret: u64::MAX,
        });
    }

    /// The operations recorded so far.
    pub fn operations(&self) -> Vec<Operation<I, O>> {
        self.ops.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn push(&self, op: Operation<I, O>) {
        self.ops.lock().unwrap_or_else(|e| e.into_inner()).push(op);
    }
}

/// Why a history is not linearizable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotLinearizable {
    /// Most completed operations placed in any attempted order.
    pub longest_prefix: usize,
    /// Completed operations in the history.
    pub completed: usize,
}

impl std::fmt::Display for NotLinearizable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "history is not linearizable: at most {} of {} completed operations could be ordered",
            self.longest_prefix, self.completed
        )
    }
}

impl std::error::Error for NotLinearizable {}

/// Checks that `history` is linearizable with respect to `init`.
pub fn check<M: Model>(
    init: M,
    history: &[Operation<M::Input, M::Output>],
) -> Result<(), NotLinearizable> {
    let completed = history.iter().filter(|o| o.output.is_some()).count();
    let mut search = Search {
        ops: history,
        seen: HashSet::new(),
        longest: 0,
        completed,
    };
    let words = history.len().div_ceil(64);
    if search.go(&init, &mut vec![0u64; words], 0) {
        Ok(())
    } else {
        Err(NotLinearizable {
            longest_prefix: search.longest,
            completed,
        })
    }
}

struct Search<'a, M: Model> {
    ops: &'a [Operation<M::Input, M::Output>],
    seen: HashSet<(Vec<u64>, M)>,
    longest: usize,
    completed: usize,
}

impl<M: Model> Search<'_, M> {
    fn go(&mut self, state: &M, done: &mut Vec<u64>, placed: usize) -> bool {
        self.longest = self.longest.max(placed);
        if placed == self.completed {
            return true;
        }
        let is_done = |done: &[u64], i: usize| done[i / 64] & (1 << (i % 64)) != 0;
        // Only an operation invoked before the earliest pending completion
        // can come next.
        let horizon = self
            .ops
            .iter()
            .enumerate()
            .filter(|(i, o)| o.output.is_some() && !is_done(done, *i))
            .map(|(_, o)| o.ret)
            .min()
            .unwrap_or(u64::MAX);
        for i in 0..self.ops.len() {
            let op = &self.ops[i];
            if is_done(done, i) || op.call >= horizon {
                continue;
            }
            let Some(next) = state.step(&op.input, op.output.as_ref()) else {
                continue;
            };
            done[i / 64] |= 1 << (i % 64);
            let counted = placed + usize::from(op.output.is_some());
            if self.seen.insert((done.clone(), next.clone())) && self.go(&next, done, counted) {
                return true;
            }
            done[i / 64] &= !(1 << (i % 64));
        }
        false
    }
}

/// A versioned register with compare-and-set: the model of one session in
/// a `SessionStore`-like store (a version, and a value written with it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Register {
    /// Current version.
    pub version: u64,
    /// Current value.
    pub value: i64,
}

impl Register {
    /// A register at `version` holding `value`.
    pub fn new(version: u64, value: i64) -> Self {
        Self { version, value }
    }
}

/// An operation on a [`Register`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RegisterInput {
    /// Read version and value.
    Load,
    /// Write `value` if the version is `expected`; the version becomes
    /// `expected + 1`.
    Cas {
        /// Version the writer read.
        expected: u64,
        /// Value to write.
        value: i64,
    },
}

/// The answer of an operation on a [`Register`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RegisterOutput {
    /// A load's answer.
    Loaded {
        /// Version read.
        version: u64,
        /// Value read.
        value: i64,
    },
    /// A successful compare-and-set.
    Written {
        /// The new version.
        version: u64,
    },
    /// A compare-and-set refused: the version was not the expected one.
    Conflict,
}

impl Model for Register {
    type Input = RegisterInput;
    type Output = RegisterOutput;

    fn step(&self, input: &RegisterInput, output: Option<&RegisterOutput>) -> Option<Self> {
        match (input, output) {
            (RegisterInput::Load, Some(RegisterOutput::Loaded { version, value })) => {
                (*version == self.version && *value == self.value).then_some(*self)
            }
            (RegisterInput::Load, None) => Some(*self),
            (RegisterInput::Cas { expected, value }, Some(RegisterOutput::Written { version })) => {
                (*expected == self.version && *version == expected + 1)
                    .then_some(Register::new(*version, *value))
            }
            (RegisterInput::Cas { expected, .. }, Some(RegisterOutput::Conflict)) => {
                (*expected != self.version).then_some(*self)
            }
            (RegisterInput::Cas { expected, value }, None) => Some(if *expected == self.version {
                Register::new(expected + 1, *value)
            } else {
                *self
            }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RegisterInput::*;
    use RegisterOutput::*;

    fn op(
        input: RegisterInput,
        output: Option<RegisterOutput>,
        call: u64,
        ret: u64,
    ) -> Operation<RegisterInput, RegisterOutput> {
        Operation {
            input,
            output,
            call,
            ret,
        }
    }

    #[test]
    fn sequential_history_passes() {
        let h = [
            op(
                Cas {
                    expected: 1,
                    value: 5,
                },
                Some(Written { version: 2 }),
                0,
                1,
            ),
            op(
                Load,
                Some(Loaded {
                    version: 2,
                    value: 5,
                }),
                2,
                3,
            ),
            op(
                Cas {
                    expected: 1,
                    value: 6,
                },
                Some(Conflict),
                4,
                5,
            ),
        ];
        assert!(check(Register::new(1, 0), &h).is_ok());
    }

    #[test]
    fn lost_update_is_caught() {
        // Two writers both succeed from version 1: impossible.
        let h = [
            op(
                Cas {
                    expected: 1,
                    value: 5,
                },
                Some(Written { version: 2 }),
                0,
                3,
            ),
            op(
                Cas {
                    expected: 1,
                    value: 6,
                },
                Some(Written { version: 2 }),
                1,
                2,
            ),
        ];
        assert!(check(Register::new(1, 0), &h).is_err());
    }

    #[test]
    fn stale_read_is_caught() {
        let h = [
            op(
                Cas {
                    expected: 1,
                    value: 5,
                },
                Some(Written { version: 2 }),
                0,
                1,
            ),
            op(
                Load,
                Some(Loaded {
                    version: 1,
                    value: 0,
                }),
                2,
                3,
            ),
        ];
        assert!(check(Register::new(1, 0), &h).is_err());
    }

    #[test]
    fn unknown_write_may_or_may_not_apply() {
        let applied = [
            op(
                Cas {
                    expected: 1,
                    value: 5,
                },
                None,
                0,
                u64::MAX,
            ),
            op(
                Load,
                Some(Loaded {
                    version: 2,
                    value: 5,
                }),
                1,
                2,
            ),
        ];
        let not_applied = [
            op(
                Cas {
                    expected: 1,
                    value: 5,
                },
                None,
                0,
                u64::MAX,
            ),
            op(
                Load,
                Some(Loaded {
                    version: 1,
                    value: 0,
                }),
                1,
                2,
            ),
        ];
        assert!(check(Register::new(1, 0), &applied).is_ok());
        assert!(check(Register::new(1, 0), &not_applied).is_ok());
    }
}
