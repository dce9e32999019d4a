"""The read side: what `status`, `devices`, `faces` and `doctor` gather into typed values - the status
report, the fleet as pages of devices, face crops newest first, the preflight checks. Everything here only
reads; the command modules render it and choose the exit code.
"""
