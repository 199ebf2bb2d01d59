//! What to do when a save loses the compare-and-set.

use foresight_store::SessionData;

/// Reconciles this request's changes with a concurrent writer's.
///
/// Given the data as this request loaded it (`base`), as this request left
/// it (`ours`) and as it is stored now (`theirs`), returns the data to save
/// over `theirs`, or `None` to give up (the request fails with 409).
/// Implemented by closures of the same signature.
pub trait MergePolicy: Send + Sync + 'static {
    /// Merges, or gives up.
    fn merge(
        &self,
        base: &SessionData,
        ours: &SessionData,
        theirs: &SessionData,
    ) -> Option<SessionData>;
}

impl<F> MergePolicy for F
where
    F: Fn(&SessionData, &SessionData, &SessionData) -> Option<SessionData> + Send + Sync + 'static,
{
    fn merge(
        &self,
        base: &SessionData,
        ours: &SessionData,
        theirs: &SessionData,
    ) -> Option<SessionData> {
        self(base, ours, theirs)
    }
}

/// A three-way merge by key: the keys this request changed are applied on
/// top of `theirs`, unless the other writer changed one of them too, in
/// which case it gives up.
#[derive(Clone, Copy, Debug, Default)]
pub struct DisjointKeys;

impl MergePolicy for DisjointKeys {
    fn merge(
        &self,
        base: &SessionData,
        ours: &SessionData,
        theirs: &SessionData,
    ) -> Option<SessionData> {
        let mut merged = theirs.clone();
        let keys = base.entries().keys().chain(ours.entries().keys());
        for key in keys {
            let (b, o, t) = (
                base.get_value(key),
                ours.get_value(key),
                theirs.get_value(key),
            );
            if b == o {
                continue; // not ours to change
            }
            if b != t && t != o {
                return None; // both changed it, differently
            }
            match o {
                Some(value) => {
                    merged.insert_value(key.clone(), value.clone()).ok()?;
                }
                None => {
                    merged.remove(key);
                }
            }
        }
        Some(merged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(pairs: &[(&str, i64)]) -> SessionData {
        let mut d = SessionData::new();
        for (k, v) in pairs {
            d.insert(*k, v).unwrap();
        }
        d
    }

    #[test]
    fn disjoint_changes_merge() {
        let base = data(&[("a", 1), ("b", 1)]);
        let ours = data(&[("a", 2), ("b", 1)]);
        let theirs = data(&[("a", 1), ("b", 5), ("c", 9)]);
        let merged = DisjointKeys.merge(&base, &ours, &theirs).unwrap();
        assert_eq!(merged, data(&[("a", 2), ("b", 5), ("c", 9)]));
    }

    #[test]
    fn overlapping_changes_give_up() {
        let base = data(&[("n", 1)]);
        let ours = data(&[("n", 2)]);
        let theirs = data(&[("n", 3)]);
        assert!(DisjointKeys.merge(&base, &ours, &theirs).is_none());
    }

    #[test]
    fn removals_merge() {
        let base = data(&[("a", 1), ("b", 1)]);
        let ours = data(&[("b", 1)]);
        let theirs = data(&[("a", 1), ("b", 2)]);
        assert_eq!(
            DisjointKeys.merge(&base, &ours, &theirs).unwrap(),
            data(&[("b", 2)])
        );
    }
}
