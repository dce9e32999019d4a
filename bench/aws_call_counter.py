"""Counts every AWS call the CLI makes in this process, for the benchmarks that report calls per command.

The CLI builds a new AwsContext per command, and each context records its calls through
`deeplens_cli.aws.CallRecorder`; wrapping that recorder once counts them all, whichever command made them.
"""

from __future__ import annotations


class AwsCallCounter:
    """`count` grows by one for every AWS request any AwsContext of this process makes, from construction on."""

    def __init__(self) -> None:
        import deeplens_cli.aws as aws_module

        self.count = 0
        original = aws_module.CallRecorder.__call__
        counter = self

        def record(self, model=None, **kwargs):  # noqa: ANN001 - botocore's event signature
            if model is not None:
                counter.count += 1
            return original(self, model, **kwargs)

        aws_module.CallRecorder.__call__ = record
