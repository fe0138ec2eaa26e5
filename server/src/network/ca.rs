//! The egress CA: the certificate authority the egress proxy signs per-host certificates with
//! when a transform rule makes it read a sandbox's HTTPS requests (see [`super::intercept`]).
//!
//! One per data directory, made at first use: `<data>/egress-ca/ca.key` (0600) and
//! `ca.crt`. Sandboxes with transform rules get `ca.crt` in their trust store (see
//! `manager/network.rs`); nothing else trusts it. Host certificates are made on demand and kept
//! in memory (one key pair per host name).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::Context;
use rcgen::{BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

pub const DIR: &str = "egress-ca";

/// A host certificate with its chain, ready for a TLS server.
#[derive(Clone)]
pub struct Leaf {
    pub chain: Vec<CertificateDer<'static>>,
    key: Vec<u8>,
}

impl Leaf {
    pub fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.clone()))
    }
}

pub struct Ca {
    cert_pem: String,
    cert_der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
    leaves: Mutex<HashMap<String, Leaf>>,
}

/// The CA's own parameters: the same every time, so an issuer rebuilt from the stored key
/// names the stored certificate (same subject, same key identifier).
fn ca_params() -> CertificateParams {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "sandboxd egress CA");
    dn.push(DnType::OrganizationName, "sandboxd");
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    p
}

impl Ca {
    /// Loads `<data>/egress-ca`, or makes it.
    pub fn load_or_create(data_dir: &Path) -> anyhow::Result<Ca> {
        let dir = data_dir.join(DIR);
        let (key_path, cert_path) = (dir.join("ca.key"), dir.join("ca.crt"));
        let (key, cert_pem) = if key_path.exists() && cert_path.exists() {
            let key = KeyPair::from_pem(&std::fs::read_to_string(&key_path)?).context("egress CA key")?;
            (key, std::fs::read_to_string(&cert_path)?)
        } else {
            std::fs::create_dir_all(&dir)?;
            let key = KeyPair::generate().context("egress CA key")?;
            let cert = ca_params().self_signed(&key).context("egress CA certificate")?;
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&key_path)?;
            std::io::Write::write_all(&mut f, key.serialize_pem().as_bytes())?;
            f.sync_all()?;
            crate::vm::files::write_atomic(&cert_path, cert.pem().as_bytes())?;
            (key, cert.pem())
        };
        let der = rustls_pemfile_der(&cert_pem).context("egress CA certificate PEM")?;
        Ok(Ca { cert_pem, cert_der: der, issuer: Issuer::new(ca_params(), key), leaves: Mutex::new(HashMap::new()) })
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// A certificate for `host` signed by this CA (made once per host).
    pub fn leaf(&self, host: &str) -> anyhow::Result<Leaf> {
        let mut leaves = self.leaves.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(l) = leaves.get(host) {
            return Ok(l.clone());
        }
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(vec![host.to_string()])?;
        params.distinguished_name.push(DnType::CommonName, host);
        let cert = params.signed_by(&key, &self.issuer)?;
        let leaf = Leaf { chain: vec![cert.der().clone(), self.cert_der.clone()], key: key.serialize_der() };
        leaves.insert(host.to_string(), leaf.clone());
        Ok(leaf)
    }
}

/// The DER of the first certificate in a PEM text.
fn rustls_pemfile_der(pem: &str) -> anyhow::Result<CertificateDer<'static>> {
    use base64::Engine;
    let body: String = pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE-----"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    Ok(CertificateDer::from(base64::engine::general_purpose::STANDARD.decode(body.trim())?))
}

static CA: OnceLock<Arc<Ca>> = OnceLock::new();
static DATA_DIR: OnceLock<std::path::PathBuf> = OnceLock::new();

/// Where the CA lives (set once at start; the CA itself is made at first use).
pub fn init(data_dir: &Path) {
    let _ = DATA_DIR.set(data_dir.to_path_buf());
}

/// This sandboxd's CA, made on first use.
pub fn get() -> anyhow::Result<Arc<Ca>> {
    if let Some(ca) = CA.get() {
        return Ok(ca.clone());
    }
    let dir = DATA_DIR.get().context("the egress CA has no data directory (sandboxd not started)")?;
    let ca = Arc::new(Ca::load_or_create(dir)?);
    Ok(CA.get_or_init(|| ca).clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::client::danger::ServerCertVerifier;

    #[test]
    fn a_reloaded_ca_signs_certificates_its_stored_certificate_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let first = Ca::load_or_create(dir.path()).unwrap();
        let again = Ca::load_or_create(dir.path()).unwrap();
        assert_eq!(first.cert_pem(), again.cert_pem(), "made once, then reused");
        let leaf = again.leaf("api.example.com").unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(first.cert_der.clone()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .unwrap();
        let name = rustls::pki_types::ServerName::try_from("api.example.com").unwrap();
        let now = rustls::pki_types::UnixTime::now();
        verifier.verify_server_cert(&leaf.chain[0], &leaf.chain[1..], &name, &[], now).unwrap();
        let other = rustls::pki_types::ServerName::try_from("other.example.com").unwrap();
        assert!(verifier.verify_server_cert(&leaf.chain[0], &leaf.chain[1..], &other, &[], now).is_err());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(DIR).join("ca.key")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
