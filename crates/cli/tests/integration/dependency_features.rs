//! Features of dependencies that keyquorum relies on without calling them: `cargo metadata`
//! shows what `Cargo.lock` resolves, so a change of hpke's x25519-dalek (a new major version,
//! which the workspace's feature entry would no longer reach) fails here instead of silently
//! costing speed or leaving secrets in memory.

#[test]
fn hpkes_x25519_wipes_its_secrets_and_multiplies_the_base_point_by_table() {
    let meta = crate::common::cargo_metadata();
    let nodes = meta["resolve"]["nodes"].as_array().expect("resolve graph");
    let id_of = |name: &str, major: &str| {
        meta["packages"]
            .as_array()
            .expect("packages")
            .iter()
            .find(|p| {
                p["name"] == name
                    && p["version"]
                        .as_str()
                        .is_some_and(|v| v.split('.').next() == Some(major))
            })
            .and_then(|p| p["id"].as_str())
            .unwrap_or_else(|| panic!("{name} {major}.x is in the graph"))
            .to_string()
    };
    let features = |id: &str| -> Vec<String> {
        nodes
            .iter()
            .find(|n| n["id"] == id)
            .and_then(|n| n["features"].as_array())
            .map(|f| {
                f.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    // The x25519-dalek that hpke depends on.
    let hpke = id_of("hpke", "0");
    let hpke_node = nodes
        .iter()
        .find(|n| n["id"] == hpke.as_str())
        .expect("hpke resolved");
    let x25519 = hpke_node["deps"]
        .as_array()
        .expect("deps")
        .iter()
        .find(|d| d["name"] == "x25519_dalek")
        .and_then(|d| d["pkg"].as_str())
        .expect("hpke uses x25519-dalek")
        .to_string();
    let on = features(&x25519);
    for wanted in ["precomputed-tables", "zeroize"] {
        assert!(
            on.iter().any(|f| f == wanted),
            "{x25519} is built without {wanted}: {on:?}"
        );
    }
}
