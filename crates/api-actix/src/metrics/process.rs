//! The process's own metrics, read from `/proc/self` at scrape time (no crate): CPU
//! seconds, resident and virtual memory, open and maximum file descriptors, start
//! time — the names every Prometheus client library exports — and
//! `domain_api_build_info{version,commit}`.

use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::registry::Registry;

use super::labels::BuildLabels;

/// The kernel's fixed unit of CPU times in `/proc` (`USER_HZ`): 100 on every Linux
/// architecture we build for, whatever the kernel's own tick.
const USER_HZ: f64 = 100.0;

/// The commit the binary was built from (`build.rs`: `git rev-parse`, or
/// `DOMAIN_API_BUILD_COMMIT`; "unknown" when neither is available).
pub const COMMIT: &str = env!("DOMAIN_API_COMMIT");

/// The process as `/proc/self` describes it now.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProcessStats {
    pub cpu_seconds: f64,
    pub resident_bytes: u64,
    pub virtual_bytes: u64,
    pub open_fds: u64,
    pub max_fds: Option<u64>,
    pub start_time_seconds: f64,
}

impl ProcessStats {
    /// Reads `/proc/self/stat`, `/proc/self/status`, `/proc/self/fd`,
    /// `/proc/self/limits` and `/proc/stat`; `None` where there is no `/proc`.
    #[must_use]
    pub fn read() -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // The command name (field 2) may hold spaces and parentheses: count fields
        // from the last `)`. Field 3 (state) is then index 0.
        let fields: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
        let field = |n: usize| -> Option<u64> { fields.get(n - 3)?.parse().ok() };
        let ticks = field(14)? + field(15)?; // utime + stime
        let started_ticks = field(22)?; // since boot
        let virtual_bytes = field(23)?;
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let resident_kib: u64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()?;
        let boot: u64 = std::fs::read_to_string("/proc/stat")
            .ok()?
            .lines()
            .find_map(|line| line.strip_prefix("btime "))?
            .trim()
            .parse()
            .ok()?;
        let open_fds = std::fs::read_dir("/proc/self/fd").ok()?.count() as u64;
        let max_fds = std::fs::read_to_string("/proc/self/limits")
            .ok()
            .and_then(|limits| {
                limits
                    .lines()
                    .find_map(|line| line.strip_prefix("Max open files"))
                    .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
            });
        #[expect(
            clippy::cast_precision_loss,
            reason = "seconds as a float, as Prometheus has them"
        )]
        Some(Self {
            cpu_seconds: ticks as f64 / USER_HZ,
            resident_bytes: resident_kib * 1024,
            virtual_bytes,
            open_fds,
            max_fds,
            start_time_seconds: boot as f64 + started_ticks as f64 / USER_HZ,
        })
    }
}

/// Registers the process's metrics (when `/proc` can be read) and the build's.
pub(super) fn register(registry: &mut Registry) {
    let build = Family::<BuildLabels, Gauge>::default();
    build
        .get_or_create(&BuildLabels {
            version: env!("CARGO_PKG_VERSION"),
            commit: COMMIT,
        })
        .set(1);
    registry.register(
        "domain_api_build_info",
        "The running binary's version and the commit it was built from (value 1)",
        build,
    );
    let Some(stats) = ProcessStats::read() else {
        return;
    };
    registry.register(
        "process_cpu_seconds",
        "Total user and system CPU time spent in seconds",
        ConstCounter::new(stats.cpu_seconds),
    );
    registry.register(
        "process_resident_memory_bytes",
        "Resident memory size in bytes",
        ConstGauge::new(i64::try_from(stats.resident_bytes).unwrap_or(i64::MAX)),
    );
    registry.register(
        "process_virtual_memory_bytes",
        "Virtual memory size in bytes",
        ConstGauge::new(i64::try_from(stats.virtual_bytes).unwrap_or(i64::MAX)),
    );
    registry.register(
        "process_open_fds",
        "Number of open file descriptors",
        ConstGauge::new(i64::try_from(stats.open_fds).unwrap_or(i64::MAX)),
    );
    if let Some(max) = stats.max_fds {
        registry.register(
            "process_max_fds",
            "Maximum number of open file descriptors",
            ConstGauge::new(i64::try_from(max).unwrap_or(i64::MAX)),
        );
    }
    registry.register(
        "process_start_time_seconds",
        "Start time of the process since unix epoch in seconds",
        ConstGauge::new(stats.start_time_seconds),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process_from_proc() {
        let before = ProcessStats::read().unwrap();
        // Burn some CPU and open a file: the readings follow.
        let mut x = 0u64;
        let started = std::time::Instant::now();
        while started.elapsed() < std::time::Duration::from_millis(300) {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        }
        std::hint::black_box(x);
        let file = std::fs::File::open("/proc/self/stat").unwrap();
        let after = ProcessStats::read().unwrap();
        drop(file);

        assert!(
            after.cpu_seconds >= before.cpu_seconds + 0.1,
            "{before:?} {after:?}"
        );
        assert!(after.open_fds > before.open_fds, "{before:?} {after:?}");
        assert!(after.resident_bytes > 1024 * 1024, "{after:?}");
        assert!(after.virtual_bytes >= after.resident_bytes, "{after:?}");
        assert!(after.max_fds.is_some_and(|max| max >= after.open_fds));
        // The kernel's now (boot time + uptime), as the metric is the kernel's: the
        // process's own wall clock may be moved (the calendar sweep's libfaketime).
        let stat = std::fs::read_to_string("/proc/stat").unwrap();
        let boot: f64 = stat
            .lines()
            .find_map(|l| l.strip_prefix("btime "))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let uptime: f64 = std::fs::read_to_string("/proc/uptime")
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let now = boot + uptime;
        assert!(
            after.start_time_seconds <= now + 1.0 && after.start_time_seconds > now - 3600.0,
            "started {} s ago?",
            now - after.start_time_seconds
        );
        assert!(!COMMIT.is_empty());
    }
}
