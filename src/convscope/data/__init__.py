"""Reading images, folders and arrays, and preprocessing them to a model's input spec.

Example:
    >>> from convscope.data import InputSpec, Preprocess, load_inputs
    >>> spec = InputSpec((28, 28, 1))
    >>> batch = load_inputs(["digits/"], spec, Preprocess(invert=True))
    >>> batch.x.shape, batch.names[:2], batch.preprocess
    >>> ct = Preprocess(read=ReadOptions(window=Window(40, 400)))   # DICOM/NIfTI/TIFF stacks, CT soft tissue
    >>> load_inputs(["scan.dcm", "series/", "brain.nii.gz"], spec, ct).names
"""

from __future__ import annotations

from convscope.data.arrays import ARRAY_EXTENSIONS, NPZ_KEYS, array_display, coerce_array, read_array_file
from convscope.data.convert import PreparedImage, draft_size, prepare_image, to_model_input
from convscope.data.items import folder_images
from convscope.data.load import Inputs, load_input_groups, load_inputs
from convscope.data.medical import STACK_EXTENSIONS, read_stack
from convscope.data.names import key_filename, safe_name, unique_names
from convscope.data.preprocess import RESIZE_MODES, Preprocess, parse_range
from convscope.data.read import DEFAULT_MAX_PIXELS, IMAGE_EXTENSIONS, image_to_array, read_image
from convscope.data.readopts import ReadOptions, SliceSpec, parse_slice
from convscope.data.spec import InputSpec, format_shape
from convscope.data.stack import Stack
from convscope.data.window import Window, parse_window

__all__ = [
    "ARRAY_EXTENSIONS",
    "DEFAULT_MAX_PIXELS",
    "IMAGE_EXTENSIONS",
    "NPZ_KEYS",
    "RESIZE_MODES",
    "STACK_EXTENSIONS",
    "InputSpec",
    "Inputs",
    "PreparedImage",
    "Preprocess",
    "ReadOptions",
    "SliceSpec",
    "Stack",
    "Window",
    "array_display",
    "coerce_array",
    "draft_size",
    "folder_images",
    "format_shape",
    "image_to_array",
    "key_filename",
    "load_input_groups",
    "load_inputs",
    "parse_range",
    "parse_slice",
    "parse_window",
    "prepare_image",
    "read_array_file",
    "read_image",
    "read_stack",
    "safe_name",
    "to_model_input",
    "unique_names",
]
