//! The written forms several keys share: a command (shell string or exec
//! list), a short form or a table ([`Short`]), naming rules, paths.

use std::fmt;
use std::marker::PhantomData;

use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{self, DeserializeOwned, MapAccess, SeqAccess, Unexpected, Visitor};
use serde::{Deserialize, Deserializer};
use serde_spanned::Spanned;

use super::SpannedString;

/// A command: a shell string or an exec-form list.
#[derive(Debug, Clone)]
pub enum Command {
    /// `"make all"`: run with `/bin/sh -c`.
    Shell(String),
    /// `["make", "all"]`.
    Exec(Vec<String>),
}

/// The shell a [`Command::Shell`] runs with, as Docker's shell form does.
pub const SHELL: [&str; 2] = ["/bin/sh", "-c"];

impl Command {
    /// The argv the command runs: the shell form wrapped in [`SHELL`].
    pub fn argv(&self) -> Vec<String> {
        match self {
            Command::Shell(s) => vec![SHELL[0].to_owned(), SHELL[1].to_owned(), s.clone()],
            Command::Exec(a) => a.clone(),
        }
    }

    /// What the user wrote, for progress names and messages: the shell
    /// form's script, or the exec form's words joined by spaces.
    pub fn shown(argv: &[String]) -> String {
        match argv {
            [sh, dash_c, script] if sh == SHELL[0] && dash_c == SHELL[1] => script.clone(),
            args => args.join(" "),
        }
    }
}

impl<'de> Deserialize<'de> for Command {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Command;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a command: a string, or a list of strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Command, E> {
                Ok(Command::Shell(v.to_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Command, A::Error> {
                Vec::<String>::deserialize(SeqAccessDeserializer::new(seq)).map(Command::Exec)
            }
        }
        d.deserialize_any(V)
    }
}

/// A value written either in a short form or as a table.
pub trait Shorthand: Sized + DeserializeOwned {
    /// What the error says was expected.
    const EXPECTING: &'static str;
    /// The value written as a bare string, if that form exists.
    fn from_string(_: String) -> Option<Self> {
        None
    }
    /// The value written as a list of strings, if that form exists.
    fn from_list(_: Vec<SpannedString>) -> Option<Self> {
        None
    }
}

/// A value of `T` in any of its written forms (string, list or table).
#[derive(Debug)]
pub struct Short<T>(pub T);

impl<T> std::ops::Deref for Short<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<'de, T: Shorthand> Deserialize<'de> for Short<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ShorthandVisitor::<T>(PhantomData))
            .map(Short)
    }
}

struct ShorthandVisitor<T>(PhantomData<T>);

impl<'de, T: Shorthand> Visitor<'de> for ShorthandVisitor<T> {
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(T::EXPECTING)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        T::from_string(v.to_owned()).ok_or_else(|| E::invalid_type(Unexpected::Str(v), &self))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<T, A::Error> {
        let items = Vec::<SpannedString>::deserialize(SeqAccessDeserializer::new(seq))?;
        T::from_list(items).ok_or_else(|| de::Error::invalid_type(Unexpected::Seq, &self))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        T::deserialize(MapAccessDeserializer::new(map))
    }
}

/// `image = "rule"` or `image = ["rule", "rule", ...]`: the naming rules of
/// an image, its primary name first, then its extra tags.
#[derive(Debug, Clone)]
pub struct NamingRules(pub Vec<SpannedString>);

impl NamingRules {
    /// Each rule with its own span: the one rule of the string form is
    /// located at the whole value (`at`, the span of the `Spanned` around it).
    pub fn located(&self, at: std::ops::Range<usize>) -> Vec<SpannedString> {
        match self.0.as_slice() {
            [one] if one.span() == (0..0) => vec![Spanned::new(at, one.get_ref().clone())],
            rules => rules.to_vec(),
        }
    }
}

impl<'de> Deserialize<'de> for NamingRules {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = NamingRules;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a naming rule, or a list of naming rules")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<NamingRules, E> {
                // The span is the whole value's; `Spanned<NamingRules>` keeps it.
                Ok(NamingRules(vec![Spanned::new(0..0, v.to_owned())]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<NamingRules, A::Error> {
                Vec::<SpannedString>::deserialize(SeqAccessDeserializer::new(seq)).map(NamingRules)
            }
        }
        d.deserialize_any(V)
    }
}

/// One path or several.
#[derive(Debug, Clone)]
pub struct Paths(pub Vec<String>);

impl<'de> Deserialize<'de> for Paths {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Paths;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a path or a list of paths")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Paths, E> {
                Ok(Paths(vec![v.to_owned()]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Paths, A::Error> {
                Vec::<String>::deserialize(SeqAccessDeserializer::new(seq)).map(Paths)
            }
        }
        d.deserialize_any(V)
    }
}
