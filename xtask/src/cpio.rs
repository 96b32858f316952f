//! A minimal writer of `newc` cpio archives, the initramfs format.

use std::io::Write;

/// One archive entry.
pub enum Entry<'a> {
    /// A directory.
    Dir(&'a str),
    /// A regular file with its mode bits.
    File(&'a str, &'a [u8], u32),
    /// A symbolic link to a target.
    Symlink(&'a str, &'a str),
}

fn header(out: &mut Vec<u8>, ino: u32, mode: u32, name: &str, size: usize) {
    let fields = [
        ino,
        mode,
        0,
        0,
        1,
        0,
        size as u32,
        0,
        0,
        0,
        0,
        name.len() as u32 + 1,
        0,
    ];
    out.extend_from_slice(b"070701");
    for f in fields {
        write!(out, "{f:08x}").expect("write to Vec");
    }
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    pad(out);
}

fn pad(out: &mut Vec<u8>) {
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

/// Serialises `entries` into a newc archive.
pub fn archive(entries: &[Entry<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let ino = i as u32 + 1;
        match *e {
            Entry::Dir(name) => header(&mut out, ino, 0o040755, name, 0),
            Entry::File(name, data, mode) => {
                header(&mut out, ino, 0o100000 | mode, name, data.len());
                out.extend_from_slice(data);
                pad(&mut out);
            }
            Entry::Symlink(name, target) => {
                header(&mut out, ino, 0o120777, name, target.len());
                out.extend_from_slice(target.as_bytes());
                pad(&mut out);
            }
        }
    }
    header(&mut out, 0, 0, "TRAILER!!!", 0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_aligned_and_terminated() {
        let a = archive(&[Entry::Dir("bin"), Entry::File("bin/x", b"hello", 0o755)]);
        assert!(a.starts_with(b"070701"));
        assert_eq!(a.len() % 4, 0);
        let text = String::from_utf8_lossy(&a);
        assert!(text.contains("bin/x\0"));
        assert!(text.contains("hello"));
        assert!(a.ends_with(b"TRAILER!!!\0\0\0\0"));
    }
}
