"""The built-in protocol profiles.

`released`: byte-for-byte what the released Pixel-Reasoner checkpoints (PixelReasoner-RL-v1, -WarmStart) and
the PixelReasoner-SFT-Data expect: Qwen-Agent/Hermes tools `crop_image_normalized` (normalized boxes, 10%
padding, regions larger than 28 px) and `select_frames`, observations as *user* turns with the official texts.

`qwen`: Qwen2.5-VL's native conventions: `crop_image` with absolute pixel coordinates of the image as the model
saw it (Qwen2.5-VL grounds in resized-image pixels), observations as Hermes `tool` turns inside
`<tool_response>`, no padding.
"""
from pixel_reasoner.ops.crop import CropSettings
from pixel_reasoner.ops.select_frames import SelectFramesSettings
from pixel_reasoner.protocol.profile import ProtocolProfile, ToolBinding, register_profile

RELEASED_CROP_SCHEMA = {"type": "function", "function": {
    "name": "crop_image_normalized",
    "description": "Zoom in on the image based on the bounding box coordinates. It is useful when the object or text "
                   "in the image is too small to be seen.",
    "parameters": {"type": "object", "properties": {
        "bbox_2d": {"type": "array", "description": "coordinates for bounding box of the area you want to zoom in. "
                    "Values should be within [0.0,1.0].", "items": {"type": "number"}},
        "target_image": {"type": "number", "description": "The index of the image to crop. Index from 1 to the number "
                         "of images. Choose 1 to operate on original image."}},
        "required": ["bbox_2d", "target_image"]}}}

RELEASED_SELECT_FRAMES_SCHEMA = {"type": "function", "function": {
    "name": "select_frames",
    "description": "Select frames from a video.",
    "parameters": {"type": "object", "properties": {
        "target_frames": {"type": "array", "description": "List of frame indices to select from the video (no more "
                          "than 8 frames in total).", "items": {"type": "integer",
                                                                "description": "Frame index from 1 to 16."}}},
        "required": ["target_frames"]}}}

RELEASED_GUIDELINES = (
    "\n\nGuidelines: Understand the given visual information and the user query. Determine if it is beneficial to "
    "employ the given visual operations (tools). For a video, we can look closer by `select_frames`. For an image, "
    "we can look closer by `crop_image`. Reason with the visual information step by step, and put your final "
    "answer within \\boxed{}.")

RELEASED = register_profile(ProtocolProfile(
    name="released",
    description="Compatible with the released Pixel-Reasoner models and SFT data (normalized boxes, user-turn "
                "observations).",
    tools=(
        ToolBinding("crop_image_normalized", "crop_image",
                    CropSettings(coordinates="normalized", padding=0.1, tolerance=0.0, min_size=28),
                    schema=RELEASED_CROP_SCHEMA,
                    observation="\nHere is the cropped image (Image Size: {width}x{height}):"),
        ToolBinding("select_frames", "select_frames", SelectFramesSettings(max_frames=8),
                    schema=RELEASED_SELECT_FRAMES_SCHEMA,
                    observation="\nHere are the selected frames (Frame Size: {width}x{height}, "
                                "Numbered {first} to {last}):"),
    ),
    observation_role="user",
    error_template="\nExecution error:\n{message}\n",
    guidelines=RELEASED_GUIDELINES,
))

QWEN_GUIDELINES = (
    "\n\nGuidelines: Understand the given visual information and the user query. Determine if it is beneficial to "
    "employ the given visual operations (tools). For a video, we can look closer by `select_frames`. For an image, "
    "we can look closer by `crop_image`, giving the box in pixel coordinates of the image as you see it. Reason "
    "with the visual information step by step, and put your final answer within \\boxed{}.")

QWEN = register_profile(ProtocolProfile(
    name="qwen",
    description="Qwen2.5-VL native: absolute pixel boxes on the resized image, Hermes tool-response observations.",
    tools=(
        ToolBinding("crop_image", "crop_image", CropSettings(coordinates="pixels", padding=0.0, tolerance=0.02,
                                                             min_size=28),
                    observation="Here is the cropped image (image {first}, {width}x{height} pixels):"),
        ToolBinding("select_frames", "select_frames", SelectFramesSettings(max_frames=8),
                    observation="Here are the selected frames (images {first} to {last}, {width}x{height} pixels "
                                "each):"),
    ),
    observation_role="tool",
    error_template="Error: {message}",
    guidelines=QWEN_GUIDELINES,
))

RELEASED_NO_TOOLS = register_profile(RELEASED.without_tools())
QWEN_NO_TOOLS = register_profile(QWEN.without_tools())
