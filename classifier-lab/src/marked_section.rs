//! A part of BENCHMARKS.md that one command writes and the others carry over as it is: the
//! storm's (`cargo xtask storm --write-benchmarks`) and the before-and-after comparison
//! (`cargo xtask bench --before REV`). HTML comments mark where it begins and ends, so a
//! full `cargo xtask bench`, which rewrites the rest of the file, can find it and keep it.

use std::path::Path;

/// The markers of one section.
#[derive(Clone, Copy)]
pub struct Marked {
    pub begin: &'static str,
    pub end: &'static str,
}

impl Marked {
    /// The section in `text`, markers included.
    pub fn of<'a>(&self, text: &'a str) -> Option<&'a str> {
        let start = text.find(self.begin)?;
        let end = text[start..].find(self.end)? + start + self.end.len();
        Some(&text[start..end])
    }

    /// `text` with the section replaced by `section` (markers included), or with `section`
    /// appended when it has none.
    pub fn put(&self, text: &str, section: &str) -> String {
        match self.of(text) {
            Some(old) => text.replacen(old, section, 1),
            None => format!("{}\n\n{section}\n", text.trim_end()),
        }
    }

    /// `text`, with the section that `previous` holds carried over (`text` as it is when
    /// `previous` has none).
    pub fn carry_over(&self, previous: &str, text: String) -> String {
        match self.of(previous) {
            Some(section) => self.put(&text, section),
            None => text,
        }
    }

    /// Writes `section` into the file at `path` (created if missing).
    pub fn write(&self, path: &Path, section: &str) -> std::io::Result<()> {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        std::fs::write(path, self.put(&text, section))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECTION: Marked = Marked {
        begin: "<!-- part: begin -->",
        end: "<!-- part: end -->",
    };

    fn section(body: &str) -> String {
        format!("{}\n{body}\n{}", SECTION.begin, SECTION.end)
    }

    #[test]
    fn a_section_is_replaced_or_appended_and_the_rest_kept() {
        let appended = SECTION.put("# Benchmarks\n\ntext\n", &section("one"));
        assert!(appended.starts_with("# Benchmarks\n\ntext\n\n"));
        let replaced = SECTION.put(&format!("{appended}tail\n"), &section("two"));
        assert_eq!(SECTION.of(&replaced), Some(section("two").as_str()));
        assert!(replaced.ends_with("tail\n") && !replaced.contains("one"));
    }

    #[test]
    fn a_rewritten_file_keeps_the_section_of_the_previous_one() {
        let previous = SECTION.put("# old\n", &section("kept"));
        let text = SECTION.carry_over(&previous, "# new\n".to_owned());
        assert_eq!(SECTION.of(&text), Some(section("kept").as_str()));
        assert!(text.starts_with("# new\n"));
        assert_eq!(
            SECTION.carry_over("# none\n", "# new\n".to_owned()),
            "# new\n"
        );
    }
}
