//! How many runtime worker threads a service should run: the container's CPU quota (a Kubernetes CPU limit),
//! not the host's core count.
//!
//! A pod with `limits.cpu: 500m` on a 64-core node sees 64 cores, but the kernel's CFS bandwidth control lets it
//! run only 50 ms per 100 ms period: a runtime with 64 (or 2) workers spends that budget in parallel bursts, is
//! throttled for the rest of each period, and pays in tail latency. So the worker count is
//! `floor(quota / period)`, at least 1, and never more than the CPUs the process may run on (its affinity mask,
//! which `taskset` and cpusets narrow). Rounding down, as Go's `automaxprocs` and Rust's own
//! `available_parallelism` do: a 1500m limit gets one worker that is never throttled rather than two that are.
//!
//! The quota comes from cgroup v2 `cpu.max` (`"<quota> <period>"` or `"max <period>"`, microseconds) or cgroup
//! v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us` (quota `-1` means none), in the process's own cgroup and every
//! ancestor up to the mount (the smallest quota wins: a limit on a parent bounds its children). The parsing is
//! pure ([`parse_cpu_max`], [`parse_cfs`], [`cgroup_paths`], [`worker_threads`]); [`read_cpu_quota`] is the thin
//! reader over `/proc/self/cgroup` and `/sys/fs/cgroup` that the binary calls.

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};

/// A CFS bandwidth limit: the cgroup may run `quota_us` of CPU time per `period_us` of wall time (both
/// microseconds, both non-zero). `quota_us / period_us` is the limit in CPUs (`500m` = 50000 / 100000).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuQuota {
    /// CPU time allowed per period, µs.
    pub quota_us: u64,
    /// The period, µs.
    pub period_us: u64,
}

impl CpuQuota {
    /// The limit in CPUs, e.g. 0.5 for `500m`.
    pub fn cpus(&self) -> f64 {
        self.quota_us as f64 / self.period_us as f64
    }

    /// The smaller of two limits (nested cgroups: the tighter one binds).
    fn min(self, other: CpuQuota) -> CpuQuota {
        // Compare quota/period without floats: a.q * b.p < b.q * a.p.
        if u128::from(self.quota_us) * u128::from(other.period_us)
            <= u128::from(other.quota_us) * u128::from(self.period_us)
        {
            self
        } else {
            other
        }
    }
}

/// Where the process's CPU controller lives, from `/proc/self/cgroup`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CgroupPaths {
    /// The cgroup v2 path (the `0::/path` line), when the unified hierarchy is in use.
    pub v2: Option<String>,
    /// The cgroup v1 path of the `cpu` controller (a line like `4:cpu,cpuacct:/path`).
    pub v1_cpu: Option<String>,
}

/// Parses cgroup v2 `cpu.max`: `"50000 100000"` is a quota, `"max 100000"` (or `"max"`) none. `None` also for
/// text that is neither (an unreadable limit is treated as no limit, never as an error that stops a service).
pub fn parse_cpu_max(text: &str) -> Option<CpuQuota> {
    let mut fields = text.split_whitespace();
    let quota = fields.next()?;
    if quota == "max" {
        return None;
    }
    let quota_us = quota.parse::<u64>().ok().filter(|q| *q > 0)?;
    // The period defaults to 100 ms when the file holds the quota alone.
    let period_us = match fields.next() {
        Some(p) => p.parse::<u64>().ok().filter(|p| *p > 0)?,
        None => 100_000,
    };
    Some(CpuQuota {
        quota_us,
        period_us,
    })
}

/// Parses cgroup v1 `cpu.cfs_quota_us` and `cpu.cfs_period_us`: a quota of `-1` means none.
pub fn parse_cfs(quota: &str, period: &str) -> Option<CpuQuota> {
    let quota_us = quota.trim().parse::<i64>().ok()?;
    let period_us = period.trim().parse::<u64>().ok().filter(|p| *p > 0)?;
    let quota_us = u64::try_from(quota_us).ok().filter(|q| *q > 0)?;
    Some(CpuQuota {
        quota_us,
        period_us,
    })
}

/// Reads `/proc/self/cgroup` text (`hierarchy-ID:controllers:path` per line, 'man 7 cgroups').
pub fn cgroup_paths(text: &str) -> CgroupPaths {
    let mut out = CgroupPaths::default();
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if id == "0" && controllers.is_empty() {
            out.v2 = Some(path.to_owned());
        } else if controllers.split(',').any(|c| c == "cpu") {
            out.v1_cpu = Some(path.to_owned());
        }
    }
    out
}

/// The worker threads for a process limited by `quota` that may run on `available` CPUs:
/// `min(available, max(1, floor(quota)))`, or `available` without a quota.
pub fn worker_threads(quota: Option<CpuQuota>, available: NonZeroUsize) -> NonZeroUsize {
    let Some(q) = quota else {
        return available;
    };
    let whole = usize::try_from(q.quota_us / q.period_us).unwrap_or(usize::MAX);
    NonZeroUsize::new(whole.min(available.get())).unwrap_or(NonZeroUsize::MIN)
}

/// The process's CPU quota, read from the cgroup filesystem at `/sys/fs/cgroup` for the cgroups named in
/// `/proc/self/cgroup` (see [`cpu_quota_from`]). `None` when no limit is set or nothing can be read (not Linux,
/// no cgroup filesystem): then the CPUs the process may run on decide.
pub fn read_cpu_quota() -> Option<CpuQuota> {
    let proc_cgroup = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    cpu_quota_from(&proc_cgroup, Path::new("/sys/fs/cgroup"), &|p: &Path| {
        std::fs::read_to_string(p).ok()
    })
}

/// The tightest CPU limit of the process's cgroup and its ancestors: `proc_cgroup` is the text of
/// `/proc/self/cgroup`, `root` the cgroup mount, `read` reads a file (`None` when absent). cgroup v2 first
/// (`cpu.max`), then v1 (`cpu.cfs_quota_us` / `cpu.cfs_period_us` under `root/cpu,cpuacct` or `root/cpu`).
pub fn cpu_quota_from(
    proc_cgroup: &str,
    root: &Path,
    read: &dyn Fn(&Path) -> Option<String>,
) -> Option<CpuQuota> {
    let paths = cgroup_paths(proc_cgroup);
    if let Some(v2) = &paths.v2 {
        let found = ancestors(root, v2)
            .filter_map(|dir| {
                read(&dir.join("cpu.max"))
                    .as_deref()
                    .and_then(parse_cpu_max)
            })
            .reduce(CpuQuota::min);
        if found.is_some() {
            return found;
        }
    }
    let v1 = paths.v1_cpu?;
    ["cpu,cpuacct", "cpu"]
        .iter()
        .flat_map(|mount| ancestors(&root.join(mount), &v1).collect::<Vec<_>>())
        .filter_map(|dir| {
            let quota = read(&dir.join("cpu.cfs_quota_us"))?;
            let period = read(&dir.join("cpu.cfs_period_us"))?;
            parse_cfs(&quota, &period)
        })
        .reduce(CpuQuota::min)
}

/// `root/a/b`, `root/a`, `root` for the cgroup path `/a/b` (a container with its own cgroup namespace sees `/`).
fn ancestors<'a>(root: &'a Path, cgroup: &'a str) -> impl Iterator<Item = PathBuf> + 'a {
    let mut rel = Some(cgroup.trim_start_matches('/'));
    std::iter::from_fn(move || {
        let r = rel?;
        rel = match r.rsplit_once('/') {
            Some((parent, _)) => Some(parent),
            None if r.is_empty() => None,
            None => Some(""),
        };
        // `..` in a path from /proc would escape the root: stop there.
        (!r.split('/').any(|c| c == "..")).then(|| root.join(r))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(quota_us: u64, period_us: u64) -> Option<CpuQuota> {
        Some(CpuQuota {
            quota_us,
            period_us,
        })
    }

    #[test]
    fn cpu_max() {
        let cases: &[(&str, Option<CpuQuota>)] = &[
            ("max 100000\n", None),
            ("max", None),
            ("50000 100000\n", q(50_000, 100_000)),
            ("150000 100000", q(150_000, 100_000)),
            ("200000", q(200_000, 100_000)),
            ("0 100000", None),
            ("50000 0", None),
            ("garbage", None),
            ("", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_cpu_max(text), *want, "{text:?}");
        }
    }

    #[test]
    fn cfs() {
        let cases: &[(&str, &str, Option<CpuQuota>)] = &[
            ("-1\n", "100000\n", None),
            ("50000\n", "100000\n", q(50_000, 100_000)),
            ("250000", "100000", q(250_000, 100_000)),
            ("50000", "0", None),
            ("x", "100000", None),
        ];
        for (quota, period, want) in cases {
            assert_eq!(parse_cfs(quota, period), *want, "{quota:?} {period:?}");
        }
    }

    #[test]
    fn workers_follow_the_quota_rounded_down_within_the_cpus() {
        let n = |v| NonZeroUsize::new(v).expect("non-zero");
        let cases: &[(Option<CpuQuota>, usize, usize)] = &[
            (None, 2, 2),
            (None, 64, 64),
            (q(50_000, 100_000), 64, 1), // 500m: one worker, not two
            (q(100_000, 100_000), 64, 1),
            (q(150_000, 100_000), 64, 1), // 1500m rounds down
            (q(200_000, 100_000), 64, 2),
            (q(400_000, 100_000), 2, 2), // a quota above the cores the process may use
            (q(1, 100_000), 8, 1),
        ];
        for (quota, available, want) in cases {
            assert_eq!(
                worker_threads(*quota, n(*available)).get(),
                *want,
                "{quota:?} on {available}"
            );
        }
    }

    #[test]
    fn proc_self_cgroup() {
        let v2 = cgroup_paths("0::/kubepods/burstable/pod1/abc\n");
        assert_eq!(v2.v2.as_deref(), Some("/kubepods/burstable/pod1/abc"));
        assert_eq!(v2.v1_cpu, None);
        let v1 = cgroup_paths(
            "12:memory:/docker/x\n4:cpu,cpuacct:/docker/x\n1:name=systemd:/docker/x\n0::/\n",
        );
        assert_eq!(v1.v1_cpu.as_deref(), Some("/docker/x"));
        assert_eq!(v1.v2.as_deref(), Some("/"));
        assert_eq!(cgroup_paths("nonsense\n"), CgroupPaths::default());
    }

    #[test]
    fn ancestors_walk_up_to_the_root_and_never_out() {
        let root = Path::new("/sys/fs/cgroup");
        let got: Vec<PathBuf> = ancestors(root, "/a/b").collect();
        assert_eq!(
            got,
            vec![root.join("a/b"), root.join("a"), root.join("")],
            "{got:?}"
        );
        assert_eq!(
            ancestors(root, "/").collect::<Vec<_>>(),
            vec![root.join("")]
        );
        assert!(ancestors(root, "/../x").all(|p| p.starts_with(root) && !p.ends_with("x")));
    }

    #[test]
    fn the_tighter_limit_binds() {
        let a = CpuQuota {
            quota_us: 50_000,
            period_us: 100_000,
        };
        let b = CpuQuota {
            quota_us: 200_000,
            period_us: 100_000,
        };
        assert_eq!(a.min(b), a);
        assert_eq!(b.min(a), a);
        assert!((a.cpus() - 0.5).abs() < 1e-9);
    }

    #[test]
    fn quotas_are_found_in_a_cgroup_tree() {
        let root = Path::new("/cg");
        // (/proc/self/cgroup, the files of the tree, the limit found)
        type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], Option<CpuQuota>);
        let cases: &[Case<'_>] = &[
            // A container in its own cgroup namespace: the limit sits at the root it sees.
            (
                "0::/\n",
                &[("/cg/cpu.max", "50000 100000\n")],
                q(50_000, 100_000),
            ),
            // No limit anywhere.
            (
                "0::/a\n",
                &[
                    ("/cg/a/cpu.max", "max 100000\n"),
                    ("/cg/cpu.max", "max 100000"),
                ],
                None,
            ),
            // A parent's limit binds a child without one; the tighter of two wins.
            (
                "0::/pod/c\n",
                &[
                    ("/cg/pod/c/cpu.max", "max 100000"),
                    ("/cg/pod/cpu.max", "150000 100000"),
                ],
                q(150_000, 100_000),
            ),
            (
                "0::/pod/c\n",
                &[
                    ("/cg/pod/c/cpu.max", "300000 100000"),
                    ("/cg/pod/cpu.max", "100000 100000"),
                ],
                q(100_000, 100_000),
            ),
            // cgroup v1, under either mount name.
            (
                "4:cpu,cpuacct:/docker/x\n",
                &[
                    ("/cg/cpu,cpuacct/docker/x/cpu.cfs_quota_us", "50000\n"),
                    ("/cg/cpu,cpuacct/docker/x/cpu.cfs_period_us", "100000\n"),
                ],
                q(50_000, 100_000),
            ),
            (
                "4:cpu:/x\n",
                &[
                    ("/cg/cpu/x/cpu.cfs_quota_us", "-1"),
                    ("/cg/cpu/x/cpu.cfs_period_us", "100000"),
                ],
                None,
            ),
            // Nothing readable.
            ("", &[], None),
        ];
        for (proc_cgroup, files, want) in cases {
            let read = |p: &Path| {
                files
                    .iter()
                    .find(|(name, _)| Path::new(name) == p)
                    .map(|(_, text)| (*text).to_owned())
            };
            assert_eq!(
                cpu_quota_from(proc_cgroup, root, &read),
                *want,
                "{proc_cgroup:?} {files:?}"
            );
        }
    }
}
