"""The account's own resources, shared by every device: the DeepLens IAM roles (`roles`), the face-crop bucket
(`bucket`) and the IAM policy documents they carry (`policies`). Each keeps its desired state as data, a
planner that only reads, and a teardown plan.
"""
