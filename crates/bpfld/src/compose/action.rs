//! XDP verdicts and chain-call sets as types: what a component returns and
//! the verdicts on which the composition goes on to the next component.
//!
//! Names are accepted the way libxdp's metadata and xdp-loader spell them
//! (`XDP_PASS`, `pass`, `xdp_pass`, any case) and printed the way
//! `bpfld xdp status` prints them (`XDP_PASS`), so what status prints is
//! what compose and attach accept.

use std::fmt;
use std::str::FromStr;

use crate::error::Error;

/// An XDP program's verdict (the kernel's `enum xdp_action`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum XdpAction {
    /// `XDP_ABORTED` (0): an error; the packet is dropped and traced.
    Aborted,
    /// `XDP_DROP` (1): the packet is dropped.
    Drop,
    /// `XDP_PASS` (2): the packet goes on to the network stack.
    Pass,
    /// `XDP_TX` (3): the packet is sent back out of the interface it came in on.
    Tx,
    /// `XDP_REDIRECT` (4): the packet goes where `bpf_redirect*` said.
    Redirect,
}

impl XdpAction {
    /// Every action, by value.
    pub const ALL: [XdpAction; 5] = [
        XdpAction::Aborted,
        XdpAction::Drop,
        XdpAction::Pass,
        XdpAction::Tx,
        XdpAction::Redirect,
    ];

    /// The kernel's value (`XDP_PASS` is 2).
    pub fn value(self) -> u32 {
        self as u32
    }

    /// The action of kernel value `value`, if it is one.
    pub fn from_value(value: u32) -> Option<XdpAction> {
        Self::ALL.get(usize::try_from(value).ok()?).copied()
    }

    /// The kernel's name, `XDP_PASS`: what status prints.
    pub fn name(self) -> &'static str {
        match self {
            XdpAction::Aborted => "XDP_ABORTED",
            XdpAction::Drop => "XDP_DROP",
            XdpAction::Pass => "XDP_PASS",
            XdpAction::Tx => "XDP_TX",
            XdpAction::Redirect => "XDP_REDIRECT",
        }
    }
}

impl fmt::Display for XdpAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Accepts `XDP_PASS`, `xdp_pass`, `pass`, `Pass`: any case, with or
/// without the `XDP_` prefix.
impl FromStr for XdpAction {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let upper = s.trim().to_ascii_uppercase();
        let bare = upper.strip_prefix("XDP_").unwrap_or(&upper);
        XdpAction::ALL
            .into_iter()
            .find(|a| &a.name()[4..] == bare)
            .ok_or_else(|| {
                Error::new(format!(
                    "'{s}' is not an XDP action (XDP_ABORTED, XDP_DROP, XDP_PASS, XDP_TX, XDP_REDIRECT; the XDP_ prefix and case are optional)"
                ))
            })
    }
}

impl serde::Serialize for XdpAction {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// Reads any spelling [`FromStr`] accepts.
impl<'de> serde::Deserialize<'de> for XdpAction {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// A chain-call set: the verdicts after which a composition runs its next
/// component (any other verdict ends the run and is the composition's).
///
/// Printed as `XDP_DROP,XDP_PASS` (by value), or `none` for the empty set;
/// parsed from the same, from xdp-loader's spellings (`pass,drop`) and
/// from `+`-separated lists (`pass+drop`).
///
/// ```
/// use bpfld::compose::{ChainActions, XdpAction};
///
/// let chain: ChainActions = "pass,XDP_DROP".parse()?;
/// assert!(chain.contains(XdpAction::Pass) && chain.contains(XdpAction::Drop));
/// assert_eq!(chain.to_string(), "XDP_DROP,XDP_PASS");
/// assert_eq!(chain.to_string().parse::<ChainActions>()?, chain);
/// assert_eq!("none".parse::<ChainActions>()?, ChainActions::NONE);
/// # Ok::<(), bpfld::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ChainActions(u32);

impl ChainActions {
    /// The empty set: the component's verdict always ends the run.
    pub const NONE: ChainActions = ChainActions(0);

    /// libxdp's default: go on after `XDP_PASS`.
    pub const DEFAULT: ChainActions = ChainActions(1 << 2);

    /// The set of `actions`.
    pub fn of(actions: impl IntoIterator<Item = XdpAction>) -> ChainActions {
        actions
            .into_iter()
            .fold(ChainActions::NONE, |s, a| s.with(a))
    }

    /// The set as the dispatcher tests it: bit `n` for action value `n`.
    pub fn bits(self) -> u32 {
        self.0
    }

    /// The set of bitmask `bits` (bit `n` for action value `n`); bits of
    /// no action are dropped.
    pub fn from_bits(bits: u32) -> ChainActions {
        ChainActions(bits & 0x1f)
    }

    /// This set with `action` added.
    #[must_use]
    pub fn with(self, action: XdpAction) -> ChainActions {
        ChainActions(self.0 | 1 << action.value())
    }

    /// This set with `action` removed.
    #[must_use]
    pub fn without(self, action: XdpAction) -> ChainActions {
        ChainActions(self.0 & !(1 << action.value()))
    }

    /// Whether the composition goes on after `action`.
    pub fn contains(self, action: XdpAction) -> bool {
        self.0 & 1 << action.value() != 0
    }

    /// Whether no verdict goes on.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The actions in the set, by value.
    pub fn iter(self) -> impl Iterator<Item = XdpAction> {
        XdpAction::ALL
            .into_iter()
            .filter(move |a| self.contains(*a))
    }
}

impl FromIterator<XdpAction> for ChainActions {
    fn from_iter<I: IntoIterator<Item = XdpAction>>(iter: I) -> Self {
        ChainActions::of(iter)
    }
}

impl fmt::Display for ChainActions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("none");
        }
        for (i, a) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(a.name())?;
        }
        Ok(())
    }
}

/// Accepts a list of actions separated by `,` or `+` (see [`XdpAction`]'s
/// spellings), or `none`.
impl FromStr for ChainActions {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        if s.trim().eq_ignore_ascii_case("none") {
            return Ok(ChainActions::NONE);
        }
        if s.trim().is_empty() {
            return Err(Error::new(
                "no XDP actions given (name them, or say none)".to_string(),
            ));
        }
        s.split([',', '+']).map(str::parse).collect()
    }
}

/// A list of names, `["XDP_DROP", "XDP_PASS"]`.
impl serde::Serialize for ChainActions {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

/// Reads a list of names (what `Serialize` writes, as `status --json`
/// prints it) or one string as [`FromStr`] parses it.
impl<'de> serde::Deserialize<'de> for ChainActions {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Form {
            List(Vec<XdpAction>),
            Text(String),
        }
        match Form::deserialize(d)? {
            Form::List(actions) => Ok(ChainActions::of(actions)),
            Form::Text(text) => text.parse().map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xdp_loader_spellings_are_accepted() {
        for s in ["pass", "PASS", "XDP_PASS", "xdp_pass", "Xdp_Pass", " pass "] {
            assert_eq!(s.parse::<XdpAction>().unwrap(), XdpAction::Pass, "{s}");
        }
        assert_eq!("redirect".parse::<XdpAction>().unwrap().value(), 4);
        let e = "XDP_PASSS".parse::<XdpAction>().unwrap_err().to_string();
        assert!(e.contains("'XDP_PASSS' is not an XDP action"), "{e}");
        assert!("".parse::<ChainActions>().is_err());
        assert!("pass,,drop".parse::<ChainActions>().is_err());
    }

    #[test]
    fn sets_print_as_they_parse() {
        let set: ChainActions = "tx+drop,aborted".parse().unwrap();
        assert_eq!(set.to_string(), "XDP_ABORTED,XDP_DROP,XDP_TX");
        assert_eq!(set.bits(), 0b1011);
        assert_eq!(set.to_string().parse::<ChainActions>().unwrap(), set);
        assert_eq!(ChainActions::NONE.to_string(), "none");
        assert_eq!(ChainActions::from_bits(0xff), ChainActions::from_bits(0x1f));
        assert_eq!(
            serde_json::to_string(&set).unwrap(),
            r#"["XDP_ABORTED","XDP_DROP","XDP_TX"]"#
        );
        let back: ChainActions =
            serde_json::from_str(&serde_json::to_string(&set).unwrap()).unwrap();
        assert_eq!(back, set);
        let text: ChainActions = serde_json::from_str(r#""pass+drop""#).unwrap();
        assert_eq!(text.to_string(), "XDP_DROP,XDP_PASS");
        assert!(serde_json::from_str::<ChainActions>(r#"["XDP_PASS", "maybe"]"#).is_err());
        assert_eq!(XdpAction::from_value(3), Some(XdpAction::Tx));
        assert_eq!(XdpAction::from_value(5), None);
    }
}
