//! The verifier's signature check against the Wycheproof vectors for
//! Ed25519 (`EdDSA`) and ECDSA P-256 with SHA-256 in the IEEE P1363 form
//! (`r || s`, 64 bytes), the form JWS `ES256` uses.
//!
//! A vector's message is arbitrary bytes, so it cannot be the signing input
//! of a token (`base64url(header).base64url(claims)`). Each vector instead
//! goes through the exact steps [`Verifier::verify`](foresight_token::Verifier)
//! takes once it has its message: the public key is imported from a JWK by
//! [`VerificationKey::from_jwk`] (which builds the `DecodingKey` with
//! `DecodingKey::from_jwk`, as every key of a `KeyRing` or `StaticKeys`
//! is), and the base64url signature is checked by
//! `jsonwebtoken::crypto::verify` under the key's one algorithm. `Ok(true)`
//! accepts; `Ok(false)`, an error, or a key that does not import rejects.
//!
//! Verdicts: a `valid` vector must be accepted and an `invalid` one
//! rejected. `acceptable` vectors (none in these two sets at the pinned
//! crate version) are counted and reported with the verdict given, without
//! an assertion either way.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use foresight_token::VerificationKey;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey};
use wycheproof::TestResult;

/// What happened to the vectors of one set.
#[derive(Debug, Default)]
struct Tally {
    run: usize,
    accepted: usize,
    rejected: usize,
    acceptable: usize,
    wrong: Vec<String>,
}

impl Tally {
    fn record(
        &mut self,
        set: &str,
        tc_id: usize,
        comment: &str,
        expected: TestResult,
        accepted: bool,
    ) {
        self.run += 1;
        if accepted {
            self.accepted += 1;
        } else {
            self.rejected += 1;
        }
        let wrong = match expected {
            TestResult::Valid => !accepted,
            TestResult::Invalid => accepted,
            TestResult::Acceptable => {
                self.acceptable += 1;
                println!("{set} #{tc_id} acceptable ({comment}): accepted = {accepted}");
                false
            }
        };
        if wrong {
            self.wrong.push(format!(
                "{set} #{tc_id} ({comment}): expected {expected:?}, accepted = {accepted}"
            ));
        }
    }

    fn report(&self, set: &str) {
        println!(
            "{set}: {} vectors run, {} accepted, {} rejected, {} acceptable, {} wrong",
            self.run,
            self.accepted,
            self.rejected,
            self.acceptable,
            self.wrong.len()
        );
        for wrong in &self.wrong {
            println!("  WRONG {wrong}");
        }
    }

    /// Prints the tally of `set`, then asserts that it ran enough vectors,
    /// saw both verdicts and got every verdict right.
    fn assert_all_right(&self, set: &str) {
        self.report(set);
        assert!(self.run >= 100, "{set}: only {} vectors", self.run);
        assert!(
            self.accepted > 0 && self.rejected > 0,
            "{set}: one verdict only"
        );
        assert!(
            self.wrong.is_empty(),
            "{set}: {} wrong verdicts",
            self.wrong.len()
        );
    }
}

/// The verifier's key import: a JWK with `kid` and `alg`, as a JWKS or a
/// signing key provides it.
fn import(jwk: serde_json::Value) -> Option<VerificationKey> {
    let jwk: Jwk = serde_json::from_value(jwk).ok()?;
    let key = VerificationKey::from_jwk(&jwk).ok()?;
    // The same construction `from_jwk` keeps inside the key.
    assert!(DecodingKey::from_jwk(&jwk).is_ok());
    Some(key)
}

/// The verifier's signature step: `crypto::verify` of the base64url
/// signature over `message`, under the key's algorithm.
fn verdict(jwk: &serde_json::Value, message: &[u8], signature: &[u8]) -> bool {
    let Some(key) = import(jwk.clone()) else {
        return false;
    };
    let parsed: Jwk = serde_json::from_value(jwk.clone()).expect("imported above");
    let decoding = DecodingKey::from_jwk(&parsed).expect("imported above");
    let signature = URL_SAFE_NO_PAD.encode(signature);
    matches!(
        jsonwebtoken::crypto::verify(&signature, message, &decoding, key.algorithm()),
        Ok(true)
    )
}

#[test]
fn ed25519_vectors_get_the_right_verdict() {
    let set = wycheproof::eddsa::TestSet::load(wycheproof::eddsa::TestName::Ed25519)
        .expect("the Ed25519 set loads");
    let mut tally = Tally::default();
    for group in &set.test_groups {
        let jwk = serde_json::json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "x": URL_SAFE_NO_PAD.encode(&*group.key.pk),
            "kid": "wycheproof",
            "alg": "EdDSA",
            "use": "sig",
        });
        for test in &group.tests {
            let accepted = verdict(&jwk, &test.msg, &test.sig);
            tally.record("ed25519", test.tc_id, &test.comment, test.result, accepted);
        }
    }
    tally.assert_all_right("ed25519");
}

#[test]
fn p256_sha256_p1363_vectors_get_the_right_verdict() {
    let set =
        wycheproof::ecdsa::TestSet::load(wycheproof::ecdsa::TestName::EcdsaSecp256r1Sha256P1363)
            .expect("the P-256 / SHA-256 / P1363 set loads");
    let mut tally = Tally::default();
    for group in &set.test_groups {
        // Uncompressed SEC1 point: 0x04 || x || y.
        let point = &*group.key.key;
        assert_eq!(point.len(), 65, "uncompressed P-256 point");
        assert_eq!(point[0], 4);
        let jwk = serde_json::json!({
            "kty": "EC",
            "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..]),
            "kid": "wycheproof",
            "alg": "ES256",
            "use": "sig",
        });
        for test in &group.tests {
            let accepted = verdict(&jwk, &test.msg, &test.sig);
            tally.record(
                "p256-sha256-p1363",
                test.tc_id,
                &test.comment,
                test.result,
                accepted,
            );
        }
    }
    tally.assert_all_right("p256-sha256-p1363");
}

/// The import path accepts the algorithm names of the keys above and
/// nothing else for them: a JWK whose `alg` is not a signature algorithm
/// the key can serve does not import, so its vectors count as rejected.
#[test]
fn a_key_of_an_unsupported_algorithm_is_rejected() {
    let jwk = serde_json::json!({
        "kty": "OKP",
        "crv": "Ed25519",
        "x": URL_SAFE_NO_PAD.encode([0u8; 32]),
        "kid": "wycheproof",
        "alg": "RSA-OAEP",
        "use": "sig",
    });
    assert!(import(jwk.clone()).is_none());
    assert!(!verdict(&jwk, b"message", &[0; 64]));
    assert_eq!(Algorithm::EdDSA, "EdDSA".parse().unwrap());
}
