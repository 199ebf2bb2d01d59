//! The single writer of a topology: the instance list, the health slots
//! and the ranking layout, from which each snapshot is built.

use std::collections::HashMap;
use std::sync::Arc;

use super::members::{Instance, Members, TopologyError};
use crate::health::HealthSlot;
use crate::instance::{InstanceId, InstanceSpec};
use crate::rank::{Flat, Ranker, Skeleton, SkeletonLayout, node_hash};

#[derive(Debug)]
pub(super) struct Writer {
    pub(super) epoch: u64,
    pub(super) specs: Vec<InstanceSpec>,
    pub(super) health: HashMap<InstanceId, Arc<HealthSlot>>,
    pub(super) layout: Option<SkeletonLayout>,
    /// Set once the initial list is in: later joins start their slow start.
    pub(super) built: bool,
}

pub(super) fn check_weight(spec: &InstanceSpec) -> Result<(), TopologyError> {
    if spec.weight.is_finite() && spec.weight > 0.0 {
        Ok(())
    } else {
        Err(TopologyError::InvalidWeight {
            id: spec.id.clone(),
            weight: spec.weight,
        })
    }
}

impl Writer {
    pub(super) fn snapshot(&self) -> Members {
        let instances: Vec<Instance> = self
            .specs
            .iter()
            .map(|spec| Instance {
                spec: spec.clone(),
                health: self.health[&spec.id].clone(),
            })
            .collect();
        let index = instances
            .iter()
            .enumerate()
            .map(|(i, inst)| (inst.spec.id.clone(), i))
            .collect();
        let ranker = (!instances.is_empty()).then(|| {
            let hashes: Vec<u64> = self
                .specs
                .iter()
                .map(|s| node_hash(s.id.as_str()))
                .collect();
            let weights: Vec<f64> = self.specs.iter().map(|s| s.weight).collect();
            match &self.layout {
                None => Ranker::Flat(Flat::new(hashes, weights)),
                Some(layout) => Ranker::Skeleton(Skeleton::new(&hashes, &weights, layout, |i| {
                    layout.leaf_of(&self.specs[i].id)
                })),
            }
        });
        Members {
            epoch: self.epoch,
            draining: instances.iter().filter(|i| i.spec.draining).count(),
            instances,
            index,
            ranker,
        }
    }

    pub(super) fn upsert(&mut self, spec: InstanceSpec) {
        match self.specs.iter_mut().find(|s| s.id == spec.id) {
            Some(existing) => {
                if let Some(layout) = &mut self.layout {
                    layout.reweigh(&spec.id, existing.weight, spec.weight);
                }
                *existing = spec;
            }
            None => {
                if let Some(layout) = &mut self.layout {
                    layout.join(&spec.id, spec.weight);
                }
                let built = self.built;
                self.health.entry(spec.id.clone()).or_insert_with(|| {
                    let slot = HealthSlot::default();
                    if built {
                        slot.mark_admitted();
                    }
                    Arc::new(slot)
                });
                self.specs.push(spec);
            }
        }
    }

    pub(super) fn remove(&mut self, id: &InstanceId) -> Option<InstanceSpec> {
        let at = self.specs.iter().position(|s| &s.id == id)?;
        let spec = self.specs.remove(at);
        if let Some(layout) = &mut self.layout {
            layout.leave(id, spec.weight);
        }
        self.health.remove(id);
        Some(spec)
    }
}
