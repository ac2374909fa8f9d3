//! The README's walk-through as data: its shell steps, in order, each with the output the README shows.
//!
//! Steps are the ```` ```sh ```` blocks between `<!-- walkthrough:begin -->` and `<!-- walkthrough:end -->`
//! (there may be several such regions; they run as one script, top to bottom). A ```` ```text ```` block
//! after a step, before the next one, is that step's standard output. In it, `…` stands for any text
//! within a line (ids, keys, times), and a line that is only `…` for any number of lines.

/// One shell block and what it prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The README line the block starts on (1-based), for messages.
    pub line: usize,
    /// The commands.
    pub script: String,
    /// The output the README shows, if it shows one.
    pub expected: Option<String>,
}

const BEGIN: &str = "<!-- walkthrough:begin -->";
const END: &str = "<!-- walkthrough:end -->";

/// The steps of `readme`, or what is wrong with its markers and blocks.
pub fn steps(readme: &str) -> Result<Vec<Step>, String> {
    let mut steps: Vec<Step> = Vec::new();
    let (mut inside, mut block) = (false, None::<(usize, String, String)>);
    for (index, line) in readme.lines().enumerate() {
        let number = index + 1;
        if let Some((start, kind, mut text)) = block.take() {
            if line.trim_end() == "```" {
                attach(&mut steps, start, &kind, text)?;
            } else {
                text.push_str(line);
                text.push('\n');
                block = Some((start, kind, text));
            }
            continue;
        }
        match line.trim_end() {
            BEGIN if inside => return Err(format!("line {number}: nested {BEGIN}")),
            BEGIN => inside = true,
            END if !inside => return Err(format!("line {number}: {END} without a begin")),
            END => inside = false,
            fence if inside && fence.starts_with("```") => {
                block = Some((number, fence[3..].trim().to_owned(), String::new()));
            }
            _ => {}
        }
    }
    match (inside, block) {
        (_, Some((start, _, _))) => Err(format!("line {start}: block never closed")),
        (true, None) => Err(format!("{BEGIN} without an end")),
        (false, None) if steps.is_empty() => Err("no walk-through steps".into()),
        (false, None) => Ok(steps),
    }
}

fn attach(steps: &mut Vec<Step>, line: usize, kind: &str, text: String) -> Result<(), String> {
    match kind {
        "sh" => steps.push(Step {
            line,
            script: text,
            expected: None,
        }),
        "text" => match steps.last_mut() {
            Some(step) if step.expected.is_none() => step.expected = Some(text),
            _ => {
                return Err(format!(
                    "line {line}: an output block needs a shell block before it"
                ));
            }
        },
        other => {
            return Err(format!(
                "line {line}: a ```{other} block inside the walk-through"
            ));
        }
    }
    Ok(())
}

/// Whether `actual` is what `expected` shows (trailing blank lines and spaces aside).
pub fn matches(expected: &str, actual: &str) -> bool {
    let lines = |text: &str| -> Vec<String> {
        let mut lines: Vec<String> = text.lines().map(|l| l.trim_end().to_owned()).collect();
        while lines.last().is_some_and(String::is_empty) {
            lines.pop();
        }
        lines
    };
    lines_match(&lines(expected), &lines(actual))
}

fn lines_match(expected: &[String], actual: &[String]) -> bool {
    match expected.split_first() {
        None => actual.is_empty(),
        Some((first, rest)) if first == "…" => {
            (0..=actual.len()).any(|skip| lines_match(rest, &actual[skip..]))
        }
        Some((first, rest)) => actual
            .split_first()
            .is_some_and(|(line, more)| line_matches(first, line) && lines_match(rest, more)),
    }
}

/// `…` matches any text; with only this one wildcard, taking each literal part at its first place works.
fn line_matches(pattern: &str, line: &str) -> bool {
    let parts: Vec<&str> = pattern.split('…').collect();
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if parts.len() == 1 {
        return pattern == line;
    }
    let Some(mut rest) = line.strip_prefix(first) else {
        return false;
    };
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(at) => rest = &rest[at + middle.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    const README: &str = "# T\n```sh\nnot run\n```\n<!-- walkthrough:begin -->\nText.\n```sh\necho a\n```\n\
        Prose.\n```text\na\n```\n```sh\ntrue\n```\n<!-- walkthrough:end -->\nOutside.\n\
        <!-- walkthrough:begin -->\n```sh\necho b\n```\n<!-- walkthrough:end -->\n";

    #[test]
    fn steps_are_the_shell_blocks_inside_the_markers_with_their_outputs() {
        let steps = steps(README).expect("valid");
        let scripts: Vec<_> = steps.iter().map(|s| s.script.as_str()).collect();
        assert_eq!(scripts, ["echo a\n", "true\n", "echo b\n"]);
        assert_eq!(steps[0].expected.as_deref(), Some("a\n"));
        assert_eq!((steps[0].line, steps[1].expected.clone()), (7, None));
    }

    #[test]
    fn broken_markers_and_stray_blocks_are_reported() {
        for bad in [
            "<!-- walkthrough:begin -->\n```sh\ntrue\n```\n",
            "<!-- walkthrough:end -->\n",
            "<!-- walkthrough:begin -->\n```text\nx\n```\n<!-- walkthrough:end -->\n",
            "<!-- walkthrough:begin -->\n```sh\ntrue\n<!-- walkthrough:end -->\n",
            "<!-- walkthrough:begin -->\n```python\nx\n```\n<!-- walkthrough:end -->\n",
            "no markers\n",
        ] {
            assert!(steps(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn an_ellipsis_stands_for_any_text_in_a_line_and_alone_for_any_lines() {
        let cases = [
            ("{\"id\":\"…\"}", "{\"id\":\"0192\"}", true),
            ("{\"id\":\"…\"}", "{\"id\":\"0192\"} extra", false),
            ("a…b…c", "a-b-b-c", true),
            ("a…b…c", "a-c", false),
            ("x\n…\ny", "x\n1\n2\ny", true),
            ("x\n…\ny", "x\ny", true),
            ("x\ny", "x\ny\n\n", true),
            ("x\ny", "x\nz", false),
            ("x", "x\ny", false),
        ];
        for (expected, actual, result) in cases {
            assert_eq!(
                matches(expected, actual),
                result,
                "{expected:?} ~ {actual:?}"
            );
        }
    }
}
