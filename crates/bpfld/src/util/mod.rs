//! Helpers below every layer of the crate (the model included), so that
//! no layer reaches up for them.

pub(crate) mod fxhash;
