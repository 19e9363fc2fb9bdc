//! The checked-in generated code is what the `.proto` generates today.
//!
//! The default build compiles `src/generated/geecache.v1.rs` as it is, so it needs neither
//! `protoc` nor a build script. This test regenerates it from `proto/` with `protox`, a
//! protobuf compiler written in Rust (so CI installs nothing), and compares byte for byte: a
//! `.proto` edited without regenerating fails here. To regenerate, run the test with
//! `GEECACHE_REGENERATE=1`.

use std::path::Path;

#[test]
fn checked_in_code_matches_the_proto() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let files = protox::compile(
        [root.join("proto/geecache/v1/peer.proto")],
        [root.join("proto")],
    )
    .expect("the .proto compiles");
    let out = std::env::temp_dir().join(format!("geecache-grpc-gen-{}", std::process::id()));
    std::fs::create_dir_all(&out).expect("temporary directory");
    tonic_prost_build::configure()
        .build_transport(false)
        .bytes(".")
        .out_dir(&out)
        .compile_fds(files)
        .expect("code generation");
    let fresh = std::fs::read_to_string(out.join("geecache.v1.rs")).expect("generated file");
    let _ = std::fs::remove_dir_all(&out);
    let checked_in = root.join("src/generated/geecache.v1.rs");
    if std::env::var_os("GEECACHE_REGENERATE").is_some() {
        std::fs::write(&checked_in, &fresh).expect("writing the generated code");
        return;
    }
    let current = std::fs::read_to_string(&checked_in).unwrap_or_default();
    assert!(
        current == fresh,
        "src/generated/geecache.v1.rs is out of date: rerun this test with GEECACHE_REGENERATE=1"
    );
}
