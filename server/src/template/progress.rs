//! Build progress: a bar on a terminal, plain lines otherwise (logs, CI), or lines handed to a
//! build's log (an OCI image base built for the template builder).

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};

use indicatif::{ProgressBar, ProgressStyle};

pub struct Progress<'a> {
    bar: Option<ProgressBar>,
    sink: Option<&'a (dyn Fn(String) + Send + Sync)>,
    total: u64,
    step: AtomicU64,
}

impl<'a> Progress<'a> {
    /// Plain lines to `sink` instead of the terminal.
    pub fn to_log(total: u64, sink: &'a (dyn Fn(String) + Send + Sync)) -> Self {
        Self { bar: None, sink: Some(sink), total, step: AtomicU64::new(0) }
    }

    pub fn new(total: u64) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}")
                    .expect("template")
                    .progress_chars("=> "),
            );
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            bar
        });
        Self { bar, sink: None, total, step: AtomicU64::new(0) }
    }

    pub fn step(&self, what: &str) {
        let n = self.step.fetch_add(1, Ordering::Relaxed) + 1;
        match &self.bar {
            Some(bar) => {
                bar.set_position(n - 1);
                bar.set_message(what.to_string());
            }
            None => self.line(format!("[template {n}/{}] {what}", self.total)),
        }
    }

    /// A sub-step detail: shown as the bar's message, or printed as a plain line.
    pub fn detail(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.set_message(line.to_string()),
            None => self.line(format!("    {line}")),
        }
    }

    pub fn finish(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.finish_with_message(line.to_string()),
            None => self.line(format!("[template] {line}")),
        }
    }

    fn line(&self, line: String) {
        match self.sink {
            Some(sink) => sink(line.trim_start().to_string()),
            None => eprintln!("{line}"),
        }
    }
}
