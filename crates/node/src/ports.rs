//! Loopback ports for networks of local processes (the demo, tests).
//!
//! Ports from the kernel's ephemeral range (what binding port 0 returns) are a trap there:
//! between choosing a port and binding it, an outgoing connection (a node polling the chain,
//! dialing a peer) can be given exactly that port as its local one. Ports below the range are
//! never handed out for outgoing connections, so only another chooser can take them, and the
//! choosers spread over the range by process and by call.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};

/// Lowest port handed out.
const FROM: u16 = 10_000;

/// The end (exclusive) of the ports handed out: the first ephemeral port.
fn below() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32_768)
        .max(FROM + 2_000)
}

/// A loopback port below the ephemeral range that binds now and is not in `taken`; added to
/// `taken`.
pub fn free_loopback_port(taken: &mut BTreeSet<u16>) -> Result<u16, String> {
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let to = below();
    let call = CALLS.fetch_add(1, Ordering::Relaxed);
    let mut x = (u64::from(std::process::id()) ^ 0x9e37_79b9_7f4a_7c15)
        .wrapping_add(call.wrapping_mul(0xbf58_476d_1ce4_e5b9))
        | 1;
    for _ in 0..10_000 {
        // xorshift: processes and calls that run at the same time start at different places.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let port = FROM + (x % u64::from(to - FROM)) as u16;
        if !taken.contains(&port) && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            taken.insert(port);
            return Ok(port);
        }
    }
    Err(format!("no free loopback port between {FROM} and {to}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_below_the_ephemeral_range_distinct_and_bindable() {
        let mut taken = BTreeSet::new();
        for _ in 0..50 {
            let port = free_loopback_port(&mut taken).unwrap();
            assert!((FROM..below()).contains(&port), "{port}");
            std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        }
        assert_eq!(taken.len(), 50);
        // Fresh sets in one process still start apart.
        let a = free_loopback_port(&mut BTreeSet::new()).unwrap();
        let b = free_loopback_port(&mut BTreeSet::new()).unwrap();
        assert_ne!(a, b);
    }
}
