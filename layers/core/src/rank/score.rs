use xxhash_rust::xxh3::xxh3_64;

/// Hash of an instance id. Unseeded: the router's seed enters through the
/// key hash, and the instance hashes can then be computed once per snapshot.
pub(crate) fn node_hash(id: &str) -> u64 {
    xxh3_64(id.as_bytes())
}

/// The pseudo-random draw of `key` for `node`: wyhash's folded 128-bit
/// multiply of the two (already uniform) hashes, one multiplication per
/// instance on the hot loop.
#[inline(always)]
pub(crate) fn draw(key: u64, node: u64) -> u64 {
    let product =
        u128::from(key ^ 0xa076_1d64_78bd_642f) * u128::from(node ^ 0xe703_7ed1_a0b4_28db);
    (product as u64) ^ ((product >> 64) as u64)
}

/// The weighted rendezvous score `-w / ln(u)` of a draw, with `u` taken from
/// its top 53 bits into the open interval (0, 1).
#[inline(always)]
pub(crate) fn weighted_score(draw: u64, weight: f64) -> f64 {
    const SCALE: f64 = 1.0 / (1u64 << 53) as f64;
    let u = ((draw >> 11) as f64 + 0.5) * SCALE;
    -weight / u.ln()
}
