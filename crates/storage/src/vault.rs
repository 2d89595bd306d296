//! Encryption at rest of the identifying fields of a client (name, national ID number, phone,
//! address): XChaCha20-Poly1305 with a key from the deployment's key file, each ciphertext
//! bound to its client so that it cannot be moved to another record; and keyed hashes of names
//! for search without decryption. The key never appears in logs or Debug output.

use std::path::Path;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use rand_core::{OsRng, RngCore};
use sha2::Sha256;

/// Why a key file or a ciphertext was refused.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("key_file {path}: {message}")]
    KeyFile { path: String, message: String },
    /// The ciphertext was altered, truncated, moved to another record or made with another key.
    #[error("encrypted data of record {0} does not decrypt: altered or wrong key")]
    Tampered(i64),
}

/// The deployment's data key.
#[derive(Clone)]
pub struct Vault {
    key: [u8; 32],
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Vault(***)")
    }
}

const NONCE_LEN: usize = 24;
const IDENTITY: &str = "anxin-identity-v1:client:";
const BOX_SECRET: &str = "anxin-box-secret-v1:load:";
const MESSAGE: &str = "anxin-sms-text-v1:key:";
const PHOTO: &str = "anxin-photo-v1:client:";

impl Vault {
    /// A vault with this key (tests and key rotation tools).
    pub fn from_key(key: [u8; 32]) -> Vault {
        Vault { key }
    }

    /// Reads the key file (64 hex characters); with `create`, makes a new random one (mode 0600)
    /// if it does not exist.
    pub fn from_key_file(path: &Path, create: bool) -> Result<Vault, VaultError> {
        let err = |message: String| VaultError::KeyFile {
            path: path.display().to_string(),
            message,
        };
        if !path.exists() {
            if !create {
                return Err(err("does not exist".into()));
            }
            let mut key = [0u8; 32];
            OsRng.fill_bytes(&mut key);
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
            }
            write_private(path, &hex::encode(key)).map_err(|e| err(e.to_string()))?;
            return Ok(Vault { key });
        }
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        let mut key = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut key)
            .map_err(|_| err("must hold 64 hexadecimal characters (a 256-bit key)".into()))?;
        Ok(Vault { key })
    }

    fn subkey(&self, label: &[u8]) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(label);
        mac.finalize().into_bytes().into()
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(&self.subkey(b"anxin-identity-key-v1").into())
    }

    fn aad(label: &str, id: i64) -> Vec<u8> {
        let mut aad = label.as_bytes().to_vec();
        aad.extend_from_slice(&id.to_be_bytes());
        aad
    }

    /// Encrypts `plaintext` for client `client_id`: nonce ‖ ciphertext ‖ tag.
    pub fn seal(&self, client_id: i64, plaintext: &[u8]) -> Vec<u8> {
        self.seal_as(IDENTITY, client_id, plaintext)
    }

    /// Decrypts what [`Vault::seal`] made for the same client; anything else is refused.
    pub fn open(&self, client_id: i64, sealed: &[u8]) -> Result<Vec<u8>, VaultError> {
        self.open_as(IDENTITY, client_id, sealed)
    }

    /// Encrypts a client's photo, bound to the client under a purpose of its own: a photo's
    /// ciphertext does not open as an identity, nor an identity's as a photo.
    pub fn seal_photo(&self, client_id: i64, image: &[u8]) -> Vec<u8> {
        self.seal_as(PHOTO, client_id, image)
    }

    /// Decrypts what [`Vault::seal_photo`] made for the same client.
    pub fn open_photo(&self, client_id: i64, sealed: &[u8]) -> Result<Vec<u8>, VaultError> {
        self.open_as(PHOTO, client_id, sealed)
    }

    /// Encrypts a box load's secret, bound to the load.
    pub fn seal_box_secret(&self, load_id: i64, secret: &[u8]) -> Vec<u8> {
        self.seal_as(BOX_SECRET, load_id, secret)
    }

    /// Decrypts a box load's secret.
    pub fn open_box_secret(&self, load_id: i64, sealed: &[u8]) -> Result<Vec<u8>, VaultError> {
        self.open_as(BOX_SECRET, load_id, sealed)
    }

    /// Encrypts an SMS text that must not rest in clear (a day's code), bound to its outbox
    /// idempotency key.
    pub fn seal_message(&self, key: &str, text: &str) -> Vec<u8> {
        self.seal_as(&format!("{MESSAGE}{key}"), 0, text.as_bytes())
    }

    /// Decrypts what [`Vault::seal_message`] made for the same key.
    pub fn open_message(&self, key: &str, sealed: &[u8]) -> Result<String, VaultError> {
        let bytes = self.open_as(&format!("{MESSAGE}{key}"), 0, sealed)?;
        String::from_utf8(bytes).map_err(|_| VaultError::Tampered(0))
    }

    fn seal_as(&self, label: &str, id: i64, plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        OsRng.fill_bytes(&mut nonce);
        let aad = Vault::aad(label, id);
        let ct = self
            .cipher()
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        out
    }

    fn open_as(&self, label: &str, id: i64, sealed: &[u8]) -> Result<Vec<u8>, VaultError> {
        if sealed.len() < NONCE_LEN + 16 {
            return Err(VaultError::Tampered(id));
        }
        let (nonce, ct) = sealed.split_at(NONCE_LEN);
        let aad = Vault::aad(label, id);
        self.cipher()
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad: &aad })
            .map_err(|_| VaultError::Tampered(id))
    }

    /// Keyed hash of a name, normalised (case, spaces), for exact-match search.
    pub fn name_index(&self, name: &str) -> String {
        let normal: String = name
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase();
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.subkey(b"anxin-name-index-v1"))
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(normal.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// Keyed hash of a phone number already normalised (E.164), for exact-match search.
    pub fn phone_index(&self, e164: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.subkey(b"anxin-phone-index-v1"))
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(e164.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// Keyed hash of a police referral code (canonical form), the only form it rests in: the
    /// code space is small enough to try in full, the key is outside the database.
    pub fn referral_index(&self, code: &str) -> String {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.subkey(b"anxin-referral-code-v1"))
                .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(code.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// The key of the audit chain's keyed hashes and of its signed checkpoints
    /// (`anxin_domain::audit`): outside the database, so someone who can write the database
    /// cannot recompute the chain or sign a checkpoint.
    pub fn audit_key(&self) -> [u8; 32] {
        self.subkey(b"anxin-audit-chain-key-v2")
    }

    /// The key of the cell keys that perturb the figures released outside the centre
    /// (`anxin_domain::release`): outside the database, so the noise cannot be undone.
    pub fn cell_key_secret(&self) -> [u8; 32] {
        self.subkey(b"anxin-cell-key-v1")
    }

    /// The key of the random urine-test draw (staff cannot predict it without the key file).
    pub fn urine_draw_key(&self) -> [u8; 32] {
        self.subkey(b"anxin-urine-draw-key-v1")
    }
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tampering_fails() {
        let v = Vault::from_key([9; 32]);
        let sealed = v.seal(7, b"{\"name\":\"Li Wei\"}");
        assert_eq!(v.open(7, &sealed).unwrap(), b"{\"name\":\"Li Wei\"}");
        // Another record's id, a flipped bit, a cut, another key: all refused.
        assert!(v.open(8, &sealed).is_err());
        let mut flipped = sealed.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(matches!(v.open(7, &flipped), Err(VaultError::Tampered(7))));
        assert!(v.open(7, &sealed[..sealed.len() - 1]).is_err());
        assert!(Vault::from_key([1; 32]).open(7, &sealed).is_err());
        assert!(!format!("{v:?}").contains('9'));
    }

    #[test]
    fn a_photo_and_an_identity_cannot_stand_in_for_each_other() {
        let v = Vault::from_key([9; 32]);
        let photo = v.seal_photo(7, b"\x89PNG");
        assert_eq!(v.open_photo(7, &photo).unwrap(), b"\x89PNG");
        assert!(v.open(7, &photo).is_err());
        assert!(v.open_photo(8, &photo).is_err());
        assert!(v.open_photo(7, &v.seal(7, b"\x89PNG")).is_err());
    }

    #[test]
    fn name_index_normalises_and_depends_on_key() {
        let v = Vault::from_key([9; 32]);
        assert_eq!(v.name_index("Li  Wei"), v.name_index(" li wei"));
        assert_ne!(v.name_index("Li Wei"), v.name_index("Li Wen"));
        assert_ne!(
            v.name_index("Li Wei"),
            Vault::from_key([1; 32]).name_index("Li Wei")
        );
    }

    #[test]
    fn key_file_is_created_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("anxin.key");
        let a = Vault::from_key_file(&p, true).unwrap();
        let b = Vault::from_key_file(&p, false).unwrap();
        assert_eq!(a.name_index("x"), b.name_index("x"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        std::fs::write(&p, "not hex").unwrap();
        assert!(Vault::from_key_file(&p, false)
            .unwrap_err()
            .to_string()
            .contains("64 hexadecimal"));
    }
}
