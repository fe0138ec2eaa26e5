//! `process.Process` against the real binary.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};

#[tokio::test]
async fn echo_streams_start_stdout_end() {
    let envd = Envd::start().await;
    let frames = envd
        .stream("process.Process/Start", bash("echo hi"), &[])
        .await;
    assert!(
        frames[0]
            .1
            .pointer("/event/start/pid")
            .and_then(Value::as_u64)
            .unwrap()
            > 0,
        "first event is start: {frames:?}"
    );
    assert_eq!(output(&frames, "stdout"), "hi\n");
    let end = end(&frames);
    assert_eq!(end["exited"], true);
    assert_eq!(end.get("exitCode").and_then(Value::as_i64).unwrap_or(0), 0);
    assert_eq!(end["status"], "exit status 0");
    assert!(end.get("error").is_none());
    let last = frames.last().unwrap();
    assert_eq!((last.0, &last.1), (proto::FLAG_END_STREAM, &json!({})));
}

#[tokio::test]
async fn failing_command_reports_exit_code_and_stderr() {
    let envd = Envd::start().await;
    let frames = envd
        .stream("process.Process/Start", bash("echo bad >&2; exit 42"), &[])
        .await;
    assert_eq!(output(&frames, "stderr"), "bad\n");
    let end = end(&frames);
    assert_eq!(end["exitCode"], 42);
    assert_eq!(end["error"], "exit status 42");
}

#[tokio::test]
async fn unknown_binary_is_invalid_argument_in_end_frame() {
    let envd = Envd::start().await;
    let frames = envd
        .stream(
            "process.Process/Start",
            json!({"process": {"cmd": "/no/such/binary"}}),
            &[],
        )
        .await;
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].0, proto::FLAG_END_STREAM);
    assert_eq!(frames[0].1["error"]["code"], "invalid_argument");
}

#[tokio::test]
async fn background_process_list_signal_and_reattach() {
    let envd = Envd::start().await;
    let mut live = envd
        .open(
            "process.Process/Start",
            json!({"process": {"cmd": "/bin/sleep", "args": ["30"]}, "tag": "sleeper"}),
            &[],
        )
        .await;
    let pid = live
        .next()
        .await
        .unwrap()
        .1
        .pointer("/event/start/pid")
        .and_then(Value::as_u64)
        .unwrap();

    let list = envd
        .unary("process.Process/List", json!({}), &[])
        .await
        .json();
    let listed = list["processes"].as_array().unwrap();
    let entry = listed.iter().find(|p| p["pid"] == pid).expect("listed");
    assert_eq!(entry["tag"], "sleeper");
    assert_eq!(entry["config"]["cmd"], "/bin/sleep");

    // The client goes away; the process keeps running and can be re-attached by tag.
    drop(live);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut again = envd
        .open(
            "process.Process/Connect",
            json!({"process": {"tag": "sleeper"}}),
            &[],
        )
        .await;
    assert_eq!(
        again
            .next()
            .await
            .unwrap()
            .1
            .pointer("/event/start/pid")
            .and_then(Value::as_u64),
        Some(pid)
    );

    let r = envd
        .unary(
            "process.Process/SendSignal",
            json!({"process": {"pid": pid}, "signal": "SIGNAL_SIGKILL"}),
            &[],
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let rest = again.rest().await;
    let end = end(&rest);
    assert_eq!(end["status"], "signal: killed");
    assert_eq!(end["exitCode"], -1);

    tokio::time::sleep(Duration::from_millis(50)).await;
    let r = envd
        .unary(
            "process.Process/SendSignal",
            json!({"process": {"pid": pid}, "signal": "SIGNAL_SIGKILL"}),
            &[],
        )
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["code"], "not_found");
}

#[tokio::test]
async fn stdin_send_input_and_close() {
    let envd = Envd::start().await;
    let mut live = envd
        .open(
            "process.Process/Start",
            json!({"process": {"cmd": "/bin/cat"}, "stdin": true}),
            &[],
        )
        .await;
    let pid = live
        .next()
        .await
        .unwrap()
        .1
        .pointer("/event/start/pid")
        .and_then(Value::as_u64)
        .unwrap();
    let sel = json!({"pid": pid});
    let r = envd
        .unary(
            "process.Process/SendInput",
            json!({"process": sel, "input": {"stdin": b64(b"ping\n")}}),
            &[],
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = envd
        .unary("process.Process/CloseStdin", json!({"process": sel}), &[])
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let rest = live.rest().await;
    assert_eq!(output(&rest, "stdout"), "ping\n");
    assert_eq!(end(&rest)["exitCode"].as_i64().unwrap_or(0), 0);
}

#[tokio::test]
async fn stdin_false_reads_dev_null() {
    let envd = Envd::start().await;
    let frames = envd
        .stream("process.Process/Start", bash("cat; echo done"), &[])
        .await;
    assert_eq!(output(&frames, "stdout"), "done\n");
}

#[tokio::test]
async fn pty_output_and_resize() {
    let envd = Envd::start().await;
    let start = json!({
        "process": {"cmd": "/bin/bash", "args": ["-c", "read line; stty size; echo got:$line"]},
        "pty": {"size": {"cols": 80, "rows": 24}}
    });
    let mut live = envd.open("process.Process/Start", start, &[]).await;
    let pid = live
        .next()
        .await
        .unwrap()
        .1
        .pointer("/event/start/pid")
        .and_then(Value::as_u64)
        .unwrap();
    let sel = json!({"pid": pid});
    let r = envd
        .unary(
            "process.Process/Update",
            json!({"process": sel, "pty": {"size": {"cols": 100, "rows": 40}}}),
            &[],
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    envd.unary(
        "process.Process/SendInput",
        json!({"process": sel, "input": {"pty": b64(b"abc\n")}}),
        &[],
    )
    .await;
    let rest = live.rest().await;
    let text = output(&rest, "pty");
    assert!(text.contains("40 100"), "{text:?}");
    assert!(text.contains("got:abc"), "{text:?}");
}

#[tokio::test]
async fn runs_as_requested_user_with_login_env() {
    if !is_root() {
        eprintln!("skipping: switching users needs root");
        return;
    }
    let envd = Envd::start().await;
    let auth = basic("tester");
    let frames = envd
        .stream(
            "process.Process/Start",
            bash("id -u; id -G; echo $HOME $USER; pwd"),
            &[("authorization", &auth)],
        )
        .await;
    let home = envd.dir.join("home/tester");
    let out = output(&frames, "stdout");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "65534");
    assert!(
        lines[1].split(' ').any(|g| g == "4242"),
        "supplementary groups: {out}"
    );
    assert_eq!(lines[2], format!("{} tester", home.display()));
    assert_eq!(lines[3], home.display().to_string());

    let r = envd
        .unary(
            "process.Process/List",
            json!({}),
            &[("authorization", &basic("ghost"))],
        )
        .await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn deadline_kills_the_command() {
    let envd = Envd::start().await;
    let frames = envd
        .stream(
            "process.Process/Start",
            json!({"process": {"cmd": "/bin/sleep", "args": ["20"]}}),
            &[("connect-timeout-ms", "300")],
        )
        .await;
    assert_eq!(end(&frames)["status"], "signal: killed");
}

#[tokio::test]
async fn keepalive_events_on_idle_stream() {
    let envd = Envd::start().await;
    let frames = envd
        .stream(
            "process.Process/Start",
            json!({"process": {"cmd": "/bin/sleep", "args": ["0.5"]}}),
            &[("keepalive-ping-interval", "0.1")],
        )
        .await;
    assert!(
        frames
            .iter()
            .any(|(_, f)| f.pointer("/event/keepalive").is_some()),
        "{frames:?}"
    );
}

#[tokio::test]
async fn large_output_is_not_lost() {
    let envd = Envd::start().await;
    let frames = envd
        .stream(
            "process.Process/Start",
            bash("head -c 3000000 /dev/zero | tr '\\0' a"),
            &[],
        )
        .await;
    assert_eq!(output(&frames, "stdout").len(), 3_000_000);
}

#[tokio::test]
async fn background_grandchild_does_not_hold_the_stream_open() {
    let envd = Envd::start().await;
    let started = std::time::Instant::now();
    let frames = envd
        .stream("process.Process/Start", bash("sleep 5 & echo bye"), &[])
        .await;
    assert_eq!(output(&frames, "stdout"), "bye\n");
    assert_eq!(end(&frames)["exitCode"].as_i64().unwrap_or(0), 0);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "stream ended only after {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn cwd_and_missing_cwd() {
    let envd = Envd::start().await;
    let frames = envd
        .stream(
            "process.Process/Start",
            json!({"process": {"cmd": "/bin/pwd", "cwd": "/tmp"}}),
            &[],
        )
        .await;
    assert_eq!(output(&frames, "stdout"), "/tmp\n");
    let frames = envd
        .stream(
            "process.Process/Start",
            json!({"process": {"cmd": "/bin/pwd", "cwd": "/no/such/dir"}}),
            &[],
        )
        .await;
    assert_eq!(frames[0].1["error"]["code"], "invalid_argument");
}

#[tokio::test]
async fn bare_command_names_are_found_on_path() {
    let envd = Envd::start().await;
    let frames = envd
        .stream(
            "process.Process/Start",
            json!({"process": {"cmd": "echo", "args": ["found"]}}),
            &[],
        )
        .await;
    assert_eq!(output(&frames, "stdout"), "found\n");
}

#[tokio::test]
async fn pty_as_unprivileged_user() {
    if !is_root() {
        eprintln!("skipping: switching users needs root");
        return;
    }
    let envd = Envd::start().await;
    let auth = basic("tester");
    let start = json!({"process": {"cmd": "/bin/sh", "args": ["-c", "id -u; test -O \"$(tty)\" && echo owns-tty"]}, "pty": {"size": {"cols": 80, "rows": 24}}});
    let frames = envd
        .stream("process.Process/Start", start, &[("authorization", &auth)])
        .await;
    let text = output(&frames, "pty");
    assert!(
        text.contains("65534") && text.contains("owns-tty"),
        "{text:?}"
    );
}
