use xxhash_rust::xxh3::xxh3_64;

/// Hash of an instance id. Unseeded: the router's seed enters through the
/// key hash, and the instance hashes can then be computed once per snapshot.
pub(crate) fn node_hash(id: &str) -> u64 {
    xxh3_64(id.as_bytes())
}

/// The pseudo-random draw of `key` for `node`: a bijective 64-bit finaliser
/// (SplitMix64's) of the two hashes, so distinct nodes never tie for a key.
#[inline(always)]
pub(crate) fn draw(key: u64, node: u64) -> u64 {
    let mut x = key ^ node;
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The weighted rendezvous score `-w / ln(u)` of a draw, with `u` taken from
/// its top 53 bits into the open interval (0, 1).
#[inline(always)]
pub(crate) fn weighted_score(draw: u64, weight: f64) -> f64 {
    const SCALE: f64 = 1.0 / (1u64 << 53) as f64;
    let u = ((draw >> 11) as f64 + 0.5) * SCALE;
    -weight / u.ln()
}
