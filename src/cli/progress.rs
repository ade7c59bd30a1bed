//! What the observer commands show while they work.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

/// A progress bar when a person watches stderr; plain lines for logs and pipes.
#[derive(Clone)]
pub(crate) struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    pub(crate) fn new(len: usize, unit: &str) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(len as u64);
            if let Ok(style) = ProgressStyle::with_template(&format!(
                "{{bar:40}} {{pos}}/{{len}} {unit} {{elapsed}}"
            )) {
                bar.set_style(style);
            }
            bar
        });
        Progress { bar }
    }

    /// A message that always shows (above the bar when there is one).
    pub(crate) fn line(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }

    /// Counts `done` more; `text` shows on a terminal only when `always`.
    pub(crate) fn advance(&self, done: usize, text: &str, always: bool) {
        match &self.bar {
            Some(bar) if always => {
                bar.println(text);
                bar.inc(done as u64);
            }
            Some(bar) => bar.inc(done as u64),
            None => eprintln!("{text}"),
        }
    }

    pub(crate) fn set(&self, position: u64, len: u64) {
        if let Some(bar) = &self.bar {
            bar.set_length(len);
            bar.set_position(position);
        }
    }

    pub(crate) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
