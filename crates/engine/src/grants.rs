//! Capabilities: the host function groups a module is granted at load.
//!
//! Every host function belongs to one group; a module may import a function only if its load
//! granted the group, else the load fails naming the import. WASI functions the engine does
//! not implement (they return `ENOSYS`) do nothing, so they need no grant.

use alloc::string::String;
use alloc::vec::Vec;

/// A set of granted groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grants(u32);

/// The groups, their names and the host functions (`module.name`) each holds.
const GROUPS: &[(&str, &[(&str, &str)])] = &[
    ("debug", &[("env", "_debug")]),
    ("env", &[("env", "now_ns"), ("env", "cpu_id")]),
    (
        "wasi:io",
        &[
            (WASI, "fd_write"),
            (WASI, "fd_read"),
            (WASI, "fd_fdstat_get"),
            (WASI, "fd_close"),
            (WASI, "fd_seek"),
            (WASI, "fd_prestat_get"),
            (WASI, "fd_prestat_dir_name"),
        ],
    ),
    (
        "wasi:args",
        &[
            (WASI, "args_sizes_get"),
            (WASI, "args_get"),
            (WASI, "environ_sizes_get"),
            (WASI, "environ_get"),
        ],
    ),
    (
        "wasi:clocks",
        &[
            (WASI, "clock_time_get"),
            (WASI, "clock_res_get"),
            (WASI, "poll_oneoff"),
        ],
    ),
    ("wasi:random", &[(WASI, "random_get")]),
    ("wasi:proc", &[(WASI, "proc_exit"), (WASI, "sched_yield")]),
    (
        "bpf-maps",
        &[
            ("bpf", "map_lookup"),
            ("bpf", "map_update"),
            ("bpf", "map_delete"),
        ],
    ),
];

const WASI: &str = crate::wasi::MODULE;

/// Index of `bpf-maps` in [`GROUPS`].
const BPF_MAPS: u32 = 7;

impl Grants {
    /// What a load that does not say is granted: every group but `bpf-maps`.
    pub const DEFAULT: Grants = Grants(((1 << GROUPS.len()) - 1) & !(1 << BPF_MAPS));
    /// Nothing.
    pub const NONE: Grants = Grants(0);

    /// Parses group names; `default` stands for [`Grants::DEFAULT`], `all` for every group.
    ///
    /// # Errors
    ///
    /// The unknown name, with the known ones.
    pub fn parse<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Grants, String> {
        let mut g = Grants::NONE;
        for name in names {
            g.0 |= match name {
                "default" => Grants::DEFAULT.0,
                "all" => (1 << GROUPS.len()) - 1,
                _ => match GROUPS.iter().position(|(n, _)| *n == name) {
                    Some(i) => 1 << i,
                    None => {
                        let mut known: Vec<&str> = GROUPS.iter().map(|(n, _)| *n).collect();
                        known.extend(["default", "all"]);
                        return Err(alloc::format!(
                            "unknown capability '{name}' (known: {})",
                            known.join(", ")
                        ));
                    }
                },
            };
        }
        Ok(g)
    }

    /// The names of the granted groups.
    pub fn names(self) -> Vec<String> {
        GROUPS
            .iter()
            .enumerate()
            .filter(|(i, _)| self.0 & (1 << i) != 0)
            .map(|(_, (n, _))| String::from(*n))
            .collect()
    }

    /// The group a host function belongs to, or `None` for a function no group holds.
    pub fn group_of(module: &str, name: &str) -> Option<&'static str> {
        GROUPS
            .iter()
            .find(|(_, fs)| fs.contains(&(module, name)))
            .map(|(n, _)| *n)
    }

    /// Whether `group` is granted.
    pub fn allows(self, group: &str) -> bool {
        GROUPS
            .iter()
            .position(|(n, _)| *n == group)
            .is_some_and(|i| self.0 & (1 << i) != 0)
    }
}

impl Default for Grants {
    fn default() -> Self {
        Grants::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_print() {
        let g = Grants::parse(["debug", "wasi:clocks"]).unwrap();
        assert_eq!(g.names(), ["debug", "wasi:clocks"]);
        assert!(g.allows("debug") && !g.allows("wasi:random"));
        assert!(!Grants::DEFAULT.allows("bpf-maps"));
        assert!(Grants::parse(["all"]).unwrap().allows("bpf-maps"));
        assert_eq!(Grants::parse(["default"]).unwrap(), Grants::DEFAULT);
        let e = Grants::parse(["debug", "net"]).unwrap_err();
        assert!(e.contains("unknown capability 'net'") && e.contains("wasi:random"));
        assert_eq!(Grants::group_of("env", "_debug"), Some("debug"));
        assert_eq!(Grants::group_of(WASI, "path_open"), None);
    }
}
