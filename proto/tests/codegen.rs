//! The generated code is checked in (so builds need neither protoc nor prost-build); this test
//! regenerates it and fails if it differs. `SWITCHYARD_REGENERATE=1 cargo test -p
//! switchyard-proto --test codegen` rewrites the checked-in file. When a proto change breaks
//! the crate's own code, run the test binary built before the change with the same variable
//! (it reads the .proto at run time), then fix the code.

use std::path::PathBuf;

#[test]
fn generated_code_matches_the_proto() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let out = std::env::temp_dir().join(format!("switchyard-proto-{}", std::process::id()));
    std::fs::create_dir_all(&out).expect("temp dir");
    let protoc = protoc_bin_vendored::protoc_bin_path().expect("vendored protoc");
    // prost-build finds protoc through this variable; the vendored one needs no install.
    std::env::set_var("PROTOC", protoc);
    tonic_prost_build::configure()
        .out_dir(&out)
        .compile_protos(
            &[root.join("switchyard/v1/core.proto")],
            std::slice::from_ref(&root),
        )
        .expect("codegen");
    let fresh = std::fs::read_to_string(out.join("switchyard.v1.rs")).expect("generated file");
    let checked_in_path = root.join("src/generated/switchyard.v1.rs");
    if std::env::var_os("SWITCHYARD_REGENERATE").is_some() {
        std::fs::create_dir_all(root.join("src/generated")).expect("dir");
        std::fs::write(&checked_in_path, &fresh).expect("write");
    }
    let checked_in = std::fs::read_to_string(&checked_in_path).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&out);
    assert!(
        fresh == checked_in,
        "proto/src/generated/switchyard.v1.rs is stale: run \
         SWITCHYARD_REGENERATE=1 cargo test -p switchyard-proto --test codegen"
    );
}
