"""Depth of the input image: from a file, a sidecar, or a local learned model (see docs/depth.md).

Heavy backends (transformers, moge) are imported only when used.
"""

from voyager_pipe.depth.base import DepthEstimate, DepthEstimator
from voyager_pipe.depth.config import DepthConfig
from voyager_pipe.depth.estimate import DEPTH_ESTIMATORS, estimate_depth, get_depth_estimator
from voyager_pipe.depth.files import find_sidecar
from voyager_pipe.io.depth_files import read_depth_file

__all__ = ["DEPTH_ESTIMATORS", "DepthConfig", "DepthEstimate", "DepthEstimator", "estimate_depth",
           "find_sidecar", "get_depth_estimator", "read_depth_file"]
