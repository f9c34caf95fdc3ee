//! [`ModelSpec`]: the JSON description of a Sequential model, validated before any layer
//! is built.
//!
//! The format follows Keras's Sequential config in spirit: a name, the input shape
//! (channels first, `[C, H, W]`) and a list of layers tagged by `"type"`:
//!
//! ```json
//! {"name": "tiny", "input_shape": [1, 8, 8], "layers": [
//!   {"type": "Conv2D", "name": "conv1", "filters": 4, "kernel_size": [3, 3],
//!    "padding": "valid", "activation": "relu"},
//!   {"type": "MaxPool2D", "pool_size": [2, 2]},
//!   {"type": "Flatten"},
//!   {"type": "Dense", "name": "fc1", "units": 10},
//!   {"type": "Softmax"}]}
//! ```
//!
//! `padding` defaults to `"valid"`, `activation` to `"linear"`, `strides` of a pooling to
//! its `pool_size`. [`ModelSpec::validate`] checks everything a model needs (shapes flow,
//! unique parameter-layer names, no zero sizes, dropout rates, size limits) and returns a
//! [`Error::Spec`] saying which layer is wrong and why; nothing here panics on any input.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Largest number of trainable parameters a spec may ask for (400 MiB of f32).
pub const MAX_PARAMS: usize = 100_000_000;
/// Largest activation, in elements per example, any layer may produce.
pub const MAX_ACTIVATION_PER_EXAMPLE: usize = 16_000_000;

/// Spatial padding of a Conv2D layer (stride 1).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum PaddingSpec {
    /// No padding: output `in - k + 1`.
    #[default]
    Valid,
    /// Zero padding keeping the spatial size.
    Same,
}

/// Activation fused into a Conv2D or Dense layer.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum ActivationSpec {
    /// Identity.
    #[default]
    Linear,
    /// `max(x, 0)`.
    Relu,
}

/// One layer of a [`ModelSpec`].
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum LayerSpec {
    /// Stride-1 2D convolution; parameters `<name>.weight` `[filters, C, kh, kw]` and
    /// `<name>.bias` `[filters]`.
    Conv2D {
        /// Layer name, prefix of its parameter names.
        name: String,
        /// Output channels.
        filters: usize,
        /// `[kh, kw]`.
        kernel_size: [usize; 2],
        /// `"valid"` (default) or `"same"`.
        #[serde(default)]
        padding: PaddingSpec,
        /// `"linear"` (default) or `"relu"`.
        #[serde(default)]
        activation: ActivationSpec,
    },
    /// Max pooling without padding (partial windows dropped).
    MaxPool2D {
        /// `[ph, pw]`.
        pool_size: [usize; 2],
        /// `[sh, sw]`; defaults to `pool_size`.
        #[serde(default)]
        strides: Option<[usize; 2]>,
    },
    /// Inverted dropout in training, identity in inference.
    Dropout {
        /// Fraction of activations dropped, in `[0, 1)`.
        rate: f32,
    },
    /// `[C, H, W]` to `[C*H*W]` in channel-major order (index `c*H*W + h*W + w`, as PyTorch).
    Flatten,
    /// Fully connected layer; parameters `<name>.weight` `[units, in]` and `<name>.bias` `[units]`.
    Dense {
        /// Layer name, prefix of its parameter names.
        name: String,
        /// Output features.
        units: usize,
        /// `"linear"` (default) or `"relu"`.
        #[serde(default)]
        activation: ActivationSpec,
    },
    /// `max(x, 0)` as its own layer.
    ReLU,
    /// Softmax over the classes; allowed only as the last layer.
    Softmax,
}

/// The shape of one example's activation after a layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerShape {
    /// Channels, height, width.
    Chw([usize; 3]),
    /// A feature vector.
    Flat(usize),
}

impl LayerShape {
    /// Number of elements per example.
    pub fn len(&self) -> usize {
        match *self {
            LayerShape::Chw([c, h, w]) => c * h * w,
            LayerShape::Flat(n) => n,
        }
    }

    /// True when the shape holds no element (never for a validated spec).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The shape as Keras prints it, batch first: `(None, 32, 24, 24)`.
    pub fn display_batched(&self) -> String {
        match *self {
            LayerShape::Chw([c, h, w]) => format!("(None, {c}, {h}, {w})"),
            LayerShape::Flat(n) => format!("(None, {n})"),
        }
    }
}

/// A Sequential model: name, input shape `[C, H, W]`, layers in order.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// The model's name (shown by `summary()`).
    pub name: String,
    /// One example's shape, channels first.
    pub input_shape: [usize; 3],
    /// The layers, input to output.
    pub layers: Vec<LayerSpec>,
}

fn spec_err(index: usize, layer: &LayerSpec, msg: impl std::fmt::Display) -> Error {
    Error::Spec(format!("layer {index} ({}): {msg}", layer.describe()))
}

fn check_name(name: &str) -> std::result::Result<(), String> {
    if name.is_empty() || name.len() > 64 {
        return Err(format!(
            "name `{name}` must have 1 to 64 characters, has {}",
            name.len()
        ));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(format!(
            "name `{name}` may only contain ASCII letters, digits, `_` and `-`"
        ));
    }
    Ok(())
}

fn checked_product(dims: &[usize]) -> Option<usize> {
    dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d))
}

impl LayerSpec {
    /// The Keras type name (`"Conv2D"`, `"Dense"`...).
    pub fn type_name(&self) -> &'static str {
        match self {
            LayerSpec::Conv2D { .. } => "Conv2D",
            LayerSpec::MaxPool2D { .. } => "MaxPool2D",
            LayerSpec::Dropout { .. } => "Dropout",
            LayerSpec::Flatten => "Flatten",
            LayerSpec::Dense { .. } => "Dense",
            LayerSpec::ReLU => "ReLU",
            LayerSpec::Softmax => "Softmax",
        }
    }

    /// The name of a parameter layer (Conv2D, Dense), `None` for the others.
    pub fn name(&self) -> Option<&str> {
        match self {
            LayerSpec::Conv2D { name, .. } | LayerSpec::Dense { name, .. } => Some(name),
            _ => None,
        }
    }

    fn describe(&self) -> String {
        match self.name() {
            Some(n) => format!("{} `{n}`", self.type_name()),
            None => self.type_name().to_string(),
        }
    }

    /// Output shape of this layer for input shape `input`, or why it cannot run on it.
    fn output_shape(&self, input: LayerShape) -> std::result::Result<LayerShape, String> {
        match (self, input) {
            (
                LayerSpec::Conv2D {
                    filters,
                    kernel_size: [kh, kw],
                    padding,
                    ..
                },
                LayerShape::Chw([_, h, w]),
            ) => {
                if *filters == 0 || *kh == 0 || *kw == 0 {
                    return Err(format!(
                        "filters ({filters}) and kernel_size ({kh}x{kw}) must be positive"
                    ));
                }
                match padding {
                    PaddingSpec::Same => Ok(LayerShape::Chw([*filters, h, w])),
                    PaddingSpec::Valid if kh <= &h && kw <= &w => {
                        Ok(LayerShape::Chw([*filters, h - kh + 1, w - kw + 1]))
                    }
                    PaddingSpec::Valid => Err(format!(
                        "kernel {kh}x{kw} is larger than its {h}x{w} input with \"valid\" padding"
                    )),
                }
            }
            (
                LayerSpec::MaxPool2D {
                    pool_size: [ph, pw],
                    strides,
                },
                LayerShape::Chw([c, h, w]),
            ) => {
                let [sh, sw] = strides.unwrap_or([*ph, *pw]);
                if *ph == 0 || *pw == 0 || sh == 0 || sw == 0 {
                    return Err(format!(
                        "pool_size ({ph}x{pw}) and strides ({sh}x{sw}) must be positive"
                    ));
                }
                if *ph > h || *pw > w {
                    return Err(format!("pool {ph}x{pw} is larger than its {h}x{w} input"));
                }
                Ok(LayerShape::Chw([c, (h - ph) / sh + 1, (w - pw) / sw + 1]))
            }
            (LayerSpec::Conv2D { .. } | LayerSpec::MaxPool2D { .. }, LayerShape::Flat(n)) => {
                Err(format!(
                    "needs a [C, H, W] input but gets a flat vector of {n}; put it before Flatten"
                ))
            }
            (LayerSpec::Dropout { rate }, s) => {
                if rate.is_finite() && (0.0..1.0).contains(rate) {
                    Ok(s)
                } else {
                    Err(format!("rate {rate} is not in [0, 1)"))
                }
            }
            (LayerSpec::Flatten, s) => Ok(LayerShape::Flat(s.len())),
            (LayerSpec::Dense { units, .. }, LayerShape::Flat(_)) => {
                if *units == 0 {
                    Err("units must be positive".into())
                } else {
                    Ok(LayerShape::Flat(*units))
                }
            }
            (LayerSpec::Dense { .. }, LayerShape::Chw(s)) => Err(format!(
                "needs a flat input but gets {s:?}; add a Flatten layer before it"
            )),
            (LayerSpec::ReLU, s) => Ok(s),
            (LayerSpec::Softmax, LayerShape::Flat(n)) => Ok(LayerShape::Flat(n)),
            (LayerSpec::Softmax, LayerShape::Chw(s)) => Err(format!(
                "needs a flat vector of class scores but gets {s:?}"
            )),
        }
    }

    /// Parameter tensors of this layer (name, shape) given its input shape.
    fn param_shapes(&self, input: LayerShape) -> Vec<(String, Vec<usize>)> {
        match (self, input) {
            (
                LayerSpec::Conv2D {
                    name,
                    filters,
                    kernel_size: [kh, kw],
                    ..
                },
                LayerShape::Chw([c, _, _]),
            ) => vec![
                (format!("{name}.weight"), vec![*filters, c, *kh, *kw]),
                (format!("{name}.bias"), vec![*filters]),
            ],
            (LayerSpec::Dense { name, units, .. }, s) => vec![
                (format!("{name}.weight"), vec![*units, s.len()]),
                (format!("{name}.bias"), vec![*units]),
            ],
            _ => Vec::new(),
        }
    }
}

impl ModelSpec {
    /// Parses a spec from JSON and validates it.
    ///
    /// # Errors
    /// [`Error::Spec`] for malformed JSON, unknown layer types or fields, or a spec that
    /// [`ModelSpec::validate`] refuses.
    pub fn from_json(s: &str) -> Result<Self> {
        let spec: ModelSpec =
            serde_json::from_str(s).map_err(|e| Error::Spec(format!("JSON: {e}")))?;
        spec.validate()?;
        Ok(spec)
    }

    /// The spec as compact JSON.
    pub fn to_json(&self) -> String {
        // Serialising these plain types cannot fail (no maps with non-string keys).
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Checks that the spec describes a model that can be built and trained.
    ///
    /// # Errors
    /// [`Error::Spec`] naming the first problem: empty name or layers, a zero size, a shape
    /// that does not flow into the next layer, duplicate or malformed parameter-layer names,
    /// a dropout rate outside `[0, 1)`, a Softmax that is not last or missing, fewer than two
    /// classes,
    /// or a model beyond [`MAX_PARAMS`] / [`MAX_ACTIVATION_PER_EXAMPLE`].
    pub fn validate(&self) -> Result<()> {
        self.layer_shapes().map(|_| ())
    }

    /// The output shape of every layer, in order (validating the spec on the way).
    ///
    /// # Errors
    /// As [`ModelSpec::validate`].
    pub fn layer_shapes(&self) -> Result<Vec<LayerShape>> {
        if self.name.is_empty() {
            return Err(Error::Spec("the model name is empty".into()));
        }
        let [c, h, w] = self.input_shape;
        if c == 0 || h == 0 || w == 0 {
            return Err(Error::Spec(format!(
                "input_shape {:?} has a zero dimension",
                self.input_shape
            )));
        }
        if checked_product(&self.input_shape).is_none_or(|n| n > MAX_ACTIVATION_PER_EXAMPLE) {
            return Err(Error::Spec(format!(
                "input_shape {:?} exceeds {MAX_ACTIVATION_PER_EXAMPLE} elements",
                self.input_shape
            )));
        }
        if self.layers.is_empty() {
            return Err(Error::Spec("the model has no layers".into()));
        }
        let mut names: Vec<&str> = Vec::new();
        let mut shapes = Vec::with_capacity(self.layers.len());
        let mut shape = LayerShape::Chw(self.input_shape);
        let mut params = 0usize;
        for (i, layer) in self.layers.iter().enumerate() {
            if let Some(name) = layer.name() {
                check_name(name).map_err(|m| spec_err(i, layer, m))?;
                if names.contains(&name) {
                    return Err(spec_err(i, layer, "name already used by an earlier layer"));
                }
                names.push(name);
            }
            if matches!(layer, LayerSpec::Softmax) && i + 1 != self.layers.len() {
                return Err(spec_err(
                    i,
                    layer,
                    "Softmax may only be the last layer (training fuses it into the loss)",
                ));
            }
            let next = layer
                .output_shape(shape)
                .map_err(|m| spec_err(i, layer, m))?;
            let dims: &[usize] = match &next {
                LayerShape::Chw(d) => d,
                LayerShape::Flat(n) => std::slice::from_ref(n),
            };
            if checked_product(dims).is_none_or(|n| n > MAX_ACTIVATION_PER_EXAMPLE) {
                return Err(spec_err(
                    i,
                    layer,
                    format!("output {next:?} exceeds {MAX_ACTIVATION_PER_EXAMPLE} elements"),
                ));
            }
            for (pname, pshape) in layer.param_shapes(shape) {
                let n = checked_product(&pshape).and_then(|n| n.checked_add(params));
                match n {
                    Some(total) if total <= MAX_PARAMS => params = total,
                    _ => {
                        return Err(spec_err(
                            i,
                            layer,
                            format!(
                                "`{pname}` {pshape:?} takes the model past {MAX_PARAMS} parameters"
                            ),
                        ));
                    }
                }
            }
            shapes.push(next);
            shape = next;
        }
        if !matches!(self.layers.last(), Some(LayerSpec::Softmax)) {
            return Err(Error::Spec(
                "the last layer must be Softmax (the model outputs class probabilities)".into(),
            ));
        }
        match shape {
            LayerShape::Flat(n) if n >= 2 => Ok(shapes),
            other => Err(Error::Spec(format!(
                "the model must end in a flat vector of at least 2 class scores, ends in {other:?}"
            ))),
        }
    }

    /// Names and shapes of the trainable tensors, in layer order (`conv1.weight`,
    /// `conv1.bias`, ...), in PyTorch layouts.
    ///
    /// # Errors
    /// As [`ModelSpec::validate`].
    pub fn param_shapes(&self) -> Result<Vec<(String, Vec<usize>)>> {
        let shapes = self.layer_shapes()?;
        let mut input = LayerShape::Chw(self.input_shape);
        let mut out = Vec::new();
        for (layer, next) in self.layers.iter().zip(shapes) {
            out.extend(layer.param_shapes(input));
            input = next;
        }
        Ok(out)
    }

    /// Total trainable parameters (0 for an invalid spec).
    pub fn num_params(&self) -> usize {
        self.param_shapes()
            .map(|v| v.iter().map(|(_, s)| s.iter().product::<usize>()).sum())
            .unwrap_or(0)
    }

    /// Number of classes: the size of the last layer's output (0 for an invalid spec).
    pub fn num_classes(&self) -> usize {
        self.layer_shapes()
            .ok()
            .and_then(|s| s.last().map(LayerShape::len))
            .unwrap_or(0)
    }

    /// Elements of one input example, `C*H*W` (saturating for absurd shapes).
    pub fn input_len(&self) -> usize {
        self.input_shape
            .iter()
            .fold(1usize, |a, &d| a.saturating_mul(d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> ModelSpec {
        ModelSpec {
            name: "tiny".into(),
            input_shape: [1, 8, 8],
            layers: vec![
                LayerSpec::Conv2D {
                    name: "conv1".into(),
                    filters: 4,
                    kernel_size: [3, 3],
                    padding: PaddingSpec::Valid,
                    activation: ActivationSpec::Relu,
                },
                LayerSpec::MaxPool2D {
                    pool_size: [2, 2],
                    strides: None,
                },
                LayerSpec::Flatten,
                LayerSpec::Dense {
                    name: "fc1".into(),
                    units: 10,
                    activation: ActivationSpec::Linear,
                },
                LayerSpec::Softmax,
            ],
        }
    }

    #[test]
    fn json_round_trip_and_defaults() {
        let json = r#"{"name": "tiny", "input_shape": [1, 8, 8], "layers": [
            {"type": "Conv2D", "name": "conv1", "filters": 4, "kernel_size": [3, 3], "activation": "relu"},
            {"type": "MaxPool2D", "pool_size": [2, 2]},
            {"type": "Flatten"},
            {"type": "Dense", "name": "fc1", "units": 10},
            {"type": "Softmax"}]}"#;
        let spec = ModelSpec::from_json(json).unwrap();
        assert_eq!(spec, tiny());
        assert_eq!(ModelSpec::from_json(&spec.to_json()).unwrap(), spec);
        assert_eq!(spec.num_classes(), 10);
        assert_eq!(spec.input_len(), 64);
        assert_eq!(spec.num_params(), 4 * 9 + 4 + 10 * 36 + 10);
        let shapes = spec.layer_shapes().unwrap();
        assert_eq!(shapes[0], LayerShape::Chw([4, 6, 6]));
        assert_eq!(shapes[1], LayerShape::Chw([4, 3, 3]));
        assert_eq!(shapes[2], LayerShape::Flat(36));
    }

    fn refused(spec: &ModelSpec, needle: &str) {
        match spec.validate() {
            Err(Error::Spec(m)) => assert!(m.contains(needle), "`{m}` lacks `{needle}`"),
            other => panic!("expected a spec error containing `{needle}`, got {other:?}"),
        }
    }

    #[test]
    fn bad_specs_are_refused_with_the_reason() {
        let mut s = tiny();
        s.layers.swap(2, 3);
        refused(&s, "add a Flatten");
        let mut s = tiny();
        s.layers.insert(
            2,
            LayerSpec::Dense {
                name: "conv1".into(),
                units: 3,
                activation: ActivationSpec::Relu,
            },
        );
        refused(&s, "Dense `conv1`");
        let mut s = tiny();
        s.layers.insert(1, LayerSpec::Dropout { rate: 1.0 });
        refused(&s, "rate 1");
        let mut s = tiny();
        s.layers.insert(1, LayerSpec::Dropout { rate: f32::NAN });
        refused(&s, "rate NaN");
        let mut s = tiny();
        s.input_shape = [1, 0, 8];
        refused(&s, "zero dimension");
        let mut s = tiny();
        s.input_shape = [1, 2, 2];
        refused(&s, "larger than");
        let mut s = tiny();
        s.layers.pop();
        s.layers.push(LayerSpec::Softmax);
        s.layers.insert(0, LayerSpec::Softmax);
        refused(&s, "last layer");
        let mut s = tiny();
        if let LayerSpec::Dense { units, .. } = &mut s.layers[3] {
            *units = 0;
        }
        refused(&s, "units must be positive");
        let mut s = tiny();
        if let LayerSpec::Dense { units, .. } = &mut s.layers[3] {
            *units = usize::MAX;
        }
        refused(&s, "exceeds");
        let mut s = tiny();
        if let LayerSpec::Conv2D { name, .. } = &mut s.layers[0] {
            *name = "a.b".into();
        }
        refused(&s, "may only contain");
        let mut s = tiny();
        s.layers.clear();
        refused(&s, "no layers");
        let mut s = tiny();
        s.layers.truncate(2);
        s.layers.push(LayerSpec::Softmax);
        refused(&s, "needs a flat vector");
        let mut s = tiny();
        s.layers.pop();
        refused(&s, "must be Softmax");
    }

    #[test]
    fn malformed_json_is_an_error_not_a_panic() {
        for bad in [
            "",
            "{",
            r#"{"name": "x", "input_shape": [1, 2], "layers": []}"#,
            r#"{"name": "x", "input_shape": [1, 2, 2], "layers": [{"type": "Lstm"}]}"#,
            r#"{"name": "x", "input_shape": [1, 2, 2], "layers": [{"type": "Dense", "name": "a", "units": 3, "x": 1}]}"#,
            r#"{"name": "x", "input_shape": [1, 2, 2], "layers": [{"type": "Dense", "name": "a", "units": -1}]}"#,
            r#"{"name": "x", "input_shape": [18446744073709551615, 18446744073709551615, 2], "layers": [{"type": "Flatten"}]}"#,
        ] {
            assert!(
                matches!(ModelSpec::from_json(bad), Err(Error::Spec(_))),
                "{bad}"
            );
        }
    }
}
