//! The one successor the elders of a section key authorise (seed 002, "Post successful DKG":
//! the current elders sign the new key with the current one).
//!
//! A section key's elders sign a link to a new key for each handover they complete. Within one
//! generation they may sign starts for more than one successor while the members change: an
//! elder change of the section and, once the members call for it, a split into two halves (or a
//! later elder change with other candidates). If the DKGs of two of them complete and each
//! gathers `supermajority(m)` link partials of the `m` elders, the key tree forks: two children
//! for one section, or a child for the section beside a half of it. Two such sets of signers
//! share an honest elder, so the fork is excluded if every honest elder links one successor
//! per key: exactly one child for the section's own prefix (an elder change), or at most one
//! child per half (a split), never both. The choice is part of the elder's durable record
//! ([`crate::store::ElderRecord::linked`]), so a restart cannot sign a second successor either.

use crate::keys::PublicKey;
use crate::name::Prefix;

/// A link an elder signed: `key` as the successor of `parent_key` for section `prefix` (the
/// parent's own prefix, or one of its halves).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Successor {
    /// The section key the link is signed with.
    pub parent_key: PublicKey,
    /// The prefix of the new SAP.
    pub prefix: Prefix,
    /// The new section key.
    pub key: PublicKey,
}

/// Whether an elder that already signed the links in `signed` may sign `next`, a successor of a
/// section whose prefix is `parent_prefix`: yes if it signed `next` already, or if `next` takes
/// a place still free (nothing signed for its parent key, or `next` is a half and only the
/// other half was signed).
pub fn may_link(signed: &[Successor], parent_prefix: &Prefix, next: &Successor) -> bool {
    signed
        .iter()
        .filter(|s| s.parent_key == next.parent_key)
        .all(|s| {
            if s.prefix == next.prefix {
                s.key == next.key
            } else {
                // An elder change excludes every other successor; two halves do not exclude each
                // other.
                s.prefix != *parent_prefix && next.prefix != *parent_prefix
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::tests::key;

    #[test]
    fn one_child_or_one_per_half_per_key() {
        let root = Prefix::ROOT;
        let (zero, one) = (root.child(0).unwrap(), root.child(1).unwrap());
        let link = |parent: u64, prefix: Prefix, child: u64| Successor {
            parent_key: key(parent).1,
            prefix,
            key: key(child).1,
        };
        // Nothing signed: anything goes; the same link again too.
        assert!(may_link(&[], &root, &link(0, root, 1)));
        let change = [link(0, root, 1)];
        assert!(may_link(&change, &root, &link(0, root, 1)));
        // After an elder change: no other child, no half.
        assert!(!may_link(&change, &root, &link(0, root, 2)));
        assert!(!may_link(&change, &root, &link(0, zero, 2)));
        // Another parent key is another choice.
        assert!(may_link(&change, &root, &link(1, zero, 2)));
        // After a half: the other half, but no elder change and no second key for that half.
        let half = [link(0, zero, 2)];
        assert!(may_link(&half, &root, &link(0, one, 3)));
        assert!(!may_link(&half, &root, &link(0, root, 3)));
        assert!(!may_link(&half, &root, &link(0, zero, 3)));
        let split = [link(0, zero, 2), link(0, one, 3)];
        assert!(may_link(&split, &root, &link(0, one, 3)));
        assert!(!may_link(&split, &root, &link(0, one, 4)));
    }
}
