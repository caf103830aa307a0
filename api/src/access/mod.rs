//! Who may do what: bearer tokens verified against the trusted issuers (`authenticator`, `issuers`, `keys`, `dev`),
//! the principal they resolve to (`principal`), the one policy table every capability consults (`policy`), and the
//! access list of institutions and revoked tokens held in memory (`list`). Beneath every capability and channel.

pub mod authenticator;
pub mod dev;
pub mod filters;
pub mod issuers;
pub mod keys;
pub mod list;
pub mod policy;
pub mod principal;

use std::sync::Once;

/// jsonwebtoken needs its crypto backend chosen once per process before the first signature or verification.
pub fn install_crypto() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let _ =
            jsonwebtoken::crypto::CryptoProvider::install_default(&jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER);
    });
}
