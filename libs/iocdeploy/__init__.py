"""deploy/k8s plumbing: KafkaTopic resources generated from contracts/topics.yaml, and `ioc k8s check`
(render every overlay, validate every object offline, scan the policies)."""
