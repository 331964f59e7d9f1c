//! The tar members of a bundle as Docker's tar reader (Go's `archive/tar`,
//! under `docker load`) sees them, read with every size bounded.
//!
//! The `tar` crate is used in raw mode: GNU long names, long link names and
//! PAX records are applied here, the way Go applies them, after checking
//! their size. Whatever two tar readers could read differently is rejected.

use std::collections::BTreeMap;
use std::io::{self, Read};

use anyhow::{anyhow, bail, Context, Result};
use sha2::Digest;

use super::{hex, Hashing};

/// Largest GNU long name, long link or PAX header content (bytes).
pub const MAX_HEADER_EXTENSION: u64 = 64 << 10;
/// Longest member name or link target (bytes).
pub const MAX_NAME: usize = 1024;
/// Most members in one bundle.
pub const MAX_MEMBERS: usize = 100_000;
/// Largest JSON member kept in memory (`manifest.json`, configs, ...).
pub const MAX_JSON_MEMBER: u64 = 16 << 20;
/// Most bytes of JSON members kept in memory in all.
pub const MAX_JSON_TOTAL: u64 = 64 << 20;

/// A regular member's content.
#[derive(Debug)]
pub(super) struct FileInfo {
    pub size: u64,
    pub sha256: String,
}

/// What a member is.
#[derive(Debug)]
pub(super) enum Kind {
    File(FileInfo),
    Dir,
    /// A legacy layer link: `<id>/layer.tar` -> `../<id2>/layer.tar`, stored as `<id2>/layer.tar`.
    LayerLink(String),
}

/// The members read, by their (canonical) names.
#[derive(Debug, Default)]
pub(super) struct Members {
    pub by_name: BTreeMap<String, Kind>,
    /// The content of the small regular members that look like JSON.
    json: BTreeMap<String, Vec<u8>>,
    json_bytes: u64,
    /// Bytes of regular content read.
    pub bytes: u64,
}

impl Members {
    /// A regular member.
    pub fn file(&self, name: &str) -> Option<&FileInfo> {
        match self.by_name.get(name) {
            Some(Kind::File(f)) => Some(f),
            _ => None,
        }
    }

    /// Every regular member.
    pub fn files(&self) -> impl Iterator<Item = (&str, &FileInfo)> {
        self.by_name.iter().filter_map(|(n, k)| match k {
            Kind::File(f) => Some((n.as_str(), f)),
            _ => None,
        })
    }

    /// The content of a small JSON member.
    pub fn json(&self, name: &str) -> Option<&[u8]> {
        self.json.get(name).map(Vec::as_slice)
    }
}

/// The members read, and why reading stopped early if it did.
pub(super) struct ReadOutcome {
    pub members: Members,
    pub error: Option<anyhow::Error>,
}

/// Reads every member of the (decompressed) tar stream, then the rest of
/// the stream, so a compressed stream's checksum is checked too.
pub(super) fn read(input: impl Read) -> ReadOutcome {
    let mut archive = tar::Archive::new(input);
    let mut members = Members::default();
    let mut last = String::from("(the start)");
    let mut error = read_members(&mut archive, &mut members, &mut last).err();
    if error.is_none() {
        // Read to the end of the compressed stream: its checksum covers the tail.
        let mut rest = archive.into_inner();
        if let Err(e) = io::copy(&mut rest, &mut io::sink()) {
            error = Some(anyhow!(
                "the compressed stream is corrupt or truncated (after member `{last}`): {e}"
            ));
        }
    }
    ReadOutcome { members, error }
}

/// What extension headers say about the next member.
#[derive(Default)]
struct Pending {
    long_name: Option<String>,
    long_link: Option<String>,
    pax_path: Option<String>,
    pax_link: Option<String>,
    pax_size: Option<u64>,
    /// Any extension header seen since the last member.
    any: bool,
}

fn read_members<R: Read>(
    archive: &mut tar::Archive<R>,
    members: &mut Members,
    last: &mut String,
) -> Result<()> {
    let entries = archive
        .entries()
        .context("the input is not a tar archive")?
        .raw(true);
    let mut pending = Pending::default();
    let mut count = 0usize;
    for entry in entries {
        let mut entry = entry.with_context(|| {
            format!("the archive is corrupt or truncated after member `{last}`")
        })?;
        let header = entry.header().clone();
        let at = || format!("the member after `{last}`");
        let size = header
            .entry_size()
            .with_context(|| format!("{}: its size is not a number", at()))?;
        let kind = header.entry_type().as_byte();
        if matches!(kind, b'L' | b'K' | b'x' | b'g') {
            if size > MAX_HEADER_EXTENSION {
                bail!(
                    "{}: its {} header is {size} bytes (at most {} KiB)",
                    at(),
                    extension_name(kind),
                    MAX_HEADER_EXTENSION >> 10
                );
            }
            let mut data = Vec::with_capacity(size as usize);
            (&mut entry)
                .take(size)
                .read_to_end(&mut data)
                .with_context(|| {
                    format!("{}: its {} header is truncated", at(), extension_name(kind))
                })?;
            if data.len() as u64 != size {
                bail!("{}: its {} header is truncated", at(), extension_name(kind));
            }
            apply_extension(&mut pending, kind, &data)
                .with_context(|| format!("{}: its {} header", at(), extension_name(kind)))?;
            continue;
        }
        count += 1;
        if count > MAX_MEMBERS {
            bail!("more than {MAX_MEMBERS} members (after `{last}`)");
        }
        let raw = member_name(&header, &pending).with_context(at)?;
        let name = normalise(&raw).with_context(|| {
            format!("member `{raw}`: docker load would write it outside its directory")
        })?;
        if let Some(size) = pending.pax_size {
            if size != header.entry_size().unwrap_or(u64::MAX) {
                bail!("member `{raw}`: its PAX size {size} differs from its header's");
            }
        }
        if members.by_name.contains_key(&name) {
            bail!("member `{raw}` is a second `{name}`: docker load would keep the last one");
        }
        if !is_canonical(&raw, &name, kind) {
            bail!("member `{raw}`: docker load reads its name as `{name}`; docker save writes names plainly");
        }
        check_parents(members, &name).with_context(|| format!("member `{raw}`"))?;
        last.clone_from(&raw);
        let link = link_name(&header, &pending).with_context(|| format!("member `{raw}`"))?;
        pending = Pending::default();
        let what = match kind {
            b'0' => {
                let info = read_file(members, &mut entry, &name, size)
                    .with_context(|| format!("member `{raw}` is corrupt or truncated"))?;
                Kind::File(info)
            }
            b'5' if size == 0 => Kind::Dir,
            b'2' if size == 0 => {
                let target = layer_link(&name, &link).with_context(|| {
                    format!("member `{raw}` is a symbolic link to `{link}`: docker save writes none but legacy layer links")
                })?;
                Kind::LayerLink(target)
            }
            b'5' | b'2' => bail!("member `{raw}` is a link or directory with {size} bytes of content"),
            b'1' => bail!("member `{raw}` is a hard link to `{link}`: docker save writes none"),
            b'\0' => bail!("member `{raw}` has the old regular-file type, which docker save does not write"),
            other => bail!(
                "member `{raw}` has tar type `{}`: docker save writes only files, directories and layer links",
                other.escape_ascii()
            ),
        };
        members.by_name.insert(name, what);
    }
    if pending.any {
        bail!("extension headers at the end of the archive (after `{last}`) describe no member");
    }
    Ok(())
}

fn extension_name(kind: u8) -> &'static str {
    match kind {
        b'L' => "GNU long name",
        b'K' => "GNU long link",
        b'x' => "PAX",
        _ => "PAX global",
    }
}

/// Records what an extension header says about the next member.
fn apply_extension(p: &mut Pending, kind: u8, data: &[u8]) -> Result<()> {
    if kind == b'g' {
        // Go returns a global header as an entry of its own; docker load ignores it.
        if p.any {
            bail!("it follows other extension headers");
        }
        return Ok(());
    }
    p.any = true;
    match kind {
        b'L' | b'K' => {
            let slot = if kind == b'L' {
                &mut p.long_name
            } else {
                &mut p.long_link
            };
            if slot.is_some() {
                bail!("it is the second one for the same member");
            }
            *slot = Some(text(cut_nul(data))?);
        }
        _ => {
            if p.pax_path.is_some() || p.pax_link.is_some() || p.pax_size.is_some() {
                bail!("it is the second one for the same member");
            }
            let mut keys = std::collections::BTreeSet::new();
            for ext in tar::PaxExtensions::new(data) {
                let ext = ext.context("a record is malformed")?;
                let key = ext.key().context("a key is not UTF-8")?;
                if !keys.insert(key.to_owned()) {
                    bail!("key `{key}` appears twice");
                }
                match key {
                    "path" => p.pax_path = Some(text(ext.value_bytes())?),
                    "linkpath" => p.pax_link = Some(text(ext.value_bytes())?),
                    "size" => {
                        let v = ext.value().context("`size` is not UTF-8")?;
                        if v.is_empty() || !v.bytes().all(|c| c.is_ascii_digit()) {
                            bail!("`size` is not a number");
                        }
                        p.pax_size = Some(v.parse().context("`size` is out of range")?);
                    }
                    k if k.starts_with("GNU.sparse") => bail!("sparse files are not supported"),
                    _ => {}
                }
            }
        }
    }
    Ok(())
}

/// A name as UTF-8, bounded, without NUL.
fn text(bytes: &[u8]) -> Result<String> {
    if bytes.len() > MAX_NAME {
        bail!("a name of {} bytes (at most {MAX_NAME})", bytes.len());
    }
    if bytes.contains(&0) {
        bail!("a name contains a NUL byte");
    }
    String::from_utf8(bytes.to_vec()).map_err(|_| anyhow!("a name is not UTF-8"))
}

/// Up to the first NUL, as Go reads header strings.
fn cut_nul(b: &[u8]) -> &[u8] {
    b.iter().position(|&c| c == 0).map_or(b, |i| &b[..i])
}

/// The member's name: a GNU long name or a PAX path, else the header's.
fn member_name(header: &tar::Header, p: &Pending) -> Result<String> {
    match (&p.long_name, &p.pax_path) {
        (Some(_), Some(_)) => bail!("it has both a GNU long name and a PAX path"),
        (Some(n), None) | (None, Some(n)) => return Ok(n.clone()),
        (None, None) => {}
    }
    let bytes = header.as_bytes();
    // USTAR's name prefix: Go reads it as 155 or 131 bytes depending on the
    // header's trailer, so a name must not use it.
    if &bytes[257..263] == b"ustar\0" && bytes[345..500].iter().any(|&c| c != 0) {
        bail!("its header uses the USTAR name prefix, which docker save does not write");
    }
    text(cut_nul(&bytes[..100]))
}

/// The member's link target: a GNU long link or a PAX linkpath, else the header's.
fn link_name(header: &tar::Header, p: &Pending) -> Result<String> {
    match (&p.long_link, &p.pax_link) {
        (Some(_), Some(_)) => bail!("it has both a GNU long link and a PAX linkpath"),
        (Some(n), None) | (None, Some(n)) => Ok(n.clone()),
        (None, None) => text(cut_nul(&header.as_bytes()[157..257])),
    }
}

/// The name `docker load` writes the member to (Go's `filepath.Clean`
/// under the extraction directory), or None when it would leave it.
pub(super) fn normalise(raw: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for p in raw.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// docker save writes `name`, or `name/` for a directory.
fn is_canonical(raw: &str, name: &str, kind: u8) -> bool {
    raw == name || (kind == b'5' && raw.strip_suffix('/') == Some(name))
}

/// No member may sit below a non-directory, or replace a directory that
/// holds members (docker load would remove them).
fn check_parents(members: &Members, name: &str) -> Result<()> {
    let mut at = 0;
    while let Some(i) = name[at..].find('/') {
        let parent = &name[..at + i];
        if matches!(
            members.by_name.get(parent),
            Some(Kind::File(_) | Kind::LayerLink(_))
        ) {
            bail!("it is below `{parent}`, which is not a directory");
        }
        at += i + 1;
    }
    let below = format!("{name}/");
    if let Some((child, _)) = members.by_name.range(below.clone()..).next() {
        if child.starts_with(&below) {
            bail!("it would replace the directory holding `{child}`");
        }
    }
    Ok(())
}

/// A legacy layer link (`<id>/layer.tar` -> `../<id2>/layer.tar`, what
/// docker save before Docker 25 writes for a layer two images share):
/// its target, as a member name.
fn layer_link(name: &str, link: &str) -> Option<String> {
    let id = name.strip_suffix("/layer.tar")?;
    let target = link.strip_prefix("../")?;
    let target_id = target.strip_suffix("/layer.tar")?;
    (is_hex64(id) && is_hex64(target_id) && id != target_id).then(|| target.to_owned())
}

/// 64 lowercase hex digits: a sha256.
pub(super) fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

/// Hashes a regular member, keeping it when it is small and looks like JSON.
fn read_file(
    members: &mut Members,
    entry: &mut impl Read,
    name: &str,
    size: u64,
) -> Result<FileInfo> {
    let mut hashing = Hashing::new(entry.take(size));
    if size <= MAX_JSON_MEMBER {
        let mut data = Vec::with_capacity(size.min(64 << 10) as usize);
        hashing.read_to_end(&mut data)?;
        if matches!(data.first(), Some(b'{' | b'[')) {
            members.json_bytes += data.len() as u64;
            if members.json_bytes > MAX_JSON_TOTAL {
                bail!(
                    "the bundle's JSON members pass {} MiB in all",
                    MAX_JSON_TOTAL >> 20
                );
            }
            members.json.insert(name.to_owned(), data);
        }
    } else {
        io::copy(&mut hashing, &mut io::sink())?;
    }
    if hashing.size != size {
        bail!("it ends after {} of {size} bytes", hashing.size);
    }
    members.bytes += size;
    Ok(FileInfo {
        size,
        sha256: hex(&hashing.hasher.finalize()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_normalise_as_docker_load_writes_them() {
        assert_eq!(
            normalise("./manifest.json").as_deref(),
            Some("manifest.json")
        );
        assert_eq!(
            normalise("blobs//sha256/../sha256/ab").as_deref(),
            Some("blobs/sha256/ab")
        );
        assert_eq!(
            normalise("/manifest.json").as_deref(),
            Some("manifest.json")
        );
        assert_eq!(normalise("../x"), None);
        assert_eq!(normalise("./"), None);
    }

    #[test]
    fn only_legacy_layer_links_are_links() {
        let a = "a".repeat(64);
        let b = "b".repeat(64);
        assert_eq!(
            layer_link(&format!("{a}/layer.tar"), &format!("../{b}/layer.tar")),
            Some(format!("{b}/layer.tar"))
        );
        assert_eq!(
            layer_link(&format!("{a}/layer.tar"), "../../etc/passwd"),
            None
        );
        assert_eq!(
            layer_link("manifest.json", &format!("../{b}/layer.tar")),
            None
        );
        assert_eq!(
            layer_link(&format!("{a}/layer.tar"), &format!("../{a}/layer.tar")),
            None
        );
    }

    /// A raw header of `kind` named `name` with `size` bytes of content following.
    fn header(name: &str, kind: u8, size: u64) -> Vec<u8> {
        let mut h = tar::Header::new_ustar();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_size(size);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::new(kind));
        h.set_cksum();
        h.as_bytes().to_vec()
    }

    fn padded(mut v: Vec<u8>, content: &[u8]) -> Vec<u8> {
        v.extend_from_slice(content);
        v.resize(v.len().div_ceil(512) * 512, 0);
        v
    }

    fn error_of(tar: Vec<u8>) -> String {
        let mut tar = tar;
        tar.extend_from_slice(&[0; 1024]);
        let r = read(tar.as_slice());
        format!("{:#}", r.error.expect("an error"))
    }

    #[test]
    fn a_pax_size_that_differs_from_the_header_is_rejected() {
        let pax = b"12 size=600\n";
        let tar = padded(header("PaxHeader", b'x', pax.len() as u64), pax);
        let tar = padded([tar, header("manifest.json", b'0', 3)].concat(), b"[]\n");
        assert!(error_of(tar).contains("its PAX size 600 differs"));
    }

    #[test]
    fn a_directory_with_content_is_rejected() {
        let tar = padded(header("blobs/", b'5', 512), &[b'x'; 512]);
        assert!(error_of(tar).contains("member `blobs/` is a link or directory with 512 bytes"));
    }

    #[test]
    fn an_oversized_pax_header_is_rejected_before_it_is_read() {
        // The header claims 1 GiB; none of it follows.
        let e = error_of(header("PaxHeader", b'x', 1 << 30));
        assert!(e.contains("its PAX header is 1073741824 bytes"), "{e}");
    }

    #[test]
    fn a_long_name_applies_up_to_its_first_nul() {
        let name = b"manifest.json\0ignored";
        let tar = padded(header("././@LongLink", b'L', name.len() as u64), name);
        let tar = padded([tar, header("x", b'0', 3)].concat(), b"[]\n");
        let mut tar = tar;
        tar.extend_from_slice(&[0; 1024]);
        let r = read(tar.as_slice());
        assert!(r.error.is_none());
        assert!(r.members.file("manifest.json").is_some());
    }
}
