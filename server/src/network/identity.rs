//! Workload identity (E2B's `iam`): a sandbox created with `iam.tokens` can have its egress
//! proxy put a freshly signed token in a request (`${e2b.identity.tokens.<name>}` in a
//! transform rule), so code in the sandbox authenticates to a cloud's STS without holding any
//! credential. sandboxd is the token issuer:
//!
//! - tokens are JWT-SVIDs (`tokenType: "JWT-SVID"`, the only type E2B accepts): ES256,
//!   `iss` = the issuer URL, `sub` = `spiffe://<trust domain>/sandbox/<sandboxID>`, `aud` = the
//!   token's audience exactly as given, `iat`/`nbf`/`exp` (5 minutes), `jti`, and the
//!   `sandbox_id` / `template_id` claims; a new one for every request;
//! - the signing key is made once per data directory (`<data>/identity/key.p8`, 0600);
//! - relying parties find the key through OpenID discovery on sandboxd's API (no auth):
//!   `GET /.well-known/openid-configuration` and `GET /.well-known/jwks.json`. The issuer URL is
//!   `SANDBOXD_IDENTITY_ISSUER` (what relying parties can reach: a public HTTPS URL in front of
//!   sandboxd), else sandboxd's own address; the trust domain is its host.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use anyhow::Context;
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde::{Deserialize, Serialize};

pub const TOKEN_TYPE: &str = "JWT-SVID";
const LIFETIME_SECS: i64 = 300;

/// One `iam.tokens` entry (`{audience, tokenType}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenSpec {
    pub audience: String,
    pub token_type: String,
}

/// Who a sandbox's tokens speak for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Workload {
    pub sandbox_id: String,
    pub template_id: String,
    pub tokens: std::collections::BTreeMap<String, TokenSpec>,
}

pub struct Issuer {
    key: EcdsaKeyPair,
    kid: String,
    url: String,
    trust_domain: String,
    rng: SystemRandom,
}

fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

impl Issuer {
    pub fn load_or_create(dir: &Path, url: &str) -> anyhow::Result<Issuer> {
        let path = dir.join("key.p8");
        let rng = SystemRandom::new();
        let pkcs8 = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(dir)?;
                let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                    .map_err(|_| anyhow::anyhow!("generating the identity key failed"))?;
                use std::os::unix::fs::OpenOptionsExt;
                let tmp = dir.join("key.p8.tmp");
                let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
                std::io::Write::write_all(&mut f, doc.as_ref())?;
                f.sync_all()?;
                std::fs::rename(&tmp, &path)?;
                doc.as_ref().to_vec()
            }
            Err(e) => return Err(e.into()),
        };
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8, &rng)
            .map_err(|e| anyhow::anyhow!("the identity key {} is unusable: {e}", path.display()))?;
        use sha2::Digest;
        let kid = b64(&sha2::Sha256::digest(key.public_key().as_ref())[..16]);
        let url = url.trim_end_matches('/').to_string();
        let trust_domain = url_host(&url).context("the identity issuer must be an http(s) URL with a host")?;
        Ok(Issuer { key, kid, url, trust_domain, rng })
    }

    pub fn issuer(&self) -> &str {
        &self.url
    }

    /// A token for `workload`'s token `name` (`None` if no such token is registered).
    pub fn mint(&self, workload: &Workload, name: &str) -> Result<String, String> {
        let spec = workload
            .tokens
            .get(name)
            .ok_or_else(|| format!("iam token \"{name}\" is not registered for this sandbox"))?;
        let now = chrono::Utc::now().timestamp();
        let header = serde_json::json!({"alg": "ES256", "typ": "JWT", "kid": self.kid});
        let claims = serde_json::json!({
            "iss": self.url,
            "sub": format!("spiffe://{}/sandbox/{}", self.trust_domain, workload.sandbox_id),
            "aud": [spec.audience],
            "iat": now,
            "nbf": now,
            "exp": now + LIFETIME_SECS,
            "jti": crate::ids::secret_hex(16),
            "sandbox_id": workload.sandbox_id,
            "template_id": workload.template_id,
        });
        let signing_input = format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
        let sig = self.key.sign(&self.rng, signing_input.as_bytes()).map_err(|_| "signing the token failed".to_string())?;
        Ok(format!("{signing_input}.{}", b64(sig.as_ref())))
    }

    /// The public key as a JWK Set.
    pub fn jwks(&self) -> serde_json::Value {
        let point = self.key.public_key().as_ref(); // 0x04 || x || y
        serde_json::json!({"keys": [{
            "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": self.kid,
            "x": b64(&point[1..33]), "y": b64(&point[33..65]),
        }]})
    }

    /// OpenID discovery for relying parties.
    pub fn discovery(&self) -> serde_json::Value {
        serde_json::json!({
            "issuer": self.url,
            "jwks_uri": format!("{}/.well-known/jwks.json", self.url),
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256"],
        })
    }
}

/// The host of an `http(s)://host[:port][/path]` URL.
fn url_host(url: &str) -> Option<String> {
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"))?;
    let authority = rest.split('/').next()?;
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next()?,
        None => authority.split(':').next()?,
    };
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

static ISSUER: OnceLock<Arc<Issuer>> = OnceLock::new();
static SETUP: OnceLock<(PathBuf, String)> = OnceLock::new();

/// Where the key lives and the issuer URL (set once at start; the key is made at first use).
pub fn init(data_dir: &Path, url: String) {
    let _ = SETUP.set((data_dir.join("identity"), url));
}

pub fn get() -> anyhow::Result<Arc<Issuer>> {
    if let Some(i) = ISSUER.get() {
        return Ok(i.clone());
    }
    let (dir, url) = SETUP.get().context("workload identity is not set up (sandboxd not started)")?;
    let issuer = Arc::new(Issuer::load_or_create(dir, url)?);
    Ok(ISSUER.get_or_init(|| issuer).clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(token: &str, i: usize) -> serde_json::Value {
        let p = token.split('.').nth(i).unwrap();
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap()
    }

    #[test]
    fn tokens_verify_against_the_published_key_and_carry_the_workload() {
        let dir = tempfile::tempdir().unwrap();
        let issuer = Issuer::load_or_create(dir.path(), "https://id.example.com/").unwrap();
        let w = Workload {
            sandbox_id: "sbx1".into(),
            template_id: "base".into(),
            tokens: [("aws".to_string(), TokenSpec { audience: "sts.amazonaws.com".into(), token_type: TOKEN_TYPE.into() })]
                .into(),
        };
        let token = issuer.mint(&w, "aws").unwrap();
        assert!(issuer.mint(&w, "gcp").unwrap_err().contains("not registered"));
        let claims = part(&token, 1);
        assert_eq!(claims["sub"], "spiffe://id.example.com/sandbox/sbx1");
        assert_eq!(claims["aud"], serde_json::json!(["sts.amazonaws.com"]));
        assert_eq!(claims["iss"], "https://id.example.com");
        assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), LIFETIME_SECS);
        // The signature checks out with the key from the JWKS (rebuilt from x and y).
        let jwk = &issuer.jwks()["keys"][0];
        assert_eq!(part(&token, 0)["kid"], jwk["kid"]);
        let d = |k: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(jwk[k].as_str().unwrap()).unwrap();
        let point = [vec![4u8], d("x"), d("y")].concat();
        let (input, sig) = token.rsplit_once('.').unwrap();
        let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(sig).unwrap();
        let public = ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, point);
        public.verify(input.as_bytes(), &sig).unwrap();
        assert!(public.verify(b"tampered", &sig).is_err());
        // The same key after a restart.
        let again = Issuer::load_or_create(dir.path(), "https://id.example.com").unwrap();
        assert_eq!(again.jwks(), issuer.jwks());
    }
}
