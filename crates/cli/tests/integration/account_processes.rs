//! `keyquorum account` against `keyquorum chain`: showing an account needs no passphrase (the
//! keystore names its identity in clear), nor is it shown from a chain that runs another
//! configuration than the one pinned, and a transfer signed with the keystore's key moves the
//! balance.

use std::process::{Command, Output};
use std::time::Duration;

use crate::common::{BIN, PASSPHRASE, Testnet, beacon_contract, wait_for};

fn account(net: &Testnet, args: &[&str], passphrase: bool) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.arg("account")
        .args(args)
        .arg("--chain-url")
        .arg(format!("http://127.0.0.1:{}", net.chain_port))
        .env_remove("KEYQUORUM_PASSPHRASE");
    if passphrase {
        cmd.env("KEYQUORUM_PASSPHRASE", PASSPHRASE);
    }
    cmd.output().expect("the binary runs")
}

fn field(out: &Output, name: &str) -> String {
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix(name))
        .unwrap_or_else(|| panic!("no {name} in {text}"))
        .trim()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_is_shown_without_a_passphrase_and_a_transfer_moves_its_balance() {
    let _slot = crate::common::network_slot().await;
    let net = Testnet::new(
        2,
        &beacon_contract("account-test", 40, "key_mode = \"reshare\""),
        None,
    );
    let key = net.nodes[1].key.to_str().unwrap().to_owned();
    let show = |net: &Testnet| account(net, &["show", "--key-file", &key], false);

    // The chain may take a moment to serve: the first show that succeeds.
    let shown = wait_for(
        "the chain to serve accounts",
        Duration::from_secs(30),
        async || {
            let o = show(&net);
            o.status.success().then_some(o)
        },
    )
    .await;
    assert_eq!(field(&shown, "identity"), net.nodes[1].identity);
    assert_eq!(field(&shown, "balance"), "5000");

    // With a pinned configuration the chain does not run, its accounts are not shown.
    let other = "00".repeat(32);
    let pinned = account(
        &net,
        &["show", "--key-file", &key, "--chain-config-digest", &other],
        false,
    );
    assert_eq!(pinned.status.code(), Some(1), "{pinned:?}");
    assert!(
        String::from_utf8_lossy(&pinned.stderr).contains("runs another contract configuration"),
        "{pinned:?}"
    );

    // A transfer needs the key: without the passphrase it is refused, and nothing moves.
    let to = net.nodes[0].identity.clone();
    let transfer = [
        "transfer",
        "--key-file",
        &key,
        "--to",
        &to,
        "--amount",
        "1234",
    ];
    let refused = account(&net, &transfer, false);
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("passphrase"),
        "{refused:?}"
    );
    let sent = account(&net, &transfer, true);
    assert!(sent.status.success(), "{sent:?}");
    wait_for(
        "the transfer to land",
        Duration::from_secs(30),
        async || (field(&show(&net), "balance") == "3766").then_some(()),
    )
    .await;
    let receiver = account(&net, &["show", "--identity", &to], false);
    assert_eq!(field(&receiver, "balance"), "6234");
}
