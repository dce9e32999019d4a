"""On-device face-gate loop: camera -> face detector -> gate -> face crops to S3.

Runs on the device's own Python (3.7 on AWS DeepLens), so the package sticks to Python 3.7 syntax and
imports only numpy, cv2, boto3/botocore and the optional device SDKs. Entry points:
``lambda_function.py`` (Greengrass V1 long-lived Lambda) and ``python -m edge_function run`` (off-device
and Greengrass V2 component).

Comments here compare with "the seed": the sample inference Lambda of the original AWS DeepLens
face-detection workshop this project started from (docs/architecture.md, "The edge loop").
"""

__version__ = "0.1.0"
