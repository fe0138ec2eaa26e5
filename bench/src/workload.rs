//! The workload every system under test runs, so that their numbers compare like with like:
//! a Python process holding `argv[1]` MiB of random bytes in memory (never on disk) and counting
//! every 50 ms, plus a few files written before the snapshot.

use anyhow::bail;

/// Written to `HOLD_PATH` and started as `python3 HOLD_PATH <MiB>`. On SIGUSR1 it writes
/// "count digest-at-start digest-now" to /tmp/hold.out. /tmp/hold.ready (its PID) appears once
/// the memory is filled.
pub const HOLD_PY: &str = r#"
import hashlib, os, signal, sys, time
mib = int(sys.argv[1])
buf = bytearray()
for _ in range(mib):
    buf += os.urandom(1 << 20)
digest = hashlib.sha256(buf).hexdigest()[:16]
count = 0
def report(*_):
    with open('/tmp/hold.tmp', 'w') as f:
        f.write(f"{count} {digest} {hashlib.sha256(buf).hexdigest()[:16]}\n")
    os.rename('/tmp/hold.tmp', '/tmp/hold.out')
signal.signal(signal.SIGUSR1, report)
with open('/tmp/hold.ready', 'w') as f:
    f.write(str(os.getpid()))
while True:
    time.sleep(0.05)
    count += 1
"#;

pub const HOLD_PATH: &str = "/tmp/hold.py";

/// Shell: exits 0 once the holder has filled its memory (waits up to 120 s).
pub const WAIT_READY: &str = "for i in $(seq 2400); do [ -f /tmp/hold.ready ] && exit 0; sleep 0.05; done; exit 1";

/// Shell: asks the holder for its state and prints it (one line, see `Held::parse`).
pub const QUERY: &str = "kill -USR1 $(cat /tmp/hold.ready) && for i in $(seq 400); do [ -f /tmp/hold.out ] && break; sleep 0.05; done; cat /tmp/hold.out && rm -f /tmp/hold.out";

/// Files written into the source before its snapshot (on the root filesystem, not a tmpfs);
/// every clone must have them byte for byte.
pub const PRE_FILES: &[(&str, &str)] = &[
    ("/var/tmp/bench/pre-1.txt", "written before the snapshot\n"),
    ("/var/tmp/bench/pre-2.txt", "a second file, also before the snapshot\n"),
    ("/var/tmp/bench/pre-3.json", "{\"files\": 3}\n"),
];

/// Shell: exits 0 when every `PRE_FILES` entry has its content.
pub fn check_pre_files() -> String {
    PRE_FILES
        .iter()
        .map(|(path, content)| format!("[ \"$(cat {path})\" = {:?} ]", content.trim_end()))
        .collect::<Vec<_>>()
        .join(" && ")
}

/// The holder's state.
#[derive(Debug, Clone, PartialEq)]
pub struct Held {
    pub count: u64,
    /// sha256 prefix of the memory when it was filled.
    pub digest_start: String,
    /// sha256 prefix of the memory now: equal to `digest_start` unless memory was lost.
    pub digest_now: String,
}

impl Held {
    pub fn parse(stdout: &str) -> anyhow::Result<Held> {
        let mut it = stdout.split_whitespace();
        let (Some(c), Some(d0), Some(d1)) = (it.next(), it.next(), it.next()) else {
            bail!("unexpected holder output {stdout:?}")
        };
        Ok(Held { count: c.parse()?, digest_start: d0.into(), digest_now: d1.into() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_holder_line_and_rejects_garbage() {
        let h = Held::parse("12 abc def\n").unwrap();
        assert_eq!((h.count, h.digest_start.as_str(), h.digest_now.as_str()), (12, "abc", "def"));
        assert!(Held::parse("").is_err());
        assert!(Held::parse("x abc def").is_err());
    }

    #[test]
    fn pre_file_check_names_every_file() {
        let c = check_pre_files();
        for (p, _) in PRE_FILES {
            assert!(c.contains(p));
        }
    }
}
