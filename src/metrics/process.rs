//! The standard process metrics (`process_cpu_seconds_total`, `process_resident_memory_bytes`,
//! `process_open_fds`, …), read from `/proc/self` at each scrape, as Prometheus's Go client
//! writes them. prometheus-client has no process collector and no maintained crate adds one
//! to it (those that exist serve the `prometheus` or `metrics` crates); what is needed is
//! four small files of `/proc`, so a few lines here cost less than a dependency. Elsewhere
//! than on Linux the files are missing and the metrics are left out.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// `USER_HZ`, the unit of the times in `/proc/<pid>/stat`. It is 100 on every architecture
/// Linux runs on today; Prometheus's own procfs library fixes it the same way rather than ask
/// `sysconf`, which would need `unsafe` here for one constant.
const TICKS_PER_SECOND: f64 = 100.0;

#[derive(Debug, Default)]
pub struct ProcessCollector;

/// What one scrape read; a value that could not be read is `None` and left out.
#[derive(Debug, Default, PartialEq)]
struct Sample {
    cpu_seconds: Option<f64>,
    resident_bytes: Option<u64>,
    virtual_bytes: Option<u64>,
    threads: Option<u64>,
    start_time_seconds: Option<f64>,
    open_fds: Option<u64>,
    max_fds: Option<u64>,
}

impl Sample {
    fn read() -> Sample {
        let read = |path: &str| std::fs::read_to_string(path).ok();
        let mut sample = Sample::default();
        if let Some(stat) = read("/proc/self/stat") {
            sample.add_stat(&stat, read("/proc/stat").as_deref().and_then(boot_time));
        }
        sample.resident_bytes = read("/proc/self/status")
            .as_deref()
            .and_then(resident_bytes);
        sample.max_fds = read("/proc/self/limits")
            .as_deref()
            .and_then(max_open_files);
        sample.open_fds = std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|entries| entries.count() as u64);
        sample
    }

    /// The fields of `/proc/self/stat` (proc(5)) after the command name, which is in
    /// parentheses and may itself hold spaces and parentheses.
    fn add_stat(&mut self, stat: &str, boot_time: Option<u64>) {
        let Some((_, fields)) = stat.rsplit_once(')') else {
            return;
        };
        let fields: Vec<&str> = fields.split_whitespace().collect();
        // Field n of proc(5) is at n - 3 here: the pid and the name come before.
        let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<u64>().ok());
        if let (Some(user), Some(system)) = (field(14), field(15)) {
            self.cpu_seconds = Some((user + system) as f64 / TICKS_PER_SECOND);
        }
        self.threads = field(20);
        self.virtual_bytes = field(23);
        if let (Some(start), Some(boot)) = (field(22), boot_time) {
            self.start_time_seconds = Some(boot as f64 + start as f64 / TICKS_PER_SECOND);
        }
    }
}

/// The boot time in seconds since the epoch: `btime` of `/proc/stat`.
fn boot_time(stat: &str) -> Option<u64> {
    stat.lines()
        .find_map(|line| line.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

/// `VmRSS` of `/proc/self/status`, given in kB (KiB).
fn resident_bytes(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|kib| kib * 1024)
}

/// The soft limit of `Max open files` in `/proc/self/limits`.
fn max_open_files(limits: &str) -> Option<u64> {
    limits
        .lines()
        .find_map(|line| line.strip_prefix("Max open files"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let sample = Sample::read();
        if let Some(seconds) = sample.cpu_seconds {
            let counter = ConstCounter::new(seconds);
            counter.encode(encoder.encode_descriptor(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds.",
                None,
                counter.metric_type(),
            )?)?;
        }
        let gauges = [
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                sample.resident_bytes.map(|v| v as f64),
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
                sample.virtual_bytes.map(|v| v as f64),
            ),
            (
                "process_open_fds",
                "Number of open file descriptors.",
                sample.open_fds.map(|v| v as f64),
            ),
            (
                "process_max_fds",
                "Maximum number of open file descriptors.",
                sample.max_fds.map(|v| v as f64),
            ),
            (
                "process_threads",
                "Number of OS threads in the process.",
                sample.threads.map(|v| v as f64),
            ),
            (
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
                sample.start_time_seconds,
            ),
        ];
        for (name, help, value) in gauges {
            if let Some(value) = value {
                let gauge = ConstGauge::new(value);
                gauge.encode(encoder.encode_descriptor(
                    name,
                    help,
                    None,
                    gauge.metric_type(),
                )?)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stat_line_is_read_past_a_name_with_spaces_and_parentheses() {
        // proc(5): pid (comm) state ppid … utime(14) stime(15) … num_threads(20) …
        // starttime(22) vsize(23) rss(24)
        let stat = "4242 (odd) name) S 1 4242 4242 0 -1 4194560 1000 0 0 0 \
                    250 50 0 0 20 0 7 0 1234 567890 321 18446744073709551615";
        let mut sample = Sample::default();
        sample.add_stat(stat, Some(1_700_000_000));
        assert_eq!(sample.cpu_seconds, Some(3.0));
        assert_eq!(sample.threads, Some(7));
        assert_eq!(sample.virtual_bytes, Some(567_890));
        assert!((sample.start_time_seconds.unwrap() - 1_700_000_012.34).abs() < 1e-3);
    }

    #[test]
    fn status_limits_and_boot_time_are_parsed() {
        assert_eq!(
            resident_bytes("Name:\tx\nVmRSS:\t   43100 kB\nThreads: 3\n"),
            Some(43_100 * 1024)
        );
        assert_eq!(
            max_open_files(
                "Limit                     Soft Limit           Hard Limit           Units\n\
                 Max open files            1024                 524288               files\n"
            ),
            Some(1024)
        );
        assert_eq!(
            boot_time("cpu  1 2 3\nbtime 1700000000\n"),
            Some(1_700_000_000)
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_is_measured() {
        let sample = Sample::read();
        assert!(sample.resident_bytes.unwrap() > 1024 * 1024);
        assert!(sample.open_fds.unwrap() >= 3);
        assert!(sample.threads.unwrap() >= 1);
        assert!(sample.cpu_seconds.is_some());
        assert!(sample.start_time_seconds.unwrap() > 1_600_000_000.0);
        assert!(sample.max_fds.unwrap() >= 3);
    }
}
