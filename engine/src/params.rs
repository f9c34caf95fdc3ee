//! [`ParamSet`]: a model's trainable tensors by name (`conv1.weight`, `fc2.bias`...), in a
//! fixed order. The unit that weights files, optimizers and federated averaging work on.

use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// Named tensors in a fixed order. Names are unique.
#[derive(Debug, Clone, Default)]
pub struct ParamSet {
    entries: Vec<(String, Tensor)>,
}

impl ParamSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a named tensor; a duplicate name is an error.
    pub fn push(&mut self, name: impl Into<String>, tensor: Tensor) -> Result<()> {
        let name = name.into();
        if self.get(&name).is_some() {
            return Err(Error::InvalidArgument(format!(
                "duplicate parameter name `{name}`"
            )));
        }
        self.entries.push((name, tensor));
        Ok(())
    }

    /// The tensor called `name`.
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.entries.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }

    /// The tensor called `name`, mutable.
    pub fn get_mut(&mut self, name: &str) -> Option<&mut Tensor> {
        self.entries
            .iter_mut()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t)
    }

    /// Names and tensors in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Tensor)> {
        self.entries.iter().map(|(n, t)| (n.as_str(), t))
    }

    /// Names and mutable tensors in order.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&str, &mut Tensor)> {
        self.entries.iter_mut().map(|(n, t)| (n.as_str(), t))
    }

    /// Number of tensors.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there are no tensors.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Total number of scalar parameters.
    pub fn num_params(&self) -> usize {
        self.entries.iter().map(|(_, t)| t.len()).sum()
    }

    /// Checks that `other` has the same names, order and shapes; the error names the
    /// first tensor that differs and both shapes.
    pub fn check_same_layout(&self, other: &ParamSet) -> Result<()> {
        for (name, t) in self.iter() {
            match other.get(name) {
                None => return Err(Error::Weights(format!("missing tensor `{name}`"))),
                Some(o) if o.shape() != t.shape() => {
                    return Err(Error::Shape {
                        what: format!("tensor `{name}`"),
                        expected: t.shape().to_vec(),
                        got: o.shape().to_vec(),
                    });
                }
                Some(_) => {}
            }
        }
        if let Some((extra, _)) = other.iter().find(|(n, _)| self.get(n).is_none()) {
            return Err(Error::Weights(format!("unexpected tensor `{extra}`")));
        }
        Ok(())
    }
}
