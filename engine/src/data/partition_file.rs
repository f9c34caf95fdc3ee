//! Partitions given as a file of index lists, so a run can use exactly the split another
//! tool made (e.g. Flower Datasets' `DirichletPartitioner`) and be compared on equal terms.
//!
//! The file is JSON: either an array of arrays, client `i` holding the `i`-th list, or an
//! object whose keys are the client numbers `"0"`, `"1"`, ... (what dumping Flower's
//! partition-id-to-indices map gives). Indices count from 0 in the IDX file's order.
//!
//! [`PartitionSource`] is what command lines take: a scheme (`iid`, `dirichlet:<alpha>`,
//! `shards:<n>`) or `file:<path>`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use super::partition::{PartitionSpec, partition};
use crate::error::{Error, Result};

/// Where a partition comes from: drawn by a seeded scheme, or read from a file.
#[derive(Debug, Clone, PartialEq)]
pub enum PartitionSource {
    /// One of the engine's schemes.
    Scheme(PartitionSpec),
    /// A JSON file of index lists (see the module docs).
    File(PathBuf),
}

impl PartitionSource {
    /// One ascending index list per client, over examples `0..labels.len()`.
    ///
    /// # Errors
    /// What [`partition`] refuses; for a file, what [`read_index_lists`] refuses.
    pub fn split(&self, labels: &[u8], num_clients: usize, seed: u64) -> Result<Vec<Vec<usize>>> {
        match self {
            PartitionSource::Scheme(spec) => partition(labels, num_clients, spec, seed),
            PartitionSource::File(path) => read_index_lists(path, labels.len(), num_clients),
        }
    }
}

impl fmt::Display for PartitionSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PartitionSource::Scheme(spec) => spec.fmt(f),
            PartitionSource::File(path) => write!(f, "file:{}", path.display()),
        }
    }
}

impl FromStr for PartitionSource {
    type Err = Error;

    /// `file:<path>`, or anything [`PartitionSpec`] parses.
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().strip_prefix("file:") {
            Some("") => Err(Error::InvalidArgument(
                "partition `file:` needs a path".into(),
            )),
            Some(path) => Ok(PartitionSource::File(PathBuf::from(path))),
            None => s.parse().map(PartitionSource::Scheme),
        }
    }
}

/// Reads a partition file for a data set of `num_examples` examples split among
/// `num_clients` clients; returns each client's indices in ascending order.
///
/// # Errors
/// [`Error::Data`] when the file cannot be read or parsed, holds another number of clients,
/// names an index out of range or twice, or leaves a client empty.
pub fn read_index_lists(
    path: &Path,
    num_examples: usize,
    num_clients: usize,
) -> Result<Vec<Vec<usize>>> {
    let bad = |why: String| Error::Data(format!("partition file {}: {why}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    let lists = parse_lists(&text).map_err(bad)?;
    check_lists(lists, num_examples, num_clients).map_err(bad)
}

/// Parses either JSON shape into lists ordered by client number.
fn parse_lists(text: &str) -> std::result::Result<Vec<Vec<usize>>, String> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    match value {
        serde_json::Value::Array(_) => serde_json::from_value(value).map_err(|e| e.to_string()),
        serde_json::Value::Object(_) => {
            let by_key: BTreeMap<String, Vec<usize>> =
                serde_json::from_value(value).map_err(|e| e.to_string())?;
            let mut numbered = BTreeMap::new();
            for (key, list) in by_key {
                let client: usize = key
                    .parse()
                    .map_err(|_| format!("key `{key}` is not a client number"))?;
                numbered.insert(client, list);
            }
            if let Some((gap, _)) = numbered.keys().enumerate().find(|(i, k)| i != *k) {
                return Err(format!("client {gap} is missing"));
            }
            Ok(numbered.into_values().collect())
        }
        _ => Err("expected an array of index lists or an object of them".into()),
    }
}

fn check_lists(
    mut lists: Vec<Vec<usize>>,
    num_examples: usize,
    num_clients: usize,
) -> std::result::Result<Vec<Vec<usize>>, String> {
    if lists.len() != num_clients {
        return Err(format!(
            "it holds {} client(s), the run has {num_clients}",
            lists.len()
        ));
    }
    let mut owner = vec![usize::MAX; num_examples];
    for (client, list) in lists.iter_mut().enumerate() {
        if list.is_empty() {
            return Err(format!("client {client} has no example"));
        }
        for &i in list.iter() {
            let slot = owner.get_mut(i).ok_or_else(|| {
                format!("client {client} names example {i}, the data set has {num_examples}")
            })?;
            if *slot != usize::MAX {
                return Err(format!(
                    "example {i} is given to client {} and client {client}",
                    *slot
                ));
            }
            *slot = client;
        }
        list.sort_unstable();
    }
    Ok(lists)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        f
    }

    #[test]
    fn both_shapes_read_sorted_and_in_client_order() {
        let f = write("[[3, 1], [0, 2]]");
        let lists = read_index_lists(f.path(), 5, 2).unwrap();
        assert_eq!(lists, vec![vec![1, 3], vec![0, 2]]);
        let f = write(r#"{"1": [0, 2], "0": [4, 1]}"#);
        let lists = read_index_lists(f.path(), 5, 2).unwrap();
        assert_eq!(lists, vec![vec![1, 4], vec![0, 2]]);
    }

    #[test]
    fn bad_files_are_refused_with_the_reason() {
        let cases = [
            ("[[0], [1]", "EOF"),
            ("[[0], [1]]", "the run has 3"),
            ("[[0], [1], []]", "client 2 has no example"),
            ("[[0], [1], [9]]", "example 9, the data set has 5"),
            (
                "[[0], [1], [1]]",
                "example 1 is given to client 1 and client 2",
            ),
            (r#"{"0": [0], "2": [1], "3": [2]}"#, "client 1 is missing"),
            (r#"{"a": [0], "1": [1], "2": [2]}"#, "key `a`"),
            ("[[0], [1], [-2]]", "invalid value"),
            ("7", "expected an array"),
        ];
        for (text, why) in cases {
            let f = write(text);
            let err = read_index_lists(f.path(), 5, 3).unwrap_err().to_string();
            assert!(err.contains(why), "{text}: {err}");
        }
        let err = read_index_lists(Path::new("/nonexistent/p.json"), 5, 3).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/p.json"), "{err}");
    }

    #[test]
    fn sources_parse_print_and_split() {
        let s: PartitionSource = "file:/tmp/x.json".parse().unwrap();
        assert_eq!(s, PartitionSource::File("/tmp/x.json".into()));
        assert_eq!(s.to_string(), "file:/tmp/x.json");
        let s: PartitionSource = "dirichlet:0.5".parse().unwrap();
        assert_eq!(s.to_string(), "dirichlet:0.5");
        assert!("file:".parse::<PartitionSource>().is_err());
        assert!("nope".parse::<PartitionSource>().is_err());
        let f = write("[[0, 2], [1]]");
        let s = PartitionSource::File(f.path().to_path_buf());
        assert_eq!(
            s.split(&[7, 8, 9], 2, 0).unwrap(),
            vec![vec![0, 2], vec![1]]
        );
    }
}
