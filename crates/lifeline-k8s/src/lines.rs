//! Line index for YAML documents: which line each field of a document starts on.
//!
//! `serde_yaml_ng` gives typed values but no positions, so each source is also read once with
//! the `saphyr-parser` event parser, which reports a [`saphyr_parser::Span`] for every node. The
//! result is a small tree of keys and indices per document that [`DocLines::line_of`] walks with
//! a field path such as `spec.template.spec.containers[0].livenessProbe`.

use saphyr_parser::{Event, Parser, ScanError};

/// One node of the line tree: the 1-based line it starts on and its children.
#[derive(Debug, Clone, Default)]
pub(crate) struct Node {
    pub(crate) line: usize,
    children: Children,
}

#[derive(Debug, Clone, Default)]
enum Children {
    #[default]
    Leaf,
    Map(Vec<(String, Node)>),
    Seq(Vec<Node>),
}

/// Line information for one YAML document of a source.
#[derive(Debug, Clone)]
pub(crate) struct DocLines {
    /// 1-based line where the document starts (its `---` or its first node).
    pub(crate) start_line: usize,
    /// 1-based line of the last line that belongs to this document (inclusive).
    pub(crate) end_line: usize,
    pub(crate) root: Node,
}

/// A YAML syntax error with its 1-based line and column.
#[derive(Debug, Clone)]
pub(crate) struct SyntaxError {
    pub(crate) line: usize,
    pub(crate) column: usize,
    pub(crate) message: String,
}

/// One segment of a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

enum Frame {
    Map {
        node: Node,
        /// Key waiting for its value, with the key's line.
        pending_key: Option<(String, usize)>,
    },
    Seq(Node),
}

impl DocLines {
    /// Line of the deepest node that exists along `path` (the document start if none does).
    pub(crate) fn line_of(&self, path: &str) -> usize {
        let mut node = &self.root;
        let mut line = if node.line == 0 {
            self.start_line
        } else {
            node.line
        };
        for seg in split_path(path) {
            let next = match (&node.children, seg) {
                (Children::Map(entries), Seg::Key(k)) => {
                    entries.iter().find(|(key, _)| key == k).map(|(_, n)| n)
                }
                (Children::Seq(items), Seg::Index(i)) => items.get(i),
                _ => None,
            };
            match next {
                Some(n) => {
                    node = n;
                    line = n.line;
                }
                None => break,
            }
        }
        line
    }
}

/// Splits `a.b[2].c` into segments. Keys containing dots are written `a["x.y/z"]`.
pub(crate) fn split_path(path: &str) -> Vec<Seg<'_>> {
    let mut out = Vec::new();
    let mut rest = path;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("[\"") {
            let end = after.find("\"]").unwrap_or(after.len());
            out.push(Seg::Key(&after[..end]));
            rest = after.get(end + 2..).unwrap_or("");
        } else if let Some(after) = rest.strip_prefix('[') {
            let end = after.find(']').unwrap_or(after.len());
            if let Ok(i) = after[..end].parse() {
                out.push(Seg::Index(i));
            }
            rest = after.get(end + 1..).unwrap_or("");
        } else {
            let rest_trim = rest.strip_prefix('.').unwrap_or(rest);
            let end = rest_trim.find(['.', '[']).unwrap_or(rest_trim.len());
            if end > 0 {
                out.push(Seg::Key(&rest_trim[..end]));
            }
            rest = &rest_trim[end..];
        }
    }
    out
}

/// Reads every document of `text`, returning their line trees in order.
///
/// # Errors
/// The first YAML syntax error, with its position.
pub(crate) fn index_documents(text: &str) -> Result<Vec<DocLines>, SyntaxError> {
    let mut parser = Parser::new_from_str(text);
    let mut docs: Vec<DocLines> = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut current: Option<(usize, Node)> = None;
    while let Some(next) = parser.next_event() {
        let (event, span) = next.map_err(syntax_error)?;
        let line = span.start.line();
        match event {
            Event::DocumentStart(_) => {
                if let Some(prev) = docs.last_mut() {
                    prev.end_line = line.saturating_sub(1).max(prev.start_line);
                }
                current = Some((line, Node::default()));
            }
            Event::DocumentEnd => {
                if let Some((start, root)) = current.take() {
                    docs.push(DocLines {
                        start_line: start,
                        end_line: usize::MAX,
                        root,
                    });
                }
            }
            Event::MappingStart(..) => stack.push(Frame::Map {
                node: Node {
                    line,
                    children: Children::Map(Vec::new()),
                },
                pending_key: None,
            }),
            Event::SequenceStart(..) => stack.push(Frame::Seq(Node {
                line,
                children: Children::Seq(Vec::new()),
            })),
            Event::MappingEnd => {
                if let Some(Frame::Map { node, .. }) = stack.pop() {
                    attach(&mut stack, &mut current, node, None);
                }
            }
            Event::SequenceEnd => {
                if let Some(Frame::Seq(node)) = stack.pop() {
                    attach(&mut stack, &mut current, node, None);
                }
            }
            Event::Scalar(value, ..) => {
                let node = Node {
                    line,
                    children: Children::Leaf,
                };
                attach(&mut stack, &mut current, node, Some(value.as_ref()));
            }
            Event::Alias(_) => {
                let node = Node {
                    line,
                    children: Children::Leaf,
                };
                attach(&mut stack, &mut current, node, Some("*alias"));
            }
            Event::StreamStart | Event::StreamEnd | Event::Nothing => {}
        }
    }
    Ok(docs)
}

/// Attaches a finished node to its parent: as a key (scalars in key position), as a map value,
/// as a sequence item, or as the document root.
fn attach(
    stack: &mut [Frame],
    current: &mut Option<(usize, Node)>,
    node: Node,
    scalar: Option<&str>,
) {
    match stack.last_mut() {
        Some(Frame::Map {
            node: parent,
            pending_key,
        }) => match pending_key.take() {
            None => {
                // Key position. Complex (non-scalar) keys are recorded under an empty name.
                *pending_key = Some((scalar.unwrap_or_default().to_owned(), node.line));
            }
            Some((key, key_line)) => {
                // A finding about `a.b` should point at the `b:` line, not at the first line
                // of b's block value.
                let node = Node {
                    line: key_line,
                    ..node
                };
                if let Children::Map(entries) = &mut parent.children {
                    entries.push((key, node));
                }
            }
        },
        Some(Frame::Seq(parent)) => {
            if let Children::Seq(items) = &mut parent.children {
                items.push(node);
            }
        }
        None => {
            if let Some((_, root)) = current.as_mut() {
                *root = node;
            }
        }
    }
}

fn syntax_error(e: ScanError) -> SyntaxError {
    SyntaxError {
        line: e.marker().line(),
        column: e.marker().col() + 1,
        message: e.info().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
# leading comment
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  annotations:
    lifeline.dev/allow: image/tag
spec:
  template:
    spec:
      containers:
        - name: a
          image: x
        - name: b
          livenessProbe:
            tcpSocket:
              port: 80
---
kind: Service
metadata: {name: svc}
";

    #[test]
    fn lines_follow_paths_and_fall_back_to_the_deepest_existing_node() {
        let docs = index_documents(TEXT).expect("valid yaml");
        assert_eq!(docs.len(), 2);
        let d = &docs[0];
        assert_eq!(d.start_line, 2);
        assert_eq!(d.end_line, 17);
        let cases = [
            ("kind", 3),
            ("metadata.name", 5),
            ("metadata.annotations[\"lifeline.dev/allow\"]", 7),
            ("spec.template.spec.containers[1]", 14),
            (
                "spec.template.spec.containers[1].livenessProbe.tcpSocket",
                16,
            ),
            ("spec.template.spec.containers[1].startupProbe", 14),
            ("spec.template.spec.containers[7].image", 11),
            ("", 2),
        ];
        for (path, line) in cases {
            assert_eq!(d.line_of(path), line, "{path}");
        }
        assert_eq!(docs[1].start_line, 18);
        assert_eq!(docs[1].line_of("metadata.name"), 20);
    }

    #[test]
    fn syntax_errors_carry_a_line() {
        let err = index_documents("a: 1\nb: [1, 2\nc: 3\n").expect_err("unterminated flow");
        assert!(err.line >= 2, "{err:?}");
    }

    #[test]
    fn split_path_handles_quoted_keys_and_indices() {
        assert_eq!(
            split_path("a.b[2][\"x.y/z\"].c"),
            vec![
                Seg::Key("a"),
                Seg::Key("b"),
                Seg::Index(2),
                Seg::Key("x.y/z"),
                Seg::Key("c")
            ]
        );
    }
}
