"""Stand-in for `awsiot.greengrasscoreipc`: `clientv2.GreengrassCoreIPCClientV2` and `model.QOS`."""
