//! The audit trail's hash chain: how an entry is encoded, hashed and checked.
//!
//! Every entry carries the hash of the one before it. Changing any field of any entry, removing
//! an entry from the middle, or cutting entries off the end (checked against the chain head kept
//! beside the log) is found by [`verify_chain`], which names the first entry that no longer fits.

use sha2::{Digest, Sha256};

/// The hash before the first entry.
pub const GENESIS: [u8; 32] = [0u8; 32];

const LABEL: &[u8] = b"anxin-audit-v1";

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

    /// This entry's hash given the previous entry's hash.
    pub fn chain_hash(&self, prev: &[u8; 32]) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(LABEL);
        h.update(prev);
        h.update(self.encode());
        h.finalize().into()
    }
}

/// A stored entry: the record plus the hashes written beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEntry {
    pub record: AuditRecord,
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

/// Checks a whole log, in sequence order, against its head. Returns the number of entries.
pub fn verify_chain(
    entries: impl IntoIterator<Item = StoredEntry>,
    head: ChainHead,
) -> Result<i64, ChainBreak> {
    let mut prev = GENESIS;
    let mut expected_seq = 1i64;
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
        if e.record.chain_hash(&prev) != e.hash {
            return Err(ChainBreak {
                seq,
                problem: "altered (its content no longer matches its hash)".into(),
            });
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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
        assert_eq!(verify_chain(entries, head), Ok(5));
        assert_eq!(
            verify_chain(
                vec![],
                ChainHead {
                    seq: 0,
                    hash: GENESIS
                }
            ),
            Ok(0)
        );
    }

    #[test]
    fn removed_middle_and_cut_tail_are_found() {
        let (mut entries, head) = chain(5);
        entries.remove(2);
        assert_eq!(verify_chain(entries, head).unwrap_err().seq, 3);
        let (mut entries, head) = chain(5);
        entries.truncate(3);
        assert_eq!(verify_chain(entries, head).unwrap_err().seq, 4);
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
            let err = verify_chain(entries, head).unwrap_err();
            prop_assert_eq!(err.seq, i as i64 + 1);
        }
    }
}
