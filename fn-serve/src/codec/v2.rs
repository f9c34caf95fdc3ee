//! Decoding a V2 (Open Inference Protocol) inference request, JSON or with the binary
//! tensor data extension, straight into an [`ImageBuf`].
//!
//! The [`V2Decoder`] is a [`Sink`] for the JSON part: it keeps the small fields (`id`,
//! names, shape, datatype, parameters) and streams the `data` numbers into the pixel
//! buffer as they are read, checking each (finite, in range, not more than the shape
//! claims) on the way. [`V2Decoder::finish`] then checks the whole request against the
//! model's input.

use super::images::{Budget, ImageBuf, PixelType};
use super::json::Sink;
use super::{
    ModelInput, OUTPUT_CLASS, OUTPUT_PROBABILITIES, check_f32, parse_u8, validate_f32_buf,
};
use crate::error::ApiError;

/// One requested output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputRequest {
    /// `probabilities` or `class`.
    pub name: String,
    /// The per-output `binary_data` parameter, if given.
    pub binary: Option<bool>,
}

/// A decoded and checked V2 inference request.
#[derive(Debug)]
pub struct V2Request {
    /// The request id, echoed in the response.
    pub id: Option<String>,
    /// The request-level `binary_data_output` parameter.
    pub binary_output: bool,
    /// The input's name as sent.
    pub input_name: String,
    /// The input's datatype.
    pub datatype: PixelType,
    /// The input shape as sent.
    pub shape: Vec<usize>,
    /// Number of images (shape[0]).
    pub images: usize,
    /// Bytes of binary tensor data that follow the JSON header, when the input is binary.
    pub binary_size: Option<usize>,
    /// The pixels (empty when the input is binary: see [`V2Request::binary_size`]).
    pub data: Option<ImageBuf>,
    /// The outputs asked for; `None` = all.
    pub outputs: Option<Vec<OutputRequest>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Frame {
    Root,
    Inputs,
    Input,
    Shape,
    Data,
    InputParams,
    Outputs,
    Output,
    OutputParams,
    ReqParams,
    Skip,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    None,
    Id,
    Parameters,
    Inputs,
    Outputs,
    Name,
    Shape,
    Datatype,
    Data,
    BinaryDataSize,
    BinaryData,
    BinaryDataOutput,
    Other,
}

/// Streaming decoder of one V2 request's JSON part.
#[derive(Debug)]
pub struct V2Decoder {
    model: ModelInput,
    max_batch: usize,
    budget: Budget,
    stack: Vec<Frame>,
    field: Field,
    id: Option<String>,
    binary_output: bool,
    outputs: Option<Vec<OutputRequest>>,
    current_output: Option<OutputRequest>,
    inputs_seen: usize,
    name: Option<String>,
    datatype: Option<String>,
    /// Datatype as known when `data` started (decides how numbers are parsed).
    data_type: Option<PixelType>,
    shape: Option<Vec<u64>>,
    /// Element count of a shape seen before `data` (for early overrun errors).
    shape_elems: Option<usize>,
    binary_size: Option<u64>,
    data: Option<ImageBuf>,
}

fn wrong_type(field: &str, want: &str) -> ApiError {
    ApiError::bad(format!("\"{field}\" must be {want}"))
}

fn parse_u64(raw: &str, what: &str) -> Result<u64, ApiError> {
    raw.parse::<u64>()
        .map_err(|_| ApiError::bad(format!("{what} must be a non-negative integer, got {raw}")))
}

impl V2Decoder {
    /// A decoder for a model whose input is `model`, admitting at most `max_batch` images.
    pub fn new(model: ModelInput, max_batch: usize, budget: Budget) -> Self {
        Self {
            model,
            max_batch,
            budget,
            stack: Vec::with_capacity(8),
            field: Field::None,
            id: None,
            binary_output: false,
            outputs: None,
            current_output: None,
            inputs_seen: 0,
            name: None,
            datatype: None,
            data_type: None,
            shape: None,
            shape_elems: None,
            binary_size: None,
            data: None,
        }
    }

    fn top(&self) -> Option<Frame> {
        self.stack.last().copied()
    }

    fn field_for(&self, key: &str) -> Field {
        match (self.top(), key) {
            (Some(Frame::Root), "id") => Field::Id,
            (Some(Frame::Root), "parameters") => Field::Parameters,
            (Some(Frame::Root), "inputs") => Field::Inputs,
            (Some(Frame::Root), "outputs") => Field::Outputs,
            (Some(Frame::Input), "name") | (Some(Frame::Output), "name") => Field::Name,
            (Some(Frame::Input), "shape") => Field::Shape,
            (Some(Frame::Input), "datatype") => Field::Datatype,
            (Some(Frame::Input), "data") => Field::Data,
            (Some(Frame::Input), "parameters") | (Some(Frame::Output), "parameters") => {
                Field::Parameters
            }
            (Some(Frame::InputParams), "binary_data_size") => Field::BinaryDataSize,
            (Some(Frame::OutputParams), "binary_data") => Field::BinaryData,
            (Some(Frame::ReqParams), "binary_data_output") => Field::BinaryDataOutput,
            _ => Field::Other,
        }
    }

    /// Type error for a value of the wrong JSON kind in a field we read, or `Ok` to skip it.
    fn unexpected(&self, kind: &str) -> Result<(), ApiError> {
        let (name, want) = match (self.top(), self.field) {
            (_, Field::Other) | (Some(Frame::Skip), _) => return Ok(()),
            (Some(Frame::Root), Field::None) | (None, _) => {
                return Err(ApiError::bad(format!(
                    "the request body must be a JSON object, got {kind}"
                )));
            }
            (_, Field::Id) => ("id", "a string"),
            (_, Field::Parameters) => ("parameters", "an object"),
            (_, Field::Inputs) => ("inputs", "an array of input objects"),
            (_, Field::Outputs) => ("outputs", "an array of output objects"),
            (_, Field::Name) => ("name", "a string"),
            (_, Field::Shape) => ("shape", "an array of non-negative integers"),
            (_, Field::Datatype) => ("datatype", "a string"),
            (_, Field::Data) => ("data", "an array of numbers"),
            (_, Field::BinaryDataSize) => ("binary_data_size", "a non-negative integer"),
            (_, Field::BinaryData) => ("binary_data", "a boolean"),
            (_, Field::BinaryDataOutput) => ("binary_data_output", "a boolean"),
            (Some(Frame::Shape), _) => ("shape", "an array of non-negative integers"),
            (Some(Frame::Data), _) => ("data", "(nested) arrays of numbers"),
            (Some(Frame::Inputs), _) => ("inputs", "an array of input objects"),
            (Some(Frame::Outputs), _) => ("outputs", "an array of output objects"),
            _ => return Ok(()),
        };
        Err(wrong_type(name, &format!("{want}, not {kind}")))
    }

    fn skipping(&self) -> bool {
        self.top() == Some(Frame::Skip)
            || (self.field == Field::Other
                && !matches!(
                    self.top(),
                    Some(Frame::Shape | Frame::Data | Frame::Inputs | Frame::Outputs)
                ))
    }

    fn start_data(&mut self) -> Result<(), ApiError> {
        if self.data.is_some() {
            return Err(ApiError::bad("the input has \"data\" twice"));
        }
        let ty = match self.datatype.as_deref() {
            Some("UINT8") => Some(PixelType::U8),
            Some("FP32") => Some(PixelType::F32),
            Some(other) => return Err(unsupported_datatype(other)),
            None => None,
        };
        self.data_type = ty;
        let mut hint = 0;
        if let Some(shape) = &self.shape {
            let (images, elems) = check_shape(shape, &self.model, self.max_batch)?;
            hint = images;
            self.shape_elems = Some(elems);
        }
        self.data = Some(ImageBuf::new(
            ty.unwrap_or(PixelType::F32),
            self.model.image_len(),
            self.max_batch,
            hint,
            self.budget.clone(),
        ));
        Ok(())
    }

    #[inline]
    fn data_number(&mut self, raw: &str) -> Result<(), ApiError> {
        let Some(buf) = self.data.as_mut() else {
            return Err(ApiError::Internal("data number without a buffer".into()));
        };
        let index = buf.len();
        if let Some(limit) = self.shape_elems
            && index >= limit
        {
            return Err(ApiError::bad(format!(
                "\"data\" holds more than the {limit} elements its shape claims"
            )));
        }
        match self.data_type {
            Some(PixelType::U8) => buf.push_u8(parse_u8(raw, index)?),
            Some(PixelType::F32) => {
                let v = raw.parse::<f32>().map_err(|_| bad_number(raw, index))?;
                check_f32(v, index)?;
                buf.push_f32(v)
            }
            None => {
                let v = raw.parse::<f32>().map_err(|_| bad_number(raw, index))?;
                if !v.is_finite() {
                    return Err(ApiError::bad(format!(
                        "input element {index} ({raw}) is not a finite FP32 number"
                    )));
                }
                buf.push_f32(v)
            }
        }
    }

    /// Checks the whole request once the JSON part is complete.
    /// `binary_follows` tells whether the body announced binary data after the JSON.
    pub fn finish(self, binary_follows: bool) -> Result<V2Request, ApiError> {
        match self.inputs_seen {
            0 => return Err(ApiError::bad("the request has no \"inputs\"")),
            1 => {}
            _ => unreachable_inputs()?,
        }
        let name = self
            .name
            .ok_or_else(|| ApiError::bad("the input has no \"name\""))?;
        if name != super::INPUT_NAME {
            return Err(ApiError::bad(format!(
                "unknown input {name:?}: this model has one input, \"{}\"",
                super::INPUT_NAME
            )));
        }
        let datatype = match self.datatype.as_deref() {
            Some("FP32") => PixelType::F32,
            Some("UINT8") => PixelType::U8,
            Some(other) => return Err(unsupported_datatype(other)),
            None => return Err(ApiError::bad("the input has no \"datatype\"")),
        };
        let shape = self
            .shape
            .ok_or_else(|| ApiError::bad("the input has no \"shape\""))?;
        let (images, elems) = check_shape(&shape, &self.model, self.max_batch)?;
        let shape: Vec<usize> = shape.iter().map(|&d| d as usize).collect();
        let outputs = match self.outputs {
            Some(list) => Some(check_outputs(list)?),
            None => None,
        };
        let mut data = self.data;
        let binary_size = match (self.binary_size, data.is_some()) {
            (Some(_), true) => {
                return Err(ApiError::bad(
                    "the input has both \"data\" and a \"binary_data_size\" parameter",
                ));
            }
            (Some(size), false) => {
                if !binary_follows {
                    return Err(ApiError::bad(
                        "the input has a \"binary_data_size\" parameter but the request has no \
                         Inference-Header-Content-Length header (binary tensor data extension)",
                    ));
                }
                let want = elems * datatype.size();
                if size != want as u64 {
                    return Err(ApiError::bad(format!(
                        "binary_data_size is {size} bytes but shape {shape:?} of {} needs {want}",
                        datatype.v2_name()
                    )));
                }
                Some(want)
            }
            (None, false) => return Err(ApiError::bad("the input has no \"data\"")),
            (None, true) => None,
        };
        if let Some(buf) = data.take() {
            // Values first (they name the element), then the count.
            let buf = match (self.data_type, datatype) {
                (None, PixelType::U8) => buf.into_u8()?,
                (None, PixelType::F32) => {
                    validate_f32_buf(&buf)?;
                    buf
                }
                _ => buf,
            };
            if buf.len() != elems {
                return Err(ApiError::bad(format!(
                    "\"data\" holds {} elements but shape {shape:?} needs {elems}",
                    buf.len()
                )));
            }
            data = Some(buf);
        }
        Ok(V2Request {
            id: self.id,
            binary_output: self.binary_output,
            input_name: name,
            datatype,
            shape,
            images,
            binary_size,
            data,
            outputs,
        })
    }
}

fn unreachable_inputs() -> Result<(), ApiError> {
    Err(ApiError::bad("this model takes exactly one input"))
}

fn bad_number(raw: &str, index: usize) -> ApiError {
    ApiError::bad(format!(
        "input element {index} ({raw}) is not a valid FP32 number"
    ))
}

fn unsupported_datatype(dt: &str) -> ApiError {
    ApiError::bad(format!(
        "datatype {dt:?} is not supported: send FP32 (pixels in [0, 1]) or UINT8 (0..255)"
    ))
}

/// Checks a claimed shape against the model and the limit: `[N, C, H, W]` or
/// `[N, C*H*W]`, element count without overflow. Returns (images, elements).
pub fn check_shape(
    shape: &[u64],
    model: &ModelInput,
    max_batch: usize,
) -> Result<(usize, usize), ApiError> {
    let [c, h, w] = model.shape;
    let ok = match shape {
        [_, rest @ ..] if rest.len() == 3 => rest == [c as u64, h as u64, w as u64],
        [_, len] => *len == model.image_len() as u64,
        _ => false,
    };
    let elems = shape
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d))
        .filter(|&e| e <= usize::MAX as u64);
    let Some(elems) = elems else {
        return Err(ApiError::bad(format!(
            "shape {shape:?}: its element count overflows"
        )));
    };
    if !ok {
        return Err(ApiError::bad(format!(
            "shape {shape:?} is not accepted: use [N, {c}, {h}, {w}] or [N, {}]",
            model.image_len()
        )));
    }
    let images = shape[0];
    if images == 0 {
        return Err(ApiError::bad(format!("shape {shape:?} holds no image")));
    }
    if images > max_batch as u64 {
        return Err(ApiError::TooLarge(format!(
            "shape {shape:?} holds {images} images; the maximum batch is {max_batch}"
        )));
    }
    Ok((images as usize, elems as usize))
}

fn check_outputs(list: Vec<OutputRequest>) -> Result<Vec<OutputRequest>, ApiError> {
    for (i, o) in list.iter().enumerate() {
        if o.name != OUTPUT_PROBABILITIES && o.name != OUTPUT_CLASS {
            return Err(ApiError::bad(format!(
                "unknown output {:?}: this model's outputs are \"{OUTPUT_PROBABILITIES}\" and \"{OUTPUT_CLASS}\"",
                o.name
            )));
        }
        if list[..i].iter().any(|p| p.name == o.name) {
            return Err(ApiError::bad(format!("output {:?} is asked twice", o.name)));
        }
    }
    Ok(list)
}

impl Sink for V2Decoder {
    type Error = ApiError;
    fn begin_object(&mut self) -> Result<(), ApiError> {
        let frame = match (self.top(), self.field) {
            (None, _) => Frame::Root,
            (Some(Frame::Skip), _) => Frame::Skip,
            (Some(Frame::Inputs), _) => {
                self.inputs_seen += 1;
                if self.inputs_seen > 1 {
                    return unreachable_inputs();
                }
                Frame::Input
            }
            (Some(Frame::Outputs), _) => {
                self.current_output = Some(OutputRequest {
                    name: String::new(),
                    binary: None,
                });
                Frame::Output
            }
            (Some(Frame::Root), Field::Parameters) => Frame::ReqParams,
            (Some(Frame::Input), Field::Parameters) => Frame::InputParams,
            (Some(Frame::Output), Field::Parameters) => Frame::OutputParams,
            _ => {
                self.unexpected("an object")?;
                Frame::Skip
            }
        };
        self.stack.push(frame);
        self.field = Field::None;
        Ok(())
    }

    fn end_object(&mut self) -> Result<(), ApiError> {
        if self.stack.pop() == Some(Frame::Output)
            && let (Some(o), Some(list)) = (self.current_output.take(), self.outputs.as_mut())
        {
            if o.name.is_empty() {
                return Err(ApiError::bad("an output has no \"name\""));
            }
            list.push(o);
        }
        self.field = Field::Other;
        Ok(())
    }

    fn begin_array(&mut self) -> Result<(), ApiError> {
        let frame = match (self.top(), self.field) {
            (Some(Frame::Skip), _) => Frame::Skip,
            (Some(Frame::Data), _) => Frame::Data,
            (Some(Frame::Root), Field::Inputs) => Frame::Inputs,
            (Some(Frame::Root), Field::Outputs) => {
                if self.outputs.is_some() {
                    return Err(ApiError::bad("\"outputs\" appears twice"));
                }
                self.outputs = Some(Vec::new());
                Frame::Outputs
            }
            (Some(Frame::Input), Field::Shape) => {
                if self.shape.is_some() {
                    return Err(ApiError::bad("the input has \"shape\" twice"));
                }
                self.shape = Some(Vec::new());
                Frame::Shape
            }
            (Some(Frame::Input), Field::Data) => {
                self.start_data()?;
                Frame::Data
            }
            _ => {
                self.unexpected("an array")?;
                Frame::Skip
            }
        };
        self.stack.push(frame);
        Ok(())
    }

    fn end_array(&mut self) -> Result<(), ApiError> {
        self.stack.pop();
        if self.top() != Some(Frame::Data) {
            self.field = Field::Other;
        }
        Ok(())
    }

    fn key(&mut self, key: &str) -> Result<(), ApiError> {
        if self.top() != Some(Frame::Skip) {
            self.field = self.field_for(key);
        }
        Ok(())
    }

    fn string(&mut self, value: &str) -> Result<(), ApiError> {
        match (self.top(), self.field) {
            (Some(Frame::Root), Field::Id) => self.id = Some(value.to_owned()),
            (Some(Frame::Input), Field::Name) => self.name = Some(value.to_owned()),
            (Some(Frame::Input), Field::Datatype) => {
                if self.data.is_some() && self.datatype.is_none() {
                    // data came first and was parsed as FP32; finish() converts.
                }
                self.datatype = Some(value.to_owned());
            }
            (Some(Frame::Output), Field::Name) => {
                if let Some(o) = self.current_output.as_mut() {
                    o.name = value.to_owned();
                }
            }
            (Some(Frame::Data), _) => {
                return Err(ApiError::bad("\"data\" must hold numbers, not strings"));
            }
            _ if self.skipping() => {}
            _ => self.unexpected("a string")?,
        }
        Ok(())
    }

    #[inline]
    fn number(&mut self, raw: &str) -> Result<(), ApiError> {
        match (self.top(), self.field) {
            (Some(Frame::Data), _) => self.data_number(raw),
            (Some(Frame::Shape), _) => {
                let d = parse_u64(raw, "each shape dimension")?;
                if let Some(s) = self.shape.as_mut() {
                    if s.len() >= 8 {
                        return Err(ApiError::bad("shape has too many dimensions"));
                    }
                    s.push(d);
                }
                Ok(())
            }
            (Some(Frame::InputParams), Field::BinaryDataSize) => {
                self.binary_size = Some(parse_u64(raw, "binary_data_size")?);
                Ok(())
            }
            _ if self.skipping() => Ok(()),
            _ => self.unexpected("a number"),
        }
    }

    fn boolean(&mut self, value: bool) -> Result<(), ApiError> {
        match (self.top(), self.field) {
            (Some(Frame::ReqParams), Field::BinaryDataOutput) => self.binary_output = value,
            (Some(Frame::OutputParams), Field::BinaryData) => {
                if let Some(o) = self.current_output.as_mut() {
                    o.binary = Some(value);
                }
            }
            (Some(Frame::Data), _) => {
                return Err(ApiError::bad("\"data\" must hold numbers, not booleans"));
            }
            _ if self.skipping() => {}
            _ => self.unexpected("a boolean")?,
        }
        Ok(())
    }

    fn null(&mut self) -> Result<(), ApiError> {
        match self.top() {
            Some(Frame::Data) => Err(ApiError::bad("\"data\" must hold numbers, not null")),
            Some(Frame::Shape) => Err(ApiError::bad("shape dimensions must be integers")),
            // null for an optional field = absent.
            _ => Ok(()),
        }
    }
}

/// Reads the binary section of a request into a buffer sized with the data read.
#[derive(Debug)]
pub struct BinaryInput {
    buf: ImageBuf,
    expected: usize,
    read: usize,
    carry: Vec<u8>,
}

impl BinaryInput {
    /// A reader for `req`'s binary input.
    pub fn new(
        req: &V2Request,
        expected: usize,
        max_batch: usize,
        budget: Budget,
        image_len: usize,
    ) -> Self {
        Self {
            buf: ImageBuf::new(req.datatype, image_len, max_batch, req.images, budget),
            expected,
            read: 0,
            carry: Vec::with_capacity(4),
        }
    }

    /// Feeds bytes of the binary section.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), ApiError> {
        self.read += bytes.len();
        if self.read > self.expected {
            return Err(ApiError::bad(format!(
                "the body holds more binary data than the {} bytes binary_data_size announced",
                self.expected
            )));
        }
        self.buf.push_le_bytes(bytes, &mut self.carry)
    }

    /// Checks the count and the values; returns the pixels.
    pub fn finish(self) -> Result<ImageBuf, ApiError> {
        if self.read != self.expected {
            return Err(ApiError::bad(format!(
                "the body holds {} bytes of binary data but binary_data_size announced {}",
                self.read, self.expected
            )));
        }
        if self.buf.pixel_type() == PixelType::F32 {
            validate_f32_buf(&self.buf)?;
        }
        Ok(self.buf)
    }
}
