//! Built-in architectures. [`table1_cnn`] is the seed paper's MNIST CNN.

use crate::spec::{ActivationSpec, LayerSpec, ModelSpec, PaddingSpec};

/// The CNN of the seed paper's Table 1 (317,066 trainable parameters), input `[1, 28, 28]`:
///
/// conv1 Conv2D(32, 5x5, valid, relu) → MaxPool 2x2 → Dropout 0.25 →
/// conv2 Conv2D(64, 5x5, valid, relu) → MaxPool 2x2 → Flatten (channel-major, 1024) →
/// fc1 Dense(256, relu) → Dropout 0.25 → fc2 Dense(10) → Softmax.
pub fn table1_cnn() -> ModelSpec {
    let conv = |name: &str, filters| LayerSpec::Conv2D {
        name: name.into(),
        filters,
        kernel_size: [5, 5],
        padding: PaddingSpec::Valid,
        activation: ActivationSpec::Relu,
    };
    let pool = || LayerSpec::MaxPool2D {
        pool_size: [2, 2],
        strides: None,
    };
    let dense = |name: &str, units, activation| LayerSpec::Dense {
        name: name.into(),
        units,
        activation,
    };
    ModelSpec {
        name: "table1_cnn".into(),
        input_shape: [1, 28, 28],
        layers: vec![
            conv("conv1", 32),
            pool(),
            LayerSpec::Dropout { rate: 0.25 },
            conv("conv2", 64),
            pool(),
            LayerSpec::Flatten,
            dense("fc1", 256, ActivationSpec::Relu),
            LayerSpec::Dropout { rate: 0.25 },
            dense("fc2", 10, ActivationSpec::Linear),
            LayerSpec::Softmax,
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table1_cnn_has_317066_params_in_pytorch_layouts() {
        let spec = table1_cnn();
        spec.validate().unwrap();
        assert_eq!(spec.num_params(), 317_066);
        assert_eq!(spec.num_classes(), 10);
        assert_eq!(spec.input_len(), 784);
        let shapes = spec.param_shapes().unwrap();
        let expected: Vec<(String, Vec<usize>)> = [
            ("conv1.weight", vec![32, 1, 5, 5]),
            ("conv1.bias", vec![32]),
            ("conv2.weight", vec![64, 32, 5, 5]),
            ("conv2.bias", vec![64]),
            ("fc1.weight", vec![256, 1024]),
            ("fc1.bias", vec![256]),
            ("fc2.weight", vec![10, 256]),
            ("fc2.bias", vec![10]),
        ]
        .into_iter()
        .map(|(n, s)| (n.to_string(), s))
        .collect();
        assert_eq!(shapes, expected);
        assert_eq!(ModelSpec::from_json(&spec.to_json()).unwrap(), spec);
    }
}
