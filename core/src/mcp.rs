//! The MCP gateway: `Sandbox.create(mcp=…)`, `get_mcp_url`, `get_mcp_token`, as E2B's SDKs do
//! it. The create goes to the `mcp-gateway` template unless the caller names another; then the
//! SDK starts `mcp-gateway --config '<servers as JSON>'` in the sandbox as root, with a fresh
//! `GATEWAY_ACCESS_TOKEN`. When that fails the sandbox is killed and the create fails with
//! "Failed to start MCP gateway: <stderr>". The gateway serves `https://<50005-host>/mcp`.

use std::collections::HashMap;
use std::io::Read;

use crate::commands::RunOptions;
use crate::error::{Error, Result};
use crate::sandbox::Sandbox;

/// The port the gateway listens on in the sandbox (E2B's `mcp_port`).
pub const MCP_PORT: u16 = 50005;
/// The template a create with `mcp` uses when it names none (E2B's `default_mcp_template`).
pub const DEFAULT_MCP_TEMPLATE: &str = "mcp-gateway";
/// Where the gateway keeps its token, for handles that did not start it.
const TOKEN_PATH: &str = "/etc/mcp-gateway/.token";

/// A random (version 4) UUID, the token format of E2B's SDKs.
fn new_token() -> Result<String> {
    let mut b = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .map_err(|e| Error::sandbox(format!("no randomness for the MCP token: {e}")))?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..]))
}

/// The gateway's command line for `servers`.
pub fn gateway_command(servers: &serde_json::Value) -> String {
    format!("mcp-gateway --config {}", crate::template::shell_quote(&servers.to_string()))
}

impl Sandbox {
    /// Starts the MCP gateway in a sandbox just created with `mcp`; kills the sandbox if it
    /// does not start.
    pub(crate) async fn start_mcp_gateway(&self, servers: &serde_json::Value) -> Result<()> {
        let token = new_token()?;
        self.set_mcp_token(token.clone());
        let opts = RunOptions {
            user: Some("root".into()),
            envs: HashMap::from([("GATEWAY_ACCESS_TOKEN".to_string(), token)]),
            ..Default::default()
        };
        match self.commands().run(&gateway_command(servers), opts).await {
            Ok(_) => Ok(()),
            Err(e) => {
                let _ = self.kill().await;
                match e {
                    Error::CommandExit { stderr, .. } => Err(Error::sandbox(format!("Failed to start MCP gateway: {stderr}"))),
                    e => Err(e),
                }
            }
        }
    }

    /// `https://<host of port 50005>/mcp`.
    pub fn get_mcp_url(&self) -> String {
        format!("https://{}/mcp", self.get_host(MCP_PORT))
    }

    /// The gateway's access token: the one this handle started it with, else read from the
    /// sandbox (`/etc/mcp-gateway/.token`, as root).
    pub async fn get_mcp_token(&self) -> Result<Option<String>> {
        if let Some(token) = self.mcp_token() {
            return Ok(Some(token));
        }
        let token = self.files().read_text(TOKEN_PATH, Some("root")).await?;
        self.set_mcp_token(token.clone());
        Ok(Some(token))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_uuid4_and_differ() {
        let (a, b) = (new_token().unwrap(), new_token().unwrap());
        assert_ne!(a, b);
        let parts: Vec<&str> = a.split('-').collect();
        assert_eq!(parts.iter().map(|p| p.len()).collect::<Vec<_>>(), [8, 4, 4, 4, 12]);
        assert!(parts[2].starts_with('4'));
        assert!(matches!(&parts[3][..1], "8" | "9" | "a" | "b"));
    }

    #[test]
    fn the_config_is_one_quoted_argument() {
        let cmd = gateway_command(&serde_json::json!({"exa": {"apiKey": "it's"}}));
        assert_eq!(cmd, r#"mcp-gateway --config '{"exa":{"apiKey":"it'"'"'s"}}'"#);
    }
}
