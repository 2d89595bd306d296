//! The audit trail's hash chain: how an entry is encoded, hashed and checked.
//!
//! Every entry carries the hash of the one before it. Changing any field of any entry, removing
//! an entry from the middle, or cutting entries off the end (checked against the chain head kept
//! beside the log) is found by [`verify_chain`], which names the first entry that no longer fits.
//!
//! Against someone who can write the database, two things more:
//!
//! - **Keyed entries** (chain version 2): the hash is HMAC-SHA-256 under a key derived from the
//!   deployment's data key file, which lives outside the database; without it nobody can
//!   recompute the chain after altering an entry. Entries written before the key was used keep
//!   version 1 (plain SHA-256; the log is append-only so they cannot be rewritten), and the
//!   first keyed entry chains onto the last of them; once keyed, the chain never goes back to
//!   version 1.
//! - **Checkpoints** ([`Checkpoint`]): the sequence number and hash of the head at a time,
//!   signed with the same key, written to files outside the database. A cut tail, a head moved
//!   back, a wiped log or a log rebuilt from scratch no longer matches the latest checkpoint
//!   ([`check_checkpoints`]).

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// Actions whose recorded reason is administrative (a purpose, a username, a file name, a
/// count, a refused route), shown in the audit views to managers and administrators. Every other
/// action's reason can hold clinical text (review notes, doses, discharge reasons, what the police
/// were told) and stays in the clinical record: deny by default, so a new action's reason is
/// hidden until it is listed here.
const ADMINISTRATIVE_REASONS: &[&str] = &[
    "access.denied",
    "audit.search",
    "backup.create",
    "box.register",
    "client.identity.read",
    "client.read",
    "client.read.denied",
    "disclosure.cdc_export",
    "login",
    "login.failed",
    "logout",
    "site.create",
    "sms.outbox.read",
    "staff.create",
    "staff.rename",
    "staff.role",
    "staff.unlock",
    "stock.receive",
    "takehome.policy.adopt",
];

/// Whether the audit views show the recorded reason of `action` (see [`ADMINISTRATIVE_REASONS`]).
pub fn reason_is_administrative(action: &str) -> bool {
    ADMINISTRATIVE_REASONS.contains(&action)
}

/// The hash before the first entry.
pub const GENESIS: [u8; 32] = [0u8; 32];

const LABEL: &[u8] = b"anxin-audit-v1";
const LABEL_V2: &[u8] = b"anxin-audit-v2";
const CHECKPOINT_LABEL: &[u8] = b"anxin-audit-checkpoint-v1";

/// Entries hashed with plain SHA-256 (before the chain was keyed).
pub const CHAIN_V1: i64 = 1;
/// Entries hashed with HMAC-SHA-256 under the audit key.
pub const CHAIN_V2: i64 = 2;

/// One line of the audit trail: who did what to which record, when and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// Position in the chain, from 1 with no gaps.
    pub seq: i64,
    /// When, as milliseconds since the Unix epoch (UTC).
    pub at_ms: i64,
    /// The staff account, if any (none for the command line or a failed login of an unknown name).
    pub actor_id: Option<i64>,
    /// The actor as shown to people: a username, or `cli`.
    pub actor: String,
    /// The site the action concerns, if any.
    pub site_id: Option<i64>,
    /// What happened, e.g. `client.read`, `login.failed`, `staff.create`.
    pub action: String,
    /// The kind of record touched, e.g. `client`, `user`, `site`.
    pub record_type: String,
    /// The record's id, or empty.
    pub record_id: String,
    /// Why, or further detail (never a secret).
    pub reason: String,
}

fn put_str(buf: &mut Vec<u8>, s: &str) {
    buf.extend_from_slice(&(s.len() as u64).to_be_bytes());
    buf.extend_from_slice(s.as_bytes());
}

fn put_opt(buf: &mut Vec<u8>, v: Option<i64>) {
    match v {
        None => buf.push(0),
        Some(v) => {
            buf.push(1);
            buf.extend_from_slice(&v.to_be_bytes());
        }
    }
}

impl AuditRecord {
    /// The unambiguous byte encoding that is hashed (length-prefixed strings, big-endian numbers).
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(128);
        b.extend_from_slice(&self.seq.to_be_bytes());
        b.extend_from_slice(&self.at_ms.to_be_bytes());
        put_opt(&mut b, self.actor_id);
        put_str(&mut b, &self.actor);
        put_opt(&mut b, self.site_id);
        put_str(&mut b, &self.action);
        put_str(&mut b, &self.record_type);
        put_str(&mut b, &self.record_id);
        put_str(&mut b, &self.reason);
        b
    }

    /// This entry's hash given the previous entry's hash (chain version 1, unkeyed).
    pub fn chain_hash(&self, prev: &[u8; 32]) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(LABEL);
        h.update(prev);
        h.update(self.encode());
        h.finalize().into()
    }

    /// This entry's keyed hash given the previous entry's hash (chain version 2).
    pub fn keyed_chain_hash(&self, prev: &[u8; 32], key: &[u8; 32]) -> [u8; 32] {
        let mut m = hmac(key);
        m.update(LABEL_V2);
        m.update(prev);
        m.update(&self.encode());
        m.finalize().into_bytes().into()
    }

    /// The hash of this entry in chain `version`; `None` for a keyed version without the key
    /// or an unknown version.
    pub fn hash_as(
        &self,
        version: i64,
        prev: &[u8; 32],
        key: Option<&[u8; 32]>,
    ) -> Option<[u8; 32]> {
        match (version, key) {
            (CHAIN_V1, _) => Some(self.chain_hash(prev)),
            (CHAIN_V2, Some(k)) => Some(self.keyed_chain_hash(prev, k)),
            _ => None,
        }
    }
}

fn hmac(key: &[u8; 32]) -> Hmac<Sha256> {
    // An HMAC accepts a key of any length, so this never fails.
    match <Hmac<Sha256> as Mac>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    }
}

/// A stored entry: the record plus the hashes written beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEntry {
    pub record: AuditRecord,
    /// [`CHAIN_V1`] or [`CHAIN_V2`].
    pub version: i64,
    pub prev_hash: [u8; 32],
    pub hash: [u8; 32],
}

/// The last sequence number and hash, kept apart from the entries so that cutting off the
/// tail of the log is detected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainHead {
    pub seq: i64,
    pub hash: [u8; 32],
}

/// Where and how the chain broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("audit entry {seq}: {problem}")]
pub struct ChainBreak {
    /// The first entry that does not fit (for a removed entry, the missing sequence number).
    pub seq: i64,
    pub problem: String,
}

/// Checks a whole log, in sequence order, against its head, with the audit key for keyed
/// entries. Returns the number of entries.
pub fn verify_chain(
    entries: impl IntoIterator<Item = StoredEntry>,
    head: ChainHead,
    key: Option<&[u8; 32]>,
) -> Result<i64, ChainBreak> {
    let mut prev = GENESIS;
    let mut expected_seq = 1i64;
    let mut version = CHAIN_V1;
    for e in entries {
        let seq = e.record.seq;
        if seq != expected_seq {
            return Err(ChainBreak {
                seq: expected_seq,
                problem: if seq > expected_seq {
                    format!("missing (the log jumps to entry {seq})")
                } else {
                    format!("out of order (found entry {seq} again)")
                },
            });
        }
        if e.prev_hash != prev {
            return Err(ChainBreak {
                seq,
                problem: "does not follow the entry before it (previous hash differs)".into(),
            });
        }
        if e.version < version {
            return Err(ChainBreak {
                seq,
                problem: "altered (an unkeyed entry after keyed ones)".into(),
            });
        }
        version = e.version;
        match e.record.hash_as(e.version, &prev, key) {
            Some(h) if h == e.hash => {}
            Some(_) => {
                return Err(ChainBreak {
                    seq,
                    problem: "altered (its content no longer matches its hash)".into(),
                })
            }
            None => {
                return Err(ChainBreak {
                    seq,
                    problem: format!(
                    "cannot be checked: chain version {} needs the audit key (the data key file)",
                    e.version
                ),
                })
            }
        }
        prev = e.hash;
        expected_seq += 1;
    }
    let last = expected_seq - 1;
    if last != head.seq {
        return Err(ChainBreak {
            seq: last + 1,
            problem: format!(
                "missing: the log ends at entry {last} but the chain head records entry {}",
                head.seq
            ),
        });
    }
    if prev != head.hash {
        return Err(ChainBreak {
            seq: last,
            problem: "altered (the last entry does not match the chain head)".into(),
        });
    }
    Ok(last)
}

/// A signed statement, kept outside the database, that the chain's head was entry `seq` with
/// hash `head` at `at_ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub seq: i64,
    pub head: [u8; 32],
    /// Milliseconds since the Unix epoch (UTC).
    pub at_ms: i64,
    pub mac: [u8; 32],
}

/// Why a checkpoint file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error("not an audit checkpoint: {0}")]
    Malformed(String),
    #[error(
        "checkpoint of entry {0}: its signature does not match (forged, altered or another key)"
    )]
    BadMac(i64),
}

impl Checkpoint {
    fn mac_of(seq: i64, head: &[u8; 32], at_ms: i64, key: &[u8; 32]) -> [u8; 32] {
        let mut m = hmac(key);
        m.update(CHECKPOINT_LABEL);
        m.update(&seq.to_be_bytes());
        m.update(head);
        m.update(&at_ms.to_be_bytes());
        m.finalize().into_bytes().into()
    }

    /// Signs the head `head` at `at_ms` with the audit key.
    pub fn sign(head: ChainHead, at_ms: i64, key: &[u8; 32]) -> Checkpoint {
        Checkpoint {
            seq: head.seq,
            head: head.hash,
            at_ms,
            mac: Self::mac_of(head.seq, &head.hash, at_ms, key),
        }
    }

    /// Whether the signature is the key's (constant time).
    pub fn check_mac(&self, key: &[u8; 32]) -> Result<(), CheckpointError> {
        let mut m = hmac(key);
        m.update(CHECKPOINT_LABEL);
        m.update(&self.seq.to_be_bytes());
        m.update(&self.head);
        m.update(&self.at_ms.to_be_bytes());
        m.verify_slice(&self.mac)
            .map_err(|_| CheckpointError::BadMac(self.seq))
    }

    /// The file text: one `key=value` a line, readable and printable for a second party.
    pub fn to_text(&self) -> String {
        format!(
            "anxin-audit-checkpoint v1\nseq={}\nhead={}\nat_ms={}\nmac={}\n",
            self.seq,
            hex::encode(self.head),
            self.at_ms,
            hex::encode(self.mac)
        )
    }

    /// Reads [`Checkpoint::to_text`]'s format (the signature is not checked here).
    pub fn parse(text: &str) -> Result<Checkpoint, CheckpointError> {
        let bad = |m: &str| CheckpointError::Malformed(m.to_owned());
        let mut lines = text.lines();
        if lines.next() != Some("anxin-audit-checkpoint v1") {
            return Err(bad("first line is not `anxin-audit-checkpoint v1`"));
        }
        let mut field = |name: &str| -> Result<String, CheckpointError> {
            let line = lines
                .next()
                .ok_or_else(|| bad(&format!("no `{name}=` line")))?;
            line.strip_prefix(&format!("{name}="))
                .map(str::to_owned)
                .ok_or_else(|| bad(&format!("expected `{name}=`, found `{line}`")))
        };
        let num = |v: String, name: &str| {
            v.parse::<i64>()
                .map_err(|_| bad(&format!("`{name}` is not a number")))
        };
        let hash = |v: String, name: &str| {
            let mut out = [0u8; 32];
            hex::decode_to_slice(v, &mut out)
                .map_err(|_| bad(&format!("`{name}` is not 64 hexadecimal characters")))?;
            Ok::<_, CheckpointError>(out)
        };
        let seq = num(field("seq")?, "seq")?;
        let head = hash(field("head")?, "head")?;
        let at_ms = num(field("at_ms")?, "at_ms")?;
        let mac = hash(field("mac")?, "mac")?;
        Ok(Checkpoint {
            seq,
            head,
            at_ms,
            mac,
        })
    }
}

/// Checks the log against signed checkpoints: each must carry the key's signature, and the
/// log must still hold its entry with its hash. `hash_at(seq)` is the stored hash of entry
/// `seq` (`None` if there is none); `last` the log's last entry. Catches a cut tail (with the
/// head moved back), a wiped log and a log rebuilt from scratch, up to the latest checkpoint.
pub fn check_checkpoints(
    checkpoints: &[Checkpoint],
    key: &[u8; 32],
    last: i64,
    hash_at: impl Fn(i64) -> Option<[u8; 32]>,
) -> Result<(), ChainBreak> {
    for c in checkpoints {
        c.check_mac(key).map_err(|e| ChainBreak {
            seq: c.seq,
            problem: e.to_string(),
        })?;
        if c.seq == 0 {
            continue;
        }
        if c.seq > last {
            return Err(ChainBreak {
                seq: last + 1,
                problem: format!(
                    "missing: the log ends at entry {last} but a signed checkpoint records entry {}",
                    c.seq
                ),
            });
        }
        if hash_at(c.seq) != Some(c.head) {
            return Err(ChainBreak {
                seq: c.seq,
                problem: "altered (it no longer matches its signed checkpoint)".into(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn clinical_reasons_are_hidden_by_default() {
        assert!(reason_is_administrative("client.read"));
        assert!(reason_is_administrative("login.failed"));
        for clinical in [
            "review.record",
            "dose.give",
            "order.write",
            "client.discharge",
            "urine.record",
        ] {
            assert!(!reason_is_administrative(clinical), "{clinical}");
        }
        assert!(!reason_is_administrative("an.action.nobody.listed"));
        // Exact actions, not prefixes.
        assert!(!reason_is_administrative("client.read.extra"));
    }

    fn rec(seq: i64, action: &str) -> AuditRecord {
        AuditRecord {
            seq,
            at_ms: 1_790_000_000_000 + seq,
            actor_id: Some(7),
            actor: "nurse.li".into(),
            site_id: Some(1),
            action: action.into(),
            record_type: "client".into(),
            record_id: seq.to_string(),
            reason: String::new(),
        }
    }

    fn chain(n: i64) -> (Vec<StoredEntry>, ChainHead) {
        let mut prev = GENESIS;
        let mut out = vec![];
        for seq in 1..=n {
            let record = rec(seq, "client.read");
            let hash = record.chain_hash(&prev);
            out.push(StoredEntry {
                record,
                version: CHAIN_V1,
                prev_hash: prev,
                hash,
            });
            prev = hash;
        }
        (out, ChainHead { seq: n, hash: prev })
    }

    #[test]
    fn intact_chain_verifies() {
        let (entries, head) = chain(5);
        assert_eq!(verify_chain(entries, head, None), Ok(5));
        assert_eq!(
            verify_chain(
                vec![],
                ChainHead {
                    seq: 0,
                    hash: GENESIS
                },
                None
            ),
            Ok(0)
        );
    }

    #[test]
    fn removed_middle_and_cut_tail_are_found() {
        let (mut entries, head) = chain(5);
        entries.remove(2);
        assert_eq!(verify_chain(entries, head, None).unwrap_err().seq, 3);
        let (mut entries, head) = chain(5);
        entries.truncate(3);
        assert_eq!(verify_chain(entries, head, None).unwrap_err().seq, 4);
    }

    proptest! {
        #[test]
        fn any_changed_field_is_found_at_its_entry(
            n in 1i64..12, pick in 0usize..100, field in 0u8..5, text in "[a-z]{1,8}"
        ) {
            let (mut entries, head) = chain(n);
            let i = pick % entries.len();
            let r = &mut entries[i].record;
            match field {
                0 => r.action = format!("{}x{text}", r.action),
                1 => r.actor = format!("{}x{text}", r.actor),
                2 => r.at_ms += 1,
                3 => r.record_id.push_str(&text),
                _ => r.reason.push_str(&text),
            }
            let err = verify_chain(entries, head, None).unwrap_err();
            prop_assert_eq!(err.seq, i as i64 + 1);
        }
    }

    const KEY: [u8; 32] = [7; 32];

    /// `v1` unkeyed entries, then `v2` keyed ones chained onto them.
    fn mixed(v1: i64, v2: i64) -> (Vec<StoredEntry>, ChainHead) {
        let (mut out, mut head) = chain(v1);
        for seq in v1 + 1..=v1 + v2 {
            let record = rec(seq, "login");
            let hash = record.keyed_chain_hash(&head.hash, &KEY);
            out.push(StoredEntry {
                record,
                version: CHAIN_V2,
                prev_hash: head.hash,
                hash,
            });
            head = ChainHead { seq, hash };
        }
        (out, head)
    }

    #[test]
    fn keyed_entries_verify_only_with_the_key_and_never_go_back_to_unkeyed() {
        let (entries, head) = mixed(3, 4);
        assert_eq!(verify_chain(entries.clone(), head, Some(&KEY)), Ok(7));
        let no_key = verify_chain(entries.clone(), head, None).unwrap_err();
        assert_eq!(no_key.seq, 4);
        assert!(no_key.problem.contains("needs the audit key"));
        assert_eq!(
            verify_chain(entries.clone(), head, Some(&[8; 32]))
                .unwrap_err()
                .seq,
            4
        );
        // Recomputing an altered keyed entry without the key (as if unkeyed) is found.
        let mut forged = entries.clone();
        forged[5].record.reason = "nothing happened".into();
        forged[5].version = CHAIN_V1;
        forged[5].hash = forged[5].record.chain_hash(&forged[5].prev_hash);
        let err = verify_chain(forged, head, Some(&KEY)).unwrap_err();
        assert_eq!(err.seq, 6);
    }

    #[test]
    fn checkpoints_catch_a_cut_a_wipe_and_a_rebuilt_log() {
        let (entries, head) = mixed(0, 6);
        let at =
            |e: &[StoredEntry], seq: i64| e.iter().find(|x| x.record.seq == seq).map(|x| x.hash);
        let cp = Checkpoint::sign(head, 1_790_000_000_000, &KEY);
        let cps = std::slice::from_ref(&cp);
        let text = cp.to_text();
        assert_eq!(Checkpoint::parse(&text), Ok(cp.clone()));
        assert_eq!(check_checkpoints(cps, &KEY, 6, |s| at(&entries, s)), Ok(()));
        // Cut to 4 entries with the head moved back: the chain itself still verifies.
        let cut: Vec<_> = entries[..4].to_vec();
        let err = check_checkpoints(cps, &KEY, 4, |s| at(&cut, s)).unwrap_err();
        assert_eq!(err.seq, 5);
        // Wiped.
        let err = check_checkpoints(cps, &KEY, 0, |_| None).unwrap_err();
        assert_eq!(err.seq, 1);
        // Rebuilt with other content (even of the same length).
        let (rebuilt, _) = chain(6);
        let err = check_checkpoints(cps, &KEY, 6, |s| at(&rebuilt, s)).unwrap_err();
        assert_eq!(err.seq, 6);
        // A checkpoint moved to another entry, or signed with another key, is refused.
        let mut moved = cp.clone();
        moved.seq = 4;
        moved.head = entries[3].hash;
        let err = check_checkpoints(&[moved], &KEY, 6, |s| at(&entries, s)).unwrap_err();
        assert!(err.problem.contains("signature does not match"), "{err}");
        let other = Checkpoint::sign(head, 1, &[1; 32]);
        assert!(check_checkpoints(&[other], &KEY, 6, |s| at(&entries, s)).is_err());
        assert!(Checkpoint::parse("hello").is_err());
        assert!(Checkpoint::parse(&text.replace("seq=6", "seq=six")).is_err());
    }
}
