use tower_layer::Layer;

use super::service::DualToken;
use super::slots::TokenSlots;

/// Attaches the active token and handles deliveries and switches; see the
/// [module docs](super).
#[derive(Clone, Debug)]
#[must_use]
pub struct DualTokenLayer {
    slots: TokenSlots,
}

impl DualTokenLayer {
    /// A layer over `slots` (shared with the WebSocket task).
    pub fn new(slots: TokenSlots) -> Self {
        Self { slots }
    }
}

impl<S> Layer<S> for DualTokenLayer {
    type Service = DualToken<S>;

    fn layer(&self, inner: S) -> Self::Service {
        DualToken::new(inner, self.slots.clone())
    }
}
