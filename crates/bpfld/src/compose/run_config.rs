//! libxdp's run metadata: `XDP_RUN_CONFIG(func)` declares a BTF variable
//! `_<func>` in DATASEC `.xdp_run_config` (libxdp 1.x spells it without the
//! dot) whose struct members carry values the way BTF map definitions do:
//! `priority`, and one member per XDP action whose value 1 adds it to the
//! chain-call set and 0 removes it.

use crate::model::object::Object;

pub const XDP_ABORTED: u32 = 0;
pub const XDP_DROP: u32 = 1;
pub const XDP_PASS: u32 = 2;
pub const XDP_TX: u32 = 3;
pub const XDP_REDIRECT: u32 = 4;

/// libxdp's defaults: priority 50, continue after XDP_PASS.
pub const DEFAULT_PRIORITY: u32 = 50;
pub const DEFAULT_CHAIN: u32 = 1 << XDP_PASS;

/// The XDP actions by name, as libxdp's metadata and our command line
/// spell them.
pub const ACTIONS: [(&str, u32); 5] = [
    ("XDP_ABORTED", XDP_ABORTED),
    ("XDP_DROP", XDP_DROP),
    ("XDP_PASS", XDP_PASS),
    ("XDP_TX", XDP_TX),
    ("XDP_REDIRECT", XDP_REDIRECT),
];

pub fn action_value(name: &str) -> Option<u32> {
    let upper = name.to_ascii_uppercase();
    let full = if upper.starts_with("XDP_") {
        upper
    } else {
        format!("XDP_{upper}")
    };
    ACTIONS.iter().find(|(n, _)| *n == full).map(|(_, v)| *v)
}

/// A chain-call set as action names, `XDP_PASS,XDP_DROP` (or `none`).
pub fn chain_names(chain: u32) -> String {
    let names: Vec<&str> = ACTIONS
        .iter()
        .filter(|(_, v)| chain & (1 << v) != 0)
        .map(|(n, _)| *n)
        .collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(",")
    }
}

/// What a component's metadata says, on top of the defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunConfig {
    pub priority: u32,
    pub chain: u32,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            priority: DEFAULT_PRIORITY,
            chain: DEFAULT_CHAIN,
        }
    }
}

/// The run config of `function` in `obj`: libxdp's metadata over the
/// defaults, or the defaults when there is none.
pub fn read(obj: &Object, function: &str) -> RunConfig {
    let mut cfg = RunConfig::default();
    let Some(btf) = &obj.btf else { return cfg };
    let var_name = format!("_{function}");
    for sec in [".xdp_run_config", "xdp_run_config"] {
        let Some(ds) = btf.find_datasec(sec) else {
            continue;
        };
        let Ok(vars) = btf.datasec_vars(ds) else {
            continue;
        };
        let Some(v) = vars.iter().find(|v| v.name == var_name) else {
            continue;
        };
        let Ok(st) = btf.resolve(v.type_id) else {
            continue;
        };
        let Ok(members) = btf.members(st) else {
            continue;
        };
        for m in members {
            let Ok(value) = crate::model::map_def::uint_member(btf, m.type_id) else {
                continue;
            };
            if m.name == "priority" {
                cfg.priority = value;
            } else if let Some(action) = action_value(m.name) {
                if value != 0 {
                    cfg.chain |= 1 << action;
                } else {
                    cfg.chain &= !(1 << action);
                }
            }
        }
        return cfg;
    }
    cfg
}
