//! A sandbox's network at the manager level: which egress rules a launch enforces, guest
//! port forwards for the proxy, live updates (`PUT /sandboxes/{id}/network`) and re-applying
//! rules to VMs found running after a sandboxd restart.
//!
//! Invariants: the store holds the configuration every launch (create, resume, auto-resume)
//! enforces, so rules survive pause/resume and restarts; an update is validated before the
//! sandbox is looked up and changes nothing when it is refused or cannot be applied.

use std::net::SocketAddr;

use tracing::warn;

use super::Manager;
use crate::error::{ApiError, ApiResult};
use crate::network::{Egress, NetworkConfig, NetworkRequest};
use crate::store::{SandboxRow, SandboxState};
use crate::vm::{VmInfo, net};

/// The rules a launch enforces in the VM's namespace; `None` falls back to the launch-time
/// `allow_internet` switch (no namespaces / nftables), which cannot express allow/deny lists.
pub(super) fn egress_spec(network: Option<&NetworkConfig>, allow_internet: bool) -> ApiResult<Option<Egress>> {
    let egress = network.map_or_else(|| Egress::new(&[], &[], allow_internet), |n| n.egress(allow_internet));
    if net::filtering() {
        return Ok(Some(egress));
    }
    let lists = network.is_some_and(|n| {
        n.allow_out.as_ref().is_some_and(|a| !a.is_empty())
            || n.deny_out.as_ref().is_some_and(|d| !d.is_empty())
            || n.rules.as_ref().is_some_and(|r| !r.is_empty())
    });
    if lists {
        return Err(ApiError::bad_request(
            "network allowOut/denyOut/rules need sandboxd to run as root with iproute2 and nftables (one network namespace per sandbox)",
        ));
    }
    Ok(None)
}

/// `egress` with the sandbox its workload tokens are minted for.
pub(super) fn identified(egress: Option<Egress>, sandbox_id: &str, template_id: &str) -> Option<Egress> {
    egress.map(|mut e| {
        e.identify(sandbox_id, template_id);
        e
    })
}

/// The egress an existing sandbox's launch or update enforces: `egress_spec`, identified.
pub(super) fn sandbox_egress(
    network: Option<&NetworkConfig>,
    allow_internet: bool,
    row: &SandboxRow,
) -> ApiResult<Option<Egress>> {
    Ok(identified(egress_spec(network, allow_internet)?, &row.id, &row.template_id))
}

/// Where a sandbox with transform rules keeps the egress CA, and the bundle it is added to.
const CA_FILE: &str = "/usr/local/share/ca-certificates/sandboxd-egress.crt";
const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
/// Adds the CA (`$1`) to the guest's trust: its own file and the system bundle (once).
const TRUST_CA: &str = r#"set -e
mkdir -p "$(dirname "$2")" "$(dirname "$3")"
printf '%s\n' "$1" > "$2"
touch "$3"
grep -qF "$(sed -n 2p "$2")" "$3" || cat "$2" >> "$3""#;

fn has_rules(network: Option<&NetworkConfig>) -> bool {
    network.and_then(|n| n.rules.as_ref()).is_some_and(|r| !r.is_empty())
}

impl Manager {
    /// A sandbox whose network has transform rules trusts the egress CA (the proxy presents
    /// certificates it signs for the rules' hosts): in the system bundle, and through the
    /// variables Python's requests and Node read. Idempotent; nothing without rules.
    pub(super) async fn trust_egress_ca(&self, vm: &VmInfo, token: Option<&str>, network: Option<&NetworkConfig>) -> ApiResult<()> {
        if !has_rules(network) {
            return Ok(());
        }
        let ca = crate::network::ca::get().map_err(|e| ApiError::internal(format!("egress CA: {e:#}")))?;
        let args = ["-c", TRUST_CA, "sh", ca.cert_pem().trim(), CA_FILE, CA_BUNDLE];
        crate::vm::guest::run(vm.envd_addr, token, "/bin/sh", &args, std::time::Duration::from_secs(60))
            .await
            .map_err(|e| ApiError::internal(format!("installing the egress CA in the sandbox: {e}")))?;
        let envs = std::collections::HashMap::from([
            ("REQUESTS_CA_BUNDLE".to_string(), CA_BUNDLE.to_string()),
            ("NODE_EXTRA_CA_CERTS".to_string(), CA_FILE.to_string()),
        ]);
        crate::vm::guest::set_defaults(vm.envd_addr, &envs, None).await?;
        Ok(())
    }

    /// Where the proxy reaches guest `port` of a running VM (QEMU forwards it on first use).
    pub async fn forward_port(&self, vm: &VmInfo, port: u16) -> ApiResult<SocketAddr> {
        Ok(self.inner.runtime.forward_port(vm, port).await?)
    }

    /// `PUT /sandboxes/{id}/network`: replaces the egress rules (omitted lists are cleared)
    /// and `allow_internet_access`, live. 404 unknown, 409 unless running.
    pub async fn update_network(&self, id: &str, req: NetworkRequest) -> ApiResult<()> {
        // Validated against an empty config first: a bad body is a 400 whatever the sandbox.
        req.validate_update()?;
        let id = self.get(id)?.id;
        let lock = self.op_lock(&id);
        let _op = lock.lock().await;
        let row = self.get(&id)?;
        if row.state != SandboxState::Running {
            return Err(ApiError::conflict(format!(
                "Sandbox {id} is {} and its network cannot be updated now",
                row.state.as_str()
            )));
        }
        let vm = row.vm.clone().ok_or_else(|| ApiError::internal("running sandbox without a VM"))?;
        let (config, allow_internet) =
            req.apply_update(&row.network.clone().unwrap_or_default(), row.allow_internet)?;
        let egress = sandbox_egress(Some(&config), allow_internet, &row)?;
        match egress {
            Some(egress) => {
                let runtime = self.inner.runtime.clone();
                let applied = tokio::task::spawn_blocking({
                    let vm = vm.clone();
                    move || runtime.set_egress(&vm, &egress)
                });
                // The domain proxy needs the runtime context spawn_blocking threads have.
                applied.await.map_err(|e| ApiError::internal(e.to_string()))??;
            }
            None if allow_internet != row.allow_internet => {
                return Err(ApiError::conflict(
                    "allow_internet_access can only change while a sandbox runs when sandboxd filters egress (root, nftables)",
                ));
            }
            None => {}
        }
        self.trust_egress_ca(&vm, row.access_token.as_deref(), Some(&config)).await?;
        if let Err(e) = self.store().set_network(&id, &Some(config), allow_internet) {
            self.reapply_network(&row);
            return Err(e.into());
        }
        Ok(())
    }

    /// Installs a running sandbox's stored rules again (after a sandboxd restart the nftables
    /// table survives in its namespace, but the domain proxy does not).
    pub(super) fn reapply_network(&self, row: &SandboxRow) {
        let Some(vm) = &row.vm else { return };
        if let Ok(Some(egress)) = sandbox_egress(row.network.as_ref(), row.allow_internet, row)
            && let Err(e) = self.inner.runtime.set_egress(vm, &egress)
        {
            warn!(sandbox = %row.id, error = %e, "could not re-apply the sandbox's egress rules");
        }
    }
}
