//! Errors as values with context: the file, section, symbol and instruction
//! they concern. The binary prints one as a single readable paragraph.

use std::fmt;

/// An error with the context it happened in.
///
/// ```
/// let e = bpfld::Object::parse(b"not an object").unwrap_err().in_file("x.o");
/// assert!(e.to_string().starts_with("x.o: "), "{e}");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Error {
    /// Outermost context first: file, then section, symbol, instruction.
    context: Vec<String>,
    message: String,
}

impl Error {
    /// An error saying `message`, without context yet.
    pub fn new(message: impl Into<String>) -> Self {
        Error {
            context: Vec::new(),
            message: message.into(),
        }
    }

    /// Adds an outer context such as `"section 'xdp'"` or a file name.
    pub fn context(mut self, what: impl Into<String>) -> Self {
        self.context.insert(0, what.into());
        self
    }

    /// Adds a file as the outer context.
    pub fn in_file(self, path: impl fmt::Display) -> Self {
        self.context(path.to_string())
    }

    /// Adds a section (`section 'NAME'`) as the outer context.
    pub fn in_section(self, name: &str) -> Self {
        self.context(format!("section '{name}'"))
    }

    /// The message without its context.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in &self.context {
            write!(f, "{c}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// A result whose error is an [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Shorthand for `Err(Error::new(format!(...)))`, inside the crate.
macro_rules! bail {
    ($($arg:tt)*) => { return Err($crate::error::Error::new(format!($($arg)*))) };
}
pub(crate) use bail;
