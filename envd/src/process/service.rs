//! `process.Process`: the RPC methods on top of the registry and the spawner.

use std::sync::Arc;

use futures::StreamExt;

use super::{Input, Proc, Subscription, spawn};
use crate::connect::{Call, EventStream, Reply, RpcError, encode, unary};
use crate::proto::{
    CloseStdinRequest, ConnectRequest, Empty, ListRequest, ListResponse, ProcessEvent,
    ProcessEventResponse, ProcessInfo, ProcessSelector, SendInputRequest, SendSignalRequest,
    Signal, StartEvent, StartRequest, UpdateRequest,
};
use crate::state::Shared;

pub fn knows(service: &str, method: &str) -> bool {
    service == "process.Process"
        && matches!(
            method,
            "Start"
                | "Connect"
                | "List"
                | "SendInput"
                | "StreamInput"
                | "SendSignal"
                | "CloseStdin"
                | "Update"
        )
}

pub async fn dispatch(method: &str, call: Call) -> Reply {
    let keepalive = encode(&ProcessEventResponse {
        event: ProcessEvent::Keepalive(Empty {}),
    })
    .ok();
    match method {
        "Start" => Reply::Stream(start(&call), keepalive),
        "Connect" => Reply::Stream(connect(&call), keepalive),
        "List" => unary(call.message::<ListRequest>().map(|_| list(&call.state))),
        "SendInput" => unary(send_input(&call).await),
        "SendSignal" => unary(send_signal(&call)),
        "CloseStdin" => unary(close_stdin(&call).await),
        "Update" => unary(update(&call)),
        _ => Reply::Unary(Err(RpcError::new(
            crate::proto::Code::Unimplemented,
            method.to_string(),
        ))),
    }
}

fn start(call: &Call) -> Result<EventStream, RpcError> {
    let req: StartRequest = call.message()?;
    let (proc, subscription) = spawn::start(&call.state, &call.user, req, call.timeout())?;
    Ok(events(&proc, subscription))
}

fn connect(call: &Call) -> Result<EventStream, RpcError> {
    let req: ConnectRequest = call.message()?;
    let proc = find(&call.state, req.process.as_ref())?;
    Ok(events(&proc, proc.subscribe()))
}

/// `start{pid}`, then the process's live events (or its end, if it just ended).
fn events(proc: &Arc<Proc>, subscription: Subscription) -> EventStream {
    let start = futures::stream::once(futures::future::ready(ProcessEvent::Start(StartEvent {
        pid: proc.pid,
    })));
    let rest: futures::stream::BoxStream<'static, ProcessEvent> = match subscription {
        Subscription::Live(rx) => tokio_stream::wrappers::ReceiverStream::new(rx).boxed(),
        Subscription::Ended(end) => {
            futures::stream::once(futures::future::ready(ProcessEvent::End(end))).boxed()
        }
    };
    start
        .chain(rest)
        .map(|event| encode(&ProcessEventResponse { event }))
        .boxed()
}

fn list(state: &Shared) -> ListResponse {
    let processes = state
        .processes
        .all()
        .into_iter()
        .map(|p| ProcessInfo {
            config: p.config.clone(),
            pid: p.pid,
            tag: p.tag.clone(),
        })
        .collect();
    ListResponse { processes }
}

fn find(state: &Shared, sel: Option<&ProcessSelector>) -> Result<Arc<Proc>, RpcError> {
    let sel = sel.ok_or_else(|| RpcError::invalid("process selector is required"))?;
    match (sel.pid, sel.tag.as_deref()) {
        (Some(pid), _) => state
            .processes
            .by_pid(pid)
            .ok_or_else(|| RpcError::not_found(format!("process with pid {pid} not found"))),
        (None, Some(tag)) => state
            .processes
            .by_tag(tag)
            .ok_or_else(|| RpcError::not_found(format!("process with tag {tag} not found"))),
        (None, None) => Err(RpcError::invalid("process selector needs a pid or a tag")),
    }
}

async fn send_input(call: &Call) -> Result<Empty, RpcError> {
    let req: SendInputRequest = call.message()?;
    let proc = find(&call.state, req.process.as_ref())?;
    write_input(&proc, req.input.unwrap_or_default()).await?;
    Ok(Empty {})
}

/// `StreamInput`: a client stream of `start{process}`, then `data{input}` messages
/// (and `keepalive{}`), each applied as soon as its envelope is complete.
pub async fn stream_input(state: &Shared, body: axum::body::Body) -> Result<Empty, RpcError> {
    use crate::proto::{EnvelopeError, StreamInputRequest, decode_envelope};
    let mut chunks = body.into_data_stream();
    let mut buf = bytes::BytesMut::new();
    let mut target: Option<Arc<Proc>> = None;
    loop {
        while let Some(env) =
            decode_envelope(&mut buf, crate::connect::MAX_MESSAGE).map_err(|e| match e {
                EnvelopeError::TooLarge { .. } => crate::connect::too_large(e),
                e => RpcError::invalid(format!("malformed request envelope: {e}")),
            })?
        {
            crate::connect::check_request_flags(env.flags)?;
            let msg: StreamInputRequest = serde_json::from_slice(&env.payload)
                .map_err(|e| RpcError::invalid(format!("invalid request message: {e}")))?;
            if let Some(start) = msg.start {
                target = Some(find(state, start.process.as_ref())?);
            } else if let Some(data) = msg.data {
                let proc = target
                    .as_ref()
                    .ok_or_else(|| RpcError::invalid("input before the start message"))?;
                write_input(proc, data.input.unwrap_or_default()).await?;
            }
        }
        match chunks.next().await {
            Some(Ok(chunk)) => buf.extend_from_slice(&chunk),
            Some(Err(e)) => {
                return Err(RpcError::new(
                    crate::proto::Code::Canceled,
                    format!("reading the input stream: {e}"),
                ));
            }
            None if buf.is_empty() => return Ok(Empty {}),
            None => return Err(RpcError::invalid("input stream ended inside an envelope")),
        }
    }
}

/// Writes one `ProcessInput` to the process's stdin pipe or PTY.
async fn write_input(proc: &Proc, input: crate::proto::ProcessInput) -> Result<(), RpcError> {
    match (&proc.input, input.stdin, input.pty) {
        (Input::Pipe(stdin), Some(data), None) => {
            use tokio::io::AsyncWriteExt;
            let mut guard = stdin.lock().await;
            let pipe = guard
                .as_mut()
                .ok_or_else(|| RpcError::precondition("stdin not enabled or closed"))?;
            pipe.write_all(&data).await.map_err(|e| {
                RpcError::io(&e, format!("writing to stdin of process {}", proc.pid))
            })?;
            pipe.flush()
                .await
                .map_err(|e| RpcError::io(&e, "flushing stdin"))?;
        }
        (Input::Pty(master), _, Some(data)) | (Input::Pty(master), Some(data), None) => {
            master.write_all(&data).await.map_err(|e| {
                RpcError::io(&e, format!("writing to the pty of process {}", proc.pid))
            })?;
        }
        (Input::Pipe(_), _, Some(_)) => {
            return Err(RpcError::precondition(
                "process has no pty; send stdin input instead",
            ));
        }
        (_, None, None) => {}
    }
    Ok(())
}

fn send_signal(call: &Call) -> Result<Empty, RpcError> {
    let req: SendSignalRequest = call.message()?;
    let proc = find(&call.state, req.process.as_ref())?;
    let sig = match req.signal {
        Signal::Sigkill => libc::SIGKILL,
        Signal::Sigterm => libc::SIGTERM,
        Signal::Unspecified => return Err(RpcError::invalid("signal is required")),
    };
    if !spawn::signal_group(proc.pid, sig) {
        return Err(RpcError::not_found(format!(
            "process with pid {} not found",
            proc.pid
        )));
    }
    Ok(Empty {})
}

async fn close_stdin(call: &Call) -> Result<Empty, RpcError> {
    let req: CloseStdinRequest = call.message()?;
    let proc = find(&call.state, req.process.as_ref())?;
    match &proc.input {
        // Dropping the pipe's write end is what delivers EOF.
        Input::Pipe(stdin) => drop(stdin.lock().await.take()),
        Input::Pty(_) => {
            return Err(RpcError::precondition(
                "cannot close stdin of a PTY process; send Ctrl+D (0x04) instead",
            ));
        }
    }
    Ok(Empty {})
}

fn update(call: &Call) -> Result<Empty, RpcError> {
    let req: UpdateRequest = call.message()?;
    let proc = find(&call.state, req.process.as_ref())?;
    if let Some(size) = req.pty.and_then(|p| p.size) {
        match &proc.input {
            Input::Pty(master) => master
                .resize(size)
                .map_err(|e| RpcError::io(&e, "resizing the pty"))?,
            Input::Pipe(_) => return Err(RpcError::precondition("process has no pty")),
        }
    }
    Ok(Empty {})
}
