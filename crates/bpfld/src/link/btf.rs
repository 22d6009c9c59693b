//! Merging the BTF of the inputs. (Pending the BTF model.)

use std::collections::HashSet;

use crate::error::Result;
use crate::model::object::Object;

use super::pieces::Placement;
use super::symbols::Resolution;
use super::{Input, MovedExt};

/// Externs the loader resolves (`.kconfig`, `.ksyms`): never an error when
/// no input defines them.
pub fn special_externs(_inputs: &[Input]) -> HashSet<String> {
    HashSet::new()
}

pub fn merge(
    _inputs: &[Input],
    _res: &Resolution,
    _placement: &Placement,
    _moved: MovedExt,
    _object: &mut Object,
) -> Result<()> {
    Ok(())
}
