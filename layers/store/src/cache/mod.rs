//! `CachedStore`: a moka cache in front of any store, which answers from
//! memory only what it can show to be current, and reads through otherwise.
//! The mechanism is documented on [`CachedStore`].

mod barrier;
mod builder;
mod bus;
mod peers;
mod state;
mod store;

pub use self::builder::CachedStoreBuilder;
pub use self::bus::{Beat, BusEvent, Invalidation, InvalidationBus, LocalBus};
pub use self::store::{CachedStore, UnannouncedWrite};
