"""`QOS` as awsiotsdk names it (the values are the IPC model's strings)."""


class QOS:
    AT_MOST_ONCE = "0"
    AT_LEAST_ONCE = "1"
