//! Whether an address holds keyquorum's coordinator.
//!
//! A node on an EVM chain does not re-run the contract's rules: the chain's consensus runs
//! them, and the node follows their logs. It signs magic blocks whose committee the contract
//! selected and treats stakes, bans and slashes as the contract computed them, so it must know
//! that the contract runs the rules it was built with, not a look-alike with the same ABI. At
//! connection the adapter compares the code deployed at the coordinator's address with the
//! committed artifact's deployed code (`contracts/out/Coordinator.json`, the same bytes
//! `keyquorum deploy` creates it from), byte for byte except where the constructor writes its
//! immutables, which the artifact lists per immutable (`immutableReferences`, from solc). Each
//! immutable is read at several places (its getter is one), so every place of one immutable
//! must hold the same value, an address (twelve zero bytes first): otherwise a hand-made
//! deployment could show a genuine verifier to the getter and call another. Those immutables
//! are the addresses of the two contracts the constructor creates, the BLS verifier and the
//! encoding reader, whose checks and decodings the coordinator trusts; their code is compared
//! with their own artifacts in turn (they have no immutables). Which immutable is which comes
//! from the getters (`bls()`, `reader()`), read once the code is known to be keyquorum's; each
//! must answer one of the values the code holds. A deployment compiled from other source, or
//! with another compiler or settings, is refused by name.
//!
//! What this does not cover: storage the constructor wrote. keyquorum's constructor writes the
//! configuration (which the node reads from the contract and takes as the deployer's) and no
//! candidate, stake or ban; a look-alike constructor with keyquorum's runtime code could have
//! written any of those without their logs. Candidates without a registration log are caught
//! when a committee names one (`events`); planted stake, bans or counters of registered
//! accounts are not.

use std::ops::Range;
use std::sync::LazyLock;

use alloy_primitives::Address;
use serde::Deserialize;

/// A contract's deployed code as the committed artifact holds it.
#[derive(Debug)]
pub struct Artifact {
    /// The contract's name, for messages.
    pub name: &'static str,
    /// The deployed (runtime) code, with zeros where the constructor writes immutables.
    pub deployed: Vec<u8>,
    /// The byte ranges of `deployed` that hold immutables: one list per immutable, each in
    /// increasing order.
    pub immutables: Vec<Vec<Range<usize>>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArtifactJson {
    deployed_bytecode: String,
    #[serde(default)]
    immutable_references: Vec<Vec<(usize, usize)>>,
}

impl Artifact {
    fn parse(name: &'static str, json: &str) -> Artifact {
        // The artifacts are compiled into the binary and checked by the tests below and by
        // `npm run check` in CI: a malformed one is a build defect, not an input.
        let raw: ArtifactJson = serde_json::from_str(json).expect("a committed artifact parses");
        let deployed = alloy_primitives::hex::decode(&raw.deployed_bytecode)
            .expect("a committed artifact's code is hex");
        let immutables = raw
            .immutable_references
            .into_iter()
            .map(|places| {
                places
                    .into_iter()
                    .map(|(start, len)| start..start + len)
                    .collect()
            })
            .collect();
        Artifact {
            name,
            deployed,
            immutables,
        }
    }

    /// Whether `code` is this artifact's deployed code, outside the immutables' ranges.
    pub fn check(&self, code: &[u8]) -> Result<(), Mismatch> {
        if code.len() != self.deployed.len() {
            return Err(Mismatch::Length {
                found: code.len(),
                expected: self.deployed.len(),
            });
        }
        // The fixed parts lie between the immutables, and after the last one.
        let mut places: Vec<&Range<usize>> = self.immutables.iter().flatten().collect();
        places.sort_by_key(|r| r.start);
        let end = code.len()..code.len();
        let mut from = 0;
        for r in places.into_iter().chain(std::iter::once(&end)) {
            if let Some(offset) = (from..r.start).find(|&i| code[i] != self.deployed[i]) {
                return Err(Mismatch::Byte { offset });
            }
            from = r.end;
        }
        Ok(())
    }
}

impl Artifact {
    /// The value of each immutable in `code` (which [`Artifact::check`] accepted), in the
    /// artifact's order; refused when the places of one immutable differ.
    pub fn immutable_values(&self, code: &[u8]) -> Result<Vec<Vec<u8>>, Mismatch> {
        self.immutables
            .iter()
            .map(|places| {
                let first = &code[places[0].clone()];
                match places.iter().find(|r| code[(*r).clone()] != *first) {
                    Some(r) => Err(Mismatch::Immutable { offset: r.start }),
                    None => Ok(first.to_vec()),
                }
            })
            .collect()
    }

    /// The addresses the immutables of `code` hold ([`Artifact::immutable_values`], each an
    /// address left-padded with zeros to 32 bytes).
    pub fn immutable_addresses(&self, code: &[u8]) -> Result<Vec<Address>, Mismatch> {
        self.immutable_values(code)?
            .iter()
            .zip(&self.immutables)
            .map(|(value, places)| {
                if value.len() == 32 && value[..12].iter().all(|&b| b == 0) {
                    Ok(Address::from_slice(&value[12..]))
                } else {
                    Err(Mismatch::Immutable {
                        offset: places[0].start,
                    })
                }
            })
            .collect()
    }
}

/// How deployed code differs from an artifact's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Mismatch {
    /// The code is of another length.
    #[error("{found} bytes of code where keyquorum's has {expected}")]
    Length {
        /// The deployed code's length.
        found: usize,
        /// The artifact's.
        expected: usize,
    },
    /// The code differs at `offset`, outside the immutables.
    #[error("the code differs from keyquorum's at byte {offset}")]
    Byte {
        /// The first differing byte.
        offset: usize,
    },
    /// An immutable holds another value at `offset` than at its first place, or a value that
    /// is not an address.
    #[error("an immutable holds an inconsistent or non-address value at byte {offset}")]
    Immutable {
        /// The place.
        offset: usize,
    },
    /// A getter answered an address the code does not hold as an immutable.
    #[error("its {getter}() answers {answered}, which its code does not hold")]
    Getter {
        /// The getter.
        getter: &'static str,
        /// Its answer.
        answered: Address,
    },
}

/// The coordinator (`contracts/out/Coordinator.json`).
pub static COORDINATOR: LazyLock<Artifact> = LazyLock::new(|| {
    Artifact::parse(
        "coordinator",
        include_str!("../../../contracts/out/Coordinator.json"),
    )
});

/// The BLS verifier the coordinator's constructor creates (`contracts/out/Bls12381Verifier.json`).
pub static VERIFIER: LazyLock<Artifact> = LazyLock::new(|| {
    Artifact::parse(
        "BLS verifier",
        include_str!("../../../contracts/out/Bls12381Verifier.json"),
    )
});

/// The encoding reader the coordinator's constructor creates (`contracts/out/EncodingReader.json`).
pub static READER: LazyLock<Artifact> = LazyLock::new(|| {
    Artifact::parse(
        "encoding reader",
        include_str!("../../../contracts/out/EncodingReader.json"),
    )
});

/// A contract in a coordinator's deployment whose code is not keyquorum's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the {what} at {address} is not keyquorum's ({mismatch}): this node follows only a \
     coordinator deployed from the contract it was built with (`keyquorum deploy` of the same \
     release); check the contract address and that the node and the deployment are one release"
)]
pub struct ForeignCode {
    /// Which of the deployment's contracts: `coordinator`, `BLS verifier` or `encoding reader`.
    pub what: &'static str,
    /// Where it is.
    pub address: Address,
    /// How its code differs.
    pub mismatch: Mismatch,
}

/// Checks one contract's code against its artifact.
pub fn check_contract(
    artifact: &Artifact,
    address: Address,
    code: &[u8],
) -> Result<(), ForeignCode> {
    artifact.check(code).map_err(|mismatch| ForeignCode {
        what: artifact.name,
        address,
        mismatch,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_artifacts_parse_and_their_immutables_are_zeros_within_the_code() {
        for a in [&*COORDINATOR, &*VERIFIER, &*READER] {
            assert!(!a.deployed.is_empty(), "{}", a.name);
            let mut places: Vec<_> = a.immutables.iter().flatten().collect();
            places.sort_by_key(|r| r.start);
            let mut end = 0;
            for r in places {
                assert!(
                    r.start >= end && r.end <= a.deployed.len(),
                    "{}: {r:?}",
                    a.name
                );
                assert!(a.deployed[r.clone()].iter().all(|&b| b == 0), "{}", a.name);
                end = r.end;
            }
        }
        // The coordinator's constructor writes the verifier's and the reader's addresses; the
        // contracts it creates have none of their own.
        assert_eq!(COORDINATOR.immutables.len(), 2);
        assert!(VERIFIER.immutables.is_empty() && READER.immutables.is_empty());
    }

    /// `code` with each immutable set to its address in `addresses`.
    fn with_immutables(addresses: &[Address]) -> Vec<u8> {
        let mut code = COORDINATOR.deployed.clone();
        for (places, address) in COORDINATOR.immutables.iter().zip(addresses) {
            for r in places {
                code[r.end - 20..r.end].copy_from_slice(address.as_slice());
            }
        }
        code
    }

    #[test]
    fn the_code_matches_and_its_immutables_are_read_per_immutable() {
        let (a, b) = (Address::repeat_byte(0xab), Address::repeat_byte(0xcd));
        let code = with_immutables(&[a, b]);
        assert_eq!(COORDINATOR.check(&code), Ok(()));
        assert_eq!(COORDINATOR.immutable_addresses(&code), Ok(vec![a, b]));
        assert_eq!(VERIFIER.check(&VERIFIER.deployed), Ok(()));
    }

    #[test]
    fn an_immutable_with_two_values_or_no_address_is_refused() {
        let (a, b) = (Address::repeat_byte(0xab), Address::repeat_byte(0xcd));
        // One place of the second immutable (say, its getter's) shows another address.
        let mut code = with_immutables(&[a, b]);
        let last = COORDINATOR.immutables[1].last().unwrap().clone();
        code[last.end - 20..last.end].copy_from_slice(a.as_slice());
        assert_eq!(COORDINATOR.check(&code), Ok(()));
        assert_eq!(
            COORDINATOR.immutable_addresses(&code),
            Err(Mismatch::Immutable { offset: last.start })
        );
        // Every place alike, but more than an address.
        let mut code = with_immutables(&[a, b]);
        for r in &COORDINATOR.immutables[0] {
            code[r.start] = 1;
        }
        assert_eq!(
            COORDINATOR.immutable_addresses(&code),
            Err(Mismatch::Immutable {
                offset: COORDINATOR.immutables[0][0].start
            })
        );
    }

    #[test]
    fn any_other_byte_or_length_is_refused() {
        let a = &*COORDINATOR;
        // Every byte next to an immutable, the first and the last.
        let mut offsets = vec![0, a.deployed.len() - 1];
        for r in a.immutables.iter().flatten() {
            offsets.extend([r.start - 1, r.end]);
        }
        for offset in offsets {
            let mut code = a.deployed.clone();
            code[offset] ^= 1;
            assert_eq!(a.check(&code), Err(Mismatch::Byte { offset }));
        }
        let mut longer = a.deployed.clone();
        longer.push(0);
        assert_eq!(
            a.check(&longer),
            Err(Mismatch::Length {
                found: a.deployed.len() + 1,
                expected: a.deployed.len()
            })
        );
        assert!(READER.check(&VERIFIER.deployed).is_err());
        let err = check_contract(&VERIFIER, Address::repeat_byte(7), &[]).unwrap_err();
        assert!(
            err.to_string().contains("the BLS verifier at 0x0707"),
            "{err}"
        );
    }
}
