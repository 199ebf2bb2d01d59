//! Per-request cost of the layer (validate + track + header check) beside a
//! bare `jsonwebtoken::decode` of the same token.
//!
//! ```text
//! cargo bench -p foresight-token --bench layer_cost
//! ```
//!
//! Besides criterion's groups, a paired measurement alternates batches of
//! 2,000 bare decodes and 2,000 layer calls 25 times and reports the median
//! ratio, so that load from other processes hits both sides alike; it is
//! written to `benches/layer_cost.md`.

use std::convert::Infallible;
use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group};
use foresight_token::{
    Claims, KeyRing, LocalIssuer, SigningKey, TokenPrefetchLayer, TokenRequest, TokioClock,
    Verifier,
};
use futures_util::FutureExt as _;
use jsonwebtoken::{DecodingKey, Validation};
use tower::{Layer, Service, service_fn};

const ISS: &str = "https://auth.bench";
const AUD: &str = "bench";

fn bench_key(c: &mut Criterion, name: &str, key: SigningKey, decoding: DecodingKey) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = runtime.enter();
    let clock = TokioClock::shared();
    let alg = key.algorithm();
    let ring = KeyRing::new(key, clock.clone());
    let issuer = LocalIssuer::new(ring.clone(), ISS, AUD, clock.clone());
    let token = issuer
        .sign(&TokenRequest::new(
            "alice",
            "session-1",
            Duration::from_secs(3600),
        ))
        .unwrap()
        .token;
    let verifier = Verifier::builder(ring, ISS, AUD).with_clock(clock).build();

    let mut validation = Validation::new(alg);
    validation.set_audience(&[AUD]);
    validation.set_issuer(&[ISS]);
    validation.leeway = 30;

    let layer = TokenPrefetchLayer::builder(verifier.clone(), issuer).build();
    let mut service = layer.layer(service_fn(|_req: http::Request<()>| async {
        Ok::<_, Infallible>(http::Response::new(()))
    }));
    let header = http::HeaderValue::from_str(&format!("Bearer {token}")).unwrap();
    let request = || {
        let mut r = http::Request::new(());
        r.headers_mut()
            .insert(http::header::AUTHORIZATION, header.clone());
        r
    };
    // Warm the session table: the steady state is a known session.
    let _ = service.call(request()).now_or_never();

    let mut group = c.benchmark_group(name);
    group.bench_function("jsonwebtoken::decode", |b| {
        b.iter(|| {
            black_box(
                jsonwebtoken::decode::<Claims>(black_box(&*token), &decoding, &validation).unwrap(),
            )
        })
    });
    group.bench_function("Verifier::verify", |b| {
        b.iter(|| black_box(verifier.verify(black_box(&token)).unwrap()))
    });
    group.bench_function("TokenPrefetch::call", |b| {
        b.iter_batched(
            request,
            |req| black_box(service.call(req).now_or_never().unwrap().unwrap()),
            BatchSize::SmallInput,
        )
    });
    group.finish();

    if std::env::args().any(|a| a == "--bench") {
        let batch = if alg == jsonwebtoken::Algorithm::HS256 {
            20_000
        } else {
            2_000
        };
        let mut ratios = Vec::new();
        let mut decode_ns = Vec::new();
        let mut layer_ns = Vec::new();
        for _ in 0..25 {
            let t = std::time::Instant::now();
            for _ in 0..batch {
                black_box(
                    jsonwebtoken::decode::<Claims>(black_box(&*token), &decoding, &validation)
                        .unwrap(),
                );
            }
            let d = t.elapsed().as_nanos() as f64 / batch as f64;
            let requests: Vec<_> = (0..batch).map(|_| request()).collect();
            let t = std::time::Instant::now();
            for req in requests {
                black_box(service.call(req).now_or_never().unwrap().unwrap());
            }
            let l = t.elapsed().as_nanos() as f64 / batch as f64;
            ratios.push(l / d);
            decode_ns.push(d);
            layer_ns.push(l);
        }
        let median = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let line = format!(
            "| {name} | {:.2} µs | {:.2} µs | {:.3} |\n",
            median(&mut decode_ns) / 1e3,
            median(&mut layer_ns) / 1e3,
            median(&mut ratios),
        );
        print!("paired: {line}");
        PAIRED.lock().unwrap().push_str(&line);
    }
}

static PAIRED: std::sync::Mutex<String> = std::sync::Mutex::new(String::new());

fn layer_cost(c: &mut Criterion) {
    let ed = SigningKey::generate_ed25519("k1").unwrap();
    let ed_decoding = DecodingKey::from_jwk(ed.public_jwk().unwrap()).unwrap();
    bench_key(c, "EdDSA", ed, ed_decoding);
    let es = SigningKey::generate_es256("k1").unwrap();
    let es_decoding = DecodingKey::from_jwk(es.public_jwk().unwrap()).unwrap();
    bench_key(c, "ES256", es, es_decoding);
    let secret = [9u8; 32];
    bench_key(
        c,
        "HS256",
        SigningKey::hs256("k1", &secret).unwrap(),
        DecodingKey::from_secret(&secret),
    );
}

criterion_group!(benches, layer_cost);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    let paired = PAIRED.lock().unwrap();
    if !paired.is_empty() {
        let table = format!(
            "| algorithm | jsonwebtoken::decode (median) | TokenPrefetch::call (median) | ratio (median of 25 paired batches) |\n|---|---|---|---|\n{paired}"
        );
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/layer_cost.md");
        std::fs::write(path, table).unwrap();
    }
}
