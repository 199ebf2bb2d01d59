//! Per-instance series for degradation forecasts, bounded in number.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use foresight_core::instance::InstanceId;

use crate::series::{Series, Shape};
use crate::signal::Aggregation;

type Map = HashMap<InstanceId, Arc<Series>>;

/// The instance map is read lock-free; the rare insertion of a new instance
/// copies it under a mutex.
#[derive(Debug)]
pub(crate) struct Instances {
    map: ArcSwap<Map>,
    insert: Mutex<()>,
    max: usize,
    aggregation: Aggregation,
    dropped: AtomicU64,
}

impl Instances {
    pub(crate) fn new(max: usize, aggregation: Aggregation) -> Self {
        Self {
            map: ArcSwap::from_pointee(Map::new()),
            insert: Mutex::new(()),
            max,
            aggregation,
            dropped: AtomicU64::new(0),
        }
    }

    pub(crate) fn get(&self, id: &InstanceId) -> Option<Arc<Series>> {
        self.map.load().get(id).cloned()
    }

    pub(crate) fn record(&self, id: &InstanceId, value: f64, shape: Shape) {
        if let Some(series) = self.map.load().get(id) {
            series.record(value);
            return;
        }
        let _guard = self.insert.lock().unwrap_or_else(|p| p.into_inner());
        let current = self.map.load_full();
        if let Some(series) = current.get(id) {
            series.record(value);
            return;
        }
        if current.len() >= self.max {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("foresight_forecast_instance_samples_dropped").increment(1);
            return;
        }
        // Per-instance series keep no seasonal history: their number is
        // bounded, but a cycle per instance is not worth its memory.
        let shape = Shape {
            seasonal: None,
            ..shape
        };
        let series = Arc::new(Series::new("instance_health", self.aggregation, shape));
        series.record(value);
        let mut next = Map::clone(&current);
        next.insert(id.clone(), series);
        self.map.store(Arc::new(next));
    }

    pub(crate) fn remove(&self, id: &InstanceId) {
        let _guard = self.insert.lock().unwrap_or_else(|p| p.into_inner());
        let current = self.map.load_full();
        if current.contains_key(id) {
            let mut next = Map::clone(&current);
            next.remove(id);
            self.map.store(Arc::new(next));
        }
    }

    pub(crate) fn all(&self) -> Vec<Arc<Series>> {
        self.map.load().values().cloned().collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.map.load().len()
    }

    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}
