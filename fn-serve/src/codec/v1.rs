//! Decoding a TF-Serving (KServe V1) predict request:
//! `{"instances": [<image>, ...]}` (row format, each image nested or flat, or an object
//! `{"<input name>": <image>}`) or `{"inputs": <batched tensor> | {"<name>": <tensor>}}`
//! (columnar). Pixels are FP32 in [0, 1], as the Keras model takes them.

use super::images::{Budget, ImageBuf, PixelType};
use super::json::Sink;
use super::{ModelInput, check_f32};
use crate::error::ApiError;

/// Which root key carried the data (decides the response key).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum V1Format {
    /// `instances` → `{"predictions": ...}`.
    Instances,
    /// `inputs` → `{"outputs": ...}`.
    Inputs,
}

/// A decoded V1 request.
#[derive(Debug)]
pub struct V1Request {
    /// Row or columnar.
    pub format: V1Format,
    /// Number of images.
    pub images: usize,
    /// The pixels.
    pub data: ImageBuf,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Frame {
    Root,
    /// Inside a tensor value that opened at array depth `base` (the depth before its `[`).
    Tensor(usize),
    /// An object wrapping one named tensor (`{"input": [...]}`).
    Named,
    Skip,
}

/// Streaming decoder of one V1 request.
#[derive(Debug)]
pub struct V1Decoder {
    image_len: usize,
    max_batch: usize,
    budget: Budget,
    stack: Vec<Frame>,
    /// Array depth inside the tensor value (1 = the instances list itself).
    depth: usize,
    key: Option<V1Format>,
    format: Option<V1Format>,
    data: Option<ImageBuf>,
    /// Elements at the start of the current instance (row format).
    instance_start: usize,
    named_seen: bool,
}

impl V1Decoder {
    /// A decoder for `model`, admitting at most `max_batch` images.
    pub fn new(model: ModelInput, max_batch: usize, budget: Budget) -> Self {
        Self {
            image_len: model.image_len(),
            max_batch,
            budget,
            stack: Vec::with_capacity(8),
            depth: 0,
            key: None,
            format: None,
            data: None,
            instance_start: 0,
            named_seen: false,
        }
    }

    fn top(&self) -> Option<Frame> {
        self.stack.last().copied()
    }

    fn in_tensor(&self) -> bool {
        matches!(self.top(), Some(Frame::Tensor(_)))
    }

    fn start_tensor(&mut self, format: V1Format) -> Result<(), ApiError> {
        if self.format.is_some() {
            return Err(ApiError::bad(
                "give exactly one of \"instances\" and \"inputs\"",
            ));
        }
        self.format = Some(format);
        self.data = Some(ImageBuf::new(
            PixelType::F32,
            self.image_len,
            self.max_batch,
            0,
            self.budget.clone(),
        ));
        Ok(())
    }

    /// Row format: an instance ends when the depth returns to the list level.
    fn end_instance(&mut self) -> Result<(), ApiError> {
        let len = self.data.as_ref().map_or(0, ImageBuf::len);
        let got = len - self.instance_start;
        if got != self.image_len {
            let index = self.instance_start / self.image_len;
            return Err(ApiError::bad(format!(
                "instance {index} holds {got} values; each instance must hold {} (a 28x28 image, \
                 nested or flat)",
                self.image_len
            )));
        }
        self.instance_start = len;
        Ok(())
    }

    /// Checks the counts once the JSON is complete.
    pub fn finish(self) -> Result<V1Request, ApiError> {
        let (Some(format), Some(data)) = (self.format, self.data) else {
            return Err(ApiError::bad(
                "the request needs \"instances\" (a list of images) or \"inputs\"",
            ));
        };
        if data.is_empty() {
            return Err(ApiError::bad("the request holds no image"));
        }
        if data.len() % self.image_len != 0 {
            return Err(ApiError::bad(format!(
                "\"inputs\" holds {} values, not a whole number of {}-value images",
                data.len(),
                self.image_len
            )));
        }
        Ok(V1Request {
            format,
            images: data.images(),
            data,
        })
    }

    fn scalar_outside_tensor(&self, kind: &str) -> Result<(), ApiError> {
        match (self.top(), self.key) {
            (None, _) => Err(ApiError::bad(format!(
                "the request body must be a JSON object, got {kind}"
            ))),
            (Some(Frame::Root), Some(_)) => Err(ApiError::bad(format!(
                "\"instances\" / \"inputs\" must be a list of images, not {kind}"
            ))),
            _ => Ok(()),
        }
    }
}

impl Sink for V1Decoder {
    type Error = ApiError;
    fn begin_object(&mut self) -> Result<(), ApiError> {
        let frame = match self.top() {
            None => Frame::Root,
            Some(Frame::Root) => match self.key {
                Some(f) => {
                    // {"inputs": {"<name>": tensor}}
                    self.start_tensor(f)?;
                    self.depth = 0;
                    Frame::Named
                }
                None => Frame::Skip,
            },
            Some(Frame::Tensor(0))
                if self.depth == 1 && self.format == Some(V1Format::Instances) =>
            {
                Frame::Named
            }
            Some(Frame::Tensor(_)) => {
                return Err(ApiError::bad(
                    "image values must be numbers or nested lists of numbers, not objects",
                ));
            }
            Some(Frame::Named | Frame::Skip) => Frame::Skip,
        };
        self.named_seen = false;
        self.stack.push(frame);
        Ok(())
    }

    fn end_object(&mut self) -> Result<(), ApiError> {
        let popped = self.stack.pop();
        if popped == Some(Frame::Named) && self.top() == Some(Frame::Tensor(0)) {
            self.end_instance()?;
        }
        self.key = None;
        Ok(())
    }

    fn begin_array(&mut self) -> Result<(), ApiError> {
        match self.top() {
            None => Err(ApiError::bad(
                "the request body must be a JSON object with \"instances\" or \"inputs\"",
            )),
            Some(Frame::Root) => {
                if let Some(f) = self.key {
                    self.start_tensor(f)?;
                    self.depth = 1;
                    self.stack.push(Frame::Tensor(0));
                } else {
                    self.stack.push(Frame::Skip);
                }
                Ok(())
            }
            Some(Frame::Tensor(_)) => {
                self.depth += 1;
                Ok(())
            }
            Some(Frame::Named) => {
                if self.named_seen {
                    return Err(ApiError::bad(
                        "this model has one input; give one tensor per instance",
                    ));
                }
                self.named_seen = true;
                self.stack.push(Frame::Tensor(self.depth));
                self.depth += 1;
                Ok(())
            }
            Some(Frame::Skip) => {
                self.stack.push(Frame::Skip);
                Ok(())
            }
        }
    }

    fn end_array(&mut self) -> Result<(), ApiError> {
        match self.top() {
            Some(Frame::Tensor(base)) => {
                self.depth -= 1;
                if self.depth == base {
                    // This tensor value is complete (a named one ends its instance in
                    // end_object).
                    self.stack.pop();
                } else if base == 0 && self.depth == 1 && self.format == Some(V1Format::Instances) {
                    self.end_instance()?;
                }
            }
            _ => {
                self.stack.pop();
            }
        }
        Ok(())
    }

    fn key(&mut self, key: &str) -> Result<(), ApiError> {
        if self.top() == Some(Frame::Root) {
            self.key = match key {
                "instances" => Some(V1Format::Instances),
                "inputs" => Some(V1Format::Inputs),
                _ => None,
            };
        }
        Ok(())
    }

    fn string(&mut self, _value: &str) -> Result<(), ApiError> {
        if self.in_tensor() {
            return Err(ApiError::bad("image values must be numbers, not strings"));
        }
        self.scalar_outside_tensor("a string")
    }

    #[inline]
    fn number(&mut self, raw: &str) -> Result<(), ApiError> {
        if !self.in_tensor() {
            return self.scalar_outside_tensor("a number");
        }
        if self.depth == 1 && self.format == Some(V1Format::Instances) {
            return Err(ApiError::bad(format!(
                "each instance must be an image of {} values, not a single number",
                self.image_len
            )));
        }
        let Some(buf) = self.data.as_mut() else {
            return Err(ApiError::Internal("number without a buffer".into()));
        };
        let index = buf.len();
        let v = raw.parse::<f32>().map_err(|_| {
            ApiError::bad(format!("value {index} ({raw}) is not a valid FP32 number"))
        })?;
        check_f32(v, index)?;
        buf.push_f32(v)
    }

    fn boolean(&mut self, _value: bool) -> Result<(), ApiError> {
        if self.in_tensor() {
            return Err(ApiError::bad("image values must be numbers, not booleans"));
        }
        self.scalar_outside_tensor("a boolean")
    }

    fn null(&mut self) -> Result<(), ApiError> {
        if self.in_tensor() {
            return Err(ApiError::bad("image values must be numbers, not null"));
        }
        Ok(())
    }
}
