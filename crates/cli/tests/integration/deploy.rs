//! `keyquorum deploy` against anvil: the contract lands at the printed address with the
//! configured parameters, and a configuration the constructor refuses fails the run (exit 1)
//! naming the contract's error. anvil is the pinned npm package in `contracts/` (`npm ci`
//! there); without it the test fails saying so.

use std::path::PathBuf;
use std::process::{Command, Output};

use keyquorum_evm::Coordinator;
use keyquorum_evm::alloy_primitives::{Address, U256};
use keyquorum_evm::anvil::Anvil;
use keyquorum_evm::client::{Client, chain_key};

const BIN: &str = env!("CARGO_BIN_EXE_keyquorum");

fn deploy(args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("deploy")
        .args(args)
        .output()
        .expect("the binary runs")
}

fn field<'a>(out: &'a str, name: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {name} in {out}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_prints_the_address_of_the_configured_contract() {
    let _network = crate::common::network_slot().await;
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let anvil = Anvil::start(&repo, None).unwrap_or_else(|e| panic!("{e}"));
    let key = chain_key(b"cli deploy test");
    anvil
        .fund(key.address(), U256::from(10u128.pow(18)))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("deployer.key");
    std::fs::write(&key_file, hex::encode(key.to_bytes())).unwrap();
    let config = dir.path().join("coordinator.toml");
    std::fs::write(
        &config,
        "chain_name = \"kq-test\"\nmax_size = 5\nfirst_view_change = 42\n",
    )
    .unwrap();
    // `deploy` on anvil with the key and the configuration file, and `extra` flags.
    let with_config = |extra: &[&str]| {
        let mut args = vec![
            "--rpc",
            anvil.url(),
            "--key-file",
            key_file.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        deploy(&args)
    };

    let o = with_config(&[]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let address: Address = field(&out, "contract").parse().unwrap();
    assert_eq!(field(&out, "chain_name"), "kq-test");
    let block: u64 = field(&out, "block").parse().unwrap();
    assert!(block >= 1);
    let client = Client::connect(anvil.url(), key.clone(), address)
        .await
        .unwrap();
    assert_eq!(
        client.read(Coordinator::nextStartCall {}).await.unwrap(),
        42
    );

    // What the constructor refuses (a committee of at most zero) is refused before anything
    // is sent, by the key's name (`DeployConfig::check`).
    std::fs::write(&config, "min_size = 0\n").unwrap();
    let o = with_config(&[]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("committee sizes must satisfy 1 <= min_size <= max_size <= 256"),
        "{err}"
    );
    // An unknown field is a usage error.
    std::fs::write(&config, "max_sise = 3\n").unwrap();
    let o = with_config(&[]);
    assert_eq!(o.status.code(), Some(2));
    // A flag's value is refused by the flag's name, not the file's.
    std::fs::write(&config, "beacon_period = 5\n").unwrap();
    let o = with_config(&["--beacon-period", "0"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("--beacon-period: beacon_period must be 1 to 3600 seconds, not 0"),
        "{err}"
    );
}
