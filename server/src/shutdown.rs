//! Stopping the server: on SIGINT/SIGTERM stop accepting, give open requests a short grace
//! period, then exit even if long-lived streams (envd command output, file watches) are still
//! open. VMs are never touched: the next start picks them up again.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// How long open connections may keep the process alive after a stop signal.
pub const GRACE: Duration = Duration::from_secs(5);

/// Resolves on the first SIGINT or SIGTERM.
pub async fn signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let term = async {
        match term.as_mut() {
            Some(t) => {
                t.recv().await;
            }
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

/// Runs `serve`, handing it a future that resolves when it should begin its graceful
/// shutdown, and returns at most [`GRACE`] after the stop signal.
pub async fn serve_until_signal<F, E>(serve: impl FnOnce(Pin<Box<dyn Future<Output = ()> + Send>>) -> F) -> Result<(), E>
where
    F: Future<Output = Result<(), E>>,
{
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = serve(Box::pin(async move {
        let _ = stop_rx.await;
    }));
    tokio::pin!(server);
    tokio::select! {
        r = &mut server => return r,
        _ = signal() => {
            tracing::info!("stopping: no new connections, {} s for open ones", GRACE.as_secs());
            let _ = stop_tx.send(());
        }
    }
    match tokio::time::timeout(GRACE, server).await {
        Ok(r) => r,
        Err(_) => {
            tracing::info!("open connections did not finish in time; exiting anyway");
            Ok(())
        }
    }
}
