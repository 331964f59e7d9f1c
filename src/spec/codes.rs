//! Error codes: a stable id for every kind of error a stack file can have.
//!
//! `error[E0302]: ...` names the kind; tests match on it, and
//! `strata explain E0302` shows what it means and how to fix it
//! (`docs/errors.md`, which lists every code with an example). Lints
//! keep their own ids (`warning[root-user]`, `docs/lints.md`).
//!
//! A code never changes meaning once published; a retired code stays
//! reserved.

macro_rules! codes {
    ($( $(#[$doc:meta])* $variant:ident = $id:literal, $name:literal, $summary:literal, $fix:literal; )*) => {
        /// The kind of an error, behind its stable `E0000` code.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[non_exhaustive]
        pub enum ErrorCode {
            $( $(#[$doc])* $variant, )*
        }

        impl ErrorCode {
            /// Every code, in the order of `docs/errors.md`.
            pub const ALL: &'static [ErrorCode] = &[ $( ErrorCode::$variant, )* ];

            /// The stable id shown as `error[E0302]`.
            pub fn id(self) -> &'static str {
                match self { $( ErrorCode::$variant => $id, )* }
            }

            /// A short name, for reading (`unknown-component`).
            pub fn name(self) -> &'static str {
                match self { $( ErrorCode::$variant => $name, )* }
            }

            /// One line on what the error is about.
            pub fn summary(self) -> &'static str {
                match self { $( ErrorCode::$variant => $summary, )* }
            }

            /// What to do about it, in general; each error's own help says
            /// it for the case at hand.
            pub fn fix(self) -> &'static str {
                match self { $( ErrorCode::$variant => $fix, )* }
            }
        }
    };
}

codes! {
    /// The file is larger than the limit.
    FileTooLarge = "E0101", "file-too-large", "the stack file is larger than 4 MiB", "split the stack, or move long text (scripts, package lists) into files in the build context";
    /// The file is not UTF-8.
    NotUtf8 = "E0102", "not-utf8", "the stack file is not UTF-8 text", "save the file as UTF-8 text";
    /// Values or tables nested too deep.
    TooDeep = "E0103", "too-deep", "tables, arrays or keys nested too deep", "flatten the nested arrays, inline tables or dotted keys";
    /// TOML syntax.
    TomlSyntax = "E0104", "toml-syntax", "the file is not valid TOML", "write `key = value`, `[table]` or `[[array-of-tables]]`; strings are quoted and close on the same line (https://toml.io)";
    /// A key the table does not have.
    UnknownKey = "E0105", "unknown-key", "a key this table does not have", "check the spelling against the key list in docs/stack-file.md; the help shows the nearest key";
    /// A key given twice.
    DuplicateKey = "E0106", "duplicate-key", "a key given twice in one table", "give each key once per table; merge the two definitions";
    /// A key the table needs.
    MissingKey = "E0107", "missing-key", "a key this table needs is missing", "add the key the message names to this table";
    /// A value of the wrong TOML type.
    WrongType = "E0108", "wrong-type", "a value of the wrong type for its key", "write the value in the form docs/stack-file.md shows for this key (a string, a list, a table, a number or a bool)";
    /// No `[stack]` table.
    NoStack = "E0109", "no-stack", "the file has no `[stack]` table", "start the file with `[stack]` and `name = \"...\"`";
    /// No components.
    NoComponents = "E0110", "no-components", "the stack has no components", "add a `[component.<name>]` table with a `from` key";

    /// Keys that exclude each other.
    ConflictingKeys = "E0111", "conflicting-keys", "two keys that exclude each other, or a key that belongs with another", "keep one of the two keys; the help names which key goes with which";

    /// An arg name that is not an identifier.
    ArgName = "E0201", "arg-name", "an arg name that cannot be used in `{name}` or a condition", "use letters, digits and `_`, starting with a letter or `_`";
    /// A name the stack reserves.
    ReservedName = "E0202", "reserved-name", "an arg named like a name the stack provides", "rename the arg: `stack` and `component` are set by Strata";
    /// A malformed arg declaration.
    ArgDeclaration = "E0203", "arg-declaration", "an arg declaration with no valid type", "declare an arg by its default (`version = \"1.0\"`, `gpu = false`, `jobs = 4`) or by a table (`{ type = \"enum\", values = [...], default = \"...\" }`)";
    /// A value that is not of its arg's type.
    ArgValue = "E0204", "arg-value", "a value that is not of its arg's type", "give a value of the arg's type: `true`/`false`/`yes`/`no`/`1`/`0` for a bool, digits for an int, one of `values` for an enum";
    /// A value for an arg the stack does not declare.
    UndeclaredArg = "E0205", "undeclared-arg", "a profile or `--arg` sets an arg the stack does not declare", "declare the arg in `[args]`, or fix the spelling of its name";
    /// A profile the stack does not have.
    UnknownProfile = "E0206", "unknown-profile", "a profile the stack does not have", "use one of the `[profile.<name>]` tables of the stack";

    /// A name that breaks its grammar.
    InvalidName = "E0301", "invalid-name", "a stack, component, user, group or environment name that breaks its rules", "use the characters the help lists for this kind of name";
    /// A reference to a component that does not exist.
    UnknownComponent = "E0302", "unknown-component", "a reference to a component the stack does not have", "name one of the stack's components; an external image needs a tag (`name:tag`)";
    /// Text that is neither a component nor an image reference.
    InvalidImage = "E0303", "invalid-image", "neither a component nor a valid image reference", "write a component name or an image reference such as `debian:bookworm` or `registry.local/team/base:1.0`";
    /// A component that refers to itself.
    SelfReference = "E0304", "self-reference", "a component built from, copied from or a flavour of itself", "name another component, an external image, or the build context";
    /// Components that need each other.
    Cycle = "E0305", "cycle", "components that need each other in a cycle", "break one edge of the cycle: a component cannot need itself, directly or through others";
    /// An enabled component that needs a disabled one.
    DisabledDependency = "E0306", "disabled-dependency", "a component needed by the build is switched off", "enable the dependency too (change the args or profile its `when` reads), or give the dependent component a condition that implies it";
    /// A component without a base.
    MissingBase = "E0307", "missing-base", "a component with no base, or two", "give a component exactly one of `from` and `gpu`";
    /// An image the engine cannot resolve.
    UnresolvableImage = "E0308", "unresolvable-image", "an external image the engine cannot find", "check the image name and tag, push the image to the registry the engine reads, or map it to a reachable copy with `--mirror FROM=TO`";
    /// A component on the build platform used as an image of the target platform.
    BuildPlatform = "E0309", "build-platform", "a component on the build platform (`platform = \"build\"`) where an image of the target platform is needed, or the reverse", "copy what it makes into a component of the target platform (`copy = [{ from = \"<component>\", ... }]`); build `from` a component of the same platform only, and leave a build-platform component unpublished";
    /// Two names of one image that are the same.
    DuplicateTag = "E0310", "duplicate-tag", "two naming rules of one image that give the same repository and tag", "give each naming rule of an `image` list its own tag or repository; when args make two rules equal, give them other values";

    /// A user policy that cannot be applied.
    UserPolicy = "E0401", "user-policy", "a `[user]` policy with an invalid name, id or setting", "give `[user]` a non-root name, a uid and gid between 1 and 2147483646, and `on-conflict = \"rename\"` or `\"error\"`";
    /// A user a component or step names that is not defined.
    UnknownUser = "E0402", "unknown-user", "a component, step or test runs as a user the stack does not define", "declare the user in `[user]`, or run as `root`";

    /// A step or test that does nothing.
    EmptyStep = "E0501", "empty-step", "a step or test with nothing to do", "give the step something to do, or remove it";
    /// A path in the image that is not absolute.
    NotAbsolute = "E0502", "not-absolute", "a path in the image that does not start with `/`", "write the path starting with `/`";
    /// A context path outside the build context.
    OutsideContext = "E0503", "outside-context", "a context path that leaves the build context, or a URL", "write a path relative to the build context that stays inside it; copy absolute paths from a component or image with `from`";
    /// A word that is not one of the accepted choices.
    UnknownChoice = "E0504", "unknown-choice", "a setting that is not one of its accepted words", "use one of the words the help lists";
    /// A malformed setting value.
    InvalidSetting = "E0505", "invalid-setting", "a port, duration, count or file mode that cannot be read", "write the value in the form the help shows (`8080/tcp`, `30s`, `0755`)";

    /// A GPU flavour that is inconsistent.
    GpuFlavour = "E0601", "gpu-flavour", "a GPU flavour whose mode and copy list disagree", "use `mode = \"replay\"` without `copy`, or `mode = \"copy\"` with the paths to copy";

    /// A condition that cannot be parsed.
    ConditionSyntax = "E0701", "condition-syntax", "a `when` condition that cannot be read", "write conditions such as `spark && !gpu` or `python == '3.11'`";
    /// A condition that compares values of different types.
    ConditionType = "E0702", "condition-type", "a `when` condition that mixes types or values", "stand alone only with a bool arg; compare a string or enum arg with a quoted value it can take";
    /// A condition that reads a name that is not an arg.
    ConditionArg = "E0703", "condition-arg", "a `when` condition that reads a name that is not an arg", "read only args declared in `[args]`; check the spelling";

    /// A malformed `{name}`.
    InterpolationSyntax = "E0801", "interpolation-syntax", "an unclosed `{` or unmatched `}` in a value", "write `{name}` to insert an arg, `{{` and `}}` for literal braces";
    /// `{name}` for a name that is not an arg.
    UnknownReference = "E0802", "unknown-reference", "`{name}` where `name` is not an arg of the stack", "declare the arg in `[args]`, use `{stack}` or `{component}`, or write `{{` for a literal brace";
    /// A value too large once args are inserted.
    ValueTooLarge = "E0803", "value-too-large", "a value or file too large once args are inserted", "keep args short; pass large content as a file in the build context";
    /// A value that breaks the rule of the place it lands in.
    InvalidValue = "E0804", "invalid-value", "a value that is not allowed where it lands (a path, a package, a passwd field)", "give an arg value that is valid where it is inserted; the message names the args that produced the value";

    /// `extends` names no template.
    UnknownTemplate = "E1001", "unknown-template", "`extends` names no template or component that can be extended", "name a `[template.<name>]` table, or a component without a matrix";
    /// A cycle or an overlong chain of `extends`.
    ExtendsChain = "E1002", "extends-chain", "a cycle of `extends`, or a chain too deep or too long", "extend each template once, in a chain without cycles";
    /// A matrix that cannot be expanded.
    Matrix = "E1003", "matrix", "a matrix with no values, a taken name, or a value that cannot be inserted", "give each matrix name a list of plain values and use `{name}` only for matrix names and args";
    /// A name an expansion makes that is invalid or taken.
    InstanceName = "E1004", "instance-name", "a template or matrix makes a component name that is invalid or already taken", "use every matrix name in the table's name, and values that make valid, new component names";
    /// A path read from the build context that is not there.
    MissingInput = "E1101", "missing-input", "a path a component reads is not in the build context", "add the file or directory to the context, or fix the path (the help shows the nearest existing one)";
    /// A path of the wrong kind.
    WrongInputKind = "E1102", "wrong-input-kind", "a context path of the wrong kind (a file for a directory, a repository without its index, a wheel directory without wheels)", "name a path of the kind the key reads; the help says what it must hold";
    /// A path the ignore file excludes.
    IgnoredInput = "E1103", "ignored-input", "a path a component reads is excluded by the ignore file", "remove the pattern from the ignore file, or add a `!path` exception after it";

    /// An `allow` entry that names no lint.
    UnknownLint = "E0901", "unknown-lint", "an `allow` entry that is not a lint id", "use a lint id from docs/lints.md";
}

impl ErrorCode {
    /// The code with this id (`E0302`) or name (`unknown-component`).
    pub fn find(text: &str) -> Option<ErrorCode> {
        let text = text.trim();
        ErrorCode::ALL
            .iter()
            .copied()
            .find(|c| c.id().eq_ignore_ascii_case(text) || c.name() == text)
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn ids_and_names_are_unique_and_well_formed() {
        let ids: BTreeSet<_> = ErrorCode::ALL.iter().map(|c| c.id()).collect();
        let names: BTreeSet<_> = ErrorCode::ALL.iter().map(|c| c.name()).collect();
        assert_eq!(ids.len(), ErrorCode::ALL.len());
        assert_eq!(names.len(), ErrorCode::ALL.len());
        for c in ErrorCode::ALL {
            let id = c.id();
            assert!(
                id.len() == 5 && id.starts_with('E') && id[1..].bytes().all(|b| b.is_ascii_digit()),
                "{id}"
            );
            assert_eq!(ErrorCode::find(id), Some(*c));
            assert_eq!(ErrorCode::find(&id.to_lowercase()), Some(*c));
            assert_eq!(ErrorCode::find(c.name()), Some(*c));
        }
        assert_eq!(ErrorCode::find("E9999"), None);
    }
}
