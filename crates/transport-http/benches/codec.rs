//! The hot encode/decode paths of the peer protocol: `GetResponse` to and from bytes, and a
//! key to and from a URL path. The path decoder sits beside `percent-encoding`'s decoder (which
//! does plain percent decoding, without form semantics) as a yardstick.
//!
//! Run: `cargo bench -p geecache-transport-http --bench codec`.

use std::hint::black_box;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use geecache_transport_http::path::{self, Decoding};
use geecache_transport_http::proto::GetResponse;
use prost::Message;

fn get_response(c: &mut Criterion) {
    let mut group = c.benchmark_group("get_response");
    group.throughput(Throughput::Elements(1));
    let now = SystemTime::now();
    for size in [64usize, 4 << 10, 64 << 10] {
        let value = Bytes::from(vec![b'v'; size]);
        let message = GetResponse::with_ttl(value.clone(), Some(Duration::from_secs(60)), now);
        let encoded = Bytes::from(message.encode_to_vec());
        group.bench_with_input(BenchmarkId::new("encode", size), &value, |b, value| {
            b.iter(|| {
                let message =
                    GetResponse::with_ttl(value.clone(), Some(Duration::from_secs(60)), now);
                black_box(message.encode_to_vec())
            });
        });
        // Decoding from `Bytes` slices the value out of the body without copying it.
        group.bench_with_input(BenchmarkId::new("decode", size), &encoded, |b, encoded| {
            b.iter(|| {
                let message = GetResponse::decode(encoded.clone()).expect("valid");
                black_box(message.ttl_at(now))
            });
        });
    }
    group.finish();
}

fn path_codec(c: &mut Criterion) {
    let keys = [
        ("plain", "user:00012345".to_owned()),
        ("form", "first name/last+name 100%".to_owned()),
        ("unicode", "ключ/🙂/値".to_owned()),
    ];
    let mut group = c.benchmark_group("path");
    group.throughput(Throughput::Elements(1));
    for (name, key) in &keys {
        let ours = path::encode(key).to_string();
        group.bench_with_input(BenchmarkId::new("encode", name), key, |b, key| {
            b.iter(|| black_box(format!("/_geecache/scores/{}", path::encode(key))));
        });
        group.bench_with_input(BenchmarkId::new("decode", name), &ours, |b, raw| {
            b.iter(|| {
                let target = format!("/_geecache/scores/{raw}");
                let (g, k) = path::split(black_box(&target), "/_geecache/").expect("valid");
                let g = path::decode(g.as_bytes(), Decoding::Form)
                    .expect("valid")
                    .len();
                let k = path::decode(k.as_bytes(), Decoding::Form)
                    .expect("valid")
                    .len();
                black_box(g + k)
            });
        });
        group.bench_with_input(
            BenchmarkId::new("decode_key_only", name),
            &ours,
            |b, raw| b.iter(|| black_box(path::decode(black_box(raw.as_bytes()), Decoding::Form))),
        );
        group.bench_with_input(
            BenchmarkId::new("percent_encoding_decode_key", name),
            &ours,
            |b, raw| {
                b.iter(|| {
                    black_box(
                        percent_encoding::percent_decode(black_box(raw.as_bytes())).decode_utf8(),
                    )
                });
            },
        );
    }
    group.finish();
}

criterion_group!(benches, get_response, path_codec);
criterion_main!(benches);
