"""Folder the simulated Greengrass V2 nucleus puts first on a component's path: its `awsiot` package stands in
for awsiotsdk's Greengrass IPC client, so a component's `PublishToIoTCore` lands in a local JSON-lines file the
demo shows (there is no nucleus IPC socket on the host). Nothing in `deeplens_cli` imports it."""
